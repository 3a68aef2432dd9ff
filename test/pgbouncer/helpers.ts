/**
 * Fixtures for the PgBouncer tests: a migrated database with tenants and seeded rows on the test
 * cluster (or on a cluster of the test's own), and a real PgBouncer in front of it on a free
 * loopback port. PgBouncer authenticates with SCRAM against its own auth file; the test cluster
 * trusts loopback, so PgBouncer's own logins to PostgreSQL need no password here (auth.test.ts
 * proves SCRAM pass-through against a cluster that does require it).
 */
import pg from "pg";
import { connect, withConnection } from "../../lib/db/client";
import { startPgbouncer, type PgbouncerServer, type PgbouncerServerOptions } from "../../lib/local/pgbouncer-server";
import { migrate } from "../../lib/schema/migrate";
import { newScramSalt, scramSha256Verifier } from "../../lib/pgbouncer/auth";
import { ROLES } from "../../lib/schema/roles";
import { seedTenant } from "../../lib/tenant/seed";
import type { Tenant, Tier } from "../../lib/tenant/model";
import { createTenant } from "../../lib/tenant/registry";
import { createTestDatabase, withDatabase, type TestDatabase } from "../support/postgres";

export const APP_PASSWORD = "app-user-password-for-tests";
export const CONSOLE_USER = "pgb_admin";
export const CONSOLE_PASSWORD = "console-password-for-tests";

export const authUsers = () => [
  { name: ROLES.app, scramVerifier: scramSha256Verifier(APP_PASSWORD, { salt: newScramSalt() }) },
  { name: CONSOLE_USER, scramVerifier: scramSha256Verifier(CONSOLE_PASSWORD, { salt: newScramSalt() }) },
];

export interface TenantDatabase {
  name: string;
  /** Superuser URL, direct. */
  url: string;
  /** app_user, direct to PostgreSQL (trust on the test cluster). */
  directAppUrl: string;
  host: string;
  port: number;
  tenants: Tenant[];
  drop(): Promise<void>;
}

/** A migrated database with `tiers.length` tenants, each with `trades` seeded trades. */
export async function tenantDatabase(options: { tiers?: Tier[]; trades?: number; database?: TestDatabase } = {}): Promise<TenantDatabase> {
  const db = options.database ?? (await createTestDatabase("pgb"));
  const admin = await connect(db.url);
  try {
    await migrate(admin, { tenantContext: "setting" });
    const tenants: Tenant[] = [];
    for (const [i, tier] of (options.tiers ?? ["starter", "pro", "enterprise"]).entries()) {
      const tenant = await createTenant(admin, {
        slug: `tenant-${String.fromCharCode(97 + (i % 26))}${i >= 26 ? i : ""}`,
        tier,
        region: "eu",
      });
      await seedTenant(admin, tenant, { trades: options.trades ?? 20 }, 0.1 + i / 100);
      tenants.push(tenant);
    }
    const u = new URL(db.url);
    return {
      name: db.name,
      url: db.url,
      directAppUrl: withDatabase(db.url, db.name, ROLES.app),
      host: u.hostname,
      port: Number(u.port),
      tenants,
      drop: () => db.drop(),
    };
  } finally {
    await admin.end();
  }
}

export interface Bouncer extends PgbouncerServer {
  /** app_user through PgBouncer. */
  appUrl: string;
  /** The admin console (database "pgbouncer"). */
  consoleUrl: string;
  /** Runs a console command (simple protocol) and returns its rows. */
  console(command: string): Promise<Record<string, unknown>[]>;
}

export async function bouncerFor(
  db: Pick<TenantDatabase, "name" | "host" | "port">,
  options: Partial<PgbouncerServerOptions> = {},
): Promise<Bouncer> {
  const server = await startPgbouncer({
    databases: [{ name: db.name, host: db.host, port: db.port }],
    users: authUsers(),
    ...options,
    settings: { adminUsers: [CONSOLE_USER], logConnections: false, logDisconnections: false, ...options.settings },
  });
  const consoleUrl = server.urlFor("pgbouncer", CONSOLE_USER, CONSOLE_PASSWORD);
  return Object.assign(server, {
    appUrl: server.urlFor(db.name, ROLES.app, APP_PASSWORD),
    consoleUrl,
    async console(command: string) {
      return withConnection(consoleUrl, async (c) => (await c.query(command)).rows);
    },
  });
}

/** Rows whose tenant_id is not `tenantId` (every query in these tests checks every row). */
export function foreignRows(rows: { tenant_id?: string }[], tenantId: string): number {
  return rows.filter((r) => r.tenant_id !== tenantId).length;
}

/** A pg.Client subclass that remembers every connection a pool makes, so a test can look at the very connection a pool reuses. */
export function recordingClient(into: pg.Client[]): typeof pg.Client {
  return class RecordingClient extends pg.Client {
    constructor(config?: string | pg.ClientConfig) {
      super(config);
      into.push(this);
    }
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
