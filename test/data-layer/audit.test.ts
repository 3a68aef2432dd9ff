/**
 * `auditDatabase` on a live database: clean after migrate (with tenants, data, a dedicated schema and
 * a security_invoker view), and each breakage, applied in a transaction that is rolled back after
 * the audit reads it, produces its finding. The rules themselves are table-tested in
 * audit-rules.test.ts; this file proves the snapshot reads the catalogs right.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditDatabase, type AuditOptions } from "../../lib/audit/isolation-audit";
import { unfixedAdvisories } from "../../lib/audit/rls-advisories";
import { ROLES } from "../../lib/schema/roles";
import { emptySchemaState, planSchema, TENANT_PREDICATE } from "../../lib/schema/planner";
import { dedicatedSchemaName } from "../../lib/tenant/model";
import { loginPolicyPredicate } from "../../lib/enterprise/dedicated";
import { migratedDatabase, twoTenants, type MigratedDatabase } from "./harness";

let m: MigratedDatabase;
let db: string;
const P = TENANT_PREDICATE;

beforeAll(async () => {
  m = await migratedDatabase("audit");
  db = pg.escapeIdentifier(m.db.name);
  await twoTenants(m.admin);
});
afterAll(async () => {
  await m?.close();
});

type Triple = [severity: string, check: string, object: string];

/** Applies `sql` in a transaction, audits inside it, rolls it all back. */
async function auditAfter(sql: string | string[], options: AuditOptions = {}): Promise<Triple[]> {
  await m.admin.query("BEGIN");
  try {
    for (const statement of [sql].flat()) await m.admin.query(statement);
    return (await auditDatabase(m.admin, options)).map((f) => [f.severity, f.check, f.object]);
  } finally {
    await m.admin.query("ROLLBACK");
  }
}

const withoutVersion = (findings: Triple[]) => findings.filter(([, check]) => check !== "server-version");

