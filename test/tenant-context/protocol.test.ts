/**
 * What a tenant request puts on the wire (issue 21: "tenantQuery stays one round trip", and the
 * per-transaction cost cut by sending less): the messages the client writes per request, read off
 * the connection's socket. The first request on a connection parses and describes the client's
 * prelude and a `{ prepare: true }` statement; from then on each request is Bind and Execute per
 * statement and one Sync — no Parse, no Describe — and its rows still come back typed, from the
 * row descriptions the connection remembered. A statement whose table changed is described again
 * under a new name (the stale-plan path), so a remembered description never parses another shape.
 * One Sync per request is one round trip: the batch is written at once and answered at the Sync.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TenantPool, tenantQuery, withTenant } from "../../lib/tenant-context/client";
import { installContextKey } from "../../lib/tenant-context/keys";
import { generateContextSecret, type ContextKey } from "../../lib/tenant-context/proof";
import { recordingClient, tenantDatabase, type TenantDatabase } from "../pgbouncer/helpers";

const KEY: ContextKey = { kid: "eu-protocol", region: "eu", secret: generateContextSecret() };

let db: TenantDatabase;
const pools: TenantPool[] = [];

beforeAll(async () => {
  db = await tenantDatabase({ tiers: ["starter", "pro"] });
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  await installContextKey(admin, KEY).finally(() => admin.end());
}, 60_000);

afterAll(async () => {
  await Promise.all(pools.map((p) => p.end().catch(() => {})));
  await db?.drop();
});

/**
 * A pool on one connection whose extended-protocol messages are recorded as letters (P Parse,
 * B Bind, D Describe, E Execute, S Sync): the connection methods lib/db/batch.ts writes them with.
 */
function recordedPool(contextKey?: ContextKey): { pool: TenantPool; written: string[] } {
  const written: string[] = [];
  const Recording = recordingClient([]);
  class Wire extends Recording {
    constructor(config?: string | pg.ClientConfig) {
      super(config);
      const connection = (this as unknown as { connection: Record<string, (...args: unknown[]) => unknown> }).connection;
      for (const [method, letter] of Object.entries(LETTERS)) {
        const send = connection[method].bind(connection);
        connection[method] = (...args: unknown[]) => (written.push(letter), send(...args));
      }
    }
  }
  const pool = new TenantPool({ connectionString: db.directAppUrl, max: 1, Client: Wire, contextKey });
  pools.push(pool);
  return { pool, written };
}
const LETTERS = { parse: "P", bind: "B", describe: "D", execute: "E", sync: "S" };

const claims = (i: number) => ({ tenantId: db.tenants[i].id, tier: db.tenants[i].tier });
/** Messages of one request: what was written while it ran. */
async function messagesOf(written: string[], request: () => Promise<unknown>): Promise<string> {
  written.length = 0;
  await request();
  return written.join("");
}

describe("the messages of a tenant request", () => {
  for (const keyed of [false, true]) {
    it(`tenantQuery { prepare: true }${keyed ? " with a context key (the verifier)" : ""}: parsed and described once, then Bind/Execute and one Sync`, async () => {
      const { pool, written } = recordedPool(keyed ? KEY : undefined);
      const text = "SELECT tenant_id, count(*)::int AS n, max(executed_at) AS newest FROM trades GROUP BY tenant_id";
      const first = await messagesOf(written, () => tenantQuery(pool, claims(0), text, [], { prepare: true }));
      expect(first).toBe("PBDEPBDES");
      for (const i of [1, 0, 1]) {
        let rows: { tenant_id: string; n: number; newest: Date }[] = [];
        const again = await messagesOf(written, async () => {
          rows = (await tenantQuery(pool, claims(i), text, [], { prepare: true })).rows as typeof rows;
        });
        expect(again).toBe("BEBES");
        // Typed by the remembered row description: an int4, a timestamptz.
        expect(rows).toEqual([{ tenant_id: db.tenants[i].id, n: 20, newest: expect.any(Date) }]);
      }
    });
  }

  it("unprepared: the prelude is remembered, the statement is parsed and described each time (one Sync: one round trip)", async () => {
    const { pool, written } = recordedPool();
    await tenantQuery(pool, claims(0), "SELECT count(*)::int AS n FROM trades");
    const again = await messagesOf(written, () => tenantQuery(pool, claims(1), "SELECT count(*)::int AS n FROM trades"));
    expect(again).toBe("BEPBDES");
  });

  it("withTenant: BEGIN, the prelude and COMMIT are bound and executed only", async () => {
    const { pool, written } = recordedPool();
    const run = () => withTenant(pool, claims(0), async (tx) => (await tx.query("SELECT 1 AS one", [], { prepare: true })).rows);
    await run();
    const again = await messagesOf(written, run);
    expect(again).toBe("BEBEBESBES"); // BEGIN, prelude, the query, Sync; COMMIT, Sync
    expect(await run()).toEqual([{ one: 1 }]);
  });

  it("a statement whose table changed is described again under a new name, and its new shape parses", async () => {
    const { pool, written } = recordedPool();
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      await admin.query("CREATE TABLE shared.protocol_probe (tenant_id uuid NOT NULL, v int)");
      await admin.query("GRANT SELECT ON shared.protocol_probe TO app_user");
      await admin.query("INSERT INTO shared.protocol_probe VALUES ($1, 7)", [db.tenants[0].id]);
      const read = () => tenantQuery(pool, claims(0), "SELECT * FROM protocol_probe", [], { prepare: true });
      expect((await read()).rows).toEqual([{ tenant_id: db.tenants[0].id, v: 7 }]);
      expect(await messagesOf(written, read)).toBe("BEBES");
      await admin.query("ALTER TABLE shared.protocol_probe ADD COLUMN at timestamptz DEFAULT '2026-12-06T00:00:00Z'");
      // The old statement fails before it runs (0A000); tenantQuery re-sends it parsed and described afresh.
      let rows: unknown[] = [];
      const retried = await messagesOf(written, async () => (rows = (await read()).rows));
      expect(retried).toMatch(/PBDES$/);
      expect(rows).toEqual([{ tenant_id: db.tenants[0].id, v: 7, at: new Date("2026-12-06T00:00:00Z") }]);
      expect(await messagesOf(written, read)).toBe("BEBES");
    } finally {
      await admin.query("DROP TABLE IF EXISTS shared.protocol_probe");
      await admin.end();
    }
  });
});
