/**
 * Shared setup for the enterprise tests: a migrated database with its region's context key
 * installed (exports are signed with a key derived from it), clients as the superuser, the
 * migrator (what the CLI runs as) and app_user, tenants with seeded rows, and per-table checksums
 * of where a tenant's rows are.
 */
import { createHash } from "node:crypto";
import pg from "pg";
import { ContentChecksum } from "../../lib/enterprise/export-file";
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
import { installContextKey } from "../../lib/tenant-context/keys";
import { generateContextSecret, type ContextKey } from "../../lib/tenant-context/proof";
import { createTestDatabase, type TestDatabase } from "../support/postgres";

/** One context key per region, for every test database of that region (as a region's databases share its key). */
export const TEST_CONTEXT_KEYS: Record<ResidencyRegion, ContextKey> = {
  eu: { kid: "eu-test", region: "eu", secret: generateContextSecret() },
  us: { kid: "us-test", region: "us", secret: generateContextSecret() },
};

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
export async function migratedDatabase(
  region: ResidencyRegion = "eu",
  url?: string,
  memoryMiB = 16_384,
  /** The context key to install; false: none (exports then need allowUnsigned). */
  contextKey: ContextKey | false = TEST_CONTEXT_KEYS[region],
): Promise<EnterpriseDb> {
  const db = url ? undefined : await createTestDatabase("ent");
  const target = url ?? db!.url;
  const setup = await connect(target);
  await setup.query(
    `ALTER DATABASE ${pg.escapeIdentifier(new URL(target).pathname.slice(1))} SET ${MEMORY_SETTING} = ${Number(memoryMiB)}`,
  );
  await setup.end();
  const admin = await connect(target);
  await migrate(admin, { region, tenantContext: "setting" });
  if (contextKey) await installContextKey(admin, contextKey);
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

// --- forging export files (the attacks of test/enterprise/export-auth.test.ts and cli.test.ts) ------

const sha = (text: string) => createHash("sha256").update(text).digest("hex");

/**
 * A careful forger's rewrite: applies `edit` to the header and to each row, then recomputes every
 * checksum (each table's rows, sha256 and content checksum, the trailer's tables and sha256). The
 * MAC line, if any, is kept as it was (the forger has no key) unless `dropMac`.
 */
export function forgeExport(
  source: string[],
  edit: {
    header?: (h: Record<string, unknown>) => Record<string, unknown>;
    row?: (table: string, r: (string | null)[]) => (string | null)[];
  },
  dropMac = false,
): string {
  const out: string[] = [];
  let table = "";
  let text = "";
  let sum = new ContentChecksum();
  for (const line of source) {
    const v = JSON.parse(line);
    if (out.length === 0) {
      out.push(JSON.stringify(edit.header ? edit.header(v) : v));
    } else if (Array.isArray(v)) {
      const row = edit.row ? edit.row(table, v) : v;
      const l = JSON.stringify(row);
      text += l + "\n";
      sum.add(row);
      out.push(l);
    } else if (v.table) {
      table = v.table;
      text = "";
      sum = new ContentChecksum();
      out.push(line);
    } else if (v.end !== undefined) {
      out.push(JSON.stringify({ ...v, rows: sum.rows, sha256: sha(text), checksum: sum.value() }));
    } else if (v.trailer) {
      const ends = out.map((l) => JSON.parse(l)).filter((e) => e.end !== undefined);
      const tables = Object.fromEntries(ends.map((e) => [e.end, { rows: e.rows, checksum: e.checksum }]));
      out.push(JSON.stringify({ ...v, tables, sha256: sha(out.map((l) => l + "\n").join("")) }));
    } else if (v.mac !== undefined) {
      if (!dropMac) out.push(line);
    } else out.push(line);
  }
  return out.join("\n") + "\n";
}

/** The header made to claim `t`'s identity (the issue's attack changed the id; a careful one changes both). */
export const claimingTenant =
  (t: Pick<Tenant, "id" | "slug">, fields: ("id" | "slug")[] = ["id", "slug"]) =>
  (h: Record<string, unknown>) => {
    const tenant = { ...(h.tenant as Record<string, unknown>) };
    for (const f of fields) tenant[f] = t[f];
    return { ...h, tenant };
  };
/** Downgrade to an unsigned file: what a forger without the key must do for the file to parse at all. */
export const unsignedHeader = (h: Record<string, unknown>) => ({ ...h, signature: null });
