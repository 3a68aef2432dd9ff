/**
 * Dedicated tenant schemas (ADR-001's second strategy): an Enterprise tenant's own `tenant_<hex>`
 * schema holding the same tables, rendered from the same catalogue by the same planner as the
 * shared schema (lib/schema/planner.ts), owned by the owner role, with RLS kept as defence in depth — a
 * query routed to the wrong schema still sees nothing of another tenant.
 *
 * Provisioning enforces the per-cluster cap (lib/enterprise/schema-capacity.ts). Optionally a tenant gets its
 * own login role, `tenant_<hex>_login`: a connection limit, a statement timeout, its schema only
 * (nothing in the shared schema), still subject to RLS.
 */
import { TENANT_TABLES, type TenantTable } from "../schema/catalogue";
import { withTransaction, type Queryable } from "../db/client";
import { lockForTransaction, MIGRATE_LOCK } from "../db/locks";
import { ROLES } from "../schema/roles";
import { checkCapacity, MEMORY_SETTING, schemaCapacity, type CapacityInputs, type SchemaCapacity } from "./schema-capacity";
import {
  DEDICATED_SCHEMA_PATTERN,
  normalizePolicyExpression,
  planSchema,
  readSchemaStates,
  readTenantContextMode,
  REGISTRY_SCHEMA,
} from "../schema/planner";
import { ident, literal, qualified } from "../db/sql";
import { dedicatedSchemaName, TenantId, type Tenant } from "../tenant/model";
import { TIER_LIMITS } from "../tenant/tiers";

export class DedicatedSchemaCapError extends Error {
  constructor(
    message: string,
    readonly kind: "cap" | "locks",
  ) {
    super(message);
    this.name = "DedicatedSchemaCapError";
  }
}

export interface ClusterCapacityInputs extends CapacityInputs {
  maxPreparedTransactions: number;
  /** The running server's max_locks_per_transaction. */
  maxLocksPerTransaction: number;
  /** Where memoryMiB came from: the `alphapulse.memory_mib` setting, 4 × shared_buffers, or the caller. */
  memorySource: "setting" | "shared_buffers" | "override";
}

/**
 * The cluster's capacity inputs. PostgreSQL does not know the machine's memory: the configuration
 * records it as `alphapulse.memory_mib` (schemaCapacitySettings); without it we assume the
 * memorySettings() rule (shared_buffers = 25% of memory) and say so.
 */
export async function readCapacityInputs(client: Queryable, overrides: Partial<CapacityInputs> = {}): Promise<ClusterCapacityInputs> {
  const { rows } = await client.query(
    `SELECT current_setting('max_connections')::int AS max_connections,
            current_setting('max_prepared_transactions')::int AS max_prepared,
            current_setting('max_locks_per_transaction')::int AS max_locks,
            nullif(current_setting($1, true), '') AS memory_setting,
            (SELECT setting::bigint * 8192 / 1048576 FROM pg_settings WHERE name = 'shared_buffers') AS shared_buffers_mib`,
    [MEMORY_SETTING],
  );
  const r = rows[0];
  const fromSetting = r.memory_setting !== null && Number.isFinite(Number(r.memory_setting));
  const memoryMiB = overrides.memoryMiB ?? (fromSetting ? Number(r.memory_setting) : Number(r.shared_buffers_mib) * 4);
  return {
    maxConnections: overrides.maxConnections ?? r.max_connections,
    maxPreparedTransactions: overrides.maxPreparedTransactions ?? r.max_prepared,
    memoryMiB,
    catalogCacheFraction: overrides.catalogCacheFraction,
    maxLocksPerTransaction: r.max_locks,
    memorySource: overrides.memoryMiB !== undefined ? "override" : fromSetting ? "setting" : "shared_buffers",
  };
}

