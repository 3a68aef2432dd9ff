/**
 * The tenant-context client through a real PgBouncer (session mode) in front of the test cluster:
 * what it returns, what it refuses before touching the database, how it fails, and that the
 * one-query path is one network write.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TIER_LIMITS } from "../../lib/tenant/tiers";
import {
  InvalidTenantClaimsError,
  TenantPool,
  TenantScopeError,
  tenantQuery,
  withTenant,
  type TenantQueryObservation,
  type TenantTransactionObservation,
} from "../../lib/tenant-context/client";
import { runBatch } from "../../lib/db/batch";
import { connect } from "../../lib/db/client";
import { lockForTransaction, tenantGateKey } from "../../lib/db/locks";
import { setTenantStatus } from "../../lib/tenant/registry";
import {
  APP_PASSWORD,
  bouncerFor,
  foreignRows,
  recordingClient,
  sleep,
  tenantDatabase,
  type Bouncer,
  type TenantDatabase,
} from "./helpers";

let db: TenantDatabase;
let bouncer: Bouncer;
const pools: TenantPool[] = [];
const newPool = (options: Partial<ConstructorParameters<typeof TenantPool>[0]> = {}) => {
  const pool = new TenantPool({ connectionString: bouncer.appUrl, max: 4, ...options });
  pools.push(pool);
  return pool;
};
const claims = (i: number) => ({ tenantId: db.tenants[i].id, tier: db.tenants[i].tier });

beforeAll(async () => {
  db = await tenantDatabase({ tiers: ["starter", "pro", "enterprise", "starter"] });
  bouncer = await bouncerFor(db);
});

afterAll(async () => {
  await Promise.all(pools.map((p) => p.end().catch(() => {})));
  await bouncer?.stop({ removeDir: true });
  await db?.drop();
});

describe("tenantQuery", () => {
  it("returns only the tenant's rows, for every tenant", async () => {
    const pool = newPool();
    for (const [i, tenant] of db.tenants.entries()) {
      const { rows } = await tenantQuery(pool, claims(i), "SELECT tenant_id, symbol FROM trades ORDER BY executed_at");
      expect(rows.length).toBe(20);
      expect(foreignRows(rows, tenant.id)).toBe(0);
    }
  });

  it("takes upper-case tenant ids and parameters", async () => {
    const pool = newPool();
    const { rows } = await tenantQuery(
      pool,
      { ...claims(1), tenantId: db.tenants[1].id.toUpperCase() },
      "SELECT tenant_id FROM trades WHERE symbol = $1",
      ["AAPL"],
    );
    expect(rows.length).toBeGreaterThan(0);
    expect(foreignRows(rows, db.tenants[1].id)).toBe(0);
  });

  it("sends the prelude and the query in one network write", async () => {
    const clients: pg.Client[] = [];
    const pool = newPool({ max: 1, Client: recordingClient(clients) });
    await tenantQuery(pool, claims(0), "SELECT 1"); // connect and authenticate first
    type WriteFn = (...args: unknown[]) => unknown;
    const socket = (clients[0] as unknown as { connection: { stream: { _write: WriteFn; _writev?: WriteFn } } }).connection.stream;
    let writes = 0;
    const write = socket._write;
    const writev = socket._writev;
    socket._write = function (this: unknown, ...args: unknown[]) {
      writes++;
      return write.apply(this, args);
    };
    if (writev) {
      socket._writev = function (this: unknown, ...args: unknown[]) {
        writes++;
        return writev.apply(this, args);
      };
    }
    const { rows } = await tenantQuery(pool, claims(0), "SELECT tenant_id FROM trades WHERE symbol = $1", ["MSFT"]);
    expect(foreignRows(rows, db.tenants[0].id)).toBe(0);
    expect(writes).toBe(1);

    writes = 0;
    await withTenant(pool, claims(0), async (tx) => {
      await tx.query("SELECT 1");
      expect(writes).toBe(1); // BEGIN + prelude + first query
      await tx.query("SELECT 2");
      expect(writes).toBe(2); // timeouts re-armed + second query
    });
    expect(writes).toBe(3); // COMMIT
  });

  it("runs the prelude and the query as one transaction: the gate is held while the query runs, nothing stays after", async () => {
    const pool = newPool({ max: 1 });
    const tenant = db.tenants[0].id;
    // The key lib/db/locks.ts names, against the one enter_tenant() takes in SQL: they must meet.
    const gate = "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS free";
    const holder = await connect(db.url);
    try {
      const running = tenantQuery(
        pool,
        claims(0),
        "SELECT current_setting('app.current_tenant_id') AS tenant, current_setting('search_path') AS path, pg_sleep(0.5)::text AS slept",
      );
      await sleep(200);
      // What graduation's cutover does: take the tenant's gate exclusively. It must wait for the query.
      expect((await holder.query(gate, [tenantGateKey(tenant)])).rows[0].free).toBe(false);
      expect((await running).rows[0]).toMatchObject({ tenant, path: "shared" });
      expect((await holder.query(gate, [tenantGateKey(tenant)])).rows[0].free).toBe(true);
    } finally {
      await holder.end();
    }
    const after = await withTenant(pool, claims(1), async (tx) => {
      await tx.query("SELECT 1");
      return (await tx.query("SELECT current_setting('app.current_tenant_id') AS tenant")).rows[0].tenant;
    });
    expect(after).toBe(db.tenants[1].id); // same connection (max 1): tenant 0's setting did not outlive its request
  });

  it.each([
    ["CALL tenancy.any_procedure()", "CALL"],
    ["do $$ begin commit; end $$", "do"],
    ["/* a /* nested */ comment */ DO $$ BEGIN NULL; END $$", "DO"],
    ["\n -- why\n call x()", "call"],
  ])("refuses %j before sending anything: outside a transaction block it could commit midway", async (statement, word) => {
    const pool = newPool();
    await expect(tenantQuery(pool, claims(0), statement)).rejects.toThrow(`"${word}" could commit midway; run it inside withTenant`);
    expect(pool.stats().total).toBe(0);
  });

  it("why: a DO block without an explicit transaction commits the tenant's transaction and runs on without it (inside withTenant it fails)", async () => {
    const c = await connect(bouncer.urlFor(db.name, "app_user", APP_PASSWORD));
    const commitMidway =
      "DO $$ BEGIN COMMIT; PERFORM set_config('app.after_commit', coalesce(current_setting('app.current_tenant_id', true), ''), false); END $$";
    try {
      const outcome = await runBatch(c, [
        { text: "SELECT tenancy.enter_tenant($1)", values: [db.tenants[0].id] },
        { text: commitMidway },
        { text: "SELECT current_setting('app.after_commit') AS tenant" },
      ]);
      expect(outcome.error).toBeUndefined();
      expect(outcome.results[2].rows[0].tenant).toBe(""); // the block went on with no tenant, and no gate
    } finally {
      await c.end();
    }
    const pool = newPool();
    await expect(
      withTenant(pool, claims(0), async (tx) => {
        await tx.query("SELECT 1");
        await tx.query(commitMidway);
      }),
    ).rejects.toMatchObject({ code: "2D000" }); // invalid transaction termination
  });
});

