/**
 * Renders the tenant tables of the catalogue into a schema, as a plan: the statements that take a
 * schema from its current state (read by `readSchemaStates`) to what the catalogue says. The
 * planner is a pure function, so "what would migrate do" is testable without a database, and a
 * second run plans nothing.
 *
 * The plan is additive. It creates tables, columns, constraints, indexes, RLS and policies, grants
 * exactly the privileges below, and revokes any others from our roles and PUBLIC. It never drops a
 * column or changes a type: those need a versioned migration (lib/schema/migrations.ts), and the plan
 * refuses with a message saying so. Our two policies are compared by definition, not only by name:
 * one that drifted (ALTER POLICY ... USING (true), a lost WITH CHECK, other roles) is dropped and
 * recreated in the same transaction.
 */
import { allColumns, STANDARD_COLUMNS, TENANT_TABLES, type Column, type TenantTable } from "./catalogue";
import type { Queryable } from "../db/client";
import { ROLES } from "./roles";
import { ident, qualified, unsafeSql } from "../db/sql";
import { TENANT_ID_PATTERN } from "../tenant/model";

export const SHARED_SCHEMA = "shared";
export const REGISTRY_SCHEMA = "tenancy";

/** Dedicated tenant schemas are named `tenant_<32 hex>` (see lib/tenant/model.ts dedicatedSchemaName). */
export const DEDICATED_SCHEMA_PATTERN = /^tenant_[0-9a-f]{32}$/;

/**
 * The tenant of the current transaction, as an expression: the setting `app.current_tenant_id`
 * (set transaction-locally by `tenancy.enter_tenant()`) when it is a canonical uuid, else NULL —
 * and NULL matches no row, so a missing, empty or garbage setting fails closed instead of raising.
 *
 * Written out in the policy, not behind a function: the RLS benchmark measured the previous
 * predicate, `(SELECT tenancy.current_tenant_id())` with a registry lookup per statement, at
 * 1.04–1.28× the explicit-predicate floor on small hot statements against 1.00–1.17× for this one
 * (docs/benchmarks.md, "Before and after"); an inlined SQL function was no cheaper. Suspension is
 * enforced where a transaction enters a tenant (enter_tenant, and NOLOGIN on a dedicated login
 * role): docs/data-layer.md. Spelled the way PostgreSQL deparses it (`::text`, `ELSE NULL::uuid`),
 * so the planner and the audit recognise the stored policy by its text.
 */
export const TENANT_ID_EXPRESSION = unsafeSql(
  `CASE WHEN current_setting('app.current_tenant_id'::text, true) ~ '${TENANT_ID_PATTERN.source}'::text ` +
    `THEN current_setting('app.current_tenant_id'::text, true)::uuid ELSE NULL::uuid END`,
);

/**
 * The tenant predicate every policy uses. `(SELECT …)` makes it an InitPlan: evaluated once per
 * statement, its value goes into the index condition, and the planner never sees the tenant, so
 * a cached plan is not one tenant's plan reused for another.
 */
export const TENANT_PREDICATE = unsafeSql(`tenant_id = (SELECT ${TENANT_ID_EXPRESSION})`);

/** Which tenant context the policies trust (tenancy.database_settings.tenant_context; ADR-005). */
export type TenantContextMode = "setting" | "verified";

/**
 * Strict mode's tenant (ADR-005): the setting, only when it matches the seal that
 * `tenancy.enter_verified_tenant(proof)` — the one SECURITY DEFINER function — set for THIS
 * transaction after checking the proof: the session's `pg_temp.tenancy_context_seal`, which the
 * tenant roles may read but never set, holds a hash of the tenant and the transaction's start time.
 * A setting changed afterwards (set_config, SET, SET LOCAL, RESET, a DO block, a plain enter_tenant)
 * no longer matches, so the predicate is NULL and matches no row; the seal of an earlier transaction
 * never matches a later one. A dedicated tenant's own login role (tenant_<hex>_login, which has no
 * proof to show) is trusted for its own id only: its name is bound to the session by authentication.
 * Spelled the way PostgreSQL deparses it, like TENANT_ID_EXPRESSION.
 */
export const VERIFIED_TENANT_ID_EXPRESSION =
  "CASE WHEN (currval(to_regclass('pg_temp.tenancy_context_seal'::text)) = hashtextextended(current_setting('app.current_tenant_id'::text, true), " +
  "((date_part('epoch'::text, transaction_timestamp()) * (1000000)::double precision))::bigint)) " +
  "THEN (current_setting('app.current_tenant_id'::text, true))::uuid " +
  "WHEN (CURRENT_USER = (('tenant_'::text || replace(current_setting('app.current_tenant_id'::text, true), '-'::text, ''::text)) || '_login'::text)) " +
  "THEN (current_setting('app.current_tenant_id'::text, true))::uuid ELSE NULL::uuid END";