/** The dedicated schemas in this database. */
export async function dedicatedSchemaCount(client: Queryable): Promise<number> {
  const { rows } = await client.query(`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname ~ $1`, [DEDICATED_SCHEMA_PATTERN.source]);
  return rows[0].n;
}

export interface CapacityReport extends SchemaCapacity {
  inputs: ClusterCapacityInputs;
  dedicatedSchemas: number;
}

export async function capacityReport(
  client: Queryable,
  overrides: Partial<CapacityInputs> = {},
  tables: readonly TenantTable[] = TENANT_TABLES,
): Promise<CapacityReport> {
  const inputs = await readCapacityInputs(client, overrides);
  return { ...schemaCapacity(inputs, tables), inputs, dedicatedSchemas: await dedicatedSchemaCount(client) };
}

export interface ProvisionOptions {
  tables?: readonly TenantTable[];
  /** Override what is read from the server (tests, clusters whose memory setting is missing). */
  capacity?: Partial<CapacityInputs>;
}

export interface ProvisionResult {
  schema: string;
  created: boolean;
  statements: string[];
}

/**
 * Creates (or completes) the tenant's dedicated schema from the catalogue, in one transaction, as
 * the owner. Serialised with `migrate` and other provisioning by the migrate lock, so the cap
 * cannot be overrun by two at once and a schema is never created from a catalogue that a running
 * migration is changing. Idempotent: an up-to-date schema plans nothing.
 */
export async function provisionDedicatedSchema(
  client: Queryable,
  tenant: Pick<Tenant, "id">,
  options: ProvisionOptions = {},
): Promise<ProvisionResult> {
  const tables = options.tables ?? TENANT_TABLES;
  const schema = dedicatedSchemaName(tenant.id);
  return withTransaction(client, async (tx) => {
    await lockForTransaction(tx, MIGRATE_LOCK);
    const state = (await readSchemaStates(tx, [schema], tables)).get(schema)!;
    if (!state.exists) {
      const inputs = await readCapacityInputs(tx, options.capacity);
      const refusal = checkCapacity(inputs, await dedicatedSchemaCount(tx), inputs.maxLocksPerTransaction, tables);
      if (refusal) throw new DedicatedSchemaCapError(refusal.message, refusal.kind);
    }
    const statements = planSchema(schema, state, tables, await readTenantContextMode(tx));
    await tx.query(`SET LOCAL ROLE ${ident(ROLES.owner)}`);
    for (const statement of statements) await tx.query(statement);
    return { schema, created: !state.exists, statements };
  });
}

// --- the optional per-tenant login role ---------------------------------------------------------

/** `tenant_<hex>_login`; migration 0005's registry policy derives the same name from the row. */
export function tenantLoginRoleName(tenantId: string): string {
  return loginRoleOfSchema(dedicatedSchemaName(tenantId));
}

/** `tenant_<hex>` → `tenant_<hex>_login`: the login role that may reach that dedicated schema. */
export function loginRoleOfSchema(schema: string): string {
  return `${schema}_login`;
}

export const LOGIN_POLICY = "tenant_login";

