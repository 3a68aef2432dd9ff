/**
 * Migration 0007 on a database that still has the old trades index (tenant_id, position_id), in the
 * shared schema and in a dedicated tenant schema: it is replaced by (tenant_id, position_id,
 * executed_at), the catalogue step then has nothing left to do, and a second migrate is a no-op.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../../lib/schema/migrate";
import { ROLES } from "../../lib/schema/roles";
import { createTestDatabase, type TestDatabase } from "../support/postgres";

const DEDICATED = "tenant_0123456789abcdef0123456789abcdef";
const both = (index: string) => [`shared.${index}`, `${DEDICATED}.${index}`];

describe("migration 0007: the trades index for a position's trades in a window", () => {
  let db: TestDatabase;
  let admin: pg.Client;

  beforeAll(async () => {
    db = await createTestDatabase("m0007");
    admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await migrate(admin);
    await admin.query(`CREATE SCHEMA ${DEDICATED} AUTHORIZATION ${ROLES.owner}`);
    await migrate(admin);
  });

  afterAll(async () => {
    await admin?.end();
    await db?.drop();
  });

  const indexes = async () =>
    (
      await admin.query(
        `SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind = 'i' AND c.relname LIKE 'trades_tenant_position_id%' ORDER BY n.nspname <> 'shared', 1`,
      )
    ).rows.map((r: { name: string }) => r.name);

  it("replaces the old index in every tenant schema, then migrate changes nothing", async () => {
    expect(await indexes()).toEqual(both("trades_tenant_position_id_executed_at_idx"));
    // Back to the state before 0007.
    for (const s of ["shared", DEDICATED]) {
      await admin.query(`DROP INDEX ${s}.trades_tenant_position_id_executed_at_idx`);
      await admin.query(`CREATE INDEX trades_tenant_position_id_idx ON ${s}.trades (tenant_id, position_id)`);
    }
    await admin.query(`DELETE FROM tenancy.schema_migrations WHERE version = '0007'`);
    expect(await indexes()).toEqual(both("trades_tenant_position_id_idx"));

    const report = await migrate(admin);
    expect(report.versioned.map((v) => v.version)).toEqual(["0007"]);
    expect(report.catalogue).toEqual([]);
    expect(await indexes()).toEqual(both("trades_tenant_position_id_executed_at_idx"));
    const def = await admin.query(`SELECT pg_get_indexdef('shared.trades_tenant_position_id_executed_at_idx'::regclass) AS def`);
    expect(def.rows[0].def).toContain("(tenant_id, position_id, executed_at)");
    expect((await migrate(admin)).unchanged).toBe(true);
  });
});
