/**
 * Tenant lifecycle commands reach the cache too: `tenant suspend --redis-url` revokes the tenant's
 * Redis user and cuts its open connections; so does `tenant delete --redis-url` (offboarding), which
 * keeps the tenant's keys with its rows until `tenant purge --redis-url` removes them after the
 * retention window (docs/data-safety.md). Negative control: without a Redis the same suspend leaves
 * the cache user working.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../../lib/schema/migrate";
import { tenantKey } from "../../lib/redis/keys";
import { grantTenantCache } from "../../lib/redis/tenant-users";
import { openRedis } from "../../lib/redis/client";
import { createTenant } from "../../lib/tenant/registry";
import type { Tenant } from "../../lib/tenant/model";
import { TIER_LIMITS } from "../../lib/tenant/tiers";
import { tenancy } from "../support/cli";
import { createTestDatabase, type TestDatabase } from "../support/postgres";
import { errorOf, useRedisServer } from "./harness";

const redis = useRedisServer();
let db: TestDatabase;
let admin: pg.Client;
let exportDir: string;

beforeAll(async () => {
  exportDir = mkdtempSync(path.join(os.tmpdir(), "lifecycle-exports-"));
  db = await createTestDatabase("lifecycle");
  admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  await migrate(admin, { region: "eu" });
});

afterAll(async () => {
  await admin?.end();
  await db?.drop();
  if (exportDir) rmSync(exportDir, { recursive: true, force: true });
});

const limits = { maxBytes: TIER_LIMITS.pro.cacheMaxBytes, maxKeys: TIER_LIMITS.pro.cacheMaxKeys };

async function tenantWithCache(slug: string): Promise<{ tenant: Tenant; password: string }> {
  const tenant = await createTenant(admin, { slug, tier: "pro", region: "eu" });
  const { password } = await grantTenantCache(redis.admin, tenant.id, { limits });
  return { tenant, password: password! };
}

async function tenantConnection(tenant: Tenant, password: string) {
  const url = new URL(redis.url);
  url.username = `tenant_${tenant.id}`;
  url.password = password;
  return openRedis(url.toString());
}

describe("tenant lifecycle and the cache", () => {
  it("suspend with a Redis revokes the cache user and cuts its open connection", async () => {
    const { tenant, password } = await tenantWithCache("suspend-me");
    const conn = await tenantConnection(tenant, password);
    await conn.set(tenantKey(tenant.id, "k"), "v");
    const r = await tenancy("tenant", "suspend", "suspend-me", "--database-url", db.url, "--redis-url", redis.server.adminUrl, "--json");
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ status: "suspended", cache: { existed: true, connectionsClosed: 1 } });
    expect(await errorOf(conn.get(tenantKey(tenant.id, "k")))).toBeDefined();
    conn.disconnect();
    expect(await errorOf(tenantConnection(tenant, password))).toMatch(/WRONGPASS|invalid username-password/);
    // Keys stay while suspended: resume and a new grant bring them back.
    expect(await redis.admin.call("EXISTS", tenantKey(tenant.id, "k"))).toBe(1);
  });

  it("negative control: suspend without a Redis leaves the cache user working", async () => {
    const { tenant, password } = await tenantWithCache("suspend-db-only");
    const saved = process.env.REDIS_URL;
    delete process.env.REDIS_URL;
    try {
      const r = await tenancy("tenant", "suspend", "suspend-db-only", "--database-url", db.url, "--json");
      expect(r.code).toBe(0);
      expect(r.json.cache).toBeUndefined();
    } finally {
      if (saved !== undefined) process.env.REDIS_URL = saved;
    }
    const conn = await tenantConnection(tenant, password);
    expect(await conn.set(tenantKey(tenant.id, "k"), "v")).toBe("OK");
    conn.disconnect();
  });

  it("delete with a Redis revokes the user and keeps the keys; purge after the window removes them with the rows", async () => {
    const { tenant } = await tenantWithCache("offboard-me");
    await redis.admin.call("SET", tenantKey(tenant.id, "a"), "1");
    const redisArgs = ["--database-url", db.url, "--redis-url", redis.server.adminUrl, "--json"];
    const r = await tenancy("tenant", "delete", "offboard-me", "--export-dir", exportDir, ...redisArgs);
    expect(r.code).toBe(0);
    expect(r.json.cache).toMatchObject({ existed: true });
    expect(r.json.cache.keysDeleted ?? 0).toBe(0);
    expect(await redis.admin.call("EXISTS", tenantKey(tenant.id, "a"))).toBe(1);
    expect((await redis.admin.call("ACL", "USERS")) as string[]).not.toContain(`tenant_${tenant.id}`);
    const { rows } = await admin.query("SELECT status FROM tenancy.tenants WHERE id = $1", [tenant.id]);
    expect(rows[0]?.status).toBe("offboarded");

    // The purge date has passed (set in the database: no clock hook in the CLI): purge removes the keys too.
    await admin.query(
      `UPDATE tenancy.tenants SET offboarded_at = now() - interval '31 days', purge_after = now() - interval '1 day' WHERE id = $1`,
      [tenant.id],
    );
    const purged = await tenancy("tenant", "purge", "offboard-me", ...redisArgs);
    expect(purged.code).toBe(0);
    expect(purged.json.cache.keysDeleted).toBeGreaterThanOrEqual(1);
    expect(await redis.admin.call("EXISTS", tenantKey(tenant.id, "a"))).toBe(0);
    expect((await admin.query("SELECT 1 FROM tenancy.tenants WHERE id = $1", [tenant.id])).rows).toHaveLength(0);
  });

  it("an unreachable Redis stops delete: the tenant is not offboarded and stays active", async () => {
    await createTenant(admin, { slug: "keep-me", tier: "pro", region: "eu" });
    const r = await tenancy(
      "tenant",
      "delete",
      "keep-me",
      "--export-dir",
      exportDir,
      "--database-url",
      db.url,
      "--redis-url",
      "redis://admin:x@127.0.0.1:1",
      "--json",
    );
    expect(r.code).toBe(1);
    const { rows } = await admin.query("SELECT status, purge_after FROM tenancy.tenants WHERE slug = 'keep-me'");
    expect(rows).toEqual([{ status: "active", purge_after: null }]);
  });
});
