/**
 * Everything the dynamic providers of components/db do inside PostgreSQL, as named operations
 * `(client, args, ctx) => JSON`. This record is the ONLY code both transports run
 * (docs/adr/ADR-004-database-executor.md): a provider calls `callDatabase(connection, database,
 * "<name>", args)` (components/db/provider-runtime.ts), which runs the operation here on a direct
 * connection, or sends `{ operation, database, args }` to the executor Lambda, whose handler
 * (lib/executor/handler.ts) runs the same operation inside the VPC.
 *
 * Rules for an operation: its args are JSON and validated here (a strict zod object: an unknown or
 * mistyped field is refused naming it, before anything runs); its result is JSON (runOperation
 * round-trips it, so a Date is an ISO string on both transports); it is a thin call into lib/ (the
 * decisions stay in the library); and it is safe to run again after a failure half-way (the library
 * functions are idempotent or resumable). New provider checks are added here as operations.
 */
import { z } from "zod";
import type { Queryable } from "../db/client";
import { ident, qualified } from "../db/sql";
import { ensureTenantLoginRole, tenantIdOfSchema, tenantLoginRoleExists } from "../enterprise/dedicated";
import { failpointFromEnv, graduateTenant } from "../enterprise/graduation";
import type { TenantTable } from "../schema/catalogue";
import { migrate } from "../schema/migrate";
import { REGISTRY_SCHEMA } from "../schema/planner";
import { ROLES } from "../schema/roles";
import { installContextKey, retireContextKey } from "../tenant-context/keys";
import { pgbouncerAuthFile, readPgbouncerVerifiers } from "../pgbouncer/verifiers";
import { ResidencyRegion, TenantDisplayName, TenantId, TenantSlug, Tier } from "../tenant/model";
import type { ExportSink } from "../tenant/export-sink";
import { offboardOnPurpose } from "../tenant/offboarding";
import { createTenant, findTenant, RETENTION_DAYS_RANGE, renameTenant, setTenantTier, TenantNotFoundError } from "../tenant/registry";
import {
  currentDatabaseOid,
  databaseDropProblem,
  databaseRecreationProblem,
  demoteForStack,
  dropLoginRoleForStack,
  releaseTenantFromStack,
} from "../tenant/stack-guards";

/** What an operation may use besides its client (a connection to `database` as the admin role). */
export interface OperationContext {
  /** The database the operation was called for (the client's). */
  database: string;
  /** Runs `fn` on a connection to another database of the same server, as the same role; always closes it. */
  withDatabase<T>(database: string, fn: (client: Queryable) => Promise<T>): Promise<T>;
  /**
   * Where this transport keeps offboarding exports: the executor's is the region's backup bucket
   * (lib/tenant/s3-export-sink.ts, opened on first use). Undefined: none (`offboardTenant` then
   * exports nothing unless told to skip the export, and refuses).
   */
  exportSink?: () => Promise<ExportSink>;
}

/** Bad args or an unknown operation: refused before anything runs. */
export class OperationInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OperationInputError";
  }
}

function parse<S extends z.ZodType>(operation: string, schema: S, args: unknown): z.output<S> {
  const result = schema.safeParse(args ?? {});
  if (result.success) return result.data;
  const issues = result.error.issues.map(
    (i) => `args${i.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("")}: ${i.message}`,
  );
  throw new OperationInputError(`operation "${operation}": ${issues.join("; ")}`);
}

const DatabaseName = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, { message: "must be a lower-case SQL identifier" });
const TenantRef = z.string().min(1, { message: "must not be empty" });
const LoginRoleName = z.string().regex(/^tenant_[0-9a-f]{32}_login$/, { message: "must be a tenant login role (tenant_<32 hex>_login)" });
/** The catalogue travels as JSON; migrate validates every identifier it renders (lib/db/sql.ts ident). */
const Catalogue = z.array(z.looseObject({ name: z.string(), columns: z.array(z.looseObject({ name: z.string() })) }));

