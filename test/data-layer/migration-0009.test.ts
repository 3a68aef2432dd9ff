/**
 * The upgrade of a database migrated before the second red-team round (issue 18): the tenant roles
 * held the gate's lock function and enter_tenant() took the gate with it, PUBLIC held the backend
 * signals, large objects, pg_locks, per-table statistics and pg_notify, and a dedicated login
 * role's policy was USING (true) WITH CHECK (true). One migrate brings it to the design (0009 and
 * the plans that run every time), tenants keep working through enter_tenant(), and a second migrate
 * changes nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditDatabase } from "../../lib/audit/isolation-audit";
import { ensureTenantLoginRole, loginPolicyPredicate, provisionDedicatedSchema } from "../../lib/enterprise/dedicated";
import { TENANT_TABLES } from "../../lib/schema/catalogue";
import { migrate } from "../../lib/schema/migrate";
import { MIGRATIONS } from "../../lib/schema/migrations";
import { ROLES } from "../../lib/schema/roles";
import { createTenant } from "../../lib/tenant/registry";
import type { Tenant } from "../../lib/tenant/model";
import { migratedDatabase, sqlstate, type MigratedDatabase } from "./harness";

describe("migration 0009 and the server-object plans on a database from before them", () => {
  let m: MigratedDatabase;
  let tenant: Tenant;
  let role: string;
  let schema: string;

  beforeAll(async () => {
    m = await migratedDatabase("m0009");
    tenant = await createTenant(m.admin, { slug: "dedicated-d", tier: "enterprise", region: "eu" });
    schema = (await provisionDedicatedSchema(m.admin, tenant, { capacity: { memoryMiB: 16384 } })).schema;
    await m.admin.query(`UPDATE tenancy.tenants SET placement = 'dedicated' WHERE id = $1`, [tenant.id]);
    role = (await ensureTenantLoginRole(m.admin, { ...tenant, placement: "dedicated" })).role;
    m.dropRoleOnClose(role);
  });
  afterAll(async () => {
    await m?.close();
  });

  it("migrate restores every privilege and the pinned login policy; enter_tenant keeps working; a second run is a no-op", async () => {
    const { admin } = m;
    // Back to the state before: 0008's enter_tenant, the gate's lock function held by the tenant
    // roles, PostgreSQL's defaults for the server-wide objects, and the old login policy.
    const v0008 = MIGRATIONS.find((x) => x.version === "0008")!;
    await admin.query(`SET ROLE ${ROLES.owner}`);
    await admin.query(v0008.sql.slice(v0008.sql.indexOf("CREATE OR REPLACE FUNCTION"), v0008.sql.indexOf("DROP FUNCTION")));
    await admin.query(`DROP FUNCTION tenancy.take_tenant_gate()`);
    await admin.query(`RESET ROLE`);
    await admin.query(`DELETE FROM tenancy.schema_migrations WHERE version = '0009'`);
    await admin.query(`GRANT EXECUTE ON FUNCTION pg_catalog.pg_advisory_xact_lock_shared(bigint) TO ${ROLES.app}, ${ROLES.readonly}`);
    await admin.query(
      `GRANT EXECUTE ON FUNCTION pg_catalog.pg_cancel_backend(integer), pg_catalog.pg_terminate_backend(integer, bigint),
              pg_catalog.lo_from_bytea(oid, bytea), pg_catalog.lo_get(oid), pg_catalog.pg_lock_status(), pg_catalog.pg_notify(text, text),
              pg_catalog.pg_stat_get_live_tuples(oid) TO PUBLIC`,
    );
    await admin.query(`GRANT SELECT ON pg_catalog.pg_locks, pg_catalog.pg_stat_user_tables TO PUBLIC`);
    for (const t of TENANT_TABLES) await admin.query(`ALTER POLICY tenant_login ON ${schema}.${t.name} USING (true) WITH CHECK (true)`);
    const before = (await auditDatabase(admin)).map((f) => f.check).filter((c) => c !== "server-version");
    expect(new Set(before)).toEqual(
      new Set([
        "role-advisory-locks",
        "role-signals-backends",
        "role-large-objects",
        "role-reads-locks",
        "role-reads-object-stats",
        "role-notifications",
        "login-policy-unpinned",
      ]),
    );

    const report = await migrate(admin, { region: "eu" });
    expect(report.versioned.map((v) => v.version)).toEqual(["0009"]);
    expect(report.database, report.database.join("\n")).toContain(
      `REVOKE EXECUTE ON FUNCTION pg_catalog.pg_advisory_xact_lock_shared(bigint) FROM "${ROLES.readonly}", "${ROLES.app}"`,
    );
    expect(report.catalogue).toEqual([
      {
        schema,
        statements: TENANT_TABLES.map(
          (t) =>
            `ALTER POLICY tenant_login ON "${schema}"."${t.name}" TO "${role}" USING (${loginPolicyPredicate(tenant.id)}) WITH CHECK (${loginPolicyPredicate(tenant.id)})`,
        ),
      },
    ]);
    expect((await auditDatabase(admin)).filter((f) => f.check !== "server-version")).toEqual([]);

    // The tenant roles still enter their tenant (and hold its gate) without the lock function.
    for (const r of [ROLES.app, ROLES.readonly]) {
      const c = await m.connectAs(r);
      await c.query("BEGIN");
      expect((await c.query(`SELECT tenancy.enter_tenant($1) AS schema`, [tenant.id])).rows[0].schema).toBe(schema);
      const { rows } = await admin.query(
        `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND mode = 'ShareLock' AND pid = $1`,
        [(c as unknown as { processID: number }).processID],
      );
      expect(rows[0].n).toBe(1);
      expect(await sqlstate(() => c.query(`SELECT pg_advisory_xact_lock_shared(1)`))).toBe("42501");
      await c.query("ROLLBACK");
      // take_tenant_gate() outside enter_tenant: only the setting's own tenant, never no tenant.
      expect(await sqlstate(() => c.query(`SELECT tenancy.take_tenant_gate()`))).toBe("42501");
    }
    // The login role reads and writes its own tenant's rows.
    const login = await m.connectAs(role);
    await login.query(`INSERT INTO trades (tenant_id, symbol, side, quantity, price) VALUES ($1, 'ACME', 'buy', 1, 1)`, [tenant.id]);
    expect((await login.query(`SELECT count(*)::int AS n FROM trades`)).rows[0].n).toBe(1);

    expect((await migrate(admin, { region: "eu" })).unchanged).toBe(true);
  });
});
