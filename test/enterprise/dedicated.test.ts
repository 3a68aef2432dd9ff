import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditDatabase } from "../../lib/audit/isolation-audit";
import { TENANT_TABLES, type TenantTable } from "../../lib/schema/catalogue";
import { unsafeSql } from "../../lib/db/sql";
import {
  capacityReport,
  DedicatedSchemaCapError,
  dedicatedSchemaCount,
  dropTenantLoginRole,
  ensureTenantLoginRole,
  provisionDedicatedSchema,
  tenantLoginRoleName,
} from "../../lib/enterprise/dedicated";
import { demoteTenant, graduateTenant, openMove } from "../../lib/enterprise/graduation";
import { migrate } from "../../lib/schema/migrate";
import { POLICY_NAMES } from "../../lib/schema/planner";
import { dedicatedSchemaName, type Tenant } from "../../lib/tenant/model";
import { requireTenant, setTenantStatus } from "../../lib/tenant/registry";
import { tenancy } from "../support/cli";
import { migratedDatabase, ROLES, seededTenant, tenantTransaction, type EnterpriseDb } from "./helpers";

let env: EnterpriseDb;
let acme: Tenant;
let globex: Tenant;

beforeAll(async () => {
  env = await migratedDatabase();
  acme = await seededTenant(env.admin, "acme", 100);
  globex = await seededTenant(env.admin, "globex", 80);
  await graduateTenant(env.admin, acme.slug);
  acme = await requireTenant(env.admin, acme.id);
});

afterAll(async () => {
  await env.close();
});