const MigrateArgs = z.strictObject({
  catalogue: Catalogue.optional(),
  region: ResidencyRegion.optional(),
  passwords: z.partialRecord(z.enum(Object.keys(ROLES) as [keyof typeof ROLES, ...(keyof typeof ROLES)[]]), z.string().min(1)).optional(),
  dryRun: z.boolean().optional(),
  tenantContext: z.enum(["setting", "verified"]).optional(),
});
const NameArgs = z.strictObject({ name: DatabaseName });
const NoArgs = z.strictObject({});
const CreateTenantArgs = z.strictObject({
  slug: TenantSlug,
  tier: Tier,
  region: ResidencyRegion,
  displayName: TenantDisplayName.optional(),
});
const RefArgs = z.strictObject({ ref: TenantRef });
const Oid = z.number().int().positive();
/** `databaseOid`: the oid the resource recorded; a different current oid means its database was recreated. */
const RecordedOidArgs = z.strictObject({ databaseOid: Oid.optional() });
const ReleaseArgs = z.strictObject({ ref: TenantRef, databaseOid: Oid.optional() });
const RecreationArgs = z.strictObject({ recordedOid: Oid, newOid: Oid });
const UpdateTenantArgs = z.strictObject({ id: TenantId, slug: TenantSlug, tier: Tier });
const RenameArgs = z.strictObject({ ref: TenantRef, slug: TenantSlug });
const TierArgs = z.strictObject({ ref: TenantRef, tier: Tier });
const SlugsArgs = z.strictObject({ slugs: z.array(TenantSlug) });
const LoginRoleArgs = z.strictObject({ id: TenantId, tier: Tier, password: z.string().min(16).optional() });
const TenantIdArgs = z.strictObject({ id: TenantId });
const RoleArgs = z.strictObject({ role: LoginRoleName });
const ContextKeyArgs = z.strictObject({ kid: z.string(), region: ResidencyRegion, secret: z.string() });
const KidArgs = z.strictObject({ kid: z.string() });
/** A `tenancy` command line, without the program name: `["tenant", "graduate", "acme-capital"]`. */
const TenancyArgs = z.strictObject({ argv: z.array(z.string().max(4096)).min(1, { message: "must name a tenancy command" }).max(64) });

async function appliedVersions(client: Queryable): Promise<string[]> {
  const table = qualified(REGISTRY_SCHEMA, "schema_migrations");
  const { rows } = await client.query(`SELECT to_regclass($1) IS NOT NULL AS present`, [table]);
  if (!rows[0]?.present) return [];
  return (await client.query<{ version: string }>(`SELECT version FROM ${table} ORDER BY version`)).rows.map((r) => r.version);
}

async function databaseOid(client: Queryable, name: string): Promise<number | null> {
  const { rows } = await client.query("SELECT oid FROM pg_database WHERE datname = $1", [name]);
  return rows.length ? Number(rows[0].oid) : null;
}

function isMissingDatabase(err: unknown): boolean {
  return (err as { code?: string } | undefined)?.code === "3D000";
}

// ---- offboarding on AWS (issue 20): kept apart from the provider operations below ----------------

const OffboardArgs = z.strictObject({
  ref: TenantRef,
  retentionDays: z.number().int().min(RETENTION_DAYS_RANGE.min).max(RETENTION_DAYS_RANGE.max).optional(),
  dryRun: z.boolean().optional(),
  /** An explicit `--skip-export`: offboard with no export at all. */
  skipExport: z.boolean().optional(),
  /** The clock of the export's file name (ISO 8601). @default now */
  at: z.iso.datetime().optional(),
});

const offboardingOperations = {
  /**
   * Offboards a tenant on purpose inside the region (lib/tenant/offboarding.ts offboardOnPurpose, the
   * path `tenancy tenant delete` takes locally): suspended, its verified export kept where the
   * transport keeps exports (the executor: `s3://<backup bucket>/tenant-exports/<tenant id>/<file>`,
   * SSE-KMS, read back and checked), then `offboarded` with a purge date and the export's URI in the
   * registry. A failed export restores the status and offboards nothing. `dryRun` returns the steps.
   * Nothing is deleted; the purge stays its own command after the date.
   */
  async offboardTenant(client: Queryable, args: z.input<typeof OffboardArgs>, ctx: OperationContext) {
    const a = parse("offboardTenant", OffboardArgs, args);
    let exportTo: ExportSink | null = null;
    if (!a.skipExport) {
      if (!ctx.exportSink) {
        throw new OperationInputError(
          `operation "offboardTenant": this transport has no place to keep the export (the executor's EXECUTOR_EXPORT_BUCKET is not set); ` +
            `nothing was changed. args.skipExport: true offboards without an export`,
        );
      }
      exportTo = await ctx.exportSink();
    }
    const done = await offboardOnPurpose(client, a.ref, {
      exportTo,
      retentionDays: a.retentionDays,
      dryRun: a.dryRun,
      now: a.at === undefined ? undefined : new Date(a.at),
    });
    return { ...done, purgeAfter: done.dryRun ? null : (done.tenant.purgeAfter ?? null) };
  },
};

