/**
 * Shared setup for the enterprise tests: a migrated database, clients as the superuser, the
 * migrator (what the CLI runs as) and app_user, tenants with seeded rows, and per-table checksums
 * of where a tenant's rows are.
 */
import pg from "pg";
import { connect } from "../../lib/db/client";
import { TENANT_TABLES } from "../../lib/schema/catalogue";
import { migrate } from "../../lib/schema/migrate";
import { ROLES } from "../../lib/schema/roles";
import { MEMORY_SETTING } from "../../lib/enterprise/schema-capacity";
import { SHARED_SCHEMA } from "../../lib/schema/planner";
import { seedTenant } from "../../lib/tenant/seed";
import { dedicatedSchemaName, type ResidencyRegion, type Tenant, type Tier } from "../../lib/tenant/model";
import { formatChecksum, tableChecksum } from "../../lib/enterprise/tenant-rows";
import { createTenant, requireTenant, tenantSchema, withRole } from "../../lib/tenant/registry";
import { waitFor } from "../../lib/local/processes";
import { createTestDatabase, type TestDatabase } from "../support/postgres";

export interface EnterpriseDb {
  db: TestDatabase;
  admin: pg.Client;
  connect(user?: string): Promise<pg.Client>;
  close(): Promise<void>;
}

/**
 * A fresh database, migrated for `region`. The test cluster is small (shared_buffers 128 MB, so the
 * derived cap is 8 dedicated schemas); the database records a 16 GiB machine, as the production
 * configuration does with schemaCapacitySettings(), unless `memoryMiB` says otherwise.
 */
export async function migratedDatabase(region: ResidencyRegion = "eu", url?: string, memoryMiB = 16_384): Promise<EnterpriseDb> {
  const db = url ? undefined : await createTestDatabase("ent");
  const target = url ?? db!.url;
  const setup = await connect(target);
  await setup.query(
    `ALTER DATABASE ${pg.escapeIdentifier(new URL(target).pathname.slice(1))} SET ${MEMORY_SETTING} = ${Number(memoryMiB)}`,
  );
  await setup.end();
  const admin = await connect(target);
  await migrate(admin, { region, tenantContext: "setting" });
  const clients: pg.Client[] = [admin];
  return {
    db: db!,
    admin,
    async connect(user) {
      const u = new URL(target);
      if (user) u.username = user;
      const c = await connect(u.toString());
      clients.push(c);
      return c;
    },
    async close() {
      for (const c of clients) await c.end().catch(() => {});
      await db?.drop();
    },
  };
}

export async function seededTenant(
  client: pg.Client,
  slug: string,
  trades = 200,
  tier: Tier = "enterprise",
  region: ResidencyRegion = "eu",
): Promise<Tenant> {
  const tenant = await createTenant(client, { slug, tier, region });
  await seedTenant(client, tenant, { trades });
  return tenant;
}

export type Checksums = Record<string, string>;

/** table → "rows:checksum" of the tenant's rows in one schema ("absent" when the schema does not exist). */
export async function checksums(client: pg.Client, tenantId: string, schema: string): Promise<Checksums> {
  const { rows } = await client.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [schema]);
  if (!rows.length) return Object.fromEntries(TENANT_TABLES.map((t) => [t.name, "absent"]));
  return withRole(client, ROLES.maintenance, async (tx) => {
    const out: Checksums = {};
    for (const table of TENANT_TABLES) {
      const c = await tableChecksum(tx, schema, table, tenantId);
      out[table.name] = `${c.rows}:${c.checksum}`;
    }
    return out;
  });
}

/** Checksums of a schema that holds no row of the tenant. */
export const EMPTY: Checksums = Object.fromEntries(TENANT_TABLES.map((t) => [t.name, `0:${formatChecksum(0, "0", "0")}`]));

/** Where the tenant's rows are: what the app sees (the placement's schema), the shared and the dedicated schema. */
export async function whereRowsAre(client: pg.Client, tenantId: string) {
  const tenant = await requireTenant(client, tenantId);
  return {
    placement: tenant.placement,
    routed: await checksums(client, tenantId, tenantSchema(tenant)),
    shared: await checksums(client, tenantId, SHARED_SCHEMA),
    dedicated: await checksums(client, tenantId, dedicatedSchemaName(tenantId)),
  };
}

/** Runs one tenant transaction as app_user the way services do: enter_tenant() first. */
export async function tenantTransaction<T>(
  app: pg.Client,
  tenantId: string,
  fn: (c: pg.Client) => Promise<T>,
  isolation = "READ COMMITTED",
): Promise<T> {
  await app.query(`BEGIN ISOLATION LEVEL ${isolation}`);
  try {
    await app.query(`SELECT tenancy.enter_tenant($1)`, [tenantId]);
    const result = await fn(app);
    await app.query("COMMIT");
    return result;
  } catch (err) {
    await app.query("ROLLBACK").catch(() => {});
    throw err;
  }
}

/** The server process id of a session, to find it in pg_locks. */
export async function backendPid(client: pg.Client): Promise<number> {
  return (await client.query(`SELECT pg_backend_pid() AS pid`)).rows[0].pid;
}

/**
 * Waits until session `pid` waits for a lock (one of its pg_locks rows is not granted), watched from
 * another session. How these tests know a transaction is being held, instead of sleeping and
 * asserting on the clock; the bound is only how long to look before failing.
 */
export async function waitUntilWaitingForLock(watcher: pg.Client, pid: number, what: string): Promise<void> {
  await waitFor(`${what} to wait for a lock`, async () => {
    const { rows } = await watcher.query(`SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = $1 AND NOT granted) AS waiting`, [pid]);
    return rows[0].waiting as boolean;
  });
}

export { ROLES };
