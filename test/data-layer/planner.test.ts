/**
 * The pure planners: planSchema (catalogue → statements for one schema) and planRoles. No database:
 * a schema state is built by hand, as readSchemaStates would read it.
 */
import { describe, expect, it } from "vitest";
import { allColumns, TENANT_TABLES, type TenantTable } from "../../lib/schema/catalogue";
import { unsafeSql } from "../../lib/db/sql";
import { planRoles, ROLE_POSTURE, ROLES, type RoleState } from "../../lib/schema/roles";
import {
  canonicalType,
  CatalogueConflictError,
  checkName,
  createdIndexName,
  emptySchemaState,
  foreignKeyName,
  indexName,
  normalizePolicyExpression,
  planSchema,
  POLICY_DEFINITIONS,
  POLICY_NAMES,
  policyMatches,
  primaryKeyName,
  TABLE_PRIVILEGES,
  TENANT_PREDICATE,
  tenantFkName,
  type PolicyDefinition,
  type SchemaState,
  type TableState,
} from "../../lib/schema/planner";
import { DEPARSED_FUNCTION_PREDICATE, DEPARSED_TENANT_PREDICATE as DEPARSED } from "./harness";

/** The state of a schema after a complete migrate, as readSchemaStates reports it. */
function appliedState(tables: readonly TenantTable[] = TENANT_TABLES): SchemaState {
  const state: SchemaState = { exists: true, usage: new Set([ROLES.app, ROLES.readonly, ROLES.maintenance]), tables: new Map() };
  for (const t of tables) {
    const table: TableState = {
      columns: new Map(allColumns(t).map((c) => [c.name, canonicalType(c.type)])),
      constraints: new Set([
        primaryKeyName(t),
        tenantFkName(t),
        ...t.columns.filter((c) => c.check).map((c) => checkName(t, c.name)),
        ...(t.foreignKeys ?? []).map((fk) => foreignKeyName(t, fk.columns)),
      ]),
      indexes: new Set([createdIndexName(t), ...(t.indexes ?? []).map((i) => indexName(t, i.columns, i.unique))]),
      rowSecurity: true,
      forceRowSecurity: true,
      policies: new Set([POLICY_NAMES.isolation, POLICY_NAMES.access]),
      policyDefinitions: new Map(Object.entries(POLICY_DEFINITIONS).map(([name, d]) => [name, { ...d }])),
      privileges: new Map(
        Object.entries(TABLE_PRIVILEGES)
          .filter(([, p]) => p.length)
          .map(([role, p]) => [role, new Set(p)]),
      ),
    };
    state.tables.set(t.name, table);
  }
  return state;
}

function withTable(state: SchemaState, name: string, change: (t: TableState) => void): SchemaState {
  change(state.tables.get(name)!);
  return state;
}