/** Strict mode's predicate: an InitPlan like TENANT_PREDICATE, evaluated once per statement. */
export const VERIFIED_TENANT_PREDICATE = `tenant_id = (SELECT ${VERIFIED_TENANT_ID_EXPRESSION})`;

/** The tenant predicate of a mode. */
export const tenantPredicate = (mode: TenantContextMode) => (mode === "verified" ? VERIFIED_TENANT_PREDICATE : TENANT_PREDICATE);

export const POLICY_NAMES = { isolation: "tenant_isolation", access: "tenant_access" } as const;

/** Exactly these table privileges, per role; anything else held by these roles or PUBLIC is revoked. */
export const TABLE_PRIVILEGES: Record<string, readonly string[]> = {
  [ROLES.app]: ["SELECT", "INSERT", "UPDATE", "DELETE"],
  [ROLES.readonly]: ["SELECT"],
  [ROLES.maintenance]: ["SELECT", "INSERT", "UPDATE", "DELETE"],
  PUBLIC: [],
};

export interface TableState {
  /** column name → format_type(), e.g. "numeric(20,8)". */
  columns: Map<string, string>;
  constraints: Set<string>;
  indexes: Set<string>;
  rowSecurity: boolean;
  forceRowSecurity: boolean;
  policies: Set<string>;
  /** Definitions of the policies, when read (readSchemaStates does): lets the plan repair drifted policies. */
  policyDefinitions?: Map<string, PolicyDefinition>;
  /** grantee ("PUBLIC" for public) → privileges held. */
  privileges: Map<string, Set<string>>;
}

/** A policy as pg_policies describes it. */
export interface PolicyDefinition {
  permissive: boolean;
  command: "ALL" | "SELECT" | "INSERT" | "UPDATE" | "DELETE";
  /** Role names; "public" for PUBLIC. */
  roles: string[];
  using: string | null;
  withCheck: string | null;
}

/** The definitions planSchema creates in a mode, by policy name. */
export function policyDefinitions(mode: TenantContextMode): Record<string, PolicyDefinition> {
  const predicate = tenantPredicate(mode);
  return {
    [POLICY_NAMES.isolation]: { permissive: false, command: "ALL", roles: ["public"], using: predicate, withCheck: predicate },
    [POLICY_NAMES.access]: { permissive: true, command: "ALL", roles: [ROLES.app, ROLES.readonly], using: "true", withCheck: "true" },
  };
}

/** The definitions planSchema creates in the raw-setting mode, by policy name. */
export const POLICY_DEFINITIONS: Record<string, PolicyDefinition> = policyDefinitions("setting");

/**
 * A policy expression reduced for comparison with what PostgreSQL deparses: case, whitespace,
 * parentheses and sub-select column aliases removed, so `tenant_id = (SELECT CASE … END)` equals
 * `(tenant_id = ( SELECT CASE … END AS "case"))`. (The audit also checks that the policy calls no
 * user-defined function: a lookalike would print the same text.)
 */
export function normalizePolicyExpression(expression: string): string {
  return expression
    .toLowerCase()
    .replace(/\s+as\s+"?[a-z_][a-z0-9_]*"?(?=\s*\))/g, "")
    .replace(/[\s()]/g, "");
}

/** True when a policy read from the database is the one we would create. */
export function policyMatches(have: PolicyDefinition, want: PolicyDefinition): boolean {
  const expr = (e: string | null) => (e === null ? null : normalizePolicyExpression(e));
  const roles = (r: string[]) =>
    [...r]
      .map((x) => x.toLowerCase())
      .sort()
      .join(",");
  return (
    have.permissive === want.permissive &&
    have.command === want.command &&
    roles(have.roles) === roles(want.roles) &&
    expr(have.using) === expr(want.using) &&
    expr(have.withCheck) === expr(want.withCheck)
  );
}

export interface SchemaState {
  exists: boolean;
  /** Roles with USAGE on the schema. */
  usage: Set<string>;
  tables: Map<string, TableState>;
}

export class CatalogueConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CatalogueConflictError";
  }
}

export const emptySchemaState = (): SchemaState => ({ exists: false, usage: new Set(), tables: new Map() });

// --- names -------------------------------------------------------------------------------------

