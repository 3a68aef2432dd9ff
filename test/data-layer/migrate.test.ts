/**
 * `migrate` on a real PostgreSQL: an empty database ends up fully usable, a second run changes
 * nothing, an edited migration is refused, concurrent runs serialise on the advisory lock, drift is
 * repaired, and a region conflict is refused before anything changes.
 */
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { auditDatabase } from "../../lib/audit/isolation-audit";
import { TENANT_TABLES } from "../../lib/schema/catalogue";
import { DatabaseRegionError, migrate, MigrationChecksumError } from "../../lib/schema/migrate";
import { MIGRATIONS } from "../../lib/schema/migrations";
import { ROLE_POSTURE, ROLES } from "../../lib/schema/roles";
import { lockSession, MIGRATE_LOCK } from "../../lib/db/locks";
import { createTenant } from "../../lib/tenant/registry";
import { startPostgres, THROWAWAY_SETTINGS } from "../../lib/local/postgres-server";
import { createTestDatabase, type TestDatabase } from "../support/postgres";
import { connect } from "../../lib/db/client";
import { mintTenantProof } from "../../lib/tenant-context/proof";
import { installTestContextKey } from "../support/context-key";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function emptyDatabase(): Promise<{ db: TestDatabase; client: pg.Client }> {
  const db = await createTestDatabase("migrate");
  const client = await connect(db.url);
  cleanups.push(async () => {
    await client.end().catch(() => {});
    await db.drop();
  });
  return { db, client };
}

async function session(url: string): Promise<pg.Client> {
  const c = await connect(url);
  cleanups.push(() => c.end().catch(() => {}));
  return c;
}