/** `tenant_<32 hex>` (or its `_login` role) → the tenant's uuid. */
export function tenantIdOfSchema(schemaOrRole: string): string {
  const m = /^tenant_([0-9a-f]{32})(_login)?$/.exec(schemaOrRole);
  if (!m) throw new Error(`not a dedicated schema or login role: ${schemaOrRole}`);
  const h = m[1];
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * The login role's own policy predicate: rows of its tenant only, read and written. The restrictive
 * tenant policy reads the session's setting, which any session may set to another tenant's id; this
 * pins the role to the tenant in its name whatever the setting says (a role setting is a default,
 * not a bound), so it can neither read nor write rows under another tenant's id in its schema
 * (rows that would, among other things, block that tenant's offboarding on the registry's key).
 */
export function loginPolicyPredicate(tenantId: string): string {
  return `tenant_id = ${literal(TenantId.parse(tenantId))}::uuid`;
}

export interface TenantLoginRoleOptions {
  /** Concurrent connections the role may hold. @default 20 */
  connectionLimit?: number;
  /** @default the tier's statement timeout (lib/tenant/tiers.ts) */
  statementTimeoutMs?: number;
  /** Set when given; never logged. */
  password?: string;
  tables?: readonly TenantTable[];
}

export interface TenantLoginRoleState {
  exists: boolean;
  /** Tables of the schema that already carry the login policy. */
  policies: Set<string>;
  /** Of those, the ones whose policy is pinned to the tenant (loginPolicyPredicate); the others are repaired. */
  pinned?: ReadonlySet<string>;
}

export interface TenantLoginRolePlan {
  /** Run as a role with CREATEROLE (cluster-wide role attributes, per-database settings, CONNECT). */
  role: string[];
  /** Run as the owner (grants and policies on the tenant's objects). */
  objects: string[];
}

/**
 * The statements that give a dedicated tenant its login role. Pure. The role inherits nothing and
 * is granted exactly: CONNECT on this database, USAGE on its schema, DML on its tables through a
 * permissive policy of its own (the restrictive tenant policy still applies), and what RLS needs to
 * evaluate the tenant predicate (the registry, visible to it only as its own row).
 */
export function planTenantLoginRole(
  tenant: Pick<Tenant, "id" | "tier"> & Partial<Pick<Tenant, "status">>,
  database: string,
  state: TenantLoginRoleState,
  options: TenantLoginRoleOptions = {},
): TenantLoginRolePlan {
  const id = TenantId.parse(tenant.id);
  const role = ident(tenantLoginRoleName(id));
  const schema = dedicatedSchemaName(id);
  const limit = options.connectionLimit ?? 20;
  const timeout = options.statementTimeoutMs ?? TIER_LIMITS[tenant.tier].statementTimeoutMs;
  if (!Number.isInteger(limit) || limit < 1) throw new Error(`connectionLimit must be a positive integer, got ${limit}`);
  if (!Number.isInteger(timeout) || timeout < 1) throw new Error(`statementTimeoutMs must be a positive integer, got ${timeout}`);
  // A suspended tenant's role exists but cannot log in (setTenantLoginAccess flips it).
  const login = tenant.status === "suspended" ? "NOLOGIN" : "LOGIN";
  const attributes = `${login} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT CONNECTION LIMIT ${limit}`;
  // An existing role is altered without naming SUPERUSER, REPLICATION or BYPASSRLS: a role that
  // creates roles but is not a superuser (the AWS executor, docs/aws.md) may not name them at all.
  // A tenant role that gained one of them behind our back is the audit's finding (role-superuser,
  // role-bypassrls), and a superuser's to undo.
  const alterAttributes = `${login} NOCREATEDB NOCREATEROLE NOINHERIT CONNECTION LIMIT ${limit}`;
  const password = options.password !== undefined ? ` PASSWORD ${literal(options.password)}` : "";
  const db = ident(database);
  const out: TenantLoginRolePlan = {
    role: [
      state.exists ? `ALTER ROLE ${role} ${alterAttributes}${password}` : `CREATE ROLE ${role} ${attributes}${password}`,
      `ALTER ROLE ${role} SET statement_timeout = ${timeout}`,
      `ALTER ROLE ${role} IN DATABASE ${db} SET search_path = ${ident(schema)}`,
      `ALTER ROLE ${role} IN DATABASE ${db} SET app.current_tenant_id = ${literal(id)}`,
      `GRANT CONNECT ON DATABASE ${db} TO ${role}`,
    ],
    objects: [
      `GRANT USAGE ON SCHEMA ${ident(schema)} TO ${role}`,
      `GRANT USAGE ON SCHEMA ${ident(REGISTRY_SCHEMA)} TO ${role}`,
      `GRANT SELECT ON ${qualified(REGISTRY_SCHEMA, "tenants")} TO ${role}`,
      `GRANT EXECUTE ON FUNCTION ${qualified(REGISTRY_SCHEMA, "setting_tenant_id")}(), ${qualified(REGISTRY_SCHEMA, "current_tenant_id")}() TO ${role}`,
    ],
  };
  out.objects.push(
    ...planLoginRoleTables(schema, tenantLoginRoleName(id), options.tables ?? TENANT_TABLES, {
      granted: new Set(),
      policies: state.policies,
      pinned: state.pinned ?? state.policies,
    }),
  );
  return out;
}

/** What a dedicated schema's login role holds on the schema's tables. */
export interface LoginRoleTablesState {
  /** Tables it has SELECT, INSERT, UPDATE and DELETE on. */
  granted: ReadonlySet<string>;
  /** Tables that carry its permissive policy (LOGIN_POLICY). */
  policies: ReadonlySet<string>;
  /** Of those, the tables whose policy is pinned to the role's tenant for reads and writes; the others are altered. */
  pinned: ReadonlySet<string>;
}

/**
 * DML on each catalogue table of the schema, through a permissive policy of the login role's own
 * (the restrictive tenant policy still applies): what the role lacks of it. Pure. Used when the
 * role is created or updated, and by `migrate`, so a table added to the catalogue reaches existing
 * login roles in the same run that creates it.
 */
export function planLoginRoleTables(
  schema: string,
  loginRole: string,
  tables: readonly TenantTable[],
  state: LoginRoleTablesState,
): string[] {
  const role = ident(loginRole);
  const pinned = loginPolicyPredicate(tenantIdOfSchema(schema));
  const out: string[] = [];
  for (const table of tables) {
    const name = qualified(schema, table.name);
    if (!state.granted.has(table.name)) out.push(`GRANT SELECT, INSERT, UPDATE, DELETE ON ${name} TO ${role}`);
    if (!state.policies.has(table.name))
      out.push(`CREATE POLICY ${LOGIN_POLICY} ON ${name} AS PERMISSIVE FOR ALL TO ${role} USING (${pinned}) WITH CHECK (${pinned})`);
    else if (!state.pinned.has(table.name))
      out.push(`ALTER POLICY ${LOGIN_POLICY} ON ${name} TO ${role} USING (${pinned}) WITH CHECK (${pinned})`);
  }
  return out;
}

/** The login roles of these dedicated schemas that exist, by schema, with what each holds on its schema's tables. */
export async function readLoginRoleTables(
  client: Queryable,
  schemas: readonly string[],
): Promise<Map<string, LoginRoleTablesState & { role: string }>> {
  const dedicated = schemas.filter((s) => DEDICATED_SCHEMA_PATTERN.test(s));
  const { rows } = await client.query(
    `SELECT w.schema, w.role,
            ARRAY(SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = w.schema AND c.relkind IN ('r', 'p')
                     AND has_table_privilege(r.oid, c.oid, 'SELECT') AND has_table_privilege(r.oid, c.oid, 'INSERT')
                     AND has_table_privilege(r.oid, c.oid, 'UPDATE') AND has_table_privilege(r.oid, c.oid, 'DELETE')) AS granted,
            coalesce((SELECT json_agg(json_build_object('table', p.tablename, 'roles', p.roles, 'using', p.qual, 'check', p.with_check, 'permissive', p.permissive))
                        FROM pg_policies p WHERE p.schemaname = w.schema AND p.policyname = $3), '[]') AS policies
       FROM unnest($1::text[], $2::text[]) AS w(schema, role) JOIN pg_roles r ON r.rolname = w.role`,
    [dedicated, dedicated.map(loginRoleOfSchema), LOGIN_POLICY],
  );
  return new Map(
    (rows as { schema: string; role: string; granted: string[]; policies: (LoginPolicyRow & { table: string })[] }[]).map((r) => [
      r.schema,
      {
        role: r.role,
        granted: new Set(r.granted),
        policies: new Set(r.policies.map((p) => p.table)),
        pinned: new Set(r.policies.filter((p) => loginPolicyIsPinned(p, r.role, tenantIdOfSchema(r.schema))).map((p) => p.table)),
      },
    ]),
  );
}

/** True when a login policy (as pg_policies shows it) is the pinned one: permissive, for the role only, its tenant's rows read and written. */
export interface LoginPolicyRow {
  roles: string[];
  using: string | null;
  check: string | null;
  /** pg_policies prints "PERMISSIVE" / "RESTRICTIVE". */
  permissive: string | boolean;
}

export function loginPolicyIsPinned(p: LoginPolicyRow, role: string, tenantId: string): boolean {
  const want = normalizePolicyExpression(loginPolicyPredicate(tenantId));
  const is = (e: string | null) => e !== null && normalizePolicyExpression(e) === want;
  const permissive = p.permissive === true || p.permissive === "PERMISSIVE";
  return permissive && p.roles.length === 1 && p.roles[0] === role && is(p.using) && is(p.check ?? p.using);
}

/**
 * Creates or updates the tenant's login role. Needs a session that may create roles and grant
 * CONNECT (a superuser, or CREATEROLE and the database owner) and is a member of the owner role.
 * The tenant must be dedicated. (`migrate` extends existing login roles to tables it adds.)
 */
export async function ensureTenantLoginRole(
  client: Queryable,
  tenant: Pick<Tenant, "id" | "tier" | "placement">,
  options: TenantLoginRoleOptions = {},
): Promise<{ role: string; statements: string[] }> {
  if (tenant.placement !== "dedicated")
    throw new Error(`tenant ${tenant.id} is not dedicated: a login role reaches only a dedicated schema`);
  const roleName = tenantLoginRoleName(tenant.id);
  const schema = dedicatedSchemaName(tenant.id);
  return withTransaction(client, async (tx) => {
    const { rows } = await tx.query(
      `SELECT current_database() AS db,
              EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS exists,
              coalesce((SELECT array_agg(tablename::text) FROM pg_policies WHERE schemaname = $2 AND policyname = $3), '{}') AS policies,
              coalesce((SELECT json_agg(json_build_object('table', tablename, 'roles', roles, 'using', qual, 'check', with_check, 'permissive', permissive))
                          FROM pg_policies WHERE schemaname = $2 AND policyname = $3), '[]') AS definitions,
              (SELECT status FROM ${qualified(REGISTRY_SCHEMA, "tenants")} WHERE id = $4) AS status`,
      [roleName, schema, LOGIN_POLICY, tenant.id],
    );
    // The registry's status, not the caller's copy: re-running this for a suspended tenant (a
    // `pulumi up`) must not let its role log in again.
    const plan = planTenantLoginRole(
      { ...tenant, status: rows[0].status ?? undefined },
      rows[0].db,
      {
        exists: rows[0].exists,
        policies: new Set(rows[0].policies),
        pinned: new Set(
          (rows[0].definitions as (LoginPolicyRow & { table: string })[])
            .filter((p) => loginPolicyIsPinned(p, roleName, tenant.id))
            .map((p) => p.table),
        ),
      },
      options,
    );
    for (const statement of plan.role) await tx.query(statement);
    await tx.query(`SET LOCAL ROLE ${ident(ROLES.owner)}`);
    for (const statement of plan.objects) await tx.query(statement);
    const statements = [...plan.role, ...plan.objects].map((s) => s.replace(/PASSWORD '(?:[^']|'')*'/g, "PASSWORD '***'"));
    return { role: roleName, statements };
  });
}

/**
 * Suspension for a tenant's own login role: the tenant predicate reads only the session's setting
 * (docs/data-layer.md), and a login role carries its tenant in a role setting, so suspension must
 * stop the role itself. `enabled: false` makes it NOLOGIN; run inside the transaction that changes
 * the tenant's status, by a session that may alter roles. Returns false when the tenant has no
 * login role. Sessions already open are cut by terminateTenantLoginSessions after that commit.
 */
export async function setTenantLoginAccess(tx: Queryable, tenantId: string, enabled: boolean): Promise<boolean> {
  const roleName = tenantLoginRoleName(tenantId);
  const { rows } = await tx.query(`SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS exists`, [roleName]);
  if (!rows[0].exists) return false;
  await tx.query(`ALTER ROLE ${ident(roleName)} ${enabled ? "LOGIN" : "NOLOGIN"}`);
  return true;
}

/** Ends every open session of the tenant's login role in this cluster; returns how many. */
export async function terminateTenantLoginSessions(client: Queryable, tenantId: string): Promise<number> {
  const { rows } = await client.query(
    `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()`,
    [tenantLoginRoleName(tenantId)],
  );
  return rows[0].n;
}

/** Removes the tenant's login role and everything granted to it in this database (no-op when absent). */
export async function dropTenantLoginRole(client: Queryable, tenant: Pick<Tenant, "id">): Promise<boolean> {
  const roleName = tenantLoginRoleName(tenant.id);
  return withTransaction(client, async (tx) => {
    const { rows } = await tx.query(`SELECT current_database() AS db, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS exists`, [
      roleName,
    ]);
    if (!rows[0].exists) return false;
    const role = ident(roleName);
    // DROP OWNED needs the privileges of the role: a non-superuser (the AWS executor, CREATEROLE)
    // takes its membership for this transaction; the role is gone at its end.
    const { rows: me } = await tx.query(`SELECT rolsuper FROM pg_roles WHERE rolname = current_user`);
    if (!me[0]?.rolsuper) await tx.query(`GRANT ${role} TO CURRENT_USER`);
    // DROP OWNED removes its grants and its policies in this database; it owns nothing.
    await tx.query(`DROP OWNED BY ${role}`);
    await tx.query(`ALTER ROLE ${role} IN DATABASE ${ident(rows[0].db)} RESET ALL`);
    await tx.query(`DROP ROLE ${role}`);
    return true;
  });
}

/** The registry stayed locked by long transactions for the whole retry budget of dropDedicatedSchema. */
export class RegistryBusyError extends Error {
  constructor(readonly schema: string) {
    super(`could not drop ${schema}: long transactions keep the tenant registry locked; run the command again later`);
    this.name = "RegistryBusyError";
  }
}

/**
 * Drops a dedicated schema without stalling other tenants. Its tables' foreign keys to
 * tenancy.tenants go with it, and removing their triggers takes an ACCESS EXCLUSIVE lock on the
 * registry, which every tenant transaction reads in enter_tenant(): waiting for that lock behind a
 * long transaction would queue every tenant behind it. So each attempt waits at most 200 ms and
 * backs off; after about a minute it gives up with RegistryBusyError (run the command again).
 */
export async function dropDedicatedSchema(
  client: Queryable,
  schema: string,
  onRetry: (attempt: number) => void = () => {},
  attempts = 60,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await withTransaction(client, async (tx) => {
        await tx.query(`SET LOCAL ROLE ${ident(ROLES.owner)}`);
        await tx.query(`SET LOCAL lock_timeout = 200`);
        await tx.query(`DROP SCHEMA IF EXISTS ${ident(schema)} CASCADE`);
      });
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== "55P03") throw err;
      if (attempt >= attempts) throw new RegistryBusyError(schema);
      onRetry(attempt);
      await new Promise((r) => setTimeout(r, Math.min(1_000, 50 * attempt)));
    }
  }
}

export async function tenantLoginRoleExists(client: Queryable, tenant: Pick<Tenant, "id">): Promise<boolean> {
  const { rows } = await client.query(`SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS exists`, [
    tenantLoginRoleName(tenant.id),
  ]);
  return rows[0].exists;
}