describe("planSchema", () => {
  it("plans nothing for a schema that is already the catalogue (a second migrate is a no-op)", () => {
    expect(planSchema("shared", appliedState())).toEqual([]);
  });

  it("plans nothing when the policies are read back as PostgreSQL deparses them", () => {
    const state = appliedState();
    for (const t of state.tables.values()) {
      t.policyDefinitions!.set(POLICY_NAMES.isolation, {
        permissive: false,
        command: "ALL",
        roles: ["public"],
        using: DEPARSED,
        withCheck: DEPARSED,
      });
    }
    expect(planSchema("shared", state)).toEqual([]);
  });

  describe("an empty schema", () => {
    const plan = planSchema("tenant_0b5e8f3c1d2a4c8e9f1a2b3c4d5e6f70", emptySchemaState());
    const s = `"tenant_0b5e8f3c1d2a4c8e9f1a2b3c4d5e6f70"`;

    it("creates the schema owned by the owner role and grants USAGE to exactly the three roles", () => {
      expect(plan.slice(0, 4)).toEqual([
        `CREATE SCHEMA ${s} AUTHORIZATION "${ROLES.owner}"`,
        `GRANT USAGE ON SCHEMA ${s} TO "${ROLES.app}"`,
        `GRANT USAGE ON SCHEMA ${s} TO "${ROLES.readonly}"`,
        `GRANT USAGE ON SCHEMA ${s} TO "${ROLES.maintenance}"`,
      ]);
    });

    it.each(TENANT_TABLES.map((t) => [t.name]))(
      "%s: tenant_id leads the primary key and every index; RLS forced; both policies",
      (name) => {
        const q = `${s}."${name}"`;
        expect(plan).toContain(
          `CREATE TABLE ${q} ("tenant_id" uuid NOT NULL, "id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" timestamptz NOT NULL DEFAULT now(), CONSTRAINT "${name}_pkey" PRIMARY KEY (tenant_id, id))`,
        );
        expect(plan).toContain(
          `ALTER TABLE ${q} ADD CONSTRAINT "${name}_tenant_fkey" FOREIGN KEY (tenant_id) REFERENCES "tenancy"."tenants" (id) ON DELETE RESTRICT`,
        );
        expect(plan).toContain(`ALTER TABLE ${q} ENABLE ROW LEVEL SECURITY`);
        expect(plan).toContain(`ALTER TABLE ${q} FORCE ROW LEVEL SECURITY`);
        expect(plan).toContain(
          `CREATE POLICY tenant_isolation ON ${q} AS RESTRICTIVE FOR ALL TO PUBLIC USING (${TENANT_PREDICATE}) WITH CHECK (${TENANT_PREDICATE})`,
        );
        expect(plan).toContain(
          `CREATE POLICY tenant_access ON ${q} AS PERMISSIVE FOR ALL TO "${ROLES.app}", "${ROLES.readonly}" USING (true) WITH CHECK (true)`,
        );
        expect(plan).toContain(`GRANT SELECT, INSERT, UPDATE, DELETE ON ${q} TO "${ROLES.app}"`);
        expect(plan).toContain(`GRANT SELECT ON ${q} TO "${ROLES.readonly}"`);
        for (const statement of plan.filter((p) => p.includes(` ON ${q} (`) && p.includes("INDEX")))
          expect(statement).toMatch(/ON .* \("tenant_id", |\(tenant_id, created_at\)/);
        expect(plan.filter((p) => p.includes(`ON ${q}`) && /GRANT .*TO PUBLIC|TRUNCATE|REFERENCES|TRIGGER/.test(p))).toEqual([]);
      },
    );

    it("every foreign key between tenant tables includes tenant_id, and SET NULL never nulls it", () => {
      const fks = plan.filter((p) => p.includes("FOREIGN KEY") && !p.includes("tenant_fkey"));
      expect(fks).toEqual([
        `ALTER TABLE ${s}."trades" ADD CONSTRAINT "trades_position_id_fkey" FOREIGN KEY ("tenant_id", "position_id") REFERENCES ${s}."positions" (tenant_id, id) ON DELETE SET NULL ("position_id")`,
        `ALTER TABLE ${s}."risk_metrics" ADD CONSTRAINT "risk_metrics_allocation_id_fkey" FOREIGN KEY ("tenant_id", "allocation_id") REFERENCES ${s}."portfolio_allocations" (tenant_id, id) ON DELETE CASCADE`,
      ]);
    });

    it("no unique index is global: each leads with tenant_id", () => {
      const unique = plan.filter((p) => p.startsWith("CREATE UNIQUE INDEX"));
      expect(unique.length).toBeGreaterThan(0);
      for (const u of unique) expect(u).toMatch(/\("tenant_id", /);
    });

    it("creates tables before constraints, and constraints before policies", () => {
      const last = (re: RegExp) => plan.map((p, i) => (re.test(p) ? i : -1)).reduce((a, b) => Math.max(a, b));
      const first = (re: RegExp) => plan.findIndex((p) => re.test(p));
      expect(last(/^CREATE TABLE/)).toBeLessThan(first(/FOREIGN KEY/));
      expect(last(/FOREIGN KEY/)).toBeLessThan(first(/^CREATE POLICY/));
    });
  });

  const q = `"shared"."trades"`;
  it.each<[string, (t: TableState) => void, string[]]>([
    ["RLS disabled", (t) => (t.rowSecurity = false), [`ALTER TABLE ${q} ENABLE ROW LEVEL SECURITY`]],
    ["RLS not forced", (t) => (t.forceRowSecurity = false), [`ALTER TABLE ${q} FORCE ROW LEVEL SECURITY`]],
    ["a missing column", (t) => t.columns.delete("fee"), [`ALTER TABLE ${q} ADD COLUMN "fee" numeric(20,8) NOT NULL DEFAULT 0`]],
    [
      "a missing index",
      (t) => t.indexes.delete("trades_tenant_symbol_executed_at_idx"),
      [`CREATE INDEX "trades_tenant_symbol_executed_at_idx" ON ${q} ("tenant_id", "symbol", "executed_at")`],
    ],
    [
      "a missing check",
      (t) => t.constraints.delete("trades_side_check"),
      [`ALTER TABLE ${q} ADD CONSTRAINT "trades_side_check" CHECK (side IN ('buy', 'sell'))`],
    ],
    [
      "an extra TRUNCATE and a missing DELETE for app_user",
      (t) => t.privileges.set(ROLES.app, new Set(["SELECT", "INSERT", "UPDATE", "TRUNCATE"])),
      [`GRANT DELETE ON ${q} TO "${ROLES.app}"`, `REVOKE TRUNCATE ON ${q} FROM "${ROLES.app}"`],
    ],
    ["SELECT granted to PUBLIC", (t) => t.privileges.set("PUBLIC", new Set(["SELECT"])), [`REVOKE SELECT ON ${q} FROM PUBLIC`]],
    [
      "the isolation policy lost",
      (t) => t.policies.delete(POLICY_NAMES.isolation),
      [
        `CREATE POLICY tenant_isolation ON ${q} AS RESTRICTIVE FOR ALL TO PUBLIC USING (${TENANT_PREDICATE}) WITH CHECK (${TENANT_PREDICATE})`,
      ],
    ],
    [
      "the isolation policy rewritten to fail open",
      (t) =>
        t.policyDefinitions!.set(POLICY_NAMES.isolation, {
          ...POLICY_DEFINITIONS[POLICY_NAMES.isolation],
          using: `${DEPARSED} OR current_setting('app.current_tenant_id', true) IS NULL`,
        }),
      [
        `DROP POLICY "tenant_isolation" ON ${q}`,
        `CREATE POLICY tenant_isolation ON ${q} AS RESTRICTIVE FOR ALL TO PUBLIC USING (${TENANT_PREDICATE}) WITH CHECK (${TENANT_PREDICATE})`,
      ],
    ],
    [
      "the isolation policy turned permissive",
      (t) => (t.policyDefinitions!.get(POLICY_NAMES.isolation)!.permissive = true),
      [
        `DROP POLICY "tenant_isolation" ON ${q}`,
        `CREATE POLICY tenant_isolation ON ${q} AS RESTRICTIVE FOR ALL TO PUBLIC USING (${TENANT_PREDICATE}) WITH CHECK (${TENANT_PREDICATE})`,
      ],
    ],
    [
      "the access policy widened to PUBLIC",
      (t) => (t.policyDefinitions!.get(POLICY_NAMES.access)!.roles = ["public"]),
      [
        `DROP POLICY "tenant_access" ON ${q}`,
        `CREATE POLICY tenant_access ON ${q} AS PERMISSIVE FOR ALL TO "${ROLES.app}", "${ROLES.readonly}" USING (true) WITH CHECK (true)`,
      ],
    ],
  ])("repairs %s", (_name, change, expected) => {
    expect(planSchema("shared", withTable(appliedState(), "trades", change))).toEqual(expected);
  });

  it("never drops a column or changes a type: a type change needs a versioned migration", () => {
    const state = withTable(appliedState(), "trades", (t) => t.columns.set("price", "numeric(12,2)"));
    expect(() => planSchema("shared", state)).toThrow(CatalogueConflictError);
    expect(() => planSchema("shared", state)).toThrow(
      /shared\.trades\.price is numeric\(12,2\) in the database but numeric\(20,8\) in the catalogue/,
    );
    const extra = withTable(appliedState(), "trades", (t) => t.columns.set("legacy_note", "text"));
    expect(planSchema("shared", extra)).toEqual([]);
  });

  it("applies an extended catalogue: adding a tenant table is one edit", () => {
    const extended: TenantTable[] = [
      ...TENANT_TABLES,
      {
        name: "orders",
        description: "open orders",
        columns: [{ name: "symbol", type: unsafeSql("text") }],
        indexes: [{ columns: ["symbol"], unique: true }],
      },
    ];
    const plan = planSchema("shared", appliedState(), extended);
    expect(plan[0]).toBe(
      `CREATE TABLE "shared"."orders" ("tenant_id" uuid NOT NULL, "id" uuid NOT NULL DEFAULT gen_random_uuid(), "created_at" timestamptz NOT NULL DEFAULT now(), CONSTRAINT "orders_pkey" PRIMARY KEY (tenant_id, id))`,
    );
    expect(plan).toContain(`CREATE UNIQUE INDEX "orders_tenant_symbol_key" ON "shared"."orders" ("tenant_id", "symbol")`);
    expect(plan).toContain(`ALTER TABLE "shared"."orders" FORCE ROW LEVEL SECURITY`);
    expect(plan.every((p) => p.includes(`"shared"."orders"`))).toBe(true);
  });

  it("refuses identifiers outside the allow-list", () => {
    expect(() => planSchema('shared"; DROP TABLE x; --', emptySchemaState())).toThrow(/invalid SQL identifier/);
  });
});

describe("policy comparison", () => {
  it.each<[string, string, boolean]>([
    ["the design's text", TENANT_PREDICATE, true],
    ["PostgreSQL's deparse", DEPARSED, true],
    ["extra whitespace and case", `  ${TENANT_PREDICATE.toUpperCase().replace(/ /g, "   ")}`, true],
    ["the function call of migrations 0006–0008", DEPARSED_FUNCTION_PREDICATE, false],
    ["no validation (raises on a garbage setting)", "tenant_id = (SELECT current_setting('app.current_tenant_id', true)::uuid)", false],
    ["fail open when unset", `${DEPARSED} OR current_setting('app.current_tenant_id', true) IS NULL`, false],
    ["called per row (not wrapped)", "tenant_id = tenancy.current_tenant_id()", false],
    ["a raw setting cast", "tenant_id = current_setting('app.current_tenant_id')::uuid", false],
    ["true", "true", false],
  ])("%s → %s", (_name, expression, same) => {
    expect(normalizePolicyExpression(expression) === normalizePolicyExpression(TENANT_PREDICATE)).toBe(same);
  });

  const iso = POLICY_DEFINITIONS[POLICY_NAMES.isolation];
  it.each<[string, PolicyDefinition, boolean]>([
    ["identical", iso, true],
    ["roles in another case/order", { ...iso, roles: ["PUBLIC"] }, true],
    ["permissive", { ...iso, permissive: true }, false],
    ["FOR SELECT", { ...iso, command: "SELECT" }, false],
    ["WITH CHECK (true)", { ...iso, withCheck: "true" }, false],
    ["no WITH CHECK", { ...iso, withCheck: null }, false],
    ["TO app_user", { ...iso, roles: [ROLES.app] }, false],
  ])("%s → %s", (_name, have, matches) => {
    expect(policyMatches(have, iso)).toBe(matches);
  });
});

describe("planRoles", () => {
  const good = (): Map<string, RoleState> =>
    new Map(
      Object.entries(ROLE_POSTURE).map(([key, p]) => {
        const name = ROLES[key as keyof typeof ROLES];
        return [
          name,
          {
            name,
            login: p.login,
            superuser: false,
            bypassRls: p.bypassRls,
            createRole: false,
            createDb: false,
            replication: false,
            memberOf: p.memberOf.map((k) => ROLES[k]),
          },
        ];
      }),
    );
  const change = (name: string, patch: Partial<RoleState>) => {
    const roles = good();
    roles.set(name, { ...roles.get(name)!, ...patch });
    return roles;
  };
  const app = `"${ROLES.app}"`;
  const APP_ATTRS = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS";

  it("creates every role, in dependency order, on an empty cluster", () => {
    expect(planRoles(new Map())).toEqual([
      `CREATE ROLE "${ROLES.owner}" NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS`,
      `CREATE ROLE "${ROLES.maintenance}" NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION BYPASSRLS`,
      `CREATE ROLE "${ROLES.migrator}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS`,
      `GRANT "${ROLES.owner}" TO "${ROLES.migrator}"`,
      `GRANT "${ROLES.maintenance}" TO "${ROLES.migrator}"`,
      `CREATE ROLE ${app} ${APP_ATTRS}`,
      `CREATE ROLE "${ROLES.readonly}" ${APP_ATTRS}`,
    ]);
  });

  it.each<[string, Map<string, RoleState>, string[]]>([
    ["nothing when every role has its posture", good(), []],
    ["app_user made superuser", change(ROLES.app, { superuser: true }), [`ALTER ROLE ${app} NOSUPERUSER`]],
    ["app_user given BYPASSRLS", change(ROLES.app, { bypassRls: true }), [`ALTER ROLE ${app} NOBYPASSRLS`]],
    ["app_user given CREATEROLE", change(ROLES.app, { createRole: true }), [`ALTER ROLE ${app} NOCREATEROLE`]],
    [
      "app_user with every wrong attribute at once",
      change(ROLES.app, { login: false, superuser: true, createDb: true, createRole: true, replication: true, bypassRls: true }),
      [`ALTER ROLE ${app} ${APP_ATTRS}`],
    ],
    ["maintenance lost BYPASSRLS", change(ROLES.maintenance, { bypassRls: false }), [`ALTER ROLE "${ROLES.maintenance}" BYPASSRLS`]],
    ["app_user made a member of the owner", change(ROLES.app, { memberOf: [ROLES.owner] }), [`REVOKE "${ROLES.owner}" FROM ${app}`]],
    [
      "the migrator lost maintenance",
      change(ROLES.migrator, { memberOf: [ROLES.owner] }),
      [`GRANT "${ROLES.maintenance}" TO "${ROLES.migrator}"`],
    ],
  ])("%s", (_name, roles, expected) => {
    expect(planRoles(roles)).toEqual(expected);
  });

  it("sets passwords as literals and only for the roles given, restating no attribute (a non-superuser may not)", () => {
    expect(planRoles(good(), { app: "it's secret" })).toEqual([`ALTER ROLE ${app} PASSWORD 'it''s secret'`]);
  });
});
