/**
 * `migrate`: brings a database to the design, idempotently, under an advisory lock.
 *   1. roles (cluster-wide) and their posture                       lib/schema/roles.ts
 *   2. database-level privileges (no TEMPORARY, no CONNECT, no session activity for PUBLIC)
 *   3. versioned migrations, checksummed                            lib/schema/migrations.ts
 *   4. the catalogue, planned per tenant schema (shared + dedicated) lib/schema/planner.ts
 * A second run finds nothing to do and changes nothing.
 *
 * Needs one dedicated connection (the lock is session-level) as a superuser, or as a role that can
 * create roles and owns the database, for the first run; later runs need only membership of owner.
 */
import { createHash } from "node:crypto";
import { catalogueFingerprint, TENANT_TABLES, type TenantTable } from "./catalogue";
import { withTransaction, type Queryable } from "../db/client";
import { MIGRATE_LOCK, withSessionLock } from "../db/locks";
import { planLoginRoleTables, readLoginRoleTables } from "../enterprise/dedicated";
import { MIGRATIONS, type Migration } from "./migrations";
import { ADVISORY_LOCK_FUNCTION_NAMES, ensureRoles, planRoles, readRoles, ROLES, RLS_SUBJECT_ROLES, type RoleKey } from "./roles";
import { planServerObjects, readServerObjects } from "./server-objects";
import { planSchema, readSchemaStates, REGISTRY_SCHEMA, tenantSchemas, type TenantContextMode } from "./planner";
import { planTenantContextMode, recordedTenantContextMode } from "../tenant-context/mode";
import { ident } from "../db/sql";
import type { ResidencyRegion } from "../tenant/model";

export interface MigrateProgress {
  phase: "roles" | "database" | "versioned" | "catalogue";
  message: string;
  done?: number;
  total?: number;
}

export interface MigrateOptions {
  /** The catalogue to apply; defaults to lib/schema/catalogue.ts. */
  tables?: readonly TenantTable[];
  /** This database's residency region; recorded on first use, and a different value is refused. */
  region?: ResidencyRegion;
  /** Passwords for login roles, set when given (provisioning); never logged. */
  passwords?: Partial<Record<RoleKey, string>>;
  /** Limit the catalogue step to these schemas (default: shared + every dedicated schema). */
  schemas?: string[];
  /** Plan only: report what would run, change nothing. */
  dryRun?: boolean;
  /**
   * The tenant context the policies trust (ADR-005). Absent: a database this run creates is strict
   * ("verified"), an existing one keeps its recorded mode. "verified" switches an existing database
   * (refused while it has tenants and no active context key: every client would fail); "setting"
   * rolls it back, or pins a new database to the raw-setting design.
   */
  tenantContext?: TenantContextMode;
  onProgress?: (progress: MigrateProgress) => void;
}

export interface MigrationReport {
  roles: string[];
  database: string[];
  versioned: { version: string; name: string }[];
  catalogue: { schema: string; statements: string[] }[];
  schemasChecked: number;
  fingerprint: string;
  timescaledb: boolean;
  /** True when nothing was (or, with dryRun, would be) changed. */
  unchanged: boolean;
  /** The tenant context the policies trust after this run, and the statements that switched it. */
  tenantContext: { mode: TenantContextMode; statements: string[] };
}

export class MigrationChecksumError extends Error {
  constructor(readonly version: string) {
    super(`migration ${version} was edited after it was applied (checksum differs): add a new migration instead of editing an applied one`);
    this.name = "MigrationChecksumError";
  }
}

/** Switching to strict mode would lock every client out (no active key); nothing was changed. */
export class TenantContextSwitchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TenantContextSwitchError";
  }
}

/** The database already serves another residency region; nothing was changed. */
export class DatabaseRegionError extends Error {
  constructor(
    readonly current: string,
    readonly requested: string,
  ) {
    super(`this database serves residency region "${current}"; refusing to change it to "${requested}"`);
    this.name = "DatabaseRegionError";
  }
}

export function migrationChecksum(m: Migration): string {
  return createHash("sha256").update(m.sql).digest("hex");
}

