/**
 * The five node-postgres Pool leaks of ../shared/notes/isolation-threats.md (Pooling), each
 * reproduced through a real PgBouncer with a naive pg.Pool (the negative control: the leak is real
 * on this setup), and then shown impossible with the tenant-context client on the same setup.
 * Pools have max: 1, so the next request gets the very same connection.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TenantPool, TenantScopeError, tenantQuery, withTenant } from "../../lib/tenant-context/client";
import { bouncerFor, foreignRows, recordingClient, tenantDatabase, type Bouncer, type TenantDatabase } from "./helpers";

let db: TenantDatabase;
let bouncer: Bouncer;
const cleanup: (() => Promise<unknown>)[] = [];
let A: string;
let B: string;
const claimsA = () => ({ tenantId: A, tier: "pro" as const });
const claimsB = () => ({ tenantId: B, tier: "pro" as const });

/** A naive node-postgres pool through PgBouncer, as services write it. */
function naivePool(options: pg.PoolConfig = {}): pg.Pool {
  const pool = new pg.Pool({ connectionString: bouncer.appUrl, max: 1, ...options });
  pool.on("error", () => {});
  cleanup.push(() => pool.end());
  return pool;
}

/** The tenant-context client on the same setup; `clients` records its connections. */
function tenantPool(clients: pg.Client[] = []): TenantPool {
  const pool = new TenantPool({ connectionString: bouncer.appUrl, max: 1, Client: recordingClient(clients) });
  cleanup.push(() => pool.end());
  return pool;
}

const TRADES = "SELECT tenant_id FROM shared.trades";

/** What a raw query on that very connection would see now (the test peeks; services cannot). */
async function residue(client: pg.Client) {
  const { rows } = await client.query(
    `SELECT current_setting('app.current_tenant_id', true) AS tenant, (SELECT count(*)::int FROM shared.trades) AS visible`,
  );
  return { ...rows[0], status: client.getTransactionStatus() };
}

beforeAll(async () => {
  db = await tenantDatabase({ tiers: ["pro", "pro"] });
  [A, B] = db.tenants.map((t) => t.id);
  bouncer = await bouncerFor(db);
});

afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
  await bouncer?.stop({ removeDir: true });
  await db?.drop();
});

describe("1. a query without tenant context", () => {
  it("negative control: pool.query() after an earlier request gets that tenant's rows", async () => {
    const pool = naivePool();
    const c = await pool.connect();
    await c.query("SELECT set_config('app.current_tenant_id', $1, false)", [A]);
    c.release();
    const { rows } = await pool.query(TRADES); // "no tenant yet" — but the connection still has A
    expect(rows.length).toBeGreaterThan(0);
    expect(foreignRows(rows, A)).toBe(0); // they are all A's: leaked to a request that is not A's
  });

  it("the client has no query without claims, and leaves nothing on the connection", async () => {
    const clients: pg.Client[] = [];
    const pool = tenantPool(clients);
    const { rows } = await tenantQuery(pool, claimsA(), "SELECT tenant_id FROM trades");
    expect(rows.length).toBe(20);
    expect(foreignRows(rows, A)).toBe(0);
    expect((pool as unknown as { query?: unknown }).query).toBeUndefined();
    expect(clients.length).toBe(1);
    expect(await residue(clients[0])).toEqual({ tenant: "", visible: 0, status: "I" });
  });
});

describe("2. a swallowed set_config error", () => {
  it("negative control: the failed switch to B is swallowed and B's request reads A's rows", async () => {
    const pool = naivePool();
    const first = await pool.connect();
    await first.query("SELECT set_config('app.current_tenant_id', $1, false)", [A]);
    first.release();
    const c = await pool.connect();
    try {
      await c.query("SELECT set_config('app.current_tenant_id', $1::uuid::text, false)", [`${B}-from-a-bad-claim`]);
    } catch {
      // "we'll just log it"
    }
    const { rows } = await c.query(TRADES);
    c.release();
    expect(rows.length).toBeGreaterThan(0);
    expect(foreignRows(rows, A)).toBe(0); // B's request got A's rows
  });

  it("the client refuses the rest of the transaction and fails the request, even when fn swallows the error", async () => {
    const clients: pg.Client[] = [];
    const pool = tenantPool(clients);
    await tenantQuery(pool, claimsA(), "SELECT 1");
    const unknown = { tenantId: "6f1c1d2a-0000-4000-8000-000000000001", tier: "pro" as const };
    const seen: unknown[] = [];
    const error = await withTenant(pool, unknown, async (tx) => {
      for (let i = 0; i < 2; i++) {
        try {
          seen.push(await tx.query(TRADES));
        } catch (err) {
          seen.push(err); // swallowed
        }
      }
      return "fn thinks it succeeded";
    }).catch((e) => e);
    expect(error).toMatchObject({ code: "42501", message: /unknown or suspended/ });
    expect(seen[0]).toMatchObject({ code: "42501" }); // the prelude's error, not rows
    expect(seen[1]).toBeInstanceOf(TenantScopeError); // nothing more runs in a failed transaction
    const { rows } = await tenantQuery(pool, claimsB(), "SELECT tenant_id FROM trades");
    expect(rows.length).toBe(20);
    expect(foreignRows(rows, B)).toBe(0);
    expect(clients.length).toBe(2); // the failed transaction's connection was destroyed, not reused
  });
});

