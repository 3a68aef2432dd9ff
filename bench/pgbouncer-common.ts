/**
 * Shared setup of the PgBouncer/tenant-context benchmarks: a PostgreSQL of their own with a
 * migrated database, tenants with seeded rows, and a PgBouncer in front of it, all on loopback and
 * torn down afterwards, and the parsing of their integer flags (statistics: bench/stats.ts).
 */
import pg from "pg";
import { UsageError } from "../cli/output";
import { startPgbouncer, type PgbouncerServer } from "../lib/local/pgbouncer-server";
import { startPostgres, THROWAWAY_SETTINGS, type PostgresServer } from "../lib/local/postgres-server";
import { migrate } from "../lib/schema/migrate";
import { newScramSalt, scramSha256Verifier } from "../lib/pgbouncer/auth";
import { ROLES } from "../lib/schema/roles";
import { seedTenant } from "../lib/tenant/seed";
import { TIERS, type Tenant } from "../lib/tenant/model";
import { createTenant } from "../lib/tenant/registry";
import { installContextKey } from "../lib/tenant-context/keys";
import { generateContextSecret, type ContextKey } from "../lib/tenant-context/proof";

export const BENCH_PASSWORD = "bench-password-not-secret";
export const DATABASE = "bench";
/** The strict copy (ADR-005): made from DATABASE as its template, so its tables are physically identical. */
export const STRICT_DATABASE = "bench_strict";

export interface BenchStack {
  postgres: PostgresServer;
  bouncer: PgbouncerServer;
  tenants: Tenant[];
  /** app_user, direct to PostgreSQL (trust on loopback). */
  directAppUrl: string;
  /** app_user through PgBouncer. */
  bouncerAppUrl: string;
  /** Superuser (no RLS), direct and through PgBouncer: the floor's connections. */
  directFloorUrl: string;
  bouncerFloorUrl: string;
  /** With `strict`: the same data in a database whose policies trust only a verified context, and its key. */
  strict?: { directAppUrl: string; bouncerAppUrl: string; contextKey: ContextKey };
  stop(): Promise<void>;
}

/** Tenants get skewed sizes (a few large, many small), as production would. */
export function tradesFor(i: number, base: number): number {
  return i % 10 === 0 ? base * 5 : i % 3 === 0 ? base * 2 : base;
}

export async function startBenchStack(options: {
  tenants: number;
  trades: number;
  log?: (m: string) => void;
  /** Also make the strict copy (STRICT_DATABASE). @default false */
  strict?: boolean;
}): Promise<BenchStack> {
  const log = options.log ?? (() => {});
  const postgres = await startPostgres({ settings: { ...THROWAWAY_SETTINGS, max_connections: 300 } });
  try {
    const admin = new pg.Client({ connectionString: postgres.adminUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${DATABASE}`);
    await admin.end();
    const db = new pg.Client({ connectionString: postgres.urlFor(DATABASE) });
    await db.connect();
    const tenants: Tenant[] = [];
    try {
      await migrate(db, { tenantContext: "setting" });
      const posture = await db.query(`SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1`, [ROLES.app]);
      if (posture.rows[0].rolsuper || posture.rows[0].rolbypassrls) throw new Error(`${ROLES.app} must be subject to RLS`);
      for (let i = 0; i < options.tenants; i++) {
        const tenant = await createTenant(db, { slug: `bench-${String(i).padStart(3, "0")}`, tier: TIERS[i % TIERS.length], region: "eu" });
        await seedTenant(db, tenant, { trades: tradesFor(i, options.trades) }, 0.5 / (i + 1));
        tenants.push(tenant);
      }
      await db.query("ANALYZE");
      log(`seeded ${tenants.length} tenants`);
    } finally {
      await db.end();
    }
    const contextKey: ContextKey = { kid: "bench", region: "eu", secret: generateContextSecret() };
    if (options.strict) await makeStrictCopy(postgres, contextKey);
    const bouncer = await startPgbouncer({
      databases: [
        { name: DATABASE, host: "127.0.0.1", port: postgres.port },
        ...(options.strict ? [{ name: STRICT_DATABASE, host: "127.0.0.1", port: postgres.port }] : []),
      ],
      users: [
        { name: ROLES.app, scramVerifier: scramSha256Verifier(BENCH_PASSWORD, { salt: newScramSalt() }) },
        { name: "postgres", scramVerifier: scramSha256Verifier(BENCH_PASSWORD, { salt: newScramSalt() }) },
      ],
      settings: { logConnections: false, logDisconnections: false },
    });
    return {
      postgres,
      bouncer,
      tenants,
      directAppUrl: `postgres://${ROLES.app}@127.0.0.1:${postgres.port}/${DATABASE}`,
      bouncerAppUrl: bouncer.urlFor(DATABASE, ROLES.app, BENCH_PASSWORD),
      directFloorUrl: postgres.urlFor(DATABASE),
      bouncerFloorUrl: bouncer.urlFor(DATABASE, "postgres", BENCH_PASSWORD),
      strict: options.strict
        ? {
            directAppUrl: `postgres://${ROLES.app}@127.0.0.1:${postgres.port}/${STRICT_DATABASE}`,
            bouncerAppUrl: bouncer.urlFor(STRICT_DATABASE, ROLES.app, BENCH_PASSWORD),
            contextKey,
          }
        : undefined,
      async stop() {
        await bouncer.stop({ removeDir: true });
        await postgres.stop({ removeData: true, mode: "immediate" });
      },
    };
  } catch (err) {
    await postgres.stop({ removeData: true, mode: "immediate" });
    throw err;
  }
}

/**
 * STRICT_DATABASE: a copy of DATABASE (CREATE DATABASE … TEMPLATE: the same files, so the same
 * physical order and statistics), with a context key installed and switched to the verified context
 * by migrate, which re-creates the policies and leaves the rows alone.
 */
async function makeStrictCopy(postgres: PostgresServer, key: ContextKey): Promise<void> {
  const admin = new pg.Client({ connectionString: postgres.adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${STRICT_DATABASE} TEMPLATE ${DATABASE}`);
  } finally {
    await admin.end();
  }
  const db = new pg.Client({ connectionString: postgres.urlFor(STRICT_DATABASE) });
  await db.connect();
  try {
    await installContextKey(db, key);
    await migrate(db, { tenantContext: "verified", region: key.region });
    const { rows } = await db.query(`SELECT tenant_context FROM tenancy.database_settings`);
    if (rows[0]?.tenant_context !== "verified") throw new Error(`${STRICT_DATABASE} is not strict (${rows[0]?.tenant_context})`);
  } finally {
    await db.end();
  }
}

/** A positive integer flag (`--reps 3`), or `fallback` when it was not given. */
export function positiveIntFlag(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new UsageError("must be a positive integer", `--${flag}`);
  return Number(value);
}