export async function migrate(client: Queryable, options: MigrateOptions = {}): Promise<MigrationReport> {
  const tables = options.tables ?? TENANT_TABLES;
  const progress = options.onProgress ?? (() => {});
  return withSessionLock(client, MIGRATE_LOCK, async () => {
    const report: MigrationReport = {
      roles: [],
      database: [],
      versioned: [],
      catalogue: [],
      schemasChecked: 0,
      fingerprint: catalogueFingerprint(tables),
      timescaledb: false,
      unchanged: true,
      tenantContext: { mode: "setting", statements: [] },
    };

    // A region conflict is refused before anything changes (roles, privileges, pending migrations).
    if (options.region) {
      const current = await recordedRegion(client);
      if (current && current !== options.region) throw new DatabaseRegionError(current, options.region);
    }
    // So is a switch to strict that no client could survive: tenants registered, and no key to sign their proofs.
    if (options.tenantContext === "verified") await refuseKeylessSwitch(client);

    progress({ phase: "roles", message: "checking roles" });
    if (options.dryRun) {
      report.roles = planRoles(await readRoles(client));
    } else {
      report.roles = await ensureRoles(client, options.passwords);
    }
    // Passwords are secrets: report that they were set, never their values.
    report.roles = report.roles.map((s) => s.replace(/PASSWORD '(?:[^']|'')*'/g, "PASSWORD '***'"));

    progress({ phase: "database", message: "checking database privileges" });
    report.database = await planDatabase(client);
    if (!options.dryRun) for (const statement of report.database) await client.query(statement);
    report.timescaledb = await ensureTimescale(client, !!options.dryRun);

    progress({ phase: "versioned", message: "checking versioned migrations" });
    report.versioned = await applyVersioned(client, !!options.dryRun);
    // After the versioned migrations: the tenant roles lose the gate's lock function only once
    // enter_tenant() takes the gate through tenancy.take_tenant_gate() (0009).
    const locks = await planAdvisoryLocks(client);
    if (!options.dryRun) for (const statement of locks) await client.query(statement);
    report.database.push(...locks);
    if (options.region) await recordRegion(client, options.region, !!options.dryRun);

    // The tenant context (ADR-005): registry policies and grants here, tenant tables in the catalogue step.
    const recorded = (await recordedTenantContextMode(client)) ?? "setting";
    const created = report.versioned.some((m) => m.version === "0001");
    const mode = options.tenantContext ?? (created ? "verified" : recorded);
    report.tenantContext = { mode, statements: planTenantContextMode(recorded, mode) };
    if (report.tenantContext.statements.length && !options.dryRun) {
      await withTransaction(client, async (tx) => {
        await tx.query(`SET LOCAL ROLE ${ident(ROLES.owner)}`);
        for (const statement of report.tenantContext.statements) await tx.query(statement);
      });
    }

    const schemas = options.schemas ?? (await tenantSchemas(client));
    report.schemasChecked = schemas.length;
    progress({ phase: "catalogue", message: `planning ${schemas.length} schema(s)`, done: 0, total: schemas.length });
    const states = await readSchemaStates(client, schemas, tables);
    const loginRoles = await readLoginRoleTables(client, schemas);
    let done = 0;
    for (const schema of schemas) {
      const login = loginRoles.get(schema);
      const statements = [
        ...planSchema(schema, states.get(schema)!, tables, mode),
        ...(login ? planLoginRoleTables(schema, login.role, tables, login) : []),
      ];
      if (statements.length) {
        if (!options.dryRun) {
          await withTransaction(client, async (tx) => {
            await tx.query(`SET LOCAL ROLE ${ident(ROLES.owner)}`);
            for (const statement of statements) await tx.query(statement);
          });
        }
        report.catalogue.push({ schema, statements });
      }
      done++;
      if (statements.length || done === schemas.length || done % 100 === 0) {
        progress({ phase: "catalogue", message: `${schema}: ${statements.length} change(s)`, done, total: schemas.length });
      }
    }
    report.unchanged =
      !report.roles.length &&
      !report.database.length &&
      !report.versioned.length &&
      !report.catalogue.length &&
      !report.tenantContext.statements.length;
    return report;
  });
}

/**
 * Database-level privileges: the owner may create schemas; PUBLIC may neither connect nor create
 * TEMP tables, nor read other sessions' statements (activity, pg_stat_statements), nor use the
 * other server-wide objects tenants share (lib/schema/server-objects.ts). Roles that do
 * not exist yet (a dry run on a new cluster) count as holding nothing.
 */
