/**
 * pg_stat_statements, preloaded on AWS (lib/platform/postgres-config.ts): once someone creates the
 * extension, PostgreSQL grants its view and function to PUBLIC, and a session sees the normalised
 * statements of every session of its own role — every tenant is app_user, so one tenant's
 * statements to another. migrate takes them from PUBLIC (monitoring roles keep them) and the
 * audit flags a subject role that can read them.
 *
 * Its own PostgreSQL, started with the library preloaded (the shared test cluster does not load
 * it). Negative control: the grants put back, the same spy reads tenant B's statement.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditDatabase } from "../../lib/audit/isolation-audit";
import { startPostgres, type PostgresServer } from "../../lib/local/postgres-server";
import { migrate } from "../../lib/schema/migrate";
import { ROLES } from "../../lib/schema/roles";
import { createTenantPool, type TenantPool } from "../../lib/tenant-context/client";
import { createTenant } from "../../lib/tenant/registry";
import type { Tenant } from "../../lib/tenant/model";
import { withDatabase } from "../support/postgres";

const MARKER = "b_statement_marker_4711";
const SPY = `SELECT query FROM public.pg_stat_statements WHERE query LIKE '%' || $1 || '%'`;

let server: PostgresServer;
let admin: pg.Client;
let pool: TenantPool;
let a: Tenant;
let b: Tenant;
const asA = (sql: string, values: unknown[] = []) => pool.tenantQuery({ tenantId: a.id, tier: "pro" }, sql, values);

beforeAll(async () => {
  server = await startPostgres({ settings: { shared_preload_libraries: "pg_stat_statements" } });
  const setup = new pg.Client({ connectionString: server.adminUrl });
  await setup.connect();
  await setup.query("CREATE DATABASE stats");
  await setup.end();
  admin = new pg.Client({ connectionString: server.urlFor("stats") });
  await admin.connect();
  // The extension before migrate: what a DBA who creates it first leaves behind.
  await admin.query("CREATE EXTENSION pg_stat_statements SCHEMA public");
  await migrate(admin, { region: "eu", tenantContext: "setting" });
  a = await createTenant(admin, { slug: "tenant-a", tier: "pro", region: "eu" });
  b = await createTenant(admin, { slug: "tenant-b", tier: "pro", region: "eu" });
  pool = createTenantPool({ connectionString: withDatabase(server.urlFor("stats"), "stats", ROLES.app), max: 2 });
  await pool.tenantQuery({ tenantId: b.id, tier: "pro" }, `SELECT count(*) AS ${MARKER} FROM trades`);
}, 60_000);

afterAll(async () => {
  await pool?.end();
  await admin?.end();
  await server?.stop({ removeData: true });
});

describe("pg_stat_statements is hidden from tenants", () => {
  it("after migrate app_user can read neither the view nor the function; the operator sees B's statement", async () => {
    await expect(asA(SPY, [MARKER])).rejects.toMatchObject({ code: "42501" });
    await expect(
      asA(`SELECT query FROM public.pg_stat_statements(true) WHERE query LIKE '%' || $1 || '%'`, [MARKER]),
    ).rejects.toMatchObject({
      code: "42501",
    });
    const { rows } = await admin.query(SPY, [MARKER]);
    expect(rows.map((r) => r.query)).toContainEqual(expect.stringContaining(MARKER));
    expect((await migrate(admin)).unchanged).toBe(true);
    expect((await auditDatabase(admin)).filter((f) => f.check === "role-reads-activity")).toEqual([]);
  });

  it("negative control: with PostgreSQL's grants back, tenant A reads tenant B's statement, and the audit says so", async () => {
    await admin.query("GRANT SELECT ON public.pg_stat_statements TO PUBLIC");
    await admin.query("GRANT EXECUTE ON FUNCTION public.pg_stat_statements(boolean) TO PUBLIC");
    try {
      const { rows } = await asA(SPY, [MARKER]);
      expect(rows.map((r) => r.query)).toContainEqual(expect.stringContaining(MARKER));
      const findings = (await auditDatabase(admin)).filter((f) => f.check === "role-reads-activity");
      expect(findings.map((f) => f.object)).toContain(`role ${ROLES.app}`);
      expect(findings[0].message).toMatch(/pg_stat_statements/);
    } finally {
      const report = await migrate(admin);
      expect(report.database).toContainEqual(expect.stringMatching(/^REVOKE SELECT ON TABLE public\.pg_stat_statements FROM PUBLIC$/));
    }
    await expect(asA(SPY, [MARKER])).rejects.toMatchObject({ code: "42501" });
  });
});
