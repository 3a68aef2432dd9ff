/**
 * Shared pieces of the data-layer tests: migrated databases on the test cluster, connections as any
 * role, throwaway roles for negative controls, and the CLI run in-process.
 *
 * Roles are cluster-wide and test files run in parallel: never alter app_user's (or any of our
 * roles') attributes or memberships here. A negative control that needs "app_user, but a member of
 * the owner" creates a throwaway login role with that membership and attacks as it.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { connect } from "../../lib/db/client";
import { migrate } from "../../lib/schema/migrate";
import { seedTenant } from "../../lib/tenant/seed";
import { createTenant } from "../../lib/tenant/registry";
import type { Tenant } from "../../lib/tenant/model";
import { adminUrl, createTestDatabase, type TestDatabase } from "../support/postgres";

/** The SQLSTATE of whatever `fn` throws, or undefined when it does not throw. */
export async function sqlstate(fn: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await fn();
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code ?? "no-sqlstate";
  }
}

export interface MigratedDatabase {
  db: TestDatabase;
  /** Superuser session on the database. */
  admin: pg.Client;
  /** A new session as `role` (closed by `close()`). */
  connectAs(role: string): Promise<pg.Client>;
  /** Creates a LOGIN role for this database only (dropped by `close()`), e.g. `throwawayRole("BYPASSRLS")`. */
  throwawayRole(attributes?: string): Promise<string>;
  /** Drops a cluster-wide role created by the test (say a tenant's login role) after the database, in `close()`. */
  dropRoleOnClose(role: string): void;
  close(): Promise<void>;
}

export async function migratedDatabase(prefix = "dl"): Promise<MigratedDatabase> {
  const db = await createTestDatabase(prefix);
  const admin = await connect(db.url);
  await migrate(admin, { region: "eu", tenantContext: "setting" });
  const sessions: pg.Client[] = [];
  const roles: string[] = [];
  return {
    db,
    admin,
    async connectAs(role) {
      const client = await connect(db.urlAs(role));
      sessions.push(client);
      return client;
    },
    async throwawayRole(attributes = "") {
      const name = `throwaway_${randomBytes(5).toString("hex")}`;
      await admin.query(`CREATE ROLE ${name} LOGIN ${attributes}`);
      await admin.query(`GRANT CONNECT ON DATABASE ${pg.escapeIdentifier(db.name)} TO ${name}`);
      roles.push(name);
      return name;
    },
    dropRoleOnClose(role) {
      roles.push(role);
    },
    async close() {
      for (const s of sessions) await s.end().catch(() => {});
      await admin.end().catch(() => {});
      await db.drop();
      if (roles.length) {
        const cluster = await connect(adminUrl());
        try {
          for (const role of roles) await cluster.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(role)}`);
        } finally {
          await cluster.end();
        }
      }
    },
  };
}

/** TENANT_PREDICATE (lib/schema/planner.ts) as pg_get_expr prints it in pg_policies (PostgreSQL 15). */
export const DEPARSED_TENANT_PREDICATE = `(tenant_id = ( SELECT
        CASE
            WHEN (current_setting('app.current_tenant_id'::text, true) ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'::text) THEN (current_setting('app.current_tenant_id'::text, true))::uuid
            ELSE NULL::uuid
        END AS "case"))`;
/** The tenant predicate of migrations 0006–0008, a function call, as pg_get_expr prints it. */
export const DEPARSED_FUNCTION_PREDICATE = "(tenant_id = ( SELECT tenancy.current_tenant_id() AS current_tenant_id))";

/** What an attacker from tenant A aims at in tenant B, planted by the fixture. */
export const B_SECRET = { clientOrderId: "b-secret-order", price: "5.12345678" } as const;

export interface TwoTenants {
  a: Tenant;
  b: Tenant;
  /** A's trade without a position (so moving it elsewhere trips nothing but RLS). */
  aTradeId: string;
  bTradeId: string;
  bPositionId: string;
}

/** Two active tenants with seeded data, plus B's marker trade (unique price and client order id). */
export async function twoTenants(admin: pg.Client, trades = 30): Promise<TwoTenants> {
  const a = await createTenant(admin, { slug: "tenant-a", tier: "pro", region: "eu" });
  const b = await createTenant(admin, { slug: "tenant-b", tier: "pro", region: "eu" });
  await seedTenant(admin, a, { trades });
  await seedTenant(admin, b, { trades });
  const insertTrade = async (tenant: Tenant, extra: { position?: boolean; clientOrderId?: string; price?: string }) => {
    const { rows } = await admin.query(
      `INSERT INTO shared.trades (tenant_id, position_id, symbol, side, quantity, price, client_order_id)
       VALUES ($1, CASE WHEN $2 THEN (SELECT id FROM shared.positions WHERE tenant_id = $1 ORDER BY symbol LIMIT 1) END,
               'AAPL', 'buy', 1, $3, $4) RETURNING id, position_id`,
      [tenant.id, extra.position ?? false, extra.price ?? "100", extra.clientOrderId ?? null],
    );
    return rows[0] as { id: string; position_id: string };
  };
  const aTrade = await insertTrade(a, {});
  const bTrade = await insertTrade(b, { position: true, clientOrderId: B_SECRET.clientOrderId, price: B_SECRET.price });
  return { a, b, aTradeId: aTrade.id, bTradeId: bTrade.id, bPositionId: bTrade.position_id };
}

/** Binds a session to a tenant the way a careless client would: a session-level setting. */
export async function setTenant(client: pg.Client, tenantId: string | null): Promise<void> {
  await client.query(`SELECT set_config('app.current_tenant_id', $1, false)`, [tenantId ?? ""]);
}

/** Row count per tenant in a table, read as superuser (the ground truth). */
export async function countByTenant(admin: pg.Client, table: string, tenantId: string): Promise<number> {
  const { rows } = await admin.query(`SELECT count(*)::int AS n FROM ${table} WHERE tenant_id = $1`, [tenantId]);
  return rows[0].n;
}
