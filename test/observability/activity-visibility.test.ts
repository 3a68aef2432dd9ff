/**
 * What one tenant can learn about another from the server's activity: nothing. Every tenant's
 * service connects as app_user, and PostgreSQL shows a session the query text of every other
 * session of the same role; migrate therefore takes session activity away from PUBLIC, in the view
 * (pg_stat_activity, pg_stat_get_activity) and in the per-backend functions
 * (pg_stat_get_backend_activity(n) and its siblings), leaving it to monitoring roles.
 *
 * Negative control: a migrated database where the grants are put back (and, for the registry, its
 * row security disabled) — there tenant A reads tenant B's running statement, literal included,
 * its tag, and the tag's owner. The same attack code, so the checks can fail.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tenantActivity } from "../../lib/observability/activity";
import { ROLES } from "../../lib/schema/roles";
import { createTenantPool, type TenantPool } from "../../lib/tenant-context/client";
import { createTenant } from "../../lib/tenant/registry";
import type { Tenant } from "../../lib/tenant/model";
import { migratedDatabase, sqlstate, type MigratedDatabase } from "../data-layer/harness";

const SECRET = "b-secret-literal-4711";
const VICTIM_SQL = `SELECT pg_sleep(2), '${SECRET}' AS secret`;
/** What tenant A's code runs to spy: the view, and the per-backend functions the view is built from. */
const SPY_VIEW = `SELECT application_name, query FROM pg_catalog.pg_stat_activity WHERE pid <> pg_backend_pid() AND query LIKE '%' || $1 || '%'`;
const SPY_FUNCTIONS = `SELECT pg_stat_get_backend_activity(s) AS query FROM pg_stat_get_backend_idset() s
                        WHERE pg_stat_get_backend_pid(s) <> pg_backend_pid() AND pg_stat_get_backend_activity(s) LIKE '%' || $1 || '%'`;

interface Setup {
  m: MigratedDatabase;
  a: Tenant;
  b: Tenant;
  pool: TenantPool;
}

async function setup(prefix: string): Promise<Setup> {
  const m = await migratedDatabase(prefix);
  const a = await createTenant(m.admin, { slug: "tenant-a", tier: "pro", region: "eu" });
  const b = await createTenant(m.admin, { slug: "tenant-b", tier: "pro", region: "eu" });
  const pool = createTenantPool({ connectionString: m.db.urlAs(ROLES.app), max: 4 });
  return { m, a, b, pool };
}