describe("the executor (one write, one Sync)", () => {
  it("serialises parameters as node-postgres does", async () => {
    const pool = newPool();
    const when = new Date("2026-01-02T03:04:05.678Z");
    const { rows } = await tenantQuery(
      pool,
      claims(0),
      "SELECT $1::timestamptz AS d, $2::text[] AS a, $3::jsonb AS j, $4::int AS n, $5::bytea AS b",
      [when, ["x", "y,z"], { k: [1, "two"] }, null, Buffer.from([0, 1, 255])],
    );
    expect(rows).toEqual([{ d: when, a: ["x", "y,z"], j: { k: [1, "two"] }, n: null, b: Buffer.from([0, 1, 255]) }]);
  });

  it("a value that cannot be serialised fails the request before anything is sent", async () => {
    const pool = newPool();
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    await expect(tenantQuery(pool, claims(0), "SELECT $1::jsonb", [circular])).rejects.toThrow(/circular/i);
    const { rows } = await tenantQuery(pool, claims(0), "SELECT tenant_id FROM trades");
    expect(foreignRows(rows, db.tenants[0].id)).toBe(0);
  });

  it("parses the client's own statements once per connection", async () => {
    const pool = newPool({ max: 1 });
    await tenantQuery(pool, claims(0), "SELECT 1");
    const names = await withTenant(pool, claims(1), async (tx) => {
      await tx.query("SELECT 1");
      return (await tx.query("SELECT name FROM pg_prepared_statements ORDER BY name")).rows.map((r) => r.name);
    });
    expect(names).toEqual(["tenancy_begin", "tenancy_prelude", "tenancy_rearm"]);
  });

  it("runBatch: one Sync makes the batch one unit — nothing after the failing statement runs, nothing before it stays", async () => {
    const c = await connect(bouncer.urlFor(db.name, "app_user", APP_PASSWORD));
    try {
      const outcome = await runBatch(c, [
        { text: "SELECT set_config('app.batch_probe', 'first', false)" },
        { text: "SELECT 1 / $1::int", values: [0] },
        { text: "SELECT set_config('app.batch_probe', 'third', false)" },
      ]);
      expect(outcome.error).toMatchObject({ code: "22012" });
      expect(outcome.results.length).toBe(1);
      // the first statement's session-level SET was rolled back with the implicit transaction, the third never ran
      expect([null, ""]).toContain((await c.query("SELECT current_setting('app.batch_probe', true) AS v")).rows[0].v);
    } finally {
      await c.end();
    }
  });

  it("after a failed prelude the rest of the batch does not run", async () => {
    const limits = { ...TIER_LIMITS, starter: { ...TIER_LIMITS.starter, statementTimeoutMs: 200 } };
    const pool = newPool({ limits });
    const count = async () => (await tenantQuery(pool, claims(3), "SELECT count(*)::int AS n FROM trades")).rows[0].n;
    const before = await count();
    const holder = await connect(db.url);
    try {
      await holder.query("BEGIN");
      await lockForTransaction(holder, tenantGateKey(db.tenants[3].id));
      const insert = "INSERT INTO trades (tenant_id, symbol, side, quantity, price) VALUES ($1, 'SKIP', 'buy', 1, 1)";
      await expect(tenantQuery(pool, claims(3), insert, [db.tenants[3].id])).rejects.toMatchObject({ code: "55P03" });
      await holder.query("ROLLBACK");
    } finally {
      await holder.end();
    }
    expect(await count()).toBe(before);
  });
});

