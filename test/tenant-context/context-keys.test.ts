/**
 * Keys declared by the stacks (ADR-005): the TenantContextKey provider called directly on a real
 * database (the engine runs it in test/e2e/local-stack.test.ts), rotation with two keys valid at
 * once, and the refusal to retire the last active key while tenants exist. (The key file a local
 * region hands its services: key-file.test.ts; this file loads nothing of Redis, which the
 * provider's own load of the data layer would load twice.)
 */
import * as pulumi from "@pulumi/pulumi";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tenantContextKeyProvider } from "../../components/db/tenant-context-key";
import { connect } from "../../lib/db/client";
import { migrate } from "../../lib/schema/migrate";
import { ROLES } from "../../lib/schema/roles";
import { ContextKeyError, listContextKeys, retireContextKey } from "../../lib/tenant-context/keys";
import { mintTenantProof, type ContextKey } from "../../lib/tenant-context/proof";
import { createTenant } from "../../lib/tenant/registry";
import { adminUrl, createTestDatabase, type TestDatabase } from "../support/postgres";

describe("TenantContextKey provider on a strict database", () => {
  let db: TestDatabase;
  let admin: pg.Client;
  let app: pg.Client;
  let tenantId: string;
  let connection: { host: string; port: number; user: string };
  let oid: number;
  beforeAll(async () => {
    db = await createTestDatabase("ctxkey");
    admin = await connect(db.url);
    await migrate(admin, { region: "eu" });
    tenantId = (await createTenant(admin, { slug: "key-alpha", tier: "pro", region: "eu" })).id;
    app = await connect(db.urlAs(ROLES.app));
    const u = new URL(adminUrl());
    connection = { host: u.hostname, port: Number(u.port), user: decodeURIComponent(u.username) };
    oid = (await admin.query(`SELECT oid::int AS oid FROM pg_database WHERE datname = $1`, [db.name])).rows[0].oid;
  });
  afterAll(async () => {
    await app?.end().catch(() => {});
    await admin?.end().catch(() => {});
    await db?.drop();
  });

  /** Enters the tenant with a proof of `key` as app_user and counts what the tenant sees; rejects with the verifier's refusal. */
  async function enter(key: ContextKey): Promise<string> {
    await app.query("BEGIN");
    try {
      return (await app.query("SELECT tenancy.enter_verified_tenant($1) AS schema", [mintTenantProof(key, tenantId)])).rows[0].schema;
    } finally {
      await app.query("ROLLBACK");
    }
  }
  const inputs = (kid: string) => ({ connection, database: db.name, databaseOid: oid, region: "eu", kid });
  const keyOf = (outs: { kid: string; region: string; secret: string }): ContextKey => ({
    kid: outs.kid,
    region: outs.region as ContextKey["region"],
    secret: outs.secret,
  });

  it("generates the secret itself (never an input), installs it, and rotates with two keys valid at once", async () => {
    const first = await tenantContextKeyProvider.create(inputs("eu-1"));
    expect(first.outs.secret).toMatch(/^[0-9a-f]{64}$/);
    expect(await enter(keyOf(first.outs))).toBe("shared");

    // Rotation: the next key beside the current one; both verify.
    const second = await tenantContextKeyProvider.create(inputs("eu-2"));
    expect(second.outs.secret).not.toBe(first.outs.secret);
    expect(await enter(keyOf(first.outs))).toBe("shared");
    expect(await enter(keyOf(second.outs))).toBe("shared");
    expect(await tenantContextKeyProvider.diff!(second.id, second.outs, inputs("eu-2"))).toEqual({ changes: false, replaces: [] });
    expect((await tenantContextKeyProvider.diff!(second.id, second.outs, inputs("eu-3"))).replaces).toEqual(["kid"]);

    // Removing the old key from the stack retires it: its proofs are refused, the new key's are not.
    await tenantContextKeyProvider.delete!(first.id, first.outs);
    await expect(enter(keyOf(first.outs))).rejects.toThrow(/not valid here/);
    expect(await enter(keyOf(second.outs))).toBe("shared");

    // The last active key while a tenant is active: refused, and it stays active.
    await expect(tenantContextKeyProvider.delete!(second.id, second.outs)).rejects.toThrow(/last active key/);
    expect(await listContextKeys(admin)).toEqual([
      { kid: "eu-1", region: "eu", state: "retired" },
      { kid: "eu-2", region: "eu", state: "active" },
    ]);
    expect(await enter(keyOf(second.outs))).toBe("shared");
  });

  it("retiring the last key is refused while tenants are active; negative control: without active tenants it retires", async () => {
    await expect(retireContextKey(admin, "eu-2")).rejects.toThrow(ContextKeyError);

    await admin.query("BEGIN");
    try {
      await admin.query(`UPDATE tenancy.tenants SET status = 'suspended'`);
      expect(await retireContextKey(admin, "eu-2")).toBe(true);
    } finally {
      await admin.query("ROLLBACK");
    }
  });

  it("serializes without capturing the data layer", async () => {
    const serialized = await pulumi.runtime.serializeFunction(() => tenantContextKeyProvider);
    expect(serialized.text).toContain("tsx/cjs/api");
    expect(serialized.text).not.toMatch(/ZodObject|TENANT_TABLES|MIGRATIONS/);
  });
});