/** Runs B's statement in the background and `spy` once it is running; returns what the spy got. */
async function whileBRuns<T>(s: Setup, spy: () => Promise<T>): Promise<T> {
  const victim = s.pool.tenantQuery({ tenantId: s.b.id, tier: "pro" }, VICTIM_SQL);
  try {
    // Wait until B's statement is on the server (seen by the superuser).
    for (let i = 0; i < 50; i++) {
      const { rows } = await s.m.admin.query(`SELECT 1 FROM pg_stat_activity WHERE query = $1 AND state = 'active'`, [VICTIM_SQL]);
      if (rows.length) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    return await spy();
  } finally {
    await victim;
  }
}

const asA = (s: Setup, sql: string, values: unknown[] = []) => s.pool.tenantQuery({ tenantId: s.a.id, tier: "pro" }, sql, values);

let secure: Setup;
let open: Setup;

beforeAll(async () => {
  [secure, open] = await Promise.all([setup("vis"), setup("visopen")]);
  // The control: the migrated database with PostgreSQL's default grants put back.
  const { rows } = await open.m.admin.query(
    `SELECT p.oid::regprocedure::text AS fn FROM pg_proc p
      WHERE p.pronamespace = 'pg_catalog'::regnamespace AND (p.proname LIKE 'pg\\_stat\\_get\\_backend\\_%' OR p.proname = 'pg_stat_get_activity')`,
  );
  await open.m.admin.query(`GRANT SELECT ON pg_catalog.pg_stat_activity TO PUBLIC`);
  for (const { fn } of rows) await open.m.admin.query(`GRANT EXECUTE ON FUNCTION pg_catalog.${fn} TO PUBLIC`);
}, 60_000);

afterAll(async () => {
  for (const s of [secure, open]) {
    await s?.pool.end();
    await s?.m.close();
  }
});

describe("session activity is hidden from tenants", () => {
  it("app_user can read neither pg_stat_activity nor any per-backend activity function", async () => {
    const { rows } = await secure.m.admin.query(
      `SELECT p.oid::regprocedure::text AS fn, has_function_privilege($1, p.oid, 'EXECUTE') AS app, has_function_privilege($2, p.oid, 'EXECUTE') AS readonly
         FROM pg_proc p WHERE p.pronamespace = 'pg_catalog'::regnamespace
          AND (p.proname LIKE 'pg\\_stat\\_get\\_backend\\_%' OR p.proname = 'pg_stat_get_activity') ORDER BY 1`,
      [ROLES.app, ROLES.readonly],
    );
    expect(rows.length).toBeGreaterThanOrEqual(13);
    expect(rows.filter((r) => r.app || r.readonly)).toEqual([]);
    const view = await secure.m.admin.query(`SELECT has_table_privilege($1, 'pg_catalog.pg_stat_activity', 'SELECT') AS app`, [ROLES.app]);
    expect(view.rows[0].app).toBe(false);
  });

  it("tenant A's code gets permission denied while tenant B runs a statement; the operator still sees B", async () => {
    const [viaView, viaFunctions, operator] = await whileBRuns(secure, async () => [
      await sqlstate(() => asA(secure, SPY_VIEW, [SECRET])),
      await sqlstate(() => asA(secure, SPY_FUNCTIONS, [SECRET])),
      await tenantActivity(secure.m.admin),
    ]);
    expect([viaView, viaFunctions]).toEqual(["42501", "42501"]);
    expect(operator).toContainEqual(expect.objectContaining({ tenant: "tenant-b", active: 1 }));
  });

  it("a monitoring role (pg_read_all_stats) keeps the per-backend functions", async () => {
    const role = await secure.m.throwawayRole();
    await secure.m.admin.query(`GRANT pg_read_all_stats TO ${role}`);
    const monitor = await secure.m.connectAs(role);
    const rows = await whileBRuns(secure, async () => (await monitor.query(SPY_FUNCTIONS, [SECRET])).rows);
    expect(rows).toContainEqual({ query: VICTIM_SQL });
  });

  it("negative control: with the default grants back, tenant A reads B's running statement, literal and tag", async () => {
    const [viaView, viaFunctions] = await whileBRuns(open, async () => [
      (await asA(open, SPY_VIEW, [SECRET])).rows,
      (await asA(open, SPY_FUNCTIONS, [SECRET])).rows,
    ]);
    // (Contain, not equal: an idle pooled connection that ran B's statement earlier still shows it
    // as its last query, untagged; the running one carries B's tag.)
    expect(viaView).toContainEqual({ application_name: `tenant:${open.b.logTag}`, query: VICTIM_SQL });
    expect(viaFunctions).toContainEqual({ query: VICTIM_SQL });
  });
});

describe("tags do not name tenants to other tenants", () => {
  const registry = `SELECT slug, log_tag FROM tenancy.tenants ORDER BY slug`;

  it("inside its transaction a tenant's application_name is its own tag, and the registry shows it only its own row", async () => {
    const { rows } = await asA(secure, `SELECT current_setting('application_name') AS app`);
    expect(rows).toEqual([{ app: `tenant:${secure.a.logTag}` }]);
    expect((await asA(secure, registry)).rows).toEqual([{ slug: "tenant-a", log_tag: secure.a.logTag }]);
  });

  it("negative control: with the registry's row security off, the same query maps B's tag to B", async () => {
    const c = new pg.Client({ connectionString: open.m.db.url });
    await c.connect();
    try {
      await c.query(`ALTER TABLE tenancy.tenants DISABLE ROW LEVEL SECURITY`);
    } finally {
      await c.end();
    }
    expect((await asA(open, registry)).rows).toEqual([
      { slug: "tenant-a", log_tag: open.a.logTag },
      { slug: "tenant-b", log_tag: open.b.logTag },
    ]);
  });
});