describe("withTenant", () => {
  it("runs fn in one transaction routed to the tenant's schema, and commits", async () => {
    const pool = newPool();
    const inserted = await withTenant(pool, claims(2), async (tx) => {
      const before = await tx.query("SELECT count(*)::int AS n FROM trades");
      const { rows } = await tx.query(
        "INSERT INTO trades (tenant_id, symbol, side, quantity, price) VALUES (tenancy.current_tenant_id(), 'NVDA', 'buy', 1, 100) RETURNING tenant_id, id",
      );
      const after = await tx.query("SELECT count(*)::int AS n, count(DISTINCT tenant_id)::int AS tenants FROM trades");
      expect(after.rows[0]).toEqual({ n: before.rows[0].n + 1, tenants: 1 });
      expect(tx.schema).toBe("shared");
      expect((await tx.query("SELECT current_setting('app.current_tenant_id') AS t")).rows[0].t).toBe(db.tenants[2].id);
      return rows[0];
    });
    expect(inserted.tenant_id).toBe(db.tenants[2].id);
    const { rows } = await tenantQuery(pool, claims(2), "SELECT tenant_id FROM trades WHERE id = $1", [inserted.id]);
    expect(rows).toEqual([{ tenant_id: db.tenants[2].id }]);
    const other = await tenantQuery(pool, claims(0), "SELECT tenant_id FROM trades WHERE id = $1", [inserted.id]);
    expect(other.rows).toEqual([]);
  });

  it("rolls back when fn throws, and the error is fn's", async () => {
    const pool = newPool();
    const boom = new Error("fn failed");
    let id: string | undefined;
    await expect(
      withTenant(pool, claims(0), async (tx) => {
        id = (
          await tx.query(
            "INSERT INTO trades (tenant_id, symbol, side, quantity, price) VALUES (tenancy.current_tenant_id(), 'X', 'buy', 1, 1) RETURNING id",
          )
        ).rows[0].id;
        throw boom;
      }),
    ).rejects.toBe(boom);
    const { rows } = await tenantQuery(pool, claims(0), "SELECT id FROM trades WHERE id = $1", [id]);
    expect(rows).toEqual([]);
  });

  it("takes no connection when fn sends nothing", async () => {
    const pool = newPool();
    expect(await withTenant(pool, claims(0), () => Promise.resolve(42))).toBe(42);
    expect(pool.stats().total).toBe(0);
  });

  it("statements fn fired without awaiting still run inside the transaction", async () => {
    const pool = newPool();
    let pending: Promise<unknown> | undefined;
    await withTenant(pool, claims(1), async (tx) => {
      await tx.query("SELECT 1");
      pending = tx.query("SELECT tenant_id FROM trades");
    });
    const { rows } = (await pending) as { rows: { tenant_id: string }[] };
    expect(rows.length).toBeGreaterThan(0);
    expect(foreignRows(rows, db.tenants[1].id)).toBe(0);
  });

  it("refuses a query after the scope ended", async () => {
    const pool = newPool();
    let kept: { query(text: string): Promise<unknown> } | undefined;
    await withTenant(pool, claims(0), async (tx) => {
      kept = tx;
      await tx.query("SELECT 1");
    });
    await expect(kept!.query("SELECT tenant_id FROM trades")).rejects.toThrow(TenantScopeError);
  });

  it.each([
    "COMMIT",
    "  rollback",
    "/* x */ BEGIN",
    "SAVEPOINT s",
    "END",
    "start transaction",
    "PREPARE TRANSACTION 'x'",
    "DEALLOCATE ALL",
    "discard plans",
    "/* a /* nested */ comment */ COMMIT",
  ])("refuses transaction control (%j) before sending it", async (statement) => {
    const pool = newPool();
    await expect(
      withTenant(pool, claims(0), async (tx) => {
        await tx.query("SELECT 1");
        await tx.query(statement);
      }),
    ).rejects.toThrow(/transaction control/);
  });

  it("refuses query objects and multi-statement text", async () => {
    const pool = newPool();
    await expect(withTenant(pool, claims(0), (tx) => tx.query({ text: "SELECT 1", name: "x" } as unknown as string))).rejects.toThrow(
      TenantScopeError,
    );
    await expect(withTenant(pool, claims(0), (tx) => tx.query("SELECT 1; SELECT 2"))).rejects.toThrow(/multiple commands/);
  });
});

