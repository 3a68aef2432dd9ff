/**
 * Noisy neighbours: per-tier statement timeouts that a session cannot lift. What holds, precisely:
 *  - the client sets the tier's statement_timeout (and lock_timeout) transaction-locally before
 *    enter_tenant and again before every statement of fn, so `SET statement_timeout = 0` run by fn
 *    lifts nothing for the statements after it (negative control: the same steps without the
 *    re-arm do lift it);
 *  - a statement cannot lift its own timeout: PostgreSQL arms the timer when the statement starts;
 *  - a session-level value fn left behind (it survives COMMIT) does not reach the next request;
 *  - PgBouncer's query_timeout is a ceiling for any session through it, whatever the session set
 *    (negative control: with query_timeout = 0 the lifted query runs to the end).
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TIER_LIMITS, type Tier } from "../../lib/tenant/tiers";
import { TenantPool, tenantQuery, withTenant } from "../../lib/tenant-context/client";
import { bouncerFor, recordingClient, tenantDatabase, type Bouncer, type TenantDatabase } from "./helpers";

const SHORT_MS = 300;
let db: TenantDatabase;
let bouncer: Bouncer;
let pool: TenantPool;
const clients: pg.Client[] = [];
const starter = () => ({ tenantId: db.tenants[0].id, tier: "starter" as const });

beforeAll(async () => {
  db = await tenantDatabase({ tiers: ["starter", "pro", "enterprise"] });
  bouncer = await bouncerFor(db);
  pool = new TenantPool({
    connectionString: bouncer.appUrl,
    max: 1,
    Client: recordingClient(clients),
    limits: { ...TIER_LIMITS, starter: { ...TIER_LIMITS.starter, statementTimeoutMs: SHORT_MS } },
  });
});

afterAll(async () => {
  await pool?.end();
  await bouncer?.stop({ removeDir: true });
  await db?.drop();
});

describe("per-tier statement timeouts in the client", () => {
  it.each(["starter", "pro", "enterprise"] as Tier[])("a %s transaction runs with its tier's timeout", async (tier) => {
    const defaults = new TenantPool({ connectionString: bouncer.appUrl, max: 1 });
    try {
      const i = ["starter", "pro", "enterprise"].indexOf(tier);
      const { rows } = await tenantQuery(
        defaults,
        { tenantId: db.tenants[i].id, tier },
        "SELECT current_setting('statement_timeout') AS st, current_setting('lock_timeout') AS lt",
      );
      const expected = `${TIER_LIMITS[tier].statementTimeoutMs / 1000}s`;
      expect(rows).toEqual([{ st: expected, lt: expected }]);
    } finally {
      await defaults.end();
    }
  });

  it("a long statement is cancelled at the tier's timeout", async () => {
    await expect(tenantQuery(pool, starter(), "SELECT pg_sleep(3)")).rejects.toMatchObject({ code: "57014" });
  });

  it("`SET statement_timeout = 0` inside fn does not lift the timeout of the next statement", async () => {
    await expect(
      withTenant(pool, starter(), async (tx) => {
        await tx.query("SET statement_timeout = 0");
        await tx.query("SELECT pg_sleep(3)");
      }),
    ).rejects.toMatchObject({ code: "57014" });
  });

  it("negative control: the same steps in a plain transaction do lift it", async () => {
    const c = new pg.Client({ connectionString: bouncer.appUrl });
    await c.connect();
    try {
      await c.query("BEGIN");
      await c.query(`SET LOCAL statement_timeout = ${SHORT_MS}`);
      await c.query("SET statement_timeout = 0");
      await expect(c.query("SELECT pg_sleep(1)")).resolves.toBeDefined();
      await c.query("ROLLBACK");
    } finally {
      await c.end();
    }
  });

  it("a statement cannot lift its own timeout", async () => {
    await expect(
      withTenant(pool, starter(), (tx) => tx.query("SELECT set_config('statement_timeout', '0', false), pg_sleep(3)")),
    ).rejects.toMatchObject({ code: "57014" });
  });

  it("a session-level timeout fn left behind does not reach the next request on that connection", async () => {
    await withTenant(pool, starter(), async (tx) => {
      await tx.query("SET statement_timeout = 0"); // session level: survives COMMIT
      await tx.query("SELECT 1");
    });
    const before = clients.length;
    expect((await clients[clients.length - 1].query("SHOW statement_timeout")).rows[0].statement_timeout).toBe("0");
    await expect(tenantQuery(pool, starter(), "SELECT pg_sleep(3)")).rejects.toMatchObject({ code: "57014" });
    expect(clients.length).toBe(before); // same connection
  });
});

describe("PgBouncer's query_timeout: the ceiling no session can lift", () => {
  // The schema refuses a query_timeout below the largest tier timeout (30 s); these two PgBouncers
  // get a short one (and none) written straight into the ini to keep the test short.
  const withQueryTimeout = (seconds: number) => (ini: string) => ini.replace(/\nquery_timeout = \d+\n/, `\nquery_timeout = ${seconds}\n`);

  async function liftedSleep(url: string, seconds: number): Promise<string> {
    const c = new pg.Client({ connectionString: url });
    c.on("error", () => {});
    await c.connect();
    try {
      await c.query("SET statement_timeout = 0");
      await c.query(`SELECT pg_sleep(${seconds})`);
      return "completed";
    } catch (err) {
      return (err as Error).message;
    } finally {
      await c.end().catch(() => {});
    }
  }

  it("cancels a statement whose session lifted its own timeout", async () => {
    const ceiling = await bouncerFor(db, { unsafeRewriteIni: withQueryTimeout(1) });
    try {
      expect(await liftedSleep(ceiling.appUrl, 4)).toBe("query timeout"); // PgBouncer's error; it closes the client and the server connection;
    } finally {
      await ceiling.stop({ removeDir: true });
    }
  });

  it("negative control: without query_timeout the lifted statement runs to the end", async () => {
    const none = await bouncerFor(db, { unsafeRewriteIni: withQueryTimeout(0) });
    try {
      expect(await liftedSleep(none.appUrl, 2)).toBe("completed");
    } finally {
      await none.stop({ removeDir: true });
    }
  });
});