async function planDatabase(client: Queryable): Promise<string[]> {
  const { rows } = await client.query(
    `SELECT current_database() AS db,
            coalesce(has_database_privilege((SELECT oid FROM pg_roles WHERE rolname = $1), current_database(), 'CREATE'), false) AS owner_create,
            EXISTS (SELECT 1 FROM pg_roles r, pg_database d, aclexplode(d.datacl) a
                     WHERE r.rolname = $1 AND d.datname = current_database() AND a.grantee = r.oid AND a.privilege_type = 'TEMPORARY') AS owner_temp,
            EXISTS (SELECT 1 FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
                     WHERE d.datname = current_database() AND a.grantee = 0 AND a.privilege_type IN ('TEMPORARY', 'CONNECT')) AS public_open,
            (SELECT array_agg(w.name ORDER BY w.name) FROM unnest($2::text[]) AS w(name)
              WHERE NOT EXISTS (
                SELECT 1 FROM pg_roles r, pg_database d, aclexplode(d.datacl) a
                 WHERE r.rolname = w.name AND d.datname = current_database() AND a.grantee = r.oid AND a.privilege_type = 'CONNECT')) AS cannot_connect,
            EXISTS (SELECT 1 FROM pg_namespace n, aclexplode(n.nspacl) a WHERE n.nspname = 'public' AND a.grantee = 0 AND a.privilege_type = 'CREATE') AS public_schema_create,
            EXISTS (SELECT 1 FROM pg_class c, aclexplode(c.relacl) a
                     WHERE c.oid = 'pg_catalog.pg_stat_activity'::regclass AND a.grantee = 0 AND a.privilege_type = 'SELECT') AS public_stat_activity,
            (SELECT array_agg(p.oid::regprocedure::text ORDER BY p.oid::regprocedure::text)
               FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
              WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname LIKE 'pg\\_stat\\_get\\_backend\\_%'
                AND a.grantee = 0 AND a.privilege_type = 'EXECUTE') AS public_backend_functions,
            (SELECT array_agg(o.privilege ORDER BY o.privilege) FROM (
               SELECT 'SELECT ON TABLE ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS privilege
                 FROM pg_extension e JOIN pg_depend d ON d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid AND d.deptype = 'e'
                 JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid JOIN pg_namespace n ON n.oid = c.relnamespace,
                      aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
                WHERE e.extname = 'pg_stat_statements' AND a.grantee = 0 AND a.privilege_type = 'SELECT'
               UNION ALL
               SELECT 'EXECUTE ON FUNCTION ' || quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ')'
                 FROM pg_extension e JOIN pg_depend d ON d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid AND d.deptype = 'e'
                 JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid JOIN pg_namespace n ON n.oid = p.pronamespace,
                      aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                WHERE e.extname = 'pg_stat_statements' AND a.grantee = 0 AND a.privilege_type = 'EXECUTE') o) AS public_statement_stats`,
    [ROLES.owner, [ROLES.migrator, ROLES.app, ROLES.readonly]],
  );
  const r = rows[0];
  const db = ident(r.db);
  const out: string[] = [];
  if (!r.owner_create) out.push(`GRANT CREATE ON DATABASE ${db} TO ${ident(ROLES.owner)}`);
  // The verified tenant context's seal is a temporary sequence the verifier (running as the owner)
  // creates per session (ADR-005); the tenant roles keep no TEMPORARY. Granted explicitly: PUBLIC's
  // TEMPORARY, which the owner held until the REVOKE above, does not count.
  if (!r.owner_temp) out.push(`GRANT TEMPORARY ON DATABASE ${db} TO ${ident(ROLES.owner)}`);
  if (r.public_open) out.push(`REVOKE TEMPORARY, CONNECT ON DATABASE ${db} FROM PUBLIC`);
  if (r.cannot_connect?.length) out.push(`GRANT CONNECT ON DATABASE ${db} TO ${r.cannot_connect.map(ident).join(", ")}`);
  if (r.public_schema_create) out.push(`REVOKE CREATE ON SCHEMA public FROM PUBLIC`);
  // Every tenant connects as app_user, and a role sees the query text of its own other sessions:
  // other tenants' statements (with their literals). Only monitoring roles may read activity.
  if (r.public_stat_activity) {
    out.push(`REVOKE SELECT ON pg_catalog.pg_stat_activity FROM PUBLIC`);
    out.push(`REVOKE EXECUTE ON FUNCTION pg_catalog.pg_stat_get_activity(integer) FROM PUBLIC`);
    out.push(`GRANT SELECT ON pg_catalog.pg_stat_activity TO pg_read_all_stats`);
    out.push(`GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_get_activity(integer) TO pg_read_all_stats`);
  }
  // The same text through the per-backend functions: pg_stat_get_backend_activity(n) shows a
  // session's query to any session of the same role, i.e. one tenant's statements to another.
  for (const fn of (r.public_backend_functions ?? []) as string[]) {
    if (!/^pg_stat_get_backend_[a-z_]+\((integer)?\)$/.test(fn)) throw new Error(`unexpected statistics function ${fn}`);
    out.push(`REVOKE EXECUTE ON FUNCTION pg_catalog.${fn} FROM PUBLIC`);
    out.push(`GRANT EXECUTE ON FUNCTION pg_catalog.${fn} TO pg_read_all_stats`);
  }
  // pg_stat_statements (preloaded on AWS, lib/platform/postgres-config.ts), once someone creates the
  // extension: its view and function show every statement of one's own role, normalised — one
  // tenant's statements to another. PostgreSQL grants them to PUBLIC; monitoring roles keep them.
  for (const grant of (r.public_statement_stats ?? []) as string[]) {
    out.push(`REVOKE ${grant} FROM PUBLIC`);
    out.push(`GRANT ${grant} TO pg_read_all_stats`);
  }
  // Locks, large objects, per-table statistics, backend signals, notifications: shared by every
  // tenant, needed by none (lib/schema/server-objects.ts).
  out.push(...planServerObjects(await readServerObjects(client), await operatorRoles(client)));
  return out;
}