export const primaryKeyName = (t: TenantTable) => `${t.name}_pkey`;
export const tenantFkName = (t: TenantTable) => `${t.name}_tenant_fkey`;
export const foreignKeyName = (t: TenantTable, columns: string[]) => `${t.name}_${columns.join("_")}_fkey`;
export const checkName = (t: TenantTable, column: string) => `${t.name}_${column}_check`;
export const createdIndexName = (t: TenantTable) => `${t.name}_tenant_created_idx`;
export const indexName = (t: TenantTable, columns: string[], unique?: boolean) =>
  `${t.name}_tenant_${columns.join("_")}_${unique ? "key" : "idx"}`;

/** Types as PostgreSQL's format_type() prints them, so the plan can compare catalogue and database. */
export function canonicalType(type: string): string {
  const t = type.trim().toLowerCase();
  const aliases: Record<string, string> = {
    timestamptz: "timestamp with time zone",
    timestamp: "timestamp without time zone",
    int: "integer",
    int4: "integer",
    int8: "bigint",
    bool: "boolean",
    varchar: "character varying",
  };
  return (aliases[t] ?? t).replace(/\s*,\s*/g, ",");
}

// --- the plan ----------------------------------------------------------------------------------

/**
 * The statements that bring `schema` to the catalogue. `tables` defaults to the catalogue; tests and
 * the Pulumi stacks may pass an extended one.
 */
export function planSchema(
  schema: string,
  state: SchemaState,
  tables: readonly TenantTable[] = TENANT_TABLES,
  mode: TenantContextMode = "setting",
): string[] {
  const out: string[] = [];
  const definitions = policyDefinitions(mode);
  const predicate = tenantPredicate(mode);
  const s = ident(schema);
  if (!state.exists) out.push(`CREATE SCHEMA ${s} AUTHORIZATION ${ident(ROLES.owner)}`);
  for (const role of [ROLES.app, ROLES.readonly, ROLES.maintenance]) {
    if (!state.usage.has(role)) out.push(`GRANT USAGE ON SCHEMA ${s} TO ${ident(role)}`);
  }

  const states = new Map(tables.map((t) => [t.name, state.tables.get(t.name)]));

  // 1. tables and columns (all tables first, so foreign keys can reference any of them)
  for (const table of tables) {
    const have = states.get(table.name);
    const name = qualified(schema, table.name);
    if (!have) {
      const standard = STANDARD_COLUMNS.map(columnDefinition).join(", ");
      out.push(`CREATE TABLE ${name} (${standard}, CONSTRAINT ${ident(primaryKeyName(table))} PRIMARY KEY (tenant_id, id))`);
    }
    for (const column of allColumns(table)) {
      const type = have?.columns.get(column.name);
      if (type === undefined) {
        if (!have && STANDARD_COLUMNS.includes(column)) continue;
        out.push(`ALTER TABLE ${name} ADD COLUMN ${columnDefinition(column)}`);
      } else if (canonicalType(type) !== canonicalType(column.type)) {
        throw new CatalogueConflictError(
          `${schema}.${table.name}.${column.name} is ${type} in the database but ${column.type} in the catalogue: ` +
            `changing a column's type needs a versioned migration in lib/schema/migrations.ts`,
        );
      }
    }
  }

  // 2. constraints and indexes
  for (const table of tables) {
    const have = states.get(table.name);
    const name = qualified(schema, table.name);
    const hasConstraint = (c: string) => have?.constraints.has(c) ?? false;
    const hasIndex = (i: string) => have?.indexes.has(i) ?? false;
    if (!hasConstraint(tenantFkName(table))) {
      out.push(
        `ALTER TABLE ${name} ADD CONSTRAINT ${ident(tenantFkName(table))} FOREIGN KEY (tenant_id) REFERENCES ${qualified(REGISTRY_SCHEMA, "tenants")} (id) ON DELETE RESTRICT`,
      );
    }
    for (const column of table.columns.filter((c) => c.check)) {
      if (!hasConstraint(checkName(table, column.name))) {
        out.push(`ALTER TABLE ${name} ADD CONSTRAINT ${ident(checkName(table, column.name))} CHECK (${column.check})`);
      }
    }
    for (const fk of table.foreignKeys ?? []) {
      const fkName = foreignKeyName(table, fk.columns);
      if (hasConstraint(fkName)) continue;
      const columns = ["tenant_id", ...fk.columns].map(ident).join(", ");
      // SET NULL must only null the referencing columns, never tenant_id.
      const onDelete = fk.onDelete === "set null" ? `SET NULL (${fk.columns.map(ident).join(", ")})` : fk.onDelete.toUpperCase();
      out.push(
        `ALTER TABLE ${name} ADD CONSTRAINT ${ident(fkName)} FOREIGN KEY (${columns}) REFERENCES ${qualified(schema, fk.references)} (tenant_id, id) ON DELETE ${onDelete}`,
      );
    }
    if (!hasIndex(createdIndexName(table))) {
      out.push(`CREATE INDEX ${ident(createdIndexName(table))} ON ${name} (tenant_id, created_at)`);
    }
    for (const index of table.indexes ?? []) {
      const iName = indexName(table, index.columns, index.unique);
      if (hasIndex(iName)) continue;
      const columns = ["tenant_id", ...index.columns].map(ident).join(", ");
      out.push(`CREATE ${index.unique ? "UNIQUE " : ""}INDEX ${ident(iName)} ON ${name} (${columns})`);
    }
  }

  // 3. row-level security, policies, grants
  for (const table of tables) {
    const have = states.get(table.name);
    const name = qualified(schema, table.name);
    if (!have?.rowSecurity) out.push(`ALTER TABLE ${name} ENABLE ROW LEVEL SECURITY`);
    if (!have?.forceRowSecurity) out.push(`ALTER TABLE ${name} FORCE ROW LEVEL SECURITY`);
    const drifted = new Set<string>();
    for (const policy of [POLICY_NAMES.isolation, POLICY_NAMES.access]) {
      const definition = have?.policyDefinitions?.get(policy);
      if (have?.policies.has(policy) && definition && !policyMatches(definition, definitions[policy])) {
        out.push(`DROP POLICY ${ident(policy)} ON ${name}`);
        drifted.add(policy);
      }
    }
    const hasPolicy = (policy: string) => (have?.policies.has(policy) ?? false) && !drifted.has(policy);
    if (!hasPolicy(POLICY_NAMES.isolation)) {
      // RESTRICTIVE: ANDed with every permissive policy, so a later permissive policy cannot widen it.
      out.push(
        `CREATE POLICY ${POLICY_NAMES.isolation} ON ${name} AS RESTRICTIVE FOR ALL TO PUBLIC USING (${predicate}) WITH CHECK (${predicate})`,
      );
    }
    if (!hasPolicy(POLICY_NAMES.access)) {
      out.push(
        `CREATE POLICY ${POLICY_NAMES.access} ON ${name} AS PERMISSIVE FOR ALL TO ${ident(ROLES.app)}, ${ident(ROLES.readonly)} USING (true) WITH CHECK (true)`,
      );
    }
    for (const [grantee, wanted] of Object.entries(TABLE_PRIVILEGES)) {
      const held = have?.privileges.get(grantee) ?? new Set<string>();
      const who = grantee === "PUBLIC" ? "PUBLIC" : ident(grantee);
      const missing = wanted.filter((p) => !held.has(p));
      const extra = [...held].filter((p) => !wanted.includes(p)).sort();
      if (missing.length) out.push(`GRANT ${missing.join(", ")} ON ${name} TO ${who}`);
      if (extra.length) out.push(`REVOKE ${extra.join(", ")} ON ${name} FROM ${who}`);
    }
  }
  return out;
}