describe("migrate", () => {
  it("leaves an empty database fully usable: roles, registry, tenant tables with forced RLS, grants; the audit is clean", async () => {
    const { db, client } = await emptyDatabase();
    const report = await migrate(client, { region: "eu" });
    expect(report.unchanged).toBe(false);
    expect(report.versioned.map((m) => m.version)).toEqual(MIGRATIONS.map((m) => m.version));
    expect(report.catalogue.map((c) => c.schema)).toEqual(["shared"]);

    const { rows: roles } = await client.query(
      `SELECT rolname, rolcanlogin, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = ANY($1) ORDER BY rolname`,
      [Object.values(ROLES)],
    );
    expect(roles).toHaveLength(5);
    for (const [key, posture] of Object.entries(ROLE_POSTURE)) {
      const role = roles.find((r) => r.rolname === ROLES[key as keyof typeof ROLES])!;
      expect({ login: role.rolcanlogin, bypassRls: role.rolbypassrls, superuser: role.rolsuper }).toEqual({
        login: posture.login,
        bypassRls: posture.bypassRls,
        superuser: false,
      });
    }

    const { rows: tables } = await client.query(
      `SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner) AS owner
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'shared' AND c.relkind = 'r' ORDER BY 1`,
    );
    expect(tables.map((t) => t.relname)).toEqual(TENANT_TABLES.map((t) => t.name).sort());
    for (const t of tables) expect(t).toMatchObject({ relrowsecurity: true, relforcerowsecurity: true, owner: ROLES.owner });

    // A new database is strict (ADR-005): app_user works through a verified proof once a key is installed.
    const tenant = await createTenant(client, { slug: "first-tenant", tier: "starter", region: "eu" });
    const key = await installTestContextKey(client, { region: "eu" });
    const app = await session(db.urlAs(ROLES.app));
    await app.query("BEGIN");
    expect((await app.query("SELECT tenancy.enter_verified_tenant($1) AS schema", [mintTenantProof(key, tenant.id)])).rows[0].schema).toBe(
      "shared",
    );
    await app.query(`INSERT INTO trades (tenant_id, symbol, side, quantity, price) VALUES ($1, 'AAPL', 'buy', 1, 10)`, [tenant.id]);
    expect((await app.query("SELECT count(*)::int AS n FROM trades")).rows[0].n).toBe(1);
    await app.query("COMMIT");

    expect(await auditDatabase(client)).toEqual([]);
  });

  it("a second run is a no-op (and so is a dry run after it)", async () => {
    const { client } = await emptyDatabase();
    await migrate(client, { region: "eu" });
    const second = await migrate(client, { region: "eu" });
    expect(second).toMatchObject({ unchanged: true, roles: [], database: [], versioned: [], catalogue: [] });
    expect((await migrate(client, { dryRun: true })).unchanged).toBe(true);
  });

  it("a dry run on an empty database reports the work and changes nothing", async () => {
    const { client } = await emptyDatabase();
    const report = await migrate(client, { dryRun: true, region: "eu" });
    expect(report.unchanged).toBe(false);
    expect(report.versioned).toHaveLength(MIGRATIONS.length);
    expect(report.catalogue[0].statements[0]).toBe(`CREATE SCHEMA "shared" AUTHORIZATION "${ROLES.owner}"`);
    const { rows } = await client.query(`SELECT nspname FROM pg_namespace WHERE nspname IN ('tenancy', 'shared', 'market_data')`);
    expect(rows).toEqual([]);
  });

  it("a dry run on a new cluster (none of the roles exist yet) plans what the real run then does, and creates nothing", async () => {
    // The shared test cluster already has the roles (they are cluster-wide), so this needs its own.
    const cluster = await startPostgres({ settings: THROWAWAY_SETTINGS });
    const client = await connect(cluster.adminUrl);
    cleanups.push(async () => {
      await client.end().catch(() => {});
      await cluster.stop({ removeData: true, mode: "immediate" });
    });
    const roleCount = async () =>
      (await client.query(`SELECT count(*)::int AS n FROM pg_roles WHERE rolname = ANY($1)`, [Object.values(ROLES)])).rows[0].n;

    const plan = await migrate(client, { dryRun: true, region: "eu" });
    expect(await roleCount()).toBe(0);
    expect(plan.unchanged).toBe(false);
    for (const role of Object.values(ROLES)) expect(plan.roles.some((s) => s.startsWith(`CREATE ROLE "${role}"`))).toBe(true);
    expect(plan.database).toContain(`GRANT CONNECT ON DATABASE "postgres" TO "${ROLES.migrator}", "${ROLES.readonly}", "${ROLES.app}"`);

    const done = await migrate(client, { region: "eu" });
    expect(done.database).toEqual(plan.database);
    expect(done.versioned).toEqual(plan.versioned);
    expect(await roleCount()).toBe(Object.values(ROLES).length);
  });

  it("refuses to run when an applied migration was edited (its recorded checksum differs), and changes nothing", async () => {
    const { client } = await emptyDatabase();
    await migrate(client);
    // What editing migration 0001 in lib/schema/migrations.ts looks like to the database: the checksums no longer match.
    await client.query(`UPDATE tenancy.schema_migrations SET checksum = 'edited' WHERE version = '0001'`);
    await client.query(`ALTER TABLE shared.trades NO FORCE ROW LEVEL SECURITY`);
    await expect(migrate(client)).rejects.toThrow(MigrationChecksumError);
    await expect(migrate(client)).rejects.toThrow(/migration 0001 was edited/);
    // Refused before the catalogue step: the drift it would have repaired is still there.
    const { rows } = await client.query(`SELECT relforcerowsecurity FROM pg_class WHERE oid = 'shared.trades'::regclass`);
    expect(rows[0].relforcerowsecurity).toBe(false);
  });

  it("two concurrent runs both succeed: one waits on the advisory lock, then finds nothing to do", async () => {
    const { db, client: holder } = await emptyDatabase();
    const [first, second, watcher] = [await session(db.url), await session(db.url), await session(db.url)];
    // Hold the lock so both runs provably queue behind it, then let them go.
    const release = await lockSession(holder, MIGRATE_LOCK);
    const runs = Promise.all([migrate(first), migrate(second)]);
    const waiting = async () =>
      (
        await watcher.query(
          `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        )
      ).rows[0].n;
    for (let i = 0; i < 100 && (await waiting()) < 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await waiting()).toBe(2);
    await release();
    const reports = await runs;
    expect(reports.map((r) => r.unchanged).sort()).toEqual([false, true]);
    expect(await auditDatabase(watcher)).toEqual([]);
  });

  it("repairs drift in the catalogue's RLS: NO FORCE, a rewritten policy, extra grants", async () => {
    const { client } = await emptyDatabase();
    await migrate(client);
    await client.query(`ALTER TABLE shared.positions NO FORCE ROW LEVEL SECURITY`);
    await client.query(`ALTER POLICY tenant_isolation ON shared.trades USING (true) WITH CHECK (true)`);
    await client.query(`ALTER POLICY tenant_access ON shared.trades TO PUBLIC`);
    await client.query(`GRANT TRUNCATE ON shared.risk_metrics TO app_user`);
    expect((await auditDatabase(client)).map((f) => f.check).sort()).toEqual(
      ["grant-dangerous", "permissive-policy-roles", "rls-not-forced", "tenant-policy-predicate"].sort(),
    );
    const report = await migrate(client);
    expect(report.catalogue[0].statements).toEqual([
      `ALTER TABLE "shared"."positions" FORCE ROW LEVEL SECURITY`,
      `DROP POLICY "tenant_isolation" ON "shared"."trades"`,
      `DROP POLICY "tenant_access" ON "shared"."trades"`,
      expect.stringMatching(/^CREATE POLICY tenant_isolation ON "shared"."trades" AS RESTRICTIVE/),
      expect.stringMatching(/^CREATE POLICY tenant_access ON "shared"."trades" AS PERMISSIVE/),
      `REVOKE TRUNCATE ON "shared"."risk_metrics" FROM "app_user"`,
    ]);
    expect(await auditDatabase(client)).toEqual([]);
    expect((await migrate(client)).unchanged).toBe(true);
  });

  it("stays a no-op, and the audit clean, in a session whose search_path includes the registry schema", async () => {
    const { client } = await emptyDatabase();
    await migrate(client);
    // pg_get_expr prints names relative to the search_path: still the same policy.
    await client.query(`SET search_path = tenancy, public`);
    expect((await migrate(client)).unchanged).toBe(true);
    expect(await auditDatabase(client)).toEqual([]);
  });

  it("refuses another residency region before changing anything", async () => {
    const { client } = await emptyDatabase();
    await migrate(client, { region: "eu" });
    await client.query(`ALTER TABLE shared.trades NO FORCE ROW LEVEL SECURITY`);
    await expect(migrate(client, { region: "us" })).rejects.toThrow(DatabaseRegionError);
    const { rows } = await client.query(`SELECT relforcerowsecurity FROM pg_class WHERE oid = 'shared.trades'::regclass`);
    expect(rows[0].relforcerowsecurity).toBe(false);
    expect((await client.query(`SELECT region FROM tenancy.database_settings`)).rows[0].region).toBe("eu");
  });
});