describe("claims and tenants", () => {
  it.each([
    [{ tenantId: "not-a-uuid", tier: "pro" }, "tenantId"],
    [{ tenantId: "00000000-0000-0000-0000-000000000000", tier: "platinum" }, "tier"],
    [{ tier: "pro" }, "tenantId"],
    ["00000000-0000-0000-0000-000000000000", "claims"],
  ])("refuses claims %j naming %s, before taking a connection", async (bad, field) => {
    const pool = newPool();
    const error = await tenantQuery(pool, bad as never, "SELECT 1").catch((e) => e);
    expect(error).toBeInstanceOf(InvalidTenantClaimsError);
    expect(error.field).toBe(field);
    await expect(withTenant(pool, bad as never, () => Promise.resolve(1))).rejects.toThrow(InvalidTenantClaimsError);
    expect(pool.stats().total).toBe(0);
  });

  it("refuses unknown and suspended tenants, and destroys the connection", async () => {
    const clients: pg.Client[] = [];
    const pool = newPool({ max: 1, Client: recordingClient(clients) });
    const unknown = { tenantId: "0b5e8f3c-1d2a-4c8e-9f1a-2b3c4d5e6f70", tier: "pro" as const };
    await expect(tenantQuery(pool, unknown, "SELECT tenant_id FROM trades")).rejects.toMatchObject({
      code: "42501",
      message: /unknown or suspended/,
    });
    await expect(withTenant(pool, unknown, (tx) => tx.query("SELECT tenant_id FROM trades"))).rejects.toMatchObject({ code: "42501" });
    expect(clients.length).toBe(2); // each failure destroyed its connection

    const admin = await connect(db.url);
    try {
      await setTenantStatus(admin, db.tenants[3].slug, "suspended");
      await expect(tenantQuery(pool, claims(3), "SELECT tenant_id FROM trades")).rejects.toMatchObject({ code: "42501" });
      await setTenantStatus(admin, db.tenants[3].slug, "active");
      const { rows } = await tenantQuery(pool, claims(3), "SELECT tenant_id FROM trades");
      expect(rows.length).toBe(20);
      expect(foreignRows(rows, db.tenants[3].id)).toBe(0);
    } finally {
      await admin.end();
    }
  });

  it("the pool offers no way to a connection or a query without a tenant", () => {
    const pool = newPool();
    for (const name of ["query", "connect", "on", "pool", "client"])
      expect((pool as unknown as Record<string, unknown>)[name]).toBeUndefined();
    // @ts-expect-error: TenantPool is not a Queryable
    const queryable: { query(text: string): unknown } = pool;
    expect(queryable).toBe(pool);
  });

  it("refuses pool options that set session state", () => {
    expect(() => new TenantPool({ connectionString: bouncer.appUrl, statement_timeout: 0 } as never)).toThrow(/statement_timeout/);
    expect(() => new TenantPool({ connectionString: bouncer.appUrl, onConnect: () => {} } as never)).toThrow(/onConnect/);
  });
});