describe("dedicated schemas", () => {
  it("are built from the catalogue: owned by the owner, every table with RLS enabled and forced and the tenant policies", async () => {
    const schema = dedicatedSchemaName(acme.id);
    const { rows } = await env.admin.query(
      `SELECT c.relname AS table, c.relrowsecurity AS rls, c.relforcerowsecurity AS force, pg_get_userbyid(c.relowner) AS owner,
              pg_get_userbyid(n.nspowner) AS schema_owner,
              array(SELECT policyname::text FROM pg_policies p WHERE p.schemaname = n.nspname AND p.tablename = c.relname ORDER BY 1) AS policies
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY c.relname`,
      [schema],
    );
    expect(rows.map((r) => r.table)).toEqual(TENANT_TABLES.map((t) => t.name).sort());
    for (const r of rows) {
      expect(r).toMatchObject({ rls: true, force: true, owner: ROLES.owner, schema_owner: ROLES.owner });
      expect(r.policies).toEqual([POLICY_NAMES.access, POLICY_NAMES.isolation].sort());
    }
    // app_user gets exactly DML, nothing else (no TRUNCATE, REFERENCES, TRIGGER).
    const { rows: privileges } = await env.admin.query(
      `SELECT DISTINCT privilege_type FROM information_schema.role_table_grants WHERE grantee = $1 AND table_schema = $2 ORDER BY 1`,
      [ROLES.app, schema],
    );
    expect(privileges.map((p) => p.privilege_type)).toEqual(["DELETE", "INSERT", "SELECT", "UPDATE"]);
    // Provisioning again plans nothing (the graduation bulk-loaded it and rebuilt indexes and keys),
    // and every foreign key is validated.
    expect((await provisionDedicatedSchema(env.admin, acme)).statements).toEqual([]);
    const { rows: fks } = await env.admin.query(
      `SELECT count(*)::int AS n, count(*) FILTER (WHERE NOT convalidated)::int AS invalid FROM pg_constraint WHERE connamespace = $1::regnamespace AND contype = 'f'`,
      [schema],
    );
    expect(fks[0]).toEqual({ n: TENANT_TABLES.length + 2, invalid: 0 });
  });

  it("keep RLS as defence in depth: a query misrouted into acme's schema under globex's context sees nothing", async () => {
    const app = await env.connect(ROLES.app);
    const schema = dedicatedSchemaName(acme.id);
    const count = (tenantId: string) =>
      tenantTransaction(app, tenantId, async (c) => Number((await c.query(`SELECT count(*) FROM ${schema}.trades`)).rows[0].count));
    expect(await count(acme.id)).toBe(100);
    expect(await count(globex.id)).toBe(0);
    // Nor can it write a row of its own there as acme.
    await expect(
      tenantTransaction(app, globex.id, (c) =>
        c.query(`INSERT INTO ${schema}.trades (tenant_id, symbol, side, quantity, price) VALUES ($1, 'X', 'buy', 1, 1)`, [acme.id]),
      ),
    ).rejects.toMatchObject({ code: "42501" });

    // Negative control: without RLS on that table the same misrouted query reads acme's trades.
    await env.admin.query(`ALTER TABLE ${schema}.trades DISABLE ROW LEVEL SECURITY`);
    try {
      expect(await count(globex.id)).toBe(100);
    } finally {
      await provisionDedicatedSchema(env.admin, acme); // the planner restores it
    }
    expect(await count(globex.id)).toBe(0);
  });

  it("routes a dedicated tenant's requests to its schema, shared tenants to the shared one", async () => {
    const app = await env.connect(ROLES.app);
    const schemaOf = (id: string) =>
      tenantTransaction(app, id, async (c) => (await c.query(`SELECT (current_schemas(false))[1] AS s`)).rows[0].s);
    expect(await schemaOf(acme.id)).toBe(dedicatedSchemaName(acme.id));
    expect(await schemaOf(globex.id)).toBe("shared");
  });

  it("enforce the cap derived from connections and memory, with a clear error, and leave nothing behind", async () => {
    const initech = await seededTenant(env.admin, "initech", 10);
    const existing = await dedicatedSchemaCount(env.admin);
    // A machine so small that the cap is what is already there.
    const report = await capacityReport(env.admin, { memoryMiB: 1 });
    expect(report.maxDedicatedSchemas).toBeLessThanOrEqual(existing);
    const err = await provisionDedicatedSchema(env.admin, initech, { capacity: { memoryMiB: 1 } }).catch((e) => e);
    expect(err).toBeInstanceOf(DedicatedSchemaCapError);
    expect(err.message).toMatch(
      /dedicated schema cap reached: \d+ of \d+ in use\. The cap comes from max_connections=\d+ and 1 MiB of memory/,
    );
    expect(await dedicatedSchemaCount(env.admin)).toBe(existing);

    // Graduation hits the same wall and leaves no open move behind.
    await expect(graduateTenant(env.admin, initech.slug, { capacity: { memoryMiB: 1 } })).rejects.toThrow(DedicatedSchemaCapError);
    expect(await openMove(env.admin, initech.id)).toBeUndefined();
    expect((await requireTenant(env.admin, initech.id)).placement).toBe("shared");

    // The lock table: with one connection slot, max_locks_per_transaction = 64 cannot cover the relations.
    const locks = await provisionDedicatedSchema(env.admin, initech, { capacity: { maxConnections: 1 } }).catch((e) => e);
    expect(locks).toMatchObject({ kind: "locks" });
    expect(locks.message).toMatch(/max_locks_per_transaction is 64, but \d+ dedicated schemas need \d+/);

    // Negative control: with the database's own inputs (16 GiB recorded) it fits.
    expect((await provisionDedicatedSchema(env.admin, initech)).created).toBe(true);
  });

  it("can give a tenant its own login role: connection limit, statement timeout, its schema only, still under RLS", async () => {
    const { role } = await ensureTenantLoginRole(env.admin, acme, { connectionLimit: 3 });
    expect(role).toBe(tenantLoginRoleName(acme.id));
    const { rows: attributes } = await env.admin.query(
      `SELECT rolconnlimit, rolbypassrls, rolinherit, rolsuper,
              (SELECT array_agg(c) FROM pg_db_role_setting s, unnest(s.setconfig) c WHERE s.setrole = r.oid) AS config
         FROM pg_roles r WHERE rolname = $1`,
      [role],
    );
    expect(attributes[0]).toMatchObject({ rolconnlimit: 3, rolbypassrls: false, rolinherit: false, rolsuper: false });
    expect(attributes[0].config).toEqual(
      expect.arrayContaining([
        "statement_timeout=30000",
        `search_path=${dedicatedSchemaName(acme.id)}`,
        `app.current_tenant_id=${acme.id}`,
      ]),
    );

    const login = await env.connect(role);
    expect(Number((await login.query(`SELECT count(*) FROM trades`)).rows[0].count)).toBe(100);
    expect((await login.query(`SHOW statement_timeout`)).rows[0].statement_timeout).toBe("30s");
    // Its registry row only.
    expect((await login.query(`SELECT slug FROM tenancy.tenants`)).rows).toEqual([{ slug: "acme" }]);
    // Nothing of the shared schema, nothing of another dedicated schema.
    await expect(login.query(`SELECT count(*) FROM shared.trades`)).rejects.toMatchObject({ code: "42501" });
    const initech = await requireTenant(env.admin, "initech");
    await expect(login.query(`SELECT count(*) FROM ${dedicatedSchemaName(initech.id)}.trades`)).rejects.toMatchObject({ code: "42501" });
    // Pretending to be another tenant gets it nothing: RLS still applies in its own schema.
    await login.query(`SET app.current_tenant_id = '${globex.id}'`);
    expect(Number((await login.query(`SELECT count(*) FROM trades`)).rows[0].count)).toBe(0);
    await login.query(`RESET app.current_tenant_id`);
    // Negative control: app_user can read shared.trades, so the refusal above is about the role.
    const app = await env.connect(ROLES.app);
    expect((await tenantTransaction(app, globex.id, (c) => c.query(`SELECT count(*) FROM shared.trades`))).rows[0].count).toBe("80");

    // The isolation audit counts it as an RLS subject and finds nothing to say about it.
    const findings = (await auditDatabase(env.admin)).filter(
      (f) => f.object.includes(dedicatedSchemaName(acme.id)) || f.object.includes(role),
    );
    expect(findings).toEqual([]);

    // Demotion refuses while the role exists (its services would lose their schema); dropping it removes every grant.
    await expect(demoteTenant(env.admin, acme.slug)).rejects.toThrow(/dedicated login role/);
    await login.end();
    expect(await dropTenantLoginRole(env.admin, acme)).toBe(true);
    const { rows: gone } = await env.admin.query(`SELECT count(*)::int AS n FROM pg_roles WHERE rolname = $1`, [role]);
    expect(gone[0].n).toBe(0);
    expect((await demoteTenant(env.admin, acme.slug)).to).toBe("shared");
  });

  it("a table added to the catalogue reaches existing login roles in the migrate run that creates it", async () => {
    const tenant = await seededTenant(env.admin, "hooli", 10);
    await graduateTenant(env.admin, tenant.slug);
    const { role } = await ensureTenantLoginRole(env.admin, await requireTenant(env.admin, tenant.id));
    const watchlists: TenantTable = {
      name: "watchlists",
      description: "test only",
      columns: [{ name: "symbol", type: unsafeSql("text") }],
    };
    const schema = dedicatedSchemaName(tenant.id);

    const report = await migrate(env.admin, { tables: [...TENANT_TABLES, watchlists], schemas: [schema] });
    expect(report.catalogue[0].statements).toEqual(
      expect.arrayContaining([
        `GRANT SELECT, INSERT, UPDATE, DELETE ON "${schema}"."watchlists" TO "${role}"`,
        `CREATE POLICY tenant_login ON "${schema}"."watchlists" AS PERMISSIVE FOR ALL TO "${role}" USING (tenant_id = '${tenant.id}'::uuid) WITH CHECK (tenant_id = '${tenant.id}'::uuid)`,
      ]),
    );
    const login = await env.connect(role);
    await login.query(`INSERT INTO watchlists (tenant_id, symbol) VALUES ($1, 'ACME')`, [tenant.id]);
    expect((await login.query(`SELECT symbol FROM watchlists`)).rows).toEqual([{ symbol: "ACME" }]);
    await login.end();
    // A second run finds nothing to do, the audit nothing to say.
    expect((await migrate(env.admin, { tables: [...TENANT_TABLES, watchlists], schemas: [schema] })).catalogue).toEqual([]);
    expect((await auditDatabase(env.admin)).filter((f) => f.object.includes(schema) || f.object.includes(role))).toEqual([]);
    expect(await dropTenantLoginRole(env.admin, tenant)).toBe(true);
  });

  it("suspension reaches a tenant's login role: NOLOGIN, open sessions cut, kept on re-provisioning, lifted on resume", async () => {
    await graduateTenant(env.admin, globex.slug);
    const tenant = await requireTenant(env.admin, globex.id);
    const { role } = await ensureTenantLoginRole(env.admin, tenant);
    const count = async (c: { query(q: string): Promise<{ rows: { n: number }[] }> }) =>
      (await c.query(`SELECT count(*)::int AS n FROM trades`)).rows[0].n;
    const rolcanlogin = async () =>
      (await env.admin.query(`SELECT rolcanlogin FROM pg_roles WHERE rolname = $1`, [role])).rows[0].rolcanlogin;

    // Negative control: the tenant predicate reads only the role's setting, so a suspension that
    // changes the registry alone leaves the login role reading its rows.
    await env.admin.query(`UPDATE tenancy.tenants SET status = 'suspended' WHERE id = $1`, [tenant.id]);
    const before = await env.connect(role);
    expect(await count(before)).toBe(80);
    await env.admin.query(`UPDATE tenancy.tenants SET status = 'active' WHERE id = $1`, [tenant.id]);

    const closed = new Promise<unknown>((resolve) => before.on("error", resolve));
    const suspend = await tenancy("tenant", "suspend", tenant.slug, "--json", "--database-url", env.db.url);
    expect(suspend.code).toBe(0);
    expect(suspend.json).toMatchObject({ status: "suspended", loginRole: { role, canLogin: false, sessionsClosed: 1 } });
    expect(await rolcanlogin()).toBe(false);
    expect(await closed).toMatchObject({ code: "57P01" }); // its open session was terminated
    await expect(env.connect(role)).rejects.toMatchObject({ code: "28000" });
    // Re-provisioning (a `pulumi up`) reads the registry's status and keeps the role locked.
    await ensureTenantLoginRole(env.admin, tenant);
    expect(await rolcanlogin()).toBe(false);

    expect((await setTenantStatus(env.admin, tenant.slug, "active")).loginRole).toEqual({ role, canLogin: true, sessionsClosed: 0 });
    const after = await env.connect(role);
    expect(await count(after)).toBe(80);
    await after.end();
    expect(await dropTenantLoginRole(env.admin, tenant)).toBe(true);
  });
});