function columnDefinition(column: Column): string {
  return [ident(column.name), column.type, column.nullable ? "" : "NOT NULL", column.default ? `DEFAULT ${column.default}` : ""]
    .filter(Boolean)
    .join(" ");
}

// --- reading the current state -----------------------------------------------------------------

/** Reads the state of the given schemas in a handful of catalog queries (fast for thousands of schemas). */
export async function readSchemaStates(
  client: Queryable,
  schemas: string[],
  tables: readonly TenantTable[] = TENANT_TABLES,
): Promise<Map<string, SchemaState>> {
  const result = new Map<string, SchemaState>(schemas.map((s) => [s, emptySchemaState()]));
  const tableNames = tables.map((t) => t.name);
  const tableState = (schema: string, table: string): TableState => {
    const s = result.get(schema)!;
    let t = s.tables.get(table);
    if (!t) {
      t = {
        columns: new Map(),
        constraints: new Set(),
        indexes: new Set(),
        rowSecurity: false,
        forceRowSecurity: false,
        policies: new Set(),
        privileges: new Map(),
      };
      s.tables.set(table, t);
    }
    return t;
  };

  const namespaces = await client.query(
    `SELECT n.nspname AS schema,
            coalesce(array_agg(r.rolname::text) FILTER (WHERE r.rolname IS NOT NULL), '{}') AS usage
       FROM pg_namespace n
       LEFT JOIN pg_roles r ON r.rolname = ANY($2) AND has_schema_privilege(r.oid, n.oid, 'USAGE')
      WHERE n.nspname = ANY($1)
      GROUP BY n.nspname`,
    [schemas, [ROLES.app, ROLES.readonly, ROLES.maintenance]],
  );
  for (const row of namespaces.rows) {
    const s = result.get(row.schema)!;
    s.exists = true;
    s.usage = new Set(row.usage);
  }

  const classes = await client.query(
    `SELECT n.nspname AS schema, c.relname AS table, c.relrowsecurity AS rls, c.relforcerowsecurity AS force
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = ANY($1) AND c.relname = ANY($2) AND c.relkind IN ('r', 'p')`,
    [schemas, tableNames],
  );
  for (const row of classes.rows) {
    const t = tableState(row.schema, row.table);
    t.rowSecurity = row.rls;
    t.forceRowSecurity = row.force;
  }
  const present = (schema: string, table: string) => result.get(schema)?.tables.has(table) ?? false;

  const columns = await client.query(
    `SELECT n.nspname AS schema, c.relname AS table, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = ANY($1) AND c.relname = ANY($2) AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped`,
    [schemas, tableNames],
  );
  for (const row of columns.rows) if (present(row.schema, row.table)) tableState(row.schema, row.table).columns.set(row.column, row.type);

  const constraints = await client.query(
    `SELECT n.nspname AS schema, c.relname AS table, k.conname AS name
       FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = ANY($1) AND c.relname = ANY($2)`,
    [schemas, tableNames],
  );
  for (const row of constraints.rows) if (present(row.schema, row.table)) tableState(row.schema, row.table).constraints.add(row.name);

  const indexes = await client.query(
    `SELECT n.nspname AS schema, t.relname AS table, i.relname AS name
       FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE n.nspname = ANY($1) AND t.relname = ANY($2)`,
    [schemas, tableNames],
  );
  for (const row of indexes.rows) if (present(row.schema, row.table)) tableState(row.schema, row.table).indexes.add(row.name);

  const policies = await client.query(
    `SELECT schemaname AS schema, tablename AS table, policyname AS name, permissive = 'PERMISSIVE' AS permissive, cmd AS command,
            roles::text[] AS roles, qual AS using, with_check AS "withCheck"
       FROM pg_policies
      WHERE schemaname = ANY($1) AND tablename = ANY($2)`,
    [schemas, tableNames],
  );
  for (const row of policies.rows) {
    if (!present(row.schema, row.table)) continue;
    const t = tableState(row.schema, row.table);
    t.policies.add(row.name);
    t.policyDefinitions ??= new Map();
    t.policyDefinitions.set(row.name, {
      permissive: row.permissive,
      command: row.command,
      roles: row.roles,
      using: row.using,
      withCheck: row.withCheck,
    });
  }

  const grants = await client.query(
    `SELECT n.nspname AS schema, c.relname AS table,
            CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END AS grantee, a.privilege_type AS privilege
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
      WHERE n.nspname = ANY($1) AND c.relname = ANY($2) AND c.relkind IN ('r', 'p') AND a.grantee <> c.relowner`,
    [schemas, tableNames],
  );
  for (const row of grants.rows) {
    if (!present(row.schema, row.table) || !(row.grantee in TABLE_PRIVILEGES)) continue;
    const privileges = tableState(row.schema, row.table).privileges;
    if (!privileges.has(row.grantee)) privileges.set(row.grantee, new Set());
    privileges.get(row.grantee)!.add(row.privilege);
  }
  return result;
}

/** The schemas that hold tenant tables: the shared one and every dedicated `tenant_<hex>` schema. */
export async function tenantSchemas(client: Queryable): Promise<string[]> {
  const { rows } = await client.query(`SELECT nspname FROM pg_namespace WHERE nspname ~ '^tenant_[0-9a-f]{32}$' ORDER BY nspname`);
  return [SHARED_SCHEMA, ...rows.map((r: { nspname: string }) => r.nspname)];
}

/**
 * The mode this database's policies are rendered in (migration 0012's column); "setting" before 0012
 * ran. Whoever renders tenant policies outside `migrate` (dedicated provisioning, graduation) reads it,
 * so a schema created in a strict database is strict from its first statement.
 */
export async function readTenantContextMode(client: Queryable): Promise<TenantContextMode> {
  const { rows } = await client.query(
    `SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('tenancy.database_settings') AND attname = 'tenant_context' AND NOT attisdropped)
                 THEN (SELECT to_jsonb(s) ->> 'tenant_context' FROM tenancy.database_settings s) END AS mode`,
  );
  return rows[0]?.mode === "verified" ? "verified" : "setting";
}