describe("observer and noisy neighbours", () => {
  it("reports every tenant statement and transaction; a throwing observer breaks nothing", async () => {
    const queries: TenantQueryObservation[] = [];
    const transactions: TenantTransactionObservation[] = [];
    const pool = newPool({
      observer: {
        onQuery: (o) => {
          queries.push(o);
          throw new Error("observer bug");
        },
        onTransaction: (o) => transactions.push(o),
      },
    });
    await tenantQuery(pool, claims(0), "SELECT tenant_id FROM trades");
    await withTenant(pool, claims(1), async (tx) => {
      await tx.query("SELECT 1");
      await tx.query("SELECT 2");
    });
    await expect(tenantQuery(pool, claims(2), "SELECT 1/0")).rejects.toMatchObject({ code: "22012" });
    expect(queries.map(({ tenantId, tier, rows, errorCode }) => ({ tenantId, tier, rows, errorCode }))).toEqual([
      { tenantId: db.tenants[0].id, tier: "starter", rows: 20, errorCode: undefined },
      { tenantId: db.tenants[1].id, tier: "pro", rows: 1, errorCode: undefined },
      { tenantId: db.tenants[1].id, tier: "pro", rows: 1, errorCode: undefined },
      { tenantId: db.tenants[2].id, tier: "enterprise", rows: undefined, errorCode: "22012" },
    ]);
    expect(transactions.map(({ statements, outcome, errorCode }) => ({ statements, outcome, errorCode }))).toEqual([
      { statements: 1, outcome: "commit", errorCode: undefined },
      { statements: 2, outcome: "commit", errorCode: undefined },
      { statements: 1, outcome: "rollback", errorCode: "22012" },
    ]);
    expect(queries.every((q) => q.durationMs > 0)).toBe(true);
  });

  it("a tenant holds at most its tier's share of the pool; other tenants are not queued behind it", async () => {
    const limits = { ...TIER_LIMITS, starter: { ...TIER_LIMITS.starter, maxConcurrentTransactions: 2 } };
    const pool = newPool({ max: 4, limits });
    let running = 0;
    let peak = 0;
    const busy = Array.from({ length: 6 }, () =>
      withTenant(pool, claims(0), async (tx) => {
        await tx.query("SELECT 1"); // the connection (and the tenant's slot) is taken by the first statement
        running++;
        peak = Math.max(peak, running);
        await tx.query("SELECT pg_sleep(0.2)");
        running--;
      }),
    );
    await sleep(50);
    expect(pool.stats().tenants[db.tenants[0].id]).toEqual({ active: 2, waiting: 4 });
    const { rows } = await tenantQuery(pool, claims(1), "SELECT tenant_id FROM trades");
    // The other tenant was served while the first still had requests queued for its own slots.
    expect(pool.stats().tenants[db.tenants[0].id].waiting).toBeGreaterThan(0);
    await Promise.all(busy);
    expect(peak).toBe(2);
    expect(foreignRows(rows, db.tenants[1].id)).toBe(0);
    expect(pool.stats().tenants).toEqual({});
  });

  it("the wait at a tenant's write gate is bounded by the tier's timeout; other tenants pass", async () => {
    const limits = { ...TIER_LIMITS, starter: { ...TIER_LIMITS.starter, statementTimeoutMs: 300 } };
    const pool = newPool({ limits });
    const holder = await connect(db.url);
    try {
      // What graduation does: take the tenant's gate exclusively.
      await holder.query("BEGIN");
      await lockForTransaction(holder, tenantGateKey(db.tenants[0].id));
      await expect(tenantQuery(pool, claims(0), "SELECT tenant_id FROM trades")).rejects.toMatchObject({ code: "55P03" });
      const { rows } = await tenantQuery(pool, claims(3), "SELECT tenant_id FROM trades");
      expect(foreignRows(rows, db.tenants[3].id)).toBe(0);
      await holder.query("ROLLBACK");
      const after = await tenantQuery(pool, claims(0), "SELECT tenant_id FROM trades");
      expect(foreignRows(after.rows, db.tenants[0].id)).toBe(0);
    } finally {
      await holder.end();
    }
  });
});