/** The roles that run operations: owner and maintenance, and the role running migrate when it is not a superuser (a managed server). */
async function operatorRoles(client: Queryable): Promise<string[]> {
  const { rows: me } = await client.query(`SELECT current_user AS name, rolsuper AS superuser FROM pg_roles WHERE rolname = current_user`);
  return [ROLES.owner, ROLES.maintenance, ...(me[0]?.superuser === false ? [me[0].name as string] : [])];
}

/**
 * Advisory locks are outside RLS, and the tenant gates are advisory locks. With PostgreSQL's default
 * (EXECUTE to PUBLIC) one tenant's session could hold another tenant's gate exclusively (that
 * tenant's every transaction waits, then fails at lock_timeout), keep it past its own request with
 * a session-level lock on a pooled connection, hold the migrate lock's key (migrate and dedicated
 * provisioning wait), or probe a gate to see when another tenant is busy. PUBLIC loses every
 * advisory lock function and so do the tenant roles: they take their own tenant's gate only
 * through enter_tenant(), which calls tenancy.take_tenant_gate() (migration 0009, owned by the
 * owner, which keeps the lock function). The operators' roles keep them all.
 */
async function planAdvisoryLocks(client: Queryable): Promise<string[]> {
  const operators = await operatorRoles(client);
  const { rows } = await client.query(
    `SELECT p.oid::regprocedure::text AS fn,
            EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a WHERE a.grantee = 0) AS public_execute,
            ARRAY(SELECT w.name FROM unnest($1::text[]) AS w(name)
                   WHERE NOT EXISTS (
                     SELECT 1 FROM pg_roles r, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                      WHERE r.rolname = w.name AND a.grantee = r.oid AND a.privilege_type = 'EXECUTE')
                   ORDER BY w.name) AS missing,
            ARRAY(SELECT r.rolname::text FROM pg_roles r, aclexplode(p.proacl) a
                   WHERE r.rolname = ANY($2) AND a.grantee = r.oid AND a.privilege_type = 'EXECUTE'
                   ORDER BY 1) AS tenant_held
       FROM pg_proc p
      WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname ~ $3
      ORDER BY 1`,
    [operators, RLS_SUBJECT_ROLES, ADVISORY_LOCK_FUNCTION_NAMES],
  );
  const out: string[] = [];
  for (const r of rows as { fn: string; public_execute: boolean; missing: string[]; tenant_held: string[] }[]) {
    if (!/^pg_(try_)?advisory_[a-z_]+\((bigint|integer,integer)?\)$/.test(r.fn))
      throw new Error(`unexpected advisory lock function ${r.fn}`);
    if (r.public_execute) out.push(`REVOKE EXECUTE ON FUNCTION pg_catalog.${r.fn} FROM PUBLIC`);
    if (r.tenant_held.length) out.push(`REVOKE EXECUTE ON FUNCTION pg_catalog.${r.fn} FROM ${r.tenant_held.map(ident).join(", ")}`);
    if (r.missing.length) out.push(`GRANT EXECUTE ON FUNCTION pg_catalog.${r.fn} TO ${r.missing.map(ident).join(", ")}`);
  }
  return out;
}

/** Installs TimescaleDB when the server has it (needs a superuser); reports whether it is there. */
async function ensureTimescale(client: Queryable, dryRun: boolean): Promise<boolean> {
  const { rows } = await client.query(
    `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') AS installed,
            EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') AS available`,
  );
  if (rows[0].installed) return true;
  if (!rows[0].available || dryRun) return false;
  await client.query("CREATE EXTENSION IF NOT EXISTS timescaledb");
  return true;
}