describe("3. the tenant set in a connect hook", () => {
  it("negative control: the hook ran once, for A; B's request on the same connection reads A's rows", async () => {
    let current = A;
    const pool = naivePool();
    pool.on("connect", (client) => void client.query("SELECT set_config('app.current_tenant_id', $1, false)", [current]));
    const first = await pool.query(TRADES);
    expect(foreignRows(first.rows, A)).toBe(0);
    current = B; // the next request is B's
    const { rows } = await pool.query(TRADES);
    expect(rows.length).toBeGreaterThan(0);
    expect(foreignRows(rows, A)).toBe(0); // every row B's request got is A's
  });

  it("the client refuses connect hooks and sets the tenant per transaction", async () => {
    expect(() => new TenantPool({ connectionString: bouncer.appUrl, onConnect: () => {} } as never)).toThrow(/onConnect/);
    const clients: pg.Client[] = [];
    const pool = tenantPool(clients);
    for (const id of [A, B, A, B]) {
      const { rows } = await tenantQuery(pool, { tenantId: id, tier: "pro" }, "SELECT tenant_id FROM trades");
      expect(rows.length).toBe(20);
      expect(foreignRows(rows, id)).toBe(0);
    }
    expect(clients.length).toBe(1); // one connection, reused, never mixed
  });
});

describe("4. a connection released inside an open transaction", () => {
  it("negative control: the early return skipped COMMIT; the next request runs inside A's transaction", async () => {
    const pool = naivePool();
    const c = await pool.connect();
    await c.query("BEGIN");
    await c.query("SELECT set_config('app.current_tenant_id', $1, true)", [A]);
    c.release(); // an early return on some error path
    const { rows } = await pool.query(TRADES); // the next request, before it sets anything
    expect(rows.length).toBeGreaterThan(0);
    expect(foreignRows(rows, A)).toBe(0);
    await pool.query("ROLLBACK");
  });

  it("the client ends every transaction before release, and never hands out a connection that is not idle", async () => {
    const clients: pg.Client[] = [];
    const pool = tenantPool(clients);
    // fn returns early with a statement in flight, and fn throws half-way: both end their transaction.
    await withTenant(pool, claimsA(), (tx) => {
      void tx.query(TRADES); // not awaited
      return Promise.resolve();
    });
    expect(await residue(clients[0])).toEqual({ tenant: "", visible: 0, status: "I" });
    await expect(
      withTenant(pool, claimsA(), async (tx) => {
        await tx.query(TRADES);
        throw new Error("early exit");
      }),
    ).rejects.toThrow("early exit");
    expect(clients.length).toBe(1); // that connection was destroyed, not returned
    await tenantQuery(pool, claimsA(), "SELECT 1");
    expect(clients.length).toBe(2);

    // Something else leaves the pooled connection inside A's transaction: the client will not use it.
    await clients[1].query("BEGIN");
    await clients[1].query("SELECT set_config('app.current_tenant_id', $1, true)", [A]);
    const { rows } = await tenantQuery(pool, claimsB(), "SELECT tenant_id FROM trades");
    expect(rows.length).toBe(20);
    expect(foreignRows(rows, B)).toBe(0);
    expect(clients.length).toBe(3); // a fresh connection instead
  });
});

describe("5. a transaction-local value reverting to a session-level one", () => {
  it("negative control: after B's COMMIT the connection is back to A's session value", async () => {
    const pool = naivePool();
    const c = await pool.connect();
    await c.query("SELECT set_config('app.current_tenant_id', $1, false)", [A]); // legacy code, once
    await c.query("BEGIN");
    await c.query("SELECT set_config('app.current_tenant_id', $1, true)", [B]);
    const inside = await c.query(TRADES);
    expect(foreignRows(inside.rows, B)).toBe(0);
    await c.query("COMMIT");
    const { rows } = await c.query(TRADES); // B's follow-up query, after its transaction
    c.release();
    expect(rows.length).toBeGreaterThan(0);
    expect(foreignRows(rows, A)).toBe(0); // A's rows in B's request
  });

  it("the client runs nothing after COMMIT, and retires a connection that carries a session-level tenant", async () => {
    const clients: pg.Client[] = [];
    const errors: Error[] = [];
    const pool = new TenantPool({
      connectionString: bouncer.appUrl,
      max: 1,
      Client: recordingClient(clients),
      observer: { onConnectionError: (e) => errors.push(e) },
    });
    cleanup.push(() => pool.end());
    await tenantQuery(pool, claimsB(), "SELECT 1");
    await clients[0].query("SELECT set_config('app.current_tenant_id', $1, false)", [A]); // legacy code on the pooled connection

    let kept: { query(text: string): Promise<unknown> } | undefined;
    const rows = await withTenant(pool, claimsB(), async (tx) => {
      kept = tx;
      return (await tx.query("SELECT tenant_id FROM trades")).rows;
    });
    expect(rows.length).toBe(20);
    expect(foreignRows(rows, B)).toBe(0); // the transaction-local B wins inside
    await expect(kept!.query(TRADES)).rejects.toThrow(TenantScopeError); // and nothing runs after COMMIT
    expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/session-level tenant setting/)]);
    expect(errors[0].message).not.toContain(A);
    await tenantQuery(pool, claimsB(), "SELECT 1");
    expect(clients.length).toBe(2); // the carrier was destroyed
  });
});
