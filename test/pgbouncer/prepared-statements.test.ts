/**
 * `{ prepare: true }`: fn's statement as a named prepared statement of the connection, through a
 * real PgBouncer (session mode). One connection (max: 1) serves every tenant in turn, so the same
 * prepared statement — and, after five runs, PostgreSQL's cached generic plan — is reused across
 * tenants and across schemas (a dedicated tenant's search_path).
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { graduateTenant } from "../../lib/enterprise/graduation";
import { TenantContextError, TenantPool, tenantQuery, withTenant } from "../../lib/tenant-context/client";
import { requireTenant } from "../../lib/tenant/registry";
import type { Tenant } from "../../lib/tenant/model";
import { bouncerFor, tenantDatabase, type Bouncer, type TenantDatabase } from "./helpers";

let db: TenantDatabase;
let bouncer: Bouncer;
let admin: pg.Client;
let tenants: Tenant[];
const pools: TenantPool[] = [];
const newPool = (options: Partial<ConstructorParameters<typeof TenantPool>[0]> = {}) => {
  const pool = new TenantPool({ connectionString: bouncer.appUrl, max: 1, ...options });
  pools.push(pool);
  return pool;
};
const claims = (t: Tenant) => ({ tenantId: t.id, tier: t.tier });
const PER_TENANT = "SELECT tenant_id, count(*)::int AS n FROM trades GROUP BY tenant_id";
const preparedNames = (pool: TenantPool, t: Tenant) =>
  withTenant(pool, claims(t), async (tx) =>
    (await tx.query("SELECT name FROM pg_prepared_statements WHERE name LIKE 'tenancy_q_%' ORDER BY name")).rows.map((r) => r.name),
  );

beforeAll(async () => {
  db = await tenantDatabase({ tiers: ["starter", "pro", "enterprise"], trades: 20 });
  admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  await graduateTenant(admin, db.tenants[2].slug);
  tenants = [db.tenants[0], db.tenants[1], await requireTenant(admin, db.tenants[2].id)];
  bouncer = await bouncerFor(db);
});

afterAll(async () => {
  await Promise.all(pools.map((p) => p.end().catch(() => {})));
  await admin?.end();
  await bouncer?.stop({ removeDir: true });
  await db?.drop();
});

describe("prepared tenant statements", () => {
  it("are parsed once per connection and return every tenant its own rows, a dedicated tenant's from its schema", async () => {
    expect(tenants[2].placement).toBe("dedicated");
    const pool = newPool();
    // Eight rounds: past PostgreSQL's five custom plans, so the cached generic plan serves tenants too.
    for (let round = 0; round < 8; round++) {
      for (const t of tenants) {
        const { rows } = await tenantQuery(pool, claims(t), PER_TENANT, [], { prepare: true });
        expect(rows).toEqual([{ tenant_id: t.id, n: 20 }]);
        const inScope = await withTenant(pool, claims(t), (tx) => tx.query(PER_TENANT, [], { prepare: true }));
        expect(inScope.rows).toEqual([{ tenant_id: t.id, n: 20 }]);
      }
    }
    expect(await preparedNames(pool, tenants[0])).toHaveLength(1);
    expect(pool.stats().total).toBe(1);
  });

  it("stop at maxPreparedStatements per connection; later statements run unprepared, with the same results", async () => {
    const pool = newPool({ maxPreparedStatements: 2 });
    for (const limit of [1, 2, 3]) {
      const { rows } = await tenantQuery(pool, claims(tenants[0]), `SELECT tenant_id FROM trades ORDER BY id LIMIT ${limit}`, [], {
        prepare: true,
      });
      expect(rows).toHaveLength(limit);
      expect(rows.every((r) => r.tenant_id === tenants[0].id)).toBe(true);
    }
    expect(await preparedNames(pool, tenants[1])).toHaveLength(2);
    expect(() => new TenantPool({ connectionString: bouncer.appUrl, maxPreparedStatements: -1 })).toThrow(TenantContextError);
  });

  it("after a table change under a prepared SELECT *, tenantQuery re-sends it freshly parsed; no connection serves the stale plan", async () => {
    const pool = newPool({ max: 2 });
    const star = "SELECT * FROM trades ORDER BY id LIMIT 1";
    // Prepare it on both connections of the pool.
    await Promise.all([0, 1].map((i) => tenantQuery(pool, claims(tenants[i]), star, [], { prepare: true })));
    expect(pool.stats().total).toBe(2);
    await admin.query("ALTER TABLE shared.trades ADD COLUMN scratch_column int");
    try {
      for (const t of [tenants[0], tenants[1], tenants[0], tenants[1]]) {
        const { rows } = await tenantQuery(pool, claims(t), star, [], { prepare: true });
        expect(rows[0]).toMatchObject({ tenant_id: t.id, scratch_column: null });
      }
      // Inside a transaction there is no retry: the statement fails once, and the next use is fresh.
      await admin.query("ALTER TABLE shared.trades DROP COLUMN scratch_column");
      await expect(withTenant(pool, claims(tenants[0]), (tx) => tx.query(star, [], { prepare: true }))).rejects.toMatchObject({
        code: "0A000",
      });
      const { rows } = await withTenant(pool, claims(tenants[0]), (tx) => tx.query(star, [], { prepare: true }));
      expect(rows[0]).not.toHaveProperty("scratch_column");
    } finally {
      await admin.query("ALTER TABLE shared.trades DROP COLUMN IF EXISTS scratch_column");
    }
  });

  it("negative control: a plain prepared statement keeps failing on a connection that holds the stale plan", async () => {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const star = { name: "star", text: "SELECT * FROM shared.trades ORDER BY id LIMIT 1" };
      await client.query(star);
      await admin.query("ALTER TABLE shared.trades ADD COLUMN scratch_column int");
      await expect(client.query(star)).rejects.toMatchObject({ code: "0A000" });
      await expect(client.query(star)).rejects.toMatchObject({ code: "0A000" });
    } finally {
      await admin.query("ALTER TABLE shared.trades DROP COLUMN IF EXISTS scratch_column");
      await client.end();
    }
  });
});
