/**
 * Pool exhaustion in session mode: a client connection pins a server connection for its whole
 * life, so clients beyond PgBouncer's pool wait, and at query_wait_timeout they get a clear error.
 * The same setup fails the pure pool-budget check (lib/pgbouncer/pool-budget.ts).
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkPoolBudget } from "../../lib/pgbouncer";
import { TenantPool, tenantQuery, withTenant } from "../../lib/tenant-context/client";
import { bouncerFor, foreignRows, sleep, tenantDatabase, type Bouncer, type TenantDatabase } from "./helpers";

const QUERY_WAIT_TIMEOUT = 2;
let db: TenantDatabase;
let bouncer: Bouncer;
const settings = { defaultPoolSize: 1, reservePoolSize: 0, queryWaitTimeout: QUERY_WAIT_TIMEOUT };

async function connected(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on("error", () => {});
  await c.connect();
  return c;
}

async function waiting(): Promise<number> {
  const pools = await bouncer.console("SHOW POOLS");
  return Number(pools.find((p) => p.database === db.name && p.user === "app_user")?.cl_waiting ?? 0);
}

beforeAll(async () => {
  db = await tenantDatabase({ tiers: ["pro", "starter"] });
  bouncer = await bouncerFor(db, { settings });
});

afterAll(async () => {
  await bouncer?.stop({ removeDir: true });
  await db?.drop();
});

describe("a PgBouncer pool of one server connection", () => {
  it("a second client waits, then gets query_wait_timeout; the first is unaffected", async () => {
    const holder = await connected(bouncer.appUrl);
    await holder.query("SELECT 1"); // pins the only server connection
    const late = await connected(bouncer.appUrl);
    const started = Date.now();
    const outcome = late.query("SELECT 1").then(
      () => "served",
      (e: Error) => e.message,
    );
    await sleep(300);
    expect(await waiting()).toBe(1);
    expect(await outcome).toMatch(/query_wait_timeout/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(QUERY_WAIT_TIMEOUT * 1000 - 100); // it waited, it did not fail fast
    expect((await holder.query("SELECT 1 AS ok")).rows).toEqual([{ ok: 1 }]);
    await holder.end();
    await late.end().catch(() => {});
  });

  it("a waiting client is served as soon as the holder disconnects", async () => {
    const holder = await connected(bouncer.appUrl);
    await holder.query("SELECT 1");
    const next = await connected(bouncer.appUrl);
    const served = next.query("SELECT 'served' AS outcome");
    await sleep(300);
    expect(await waiting()).toBe(1);
    await holder.end();
    expect((await served).rows).toEqual([{ outcome: "served" }]);
    await next.end();
  });

  it("an app pool larger than PgBouncer's fails at query_wait_timeout, recovers, and the budget check says so beforehand", async () => {
    const report = checkPoolBudget({
      pgbouncer: { databases: [{ name: db.name, host: db.host, port: db.port }], authFile: "/x/userlist.txt", ...settings },
      appPools: [{ service: "api", database: db.name, user: "app_user", instances: 1, poolMax: 2 }],
    });
    expect(report.ok).toBe(false);
    expect(report.problems[0].message).toMatch(/1 × 2\) = 2 connections .* gives that pair 1 server connections/);

    const pool = new TenantPool({ connectionString: bouncer.appUrl, max: 2 });
    try {
      const [A, B] = db.tenants;
      const slow = withTenant(pool, { tenantId: A.id, tier: A.tier }, async (tx) => {
        const { rows } = await tx.query("SELECT tenant_id FROM trades");
        await tx.query(`SELECT pg_sleep(${QUERY_WAIT_TIMEOUT + 1})`);
        return rows;
      });
      await sleep(200);
      const starved = await tenantQuery(pool, { tenantId: B.id, tier: B.tier }, "SELECT tenant_id FROM trades").catch((e: Error) => e);
      expect(starved).toBeInstanceOf(Error);
      expect((starved as Error).message).toMatch(/query_wait_timeout/);
      expect(foreignRows(await slow, A.id)).toBe(0);
      // The first connection is free again; the failed one was destroyed, not reused.
      const { rows } = await tenantQuery(pool, { tenantId: B.id, tier: B.tier }, "SELECT tenant_id FROM trades");
      expect(rows.length).toBe(20);
      expect(foreignRows(rows, B.id)).toBe(0);
    } finally {
      await pool.end();
    }
  });
});