describe("auditDatabase, live", () => {
  it("is clean on a freshly migrated database with tenants and data", async () => {
    expect(withoutVersion(await auditAfter([]))).toEqual([]);
  });

  it("reports exactly the advisories the pure table lists for this server's version", async () => {
    const num = Number((await m.admin.query(`SELECT current_setting('server_version_num') AS v`)).rows[0].v);
    const reported = (await auditDatabase(m.admin)).filter((f) => f.check === "server-version").map((f) => f.message.split(":")[0]);
    expect(reported).toEqual(unfixedAdvisories(num).map((a) => a.id));
  });

  it("stays clean with a dedicated tenant schema and a security_invoker view", async () => {
    const schema = dedicatedSchemaName("0b5e8f3c-1d2a-4c8e-9f1a-2b3c4d5e6f70");
    expect(
      withoutVersion(
        await auditAfter([
          `SET LOCAL ROLE ${ROLES.owner}`,
          ...planSchema(schema, emptySchemaState()),
          `CREATE VIEW shared.trade_blotter WITH (security_invoker = true) AS SELECT tenant_id, id, symbol, price FROM shared.trades`,
          `GRANT SELECT ON shared.trade_blotter TO ${ROLES.app}`,
          "RESET ROLE",
        ]),
      ),
    ).toEqual([]);
  });

  const dedicated = dedicatedSchemaName("0b5e8f3c-1d2a-4c8e-9f1a-2b3c4d5e6f70");
  const cases: [string, string[], Triple[], AuditOptions?][] = [
    ["RLS disabled", [`ALTER TABLE shared.trades DISABLE ROW LEVEL SECURITY`], [["critical", "rls-disabled", "table shared.trades"]]],
    ["RLS not forced", [`ALTER TABLE shared.trades NO FORCE ROW LEVEL SECURITY`], [["high", "rls-not-forced", "table shared.trades"]]],
    [
      "RLS not forced in a dedicated tenant schema",
      [
        `SET LOCAL ROLE ${ROLES.owner}`,
        ...planSchema(dedicated, emptySchemaState()),
        `ALTER TABLE ${dedicated}.positions NO FORCE ROW LEVEL SECURITY`,
        "RESET ROLE",
      ],
      [["high", "rls-not-forced", `table ${dedicated}.positions`]],
    ],
    [
      "an unknown table with tenant_id that someone added",
      [`CREATE TABLE public.audit_log (tenant_id uuid NOT NULL, note text)`, `GRANT SELECT ON public.audit_log TO ${ROLES.app}`],
      [
        ["critical", "rls-disabled", "table public.audit_log"],
        ["critical", "tenant-policy-missing", "table public.audit_log"],
        ["high", "rls-not-forced", "table public.audit_log"],
      ],
    ],
    [
      "a partition without RLS (the parent is fine)",
      [
        `CREATE TABLE shared.fills (tenant_id uuid NOT NULL, qty numeric) PARTITION BY HASH (tenant_id)`,
        `ALTER TABLE shared.fills ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY`,
        `CREATE POLICY tenant_isolation ON shared.fills AS RESTRICTIVE USING (${P}) WITH CHECK (${P})`,
        `CREATE TABLE shared.fills_0 PARTITION OF shared.fills FOR VALUES WITH (MODULUS 1, REMAINDER 0)`,
      ],
      [
        ["high", "rls-disabled", "partition shared.fills_0 of shared.fills"],
        ["high", "rls-not-forced", "partition shared.fills_0 of shared.fills"],
        ["high", "tenant-policy-missing", "partition shared.fills_0 of shared.fills"],
      ],
    ],
    [
      "the tenant predicate made permissive (ORed with tenant_access)",
      [
        `DROP POLICY tenant_isolation ON shared.trades`,
        `CREATE POLICY tenant_isolation ON shared.trades AS PERMISSIVE TO ${ROLES.app} USING (${P}) WITH CHECK (${P})`,
      ],
      [["critical", "tenant-policy-missing", "table shared.trades"]],
    ],
    [
      "a fail-open predicate (unset setting → every row)",
      [`ALTER POLICY tenant_isolation ON shared.trades USING (${P} OR current_setting('app.current_tenant_id', true) IS NULL)`],
      [["critical", "tenant-policy-predicate", "table shared.trades"]],
    ],
    [
      "a policy without a real WITH CHECK",
      [`ALTER POLICY tenant_isolation ON shared.trades WITH CHECK (true)`],
      [["critical", "tenant-policy-with-check", "table shared.trades"]],
    ],
    [
      "the restrictive policy for SELECT only",
      [
        `DROP POLICY tenant_isolation ON shared.trades`,
        `CREATE POLICY tenant_isolation ON shared.trades AS RESTRICTIVE FOR SELECT USING (${P})`,
      ],
      [["critical", "tenant-policy-commands", "table shared.trades"]],
    ],
    [
      "the restrictive policy for app_user only (the read-only role escapes it)",
      [`ALTER POLICY tenant_isolation ON shared.trades TO ${ROLES.app}`],
      [["critical", "tenant-policy-roles", "table shared.trades"]],
    ],
    [
      "a permissive support policy for PUBLIC",
      [`CREATE POLICY support_read ON shared.trades FOR SELECT TO PUBLIC USING (true)`],
      [["medium", "permissive-policy-roles", "policy support_read on shared.trades"]],
    ],
    [
      "an IMMUTABLE tenant function in a policy",
      [
        `CREATE FUNCTION shared.tenant_immutable() RETURNS uuid LANGUAGE sql IMMUTABLE AS $$ SELECT nullif(current_setting('app.current_tenant_id', true), '')::uuid $$`,
        `ALTER POLICY tenant_isolation ON shared.trades USING (tenant_id = shared.tenant_immutable()) WITH CHECK (tenant_id = shared.tenant_immutable())`,
      ],
      [
        ["critical", "policy-function-immutable", "function shared.tenant_immutable() in policy tenant_isolation on shared.trades"],
        ["critical", "tenant-policy-predicate", "table shared.trades"],
      ],
    ],
    [
      "a VOLATILE plpgsql function in a policy",
      [
        `CREATE FUNCTION shared.tenant_volatile() RETURNS uuid LANGUAGE plpgsql AS $$ BEGIN RETURN tenancy.current_tenant_id(); END $$`,
        `CREATE POLICY also_tenant ON shared.trades AS RESTRICTIVE USING (tenant_id = shared.tenant_volatile())`,
      ],
      [["high", "policy-function-volatile", "function shared.tenant_volatile() in policy also_tenant on shared.trades"]],
    ],
    [
      "a control-plane table with tenant_id readable by app_user",
      [`CREATE TABLE tenancy.tenant_notes (tenant_id uuid NOT NULL, note text)`, `GRANT SELECT ON tenancy.tenant_notes TO ${ROLES.app}`],
      [["high", "control-plane-reachable", "table tenancy.tenant_notes"]],
    ],
    [
      "a view without security_invoker over a view over trades",
      [
        `CREATE VIEW shared.v_inner WITH (security_invoker = true) AS SELECT tenant_id, price FROM shared.trades`,
        `CREATE VIEW public.v_outer AS SELECT * FROM shared.v_inner`,
        `GRANT SELECT ON public.v_outer TO ${ROLES.app}`,
      ],
      [["high", "view-not-security-invoker", "view public.v_outer"]],
    ],
    [
      "a materialized view over trades readable by app_user",
      [
        `CREATE MATERIALIZED VIEW public.volume AS SELECT tenant_id, sum(quantity) AS q FROM shared.trades GROUP BY 1`,
        `GRANT SELECT ON public.volume TO ${ROLES.app}`,
      ],
      [["critical", "matview-over-tenant-data", "materialized view public.volume"]],
    ],
    [
      "a SECURITY DEFINER function executable by PUBLIC",
      [`CREATE FUNCTION public.count_all() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS $$ SELECT count(*) FROM shared.trades $$`],
      [["high", "security-definer-executable", "function public.count_all()"]],
    ],
    [
      "a foreign key between tenant tables without tenant_id",
      [
        `ALTER TABLE shared.trades DROP CONSTRAINT trades_position_id_fkey`,
        `CREATE UNIQUE INDEX positions_id_key ON shared.positions (id)`,
        `ALTER TABLE shared.trades ADD CONSTRAINT trades_position_global_fkey FOREIGN KEY (position_id) REFERENCES shared.positions (id)`,
      ],
      [
        ["high", "foreign-key-without-tenant", "foreign key trades_position_global_fkey on shared.trades"],
        ["medium", "unique-index-global", "index positions_id_key on shared.positions"],
      ],
    ],
    ["SELECT granted to PUBLIC", [`GRANT SELECT ON shared.trades TO PUBLIC`], [["high", "grant-public", "table shared.trades"]]],
    ["a column granted to PUBLIC", [`GRANT SELECT (price) ON shared.trades TO PUBLIC`], [["high", "grant-public", "table shared.trades"]]],
    [
      "REFERENCES on a column to app_user",
      [`GRANT REFERENCES (id) ON shared.positions TO ${ROLES.app}`],
      [["high", "grant-dangerous", "table shared.positions"]],
    ],
    [
      "TRUNCATE granted to app_user",
      [`GRANT TRUNCATE ON shared.trades TO ${ROLES.app}`],
      [["critical", "grant-dangerous", "table shared.trades"]],
    ],
    [
      "TRIGGER granted to the read-only role",
      [`GRANT TRIGGER ON shared.trades TO ${ROLES.readonly}`],
      [["high", "grant-dangerous", "table shared.trades"]],
    ],
    [
      "a global unique index",
      [`CREATE UNIQUE INDEX trades_client_order_id_key ON shared.trades (client_order_id)`],
      [["medium", "unique-index-global", "index trades_client_order_id_key on shared.trades"]],
    ],
    [
      "a bigserial on a tenant table",
      [`ALTER TABLE shared.trades ADD COLUMN seq bigserial`],
      [["low", "sequence-default", "column shared.trades.seq"]],
    ],
    [
      "app_user owning a table",
      [`CREATE TABLE public.notes (x int)`, `ALTER TABLE public.notes OWNER TO ${ROLES.app}`],
      [["high", "role-owns-objects", `role ${ROLES.app}`]],
    ],
    [
      "app_user with CREATE on a schema",
      [`GRANT CREATE ON SCHEMA shared TO ${ROLES.app}`],
      [["high", "role-create-schema", `role ${ROLES.app}`]],
    ],
    [
      "app_user with CREATE on the database",
      [`GRANT CREATE ON DATABASE <db> TO ${ROLES.app}`],
      [["high", "role-create-database", `role ${ROLES.app}`]],
    ],
    ["app_user with TEMPORARY", [`GRANT TEMPORARY ON DATABASE <db> TO ${ROLES.app}`], [["medium", "role-temporary", `role ${ROLES.app}`]]],
    [
      "pg_stat_get_backend_activity back to PUBLIC",
      ["GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_get_backend_activity(integer) TO PUBLIC"],
      [
        ["high", "role-reads-activity", `role ${ROLES.readonly}`],
        ["high", "role-reads-activity", `role ${ROLES.app}`],
      ],
    ],
    [
      "every advisory lock function back to PUBLIC (PostgreSQL's default)",
      ["GRANT EXECUTE ON FUNCTION pg_catalog.pg_advisory_lock(bigint), pg_catalog.pg_try_advisory_xact_lock(bigint) TO PUBLIC"],
      [
        ["medium", "role-advisory-locks", `role ${ROLES.readonly}`],
        ["medium", "role-advisory-locks", `role ${ROLES.app}`],
      ],
    ],
    [
      "the gate's lock function granted back to the tenant roles (the state before migration 0009)",
      [`GRANT EXECUTE ON FUNCTION pg_catalog.pg_advisory_xact_lock_shared(bigint) TO ${ROLES.app}, ${ROLES.readonly}`],
      [
        ["medium", "role-advisory-locks", `role ${ROLES.readonly}`],
        ["medium", "role-advisory-locks", `role ${ROLES.app}`],
      ],
    ],
    [
      "pg_cancel_backend and pg_terminate_backend back to PUBLIC",
      ["GRANT EXECUTE ON FUNCTION pg_catalog.pg_cancel_backend(integer), pg_catalog.pg_terminate_backend(integer, bigint) TO PUBLIC"],
      [
        ["high", "role-signals-backends", `role ${ROLES.readonly}`],
        ["high", "role-signals-backends", `role ${ROLES.app}`],
      ],
    ],
    [
      "a large object function back to PUBLIC",
      ["GRANT EXECUTE ON FUNCTION pg_catalog.lo_from_bytea(oid, bytea) TO PUBLIC"],
      [
        ["high", "role-large-objects", `role ${ROLES.readonly}`],
        ["high", "role-large-objects", `role ${ROLES.app}`],
      ],
    ],
    [
      "pg_locks granted to app_user",
      [`GRANT SELECT ON pg_catalog.pg_locks TO ${ROLES.app}`],
      [["medium", "role-reads-locks", `role ${ROLES.app}`]],
    ],
    [
      "pg_stat_user_tables and a per-table counter granted to app_user",
      [
        `GRANT SELECT ON pg_catalog.pg_stat_user_tables TO ${ROLES.app}`,
        `GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_get_live_tuples(oid) TO ${ROLES.app}`,
      ],
      [["medium", "role-reads-object-stats", `role ${ROLES.app}`]],
    ],
    [
      "pg_notify back to PUBLIC",
      ["GRANT EXECUTE ON FUNCTION pg_catalog.pg_notify(text, text) TO PUBLIC"],
      [
        ["low", "role-notifications", `role ${ROLES.readonly}`],
        ["low", "role-notifications", `role ${ROLES.app}`],
      ],
    ],
    [
      "pg_stat_activity granted to app_user",
      [`GRANT SELECT ON pg_catalog.pg_stat_activity TO ${ROLES.app}`],
      [["high", "role-reads-activity", `role ${ROLES.app}`]],
    ],
  ];

  it.each(cases)("flags %s", async (_name, sql, expected, options) => {
    const statements = sql.map((s) => s.replace("<db>", db));
    expect(withoutVersion(await auditAfter(statements, options))).toEqual(expected);
  });

  // Role attributes and memberships are cluster-wide: a throwaway role stands in for app_user.
  it.each<[string, string, string[], string[]]>([
    ["a superuser", "SUPERUSER", [], ["critical role-superuser"]],
    ["BYPASSRLS", "BYPASSRLS", [], ["critical role-bypassrls"]],
    ["CREATEROLE", "CREATEROLE", [], ["critical role-attributes"]],
    [
      "a member of the owner (through another role)",
      "",
      [`CREATE ROLE throwaway_group NOLOGIN`, `GRANT ${ROLES.owner} TO throwaway_group`],
      ["critical role-membership"],
    ],
  ])("flags a subject role that is %s", async (_name, attributes, extra, expected) => {
    const role = "throwaway_subject";
    const membership = extra.length ? [`GRANT throwaway_group TO ${role}`] : [];
    const findings = await auditAfter([`CREATE ROLE ${role} LOGIN ${attributes}`, ...extra, ...membership], {
      subjectRoles: [ROLES.app, ROLES.readonly, role],
    });
    const about = withoutVersion(findings)
      .filter(([, , object]) => object === `role ${role}`)
      .map(([severity, check]) => `${severity} ${check}`);
    // A superuser or a member of the owner also inherits CREATE and TEMPORARY: flagged too, after the cause.
    expect(about[0]).toBe(expected[0]);
  });

  it("treats a dedicated tenant's login role as subject to RLS: its own permissive policy is fine, BYPASSRLS is not", async () => {
    const schema = dedicatedSchemaName("da7a1a7e-0000-4000-8000-0000000000a1");
    const role = `${schema}_login`;
    const pinned = loginPolicyPredicate("da7a1a7e-0000-4000-8000-0000000000a1");
    const setup = [
      `SET LOCAL ROLE ${ROLES.owner}`,
      ...planSchema(schema, emptySchemaState()),
      "RESET ROLE",
      `CREATE ROLE ${role} LOGIN NOINHERIT`,
      `GRANT CONNECT ON DATABASE ${db} TO ${role}`,
      `GRANT USAGE ON SCHEMA ${schema} TO ${role}`,
      `GRANT SELECT, INSERT, UPDATE, DELETE ON ${schema}.trades TO ${role}`,
      `CREATE POLICY tenant_login ON ${schema}.trades AS PERMISSIVE FOR ALL TO ${role} USING (${pinned}) WITH CHECK (${pinned})`,
    ];
    expect(withoutVersion(await auditAfter(setup))).toEqual([]);
    // Its policy must pin it to its own tenant for reads and writes: the setting is its to change.
    const unpinned = setup.map((s) =>
      s.startsWith("CREATE POLICY tenant_login") ? s.replace(/USING \(.*$/, "USING (true) WITH CHECK (true)") : s,
    );
    expect(withoutVersion(await auditAfter(unpinned))).toEqual([
      ["high", "login-policy-unpinned", `policy tenant_login on ${schema}.trades`],
    ]);
    const readsOnly = setup.map((s) =>
      s.startsWith("CREATE POLICY tenant_login") ? s.replace(/WITH CHECK \(.*$/, "WITH CHECK (true)") : s,
    );
    expect(withoutVersion(await auditAfter(readsOnly))).toEqual([
      ["high", "login-policy-unpinned", `policy tenant_login on ${schema}.trades`],
    ]);
    expect(withoutVersion(await auditAfter([...setup, `ALTER ROLE ${role} BYPASSRLS`]))).toEqual([
      ["critical", "role-bypassrls", `role ${role}`],
    ]);
    // Roles are cluster-wide: one that cannot connect here (another database's tenant) is not a
    // subject of this database, so a policy for it is one for an outsider.
    expect(withoutVersion(await auditAfter(setup.filter((s) => !s.startsWith("GRANT CONNECT"))))).toEqual([
      ["medium", "permissive-policy-roles", `policy tenant_login on ${schema}.trades`],
    ]);
  });

  it("flags a subject role that does not exist", async () => {
    expect(withoutVersion(await auditAfter([], { subjectRoles: [ROLES.app, ROLES.readonly, "no_such_role"] }))).toEqual([
      ["medium", "role-missing", "role no_such_role"],
    ]);
  });
});
