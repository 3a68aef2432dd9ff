/**
 * lib/schema/current.sql is what a fresh `migrate` produces — functions (enter_tenant() and the
 * rest), policies, grants, the roles' posture — read back from a real database. When a migration or
 * the catalogue changes, this fails until `npm run schema:current` regenerates the file.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CURRENT_SCHEMA_FILE, readCurrentSchema } from "../../lib/schema/current-schema";
import { migrate } from "../../lib/schema/migrate";
import { SLUG_PATTERN, TENANT_ID_PATTERN } from "../../lib/tenant/model";
import { createTestDatabase, type TestDatabase } from "../support/postgres";
import { connect } from "../../lib/db/client";

const checkedIn = readFileSync(path.join(__dirname, "../..", CURRENT_SCHEMA_FILE), "utf8");

/** The block of current.sql that defines `name` (a function or table), up to the next blank line. */
function block(text: string, start: string): string {
  const at = text.indexOf(start);
  expect(at, `${start} in ${CURRENT_SCHEMA_FILE}`).toBeGreaterThanOrEqual(0);
  const end = text.indexOf("\n\n", at);
  return text.slice(at, end < 0 ? undefined : end);
}

describe(CURRENT_SCHEMA_FILE, () => {
  let db: TestDatabase;
  let client: pg.Client;
  beforeAll(async () => {
    db = await createTestDatabase("current_schema");
    client = await connect(db.url);
    await migrate(client, { region: "eu" });
  });
  afterAll(async () => {
    await client?.end().catch(() => {});
    await db?.drop();
  });

  it("equals what a fresh migrate produces (otherwise: npm run schema:current, and commit the file)", async () => {
    expect(await readCurrentSchema(client)).toBe(checkedIn);
  });

  it("reads the same whatever the session's search_path (names are always schema-qualified)", async () => {
    await client.query("SET search_path TO tenancy, shared, public");
    try {
      expect(await readCurrentSchema(client)).toBe(checkedIn);
    } finally {
      await client.query("RESET search_path");
    }
  });

  it("negative control: a changed function body, a dropped policy or an extra grant shows up", async () => {
    await client.query("BEGIN");
    try {
      const { rows } = await client.query<{ def: string }>(`SELECT pg_get_functiondef('tenancy.enter_tenant(uuid)'::regprocedure) AS def`);
      await client.query(rows[0].def.replace("RETURN target_schema;", "RETURN target_schema; -- edited"));
      await client.query("DROP POLICY tenant_self_lock ON tenancy.tenants");
      await client.query("GRANT SELECT ON tenancy.tenant_moves TO app_user");
      const drifted = await readCurrentSchema(client);
      expect(drifted).not.toBe(checkedIn);
      expect(block(drifted, "CREATE OR REPLACE FUNCTION tenancy.enter_tenant(")).toContain("-- edited");
      expect(drifted).not.toContain("CREATE POLICY tenant_self_lock");
      expect(drifted).toContain("GRANT SELECT ON TABLE tenancy.tenant_moves TO app_user;");
    } finally {
      await client.query("ROLLBACK");
    }
    expect(await readCurrentSchema(client)).toBe(checkedIn);
  });
});

describe("constants the frozen migrations spelled out, against the schema they built", () => {
  // The migrations are frozen text: editing one of these constants changes nothing in a database.
  // When one must change, add a migration that changes the database too, then regenerate current.sql.
  it("the registry's slug check is lib/tenant/model.ts SLUG_PATTERN", () => {
    expect(block(checkedIn, "CREATE TABLE tenancy.tenants (")).toContain(`CHECK (((slug ~ '${SLUG_PATTERN.source}'::text)`);
  });

  it("setting_tenant_id() accepts exactly lib/tenant/model.ts TENANT_ID_PATTERN", () => {
    expect(block(checkedIn, "CREATE OR REPLACE FUNCTION tenancy.setting_tenant_id()")).toContain(`~ '${TENANT_ID_PATTERN.source}'`);
  });

  it("enter_tenant() is defined once, and current.sql is the place to read it", () => {
    expect(checkedIn.split("CREATE OR REPLACE FUNCTION tenancy.enter_tenant(").length - 1).toBe(1);
  });
});