/** Whether `migrate` has ever run on this database (its bookkeeping table exists). */
export async function hasBeenMigrated(client: Queryable): Promise<boolean> {
  const { rows } = await client.query(`SELECT to_regclass($1) IS NOT NULL AS present`, [`${REGISTRY_SCHEMA}.schema_migrations`]);
  return rows[0].present;
}

async function applyVersioned(client: Queryable, dryRun: boolean): Promise<{ version: string; name: string }[]> {
  if (!(await hasBeenMigrated(client))) {
    if (dryRun) return MIGRATIONS.map(({ version, name }) => ({ version, name }));
    await withTransaction(client, async (tx) => {
      await tx.query(`SET LOCAL ROLE ${ident(ROLES.owner)}`);
      await tx.query(`CREATE SCHEMA IF NOT EXISTS ${ident(REGISTRY_SCHEMA)} AUTHORIZATION ${ident(ROLES.owner)}`);
      await tx.query(
        `CREATE TABLE ${ident(REGISTRY_SCHEMA)}.schema_migrations (
           version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
      );
    });
  }
  const { rows } = await client.query(`SELECT version, checksum FROM ${ident(REGISTRY_SCHEMA)}.schema_migrations`);
  const applied = new Map<string, string>(rows.map((r: { version: string; checksum: string }) => [r.version, r.checksum]));
  for (const m of MIGRATIONS) {
    const checksum = applied.get(m.version);
    if (checksum !== undefined && checksum !== migrationChecksum(m)) throw new MigrationChecksumError(m.version);
  }
  const pending = MIGRATIONS.filter((m) => !applied.has(m.version));
  if (dryRun) return pending.map(({ version, name }) => ({ version, name }));
  for (const m of pending) {
    await withTransaction(client, async (tx) => {
      await tx.query(`SET LOCAL ROLE ${ident(ROLES.owner)}`);
      await tx.query(m.sql);
      await tx.query(`INSERT INTO ${ident(REGISTRY_SCHEMA)}.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`, [
        m.version,
        m.name,
        migrationChecksum(m),
      ]);
    });
  }
  return pending.map(({ version, name }) => ({ version, name }));
}

/**
 * Refuses to make an existing database strict while it has tenants and no active context key of its
 * region: no client could sign a proof, so every tenant request would fail from the switch on.
 * Install a key first (`tenancy context-key install`) and deploy the services with it (ADR-005).
 */
async function refuseKeylessSwitch(client: Queryable): Promise<void> {
  if (!(await hasBeenMigrated(client))) return; // created by this run: no tenants yet
  const mode = await recordedTenantContextMode(client); // undefined before 0012: no keys can exist yet
  if (mode === "verified") return;
  const rows = await withTransaction(client, async (tx) => {
    await tx.query(`SET LOCAL ROLE ${ident(ROLES.owner)}`);
    const keys =
      mode === undefined
        ? "0"
        : `(SELECT count(*)::int FROM tenancy_private.context_keys k, tenancy.database_settings s
             WHERE k.state = 'active' AND k.region = coalesce(s.region, k.region))`;
    return (await tx.query(`SELECT (SELECT count(*)::int FROM tenancy.tenants WHERE status = 'active') AS tenants, ${keys} AS keys`)).rows;
  });
  if (rows[0].tenants > 0 && rows[0].keys === 0)
    throw new TenantContextSwitchError(
      `this database has ${rows[0].tenants} active tenant(s) and no active context key: in strict mode every tenant request would fail. ` +
        `Install a key (tenancy context-key install), deploy the services with it, then switch`,
    );
}

/** This database's residency region, or undefined when none is recorded (or the registry does not exist yet). */
async function recordedRegion(client: Queryable): Promise<string | undefined> {
  const { rows: exists } = await client.query(`SELECT to_regclass($1) IS NOT NULL AS present`, [`${REGISTRY_SCHEMA}.database_settings`]);
  if (!exists[0].present) return undefined;
  const { rows } = await client.query(`SELECT region FROM ${ident(REGISTRY_SCHEMA)}.database_settings`);
  return (rows[0]?.region as string | null | undefined) ?? undefined;
}

async function recordRegion(client: Queryable, region: ResidencyRegion, dryRun: boolean): Promise<void> {
  if (dryRun) return; // checked up front; in a dry run the registry may not exist yet
  const current = await recordedRegion(client);
  if (current === region) return;
  if (current) throw new DatabaseRegionError(current, region);
  await withTransaction(client, async (tx) => {
    await tx.query(`SET LOCAL ROLE ${ident(ROLES.owner)}`);
    await tx.query(`UPDATE ${ident(REGISTRY_SCHEMA)}.database_settings SET region = $1`, [region]);
  });
}