export const executorOperations = {
  ...offboardingOperations,
  // --- the operator's long work inside the VPC (`npm run ops`, cli/ops.ts) ------------------------

  /**
   * Runs one `tenancy` command (the local CLI's code, cli/tenancy.ts) on this operation's session,
   * in --json mode, under the executor's policy (cli/executor-policy.ts: commands that need the
   * operator's files, Redis or an environment secret are refused with exit 2 naming the argument).
   * Returns `{ exitCode, output, text?, progress }` (cli/remote-tenancy.ts TenancyRun): a command
   * that fails is a result with its exit code, not a thrown error. Destructive commands keep their
   * own guards (a purge before its date is refused by the library). Loaded on first use, so the
   * providers' operations do not load the CLI.
   */
  async tenancy(client: Queryable, args: z.input<typeof TenancyArgs>, ctx: OperationContext) {
    const { argv } = parse("tenancy", TenancyArgs, args);
    const session = client as Partial<import("pg").Client>;
    if (typeof session.on !== "function" || typeof session.removeListener !== "function") {
      throw new OperationInputError('operation "tenancy" needs a node-postgres session (pg.Client), not a pool');
    }
    const { runTenancyOnSession } = await import("../../cli/remote-tenancy.js");
    return runTenancyOnSession(argv, {
      client: client as import("pg").Client,
      description: `database ${ctx.database}`,
      exportSink: ctx.exportSink,
    });
  },

  /**
   * PgBouncer's auth file from the verifiers the server holds (lib/pgbouncer/verifiers.ts) and its
   * revision. Call on "postgres". Secret: the caller stores it as a secret (Secrets Manager on AWS).
   */
  async pgbouncerAuthFile(client: Queryable, args: z.input<typeof NoArgs>) {
    parse("pgbouncerAuthFile", NoArgs, args);
    return pgbouncerAuthFile(await readPgbouncerVerifiers(client));
  },

  /** The design (roles, migrations, catalogue, RLS) in the called database; `dryRun` is drift detection. */
  async migrate(client: Queryable, args: Omit<z.input<typeof MigrateArgs>, "catalogue"> & { catalogue?: readonly TenantTable[] }) {
    const a = parse("migrate", MigrateArgs, args);
    const report = await migrate(client, {
      tables: a.catalogue as readonly TenantTable[] | undefined,
      region: a.region,
      passwords: a.passwords,
      dryRun: a.dryRun,
      tenantContext: a.tenantContext,
    });
    return {
      unchanged: report.unchanged,
      fingerprint: report.fingerprint,
      tenantContext: report.tenantContext.mode,
      roles: { ...ROLES } as Record<string, string>,
      versions: await appliedVersions(client),
    };
  },

  /** CREATE DATABASE; refuses one that exists (a stack only drops what it made). Call on "postgres". */
  async createDatabase(client: Queryable, args: z.input<typeof NameArgs>, ctx: OperationContext) {
    const { name } = parse("createDatabase", NameArgs, args);
    if ((await databaseOid(client, name)) !== null) {
      throw new Error(
        `database "${name}" already exists on the server of "${ctx.database}"; ` +
          "this stack only manages databases it created: drop it (or reset the local stack) and run again",
      );
    }
    await client.query(`CREATE DATABASE ${ident(name)}`);
    return { oid: (await databaseOid(client, name)) as number };
  },

  /** The database's oid, or null when it is gone (a wiped cluster). Call on "postgres". */
  async readDatabase(client: Queryable, args: z.input<typeof NameArgs>) {
    const { name } = parse("readDatabase", NameArgs, args);
    return { oid: await databaseOid(client, name) };
  },

  /**
   * Drops a database no tenant is registered in (refused otherwise, docs/data-safety.md), then the
   * design's cluster-wide roles that no remaining database depends on. Call on "postgres".
   */
  async dropDatabase(client: Queryable, args: z.input<typeof NameArgs>, ctx: OperationContext) {
    const { name } = parse("dropDatabase", NameArgs, args);
    let problem: string | undefined;
    try {
      problem = await ctx.withDatabase(name, (db) => databaseDropProblem(db, name));
    } catch (err) {
      if (!isMissingDatabase(err)) throw err; // gone already: only the roles are left to drop
    }
    if (problem) throw new Error(problem);
    await client.query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`);
    const { rows } = await client.query<{ rolname: string }>(
      `SELECT r.rolname FROM pg_roles r
        WHERE r.rolname = ANY($1)
          AND NOT EXISTS (SELECT 1 FROM pg_shdepend d WHERE d.refclassid = 'pg_authid'::regclass AND d.refobjid = r.oid)`,
      [Object.values(ROLES)],
    );
    for (const { rolname } of rows) await client.query(`DROP ROLE IF EXISTS ${ident(rolname)}`);
    return { rolesDropped: rows.map((r) => r.rolname) };
  },

  /**
   * Why the called database may not be dropped, or its design let go of (tenants registered), or
   * null. With `databaseOid`: null when the called database is not that one any more (recreated).
   */
  async databaseDropProblem(client: Queryable, args: z.input<typeof RecordedOidArgs>, ctx: OperationContext) {
    const { databaseOid } = parse("databaseDropProblem", RecordedOidArgs, args);
    return { problem: (await databaseDropProblem(client, ctx.database, { databaseOid })) ?? null };
  },

  /** The called database's oid (pg_database.oid): what resources inside it record as `databaseOid`. */
  async currentDatabaseOid(client: Queryable, args: z.input<typeof NoArgs>) {
    parse("currentDatabaseOid", NoArgs, args);
    return { oid: await currentDatabaseOid(client) };
  },

  /**
   * A resource's `databaseOid` input changed: null when the called database's oid now is `newOid`
   * (it was recreated: replacing is right), else why not (docs/data-safety.md). Providers' `check`.
   */
  async databaseRecreationProblem(client: Queryable, args: z.input<typeof RecreationArgs>, ctx: OperationContext) {
    const a = parse("databaseRecreationProblem", RecreationArgs, args);
    return { problem: (await databaseRecreationProblem(client, { database: ctx.database, ...a })) ?? null };
  },

  async createTenant(client: Queryable, args: z.input<typeof CreateTenantArgs>) {
    return createTenant(client, parse("createTenant", CreateTenantArgs, args));
  },

  /** The tenant by id or slug, or null. */
  async findTenant(client: Queryable, args: z.input<typeof RefArgs>) {
    return (await findTenant(client, parse("findTenant", RefArgs, args).ref)) ?? null;
  },

  /** Brings a registered tenant to `slug` and `tier` (a rename in place, a tier change), in one call. */
  async updateTenant(client: Queryable, args: z.input<typeof UpdateTenantArgs>) {
    const a = parse("updateTenant", UpdateTenantArgs, args);
    let current = await findTenant(client, a.id);
    if (!current) throw new TenantNotFoundError(a.id);
    if (current.slug !== a.slug) current = await renameTenant(client, a.id, a.slug);
    if (current.tier !== a.tier) current = await setTenantTier(client, a.id, a.tier);
    return current;
  },

  async renameTenant(client: Queryable, args: z.input<typeof RenameArgs>) {
    const a = parse("renameTenant", RenameArgs, args);
    return renameTenant(client, a.ref, a.slug);
  },

  async setTenantTier(client: Queryable, args: z.input<typeof TierArgs>) {
    const a = parse("setTenantTier", TierArgs, args);
    return setTenantTier(client, a.ref, a.tier);
  },

  /** Of `slugs`, the tenants still registered and not offboarded (TenantRoster's preview guard). */
  async servedTenants(client: Queryable, args: z.input<typeof SlugsArgs>) {
    const { slugs } = parse("servedTenants", SlugsArgs, args);
    const served: { slug: string; status: string }[] = [];
    for (const slug of slugs) {
      const tenant = await findTenant(client, slug);
      if (tenant && tenant.status !== "offboarded") served.push({ slug, status: tenant.status });
    }
    return served;
  },

  /** A tenant leaves a stack: released when offboarded, gone or its database recreated (`databaseOid`); else refused. */
  async releaseTenantFromStack(client: Queryable, args: z.input<typeof ReleaseArgs>) {
    const a = parse("releaseTenantFromStack", ReleaseArgs, args);
    return releaseTenantFromStack(client, a.ref, { databaseOid: a.databaseOid });
  },

  /** Shared → dedicated schema; resumes an interrupted move. TENANCY_FAILPOINT (crash tests) as in the CLI. */
  async graduateTenant(client: Queryable, args: z.input<typeof RefArgs>) {
    return graduateTenant(client, parse("graduateTenant", RefArgs, args).ref, { failpoint: failpointFromEnv() });
  },

  async demoteForStack(client: Queryable, args: z.input<typeof RefArgs>) {
    return demoteForStack(client, parse("demoteForStack", RefArgs, args).ref);
  },

  /** Creates or updates a dedicated tenant's login role (the password only when given: create). */
  async ensureTenantLoginRole(client: Queryable, args: z.input<typeof LoginRoleArgs>) {
    const a = parse("ensureTenantLoginRole", LoginRoleArgs, args);
    const { role } = await ensureTenantLoginRole(client, { id: a.id, tier: a.tier, placement: "dedicated" }, { password: a.password });
    return { role };
  },

  async tenantLoginRoleExists(client: Queryable, args: z.input<typeof TenantIdArgs>) {
    return { exists: await tenantLoginRoleExists(client, parse("tenantLoginRoleExists", TenantIdArgs, args)) };
  },

  async dropLoginRoleForStack(client: Queryable, args: z.input<typeof TenantIdArgs>) {
    return dropLoginRoleForStack(client, parse("dropLoginRoleForStack", TenantIdArgs, args));
  },

  /**
   * A tenant login role whose database is gone (roles are cluster-wide). Only `tenant_<hex>_login`
   * names are accepted: this never drops another role. Call on "postgres".
   */
  async dropOrphanLoginRole(client: Queryable, args: z.input<typeof RoleArgs>) {
    const { role } = parse("dropOrphanLoginRole", RoleArgs, args);
    tenantIdOfSchema(role);
    await client.query(`DROP ROLE IF EXISTS ${ident(role)}`);
    return { dropped: role };
  },
  /** A tenant-context key (ADR-005): only its HMAC pads are stored; the secret is never returned. */
  async installContextKey(client: Queryable, args: z.input<typeof ContextKeyArgs>) {
    return installContextKey(client, parse("installContextKey", ContextKeyArgs, args));
  },
  /** Refused while it is the region's last active key and tenants are active (lib/tenant-context/keys.ts). */
  async retireContextKey(client: Queryable, args: z.input<typeof KidArgs>) {
    return { retired: await retireContextKey(client, parse("retireContextKey", KidArgs, args).kid) };
  },
};

export type OperationName = keyof typeof executorOperations;

export const OPERATION_NAMES = Object.keys(executorOperations) as OperationName[];

/** A value as it comes back from JSON (what both transports return). */
export type Jsonified<T> = T extends Date
  ? string
  : T extends (infer U)[]
    ? Jsonified<U>[]
    : T extends object
      ? { [K in keyof T]: Jsonified<T[K]> }
      : T;

export type OperationArgs<N extends OperationName> = Parameters<(typeof executorOperations)[N]>[1];
export type OperationResult<N extends OperationName> = Jsonified<Awaited<ReturnType<(typeof executorOperations)[N]>>>;

export function isOperationName(name: unknown): name is OperationName {
  return typeof name === "string" && Object.prototype.hasOwnProperty.call(executorOperations, name);
}

/**
 * Runs one operation by name and returns its result as JSON would carry it: what `callDatabase`
 * (direct) and the executor's handler both call. An unknown name is refused naming the known ones.
 */
export async function runOperation(name: string, client: Queryable, args: unknown, ctx: OperationContext): Promise<unknown> {
  if (!isOperationName(name)) {
    throw new OperationInputError(`unknown operation "${String(name)}": one of ${OPERATION_NAMES.join(", ")}`);
  }
  const operations = executorOperations as unknown as Record<
    string,
    (client: Queryable, args: unknown, ctx: OperationContext) => Promise<unknown>
  >;
  const result = await operations[name](client, args, ctx);
  return result === undefined ? null : JSON.parse(JSON.stringify(result));
}
