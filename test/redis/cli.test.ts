/**
 * `tenancy cache grant|revoke|usage` end to end: a migrated registry on the test PostgreSQL, a real
 * redis-server, the CLI's `main()` in-process with stdout captured.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tenancy } from "../support/cli";
import { migrate } from "../../lib/schema/migrate";
import { quotaKeys, tenantKey } from "../../lib/redis/keys";
import { createTenantCachePool, withTenantCache } from "../../lib/redis/tenant-cache";
import { createTenant, setTenantStatus } from "../../lib/tenant/registry";
import { TIER_LIMITS } from "../../lib/tenant/tiers";
import { createTestDatabase, type TestDatabase } from "../support/postgres";
import { errorOf, useRedisServer } from "./harness";

const redis = useRedisServer();
let db: TestDatabase;
let acme: { id: string };
let globex: { id: string };

beforeAll(async () => {
  db = await createTestDatabase("cache_cli");
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    await migrate(client, { region: "eu" });
    acme = await createTenant(client, { slug: "acme-capital", tier: "pro", region: "eu" });
    globex = await createTenant(client, { slug: "globex", tier: "starter", region: "eu" });
    const held = await createTenant(client, { slug: "held-fund", tier: "starter", region: "eu" });
    await setTenantStatus(client, held.id, "suspended");
  } finally {
    await client.end();
  }
});

afterAll(async () => {
  await db?.drop();
});

const flags = () => ["--redis-url", redis.server.adminUrl, "--database-url", db.url];

describe("tenancy cache grant", () => {
  it("creates the user with the tier's quota and prints the password once", async () => {
    const first = await tenancy("cache", "grant", "acme-capital", ...flags(), "--json");
    expect(first.code).toBe(0);
    expect(first.json).toMatchObject({
      slug: "acme-capital",
      tier: "pro",
      tenantId: acme.id,
      user: `tenant_${acme.id}`,
      created: true,
      limits: { maxBytes: TIER_LIMITS.pro.cacheMaxBytes, maxKeys: TIER_LIMITS.pro.cacheMaxKeys },
    });
    expect(first.json.password).toMatch(/^[A-Za-z0-9_-]{43}$/);

    // The printed password works, as the tenant's user, on its own keys only.
    const pool = createTenantCachePool({
      url: redis.url,
      credentials: (id) => ({ username: `tenant_${id}`, password: first.json.password }),
    });
    try {
      await withTenantCache(pool, acme.id, async (cache) => {
        await cache.set("hello", "world");
        expect(await errorOf(cache.call("GET", tenantKey(globex.id, "x")))).toMatch(/^NOPERM/);
      });
    } finally {
      await pool.close();
    }

    const again = await tenancy("cache", "grant", "acme-capital", ...flags(), "--max-bytes", "1048576", "--json");
    expect(again.json).toMatchObject({ created: false, limits: { maxBytes: 1_048_576 } });
    expect(again.json.password).toBeUndefined();

    const human = await tenancy("cache", "grant", "acme-capital", ...flags(), "--rotate-password");
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/updated Redis user tenant_/);
    expect(human.stdout).toMatch(/shown once/);
  });

  it.each([
    [["cache", "grant", "no-such-tenant"], "slug", /no tenant "no-such-tenant"/],
    [["cache", "grant", "Bad Slug!"], "slug", /./],
    [["cache", "grant", "held-fund"], "slug", /suspended/],
    [["cache", "grant", "acme-capital", "--max-bytes", "1e6"], "--max-bytes", /whole number/],
    [["cache", "grant", "acme-capital", "--max-keys=-1"], "--max-keys", /whole number/],
    [["cache", "grant", "acme-capital", "--bogus"], "--bogus", /bogus/],
  ])("%j is a usage error naming %s (exit 2)", async (argv, field, message) => {
    const r = await tenancy(...argv, ...flags(), "--json");
    expect(r.code).toBe(2);
    expect(r.json.error).toMatchObject({ kind: "usage", field });
    expect(r.json.error.message).toMatch(message);
  });

  it("needs a redis:// URL (exit 2, nothing written)", async () => {
    const before = (await redis.admin.call("ACL", "USERS")) as string[];
    for (const url of ["postgres://x@y/z", "not a url"]) {
      const r = await tenancy("cache", "grant", "globex", "--redis-url", url, "--database-url", db.url, "--json");
      expect(r.code).toBe(2);
      expect(r.json.error.field).toBe("--redis-url");
    }
    const saved = process.env.REDIS_URL;
    delete process.env.REDIS_URL;
    try {
      const r = await tenancy("cache", "grant", "globex", "--database-url", db.url, "--json");
      expect(r.json.error).toMatchObject({ kind: "usage", field: "--redis-url" });
    } finally {
      if (saved !== undefined) process.env.REDIS_URL = saved;
    }
    expect(await redis.admin.call("ACL", "USERS")).toEqual(before);
  });

  it("reports an unreachable Redis without its password (exit 1)", async () => {
    const r = await tenancy("cache", "grant", "globex", "--redis-url", "redis://admin:topsecret@127.0.0.1:1", "--database-url", db.url);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/could not connect to redis:\/\/admin@127\.0\.0\.1:1/);
    expect(r.stderr).not.toContain("topsecret");
  });
});

describe("tenancy cache usage", () => {
  it("lists every tenant user with its quota, audits, and exits 1 when one is over", async () => {
    await tenancy("cache", "grant", "globex", ...flags(), "--max-bytes", "10000");
    const listed = await tenancy("cache", "usage", ...flags(), "--json");
    expect(listed.code).toBe(0);
    const rows = listed.json.tenants as { slug: string; keys: number }[];
    expect(rows.map((r) => r.slug).sort()).toEqual(["acme-capital", "globex"]);
    expect(rows.find((r) => r.slug === "acme-capital")!.keys).toBe(1);

    // Raw writes around the quota function: only an audit sees them; --enforce freezes.
    await redis.admin.set(tenantKey(globex.id, "raw"), "x".repeat(20_000));
    const plain = await tenancy("cache", "usage", "globex", ...flags(), "--json");
    expect(plain.json.tenants[0]).toMatchObject({ keys: 0, overLimit: false });
    const enforced = await tenancy("cache", "usage", "globex", ...flags(), "--enforce", "--json");
    expect(enforced.code).toBe(1);
    expect(enforced.json.tenants[0]).toMatchObject({ keys: 1, overLimit: true, frozen: true, action: "froze" });
    const human = await tenancy("cache", "usage", globex.id, "--redis-url", redis.server.adminUrl, "--audit");
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/OVER LIMIT, frozen/);

    await redis.admin.del(tenantKey(globex.id, "raw"));
    const thawed = await tenancy("cache", "usage", "globex", ...flags(), "--enforce", "--json");
    expect(thawed.code).toBe(0);
    expect(thawed.json.tenants[0]).toMatchObject({ keys: 0, frozen: false, action: "thawed" });
  });
});

describe("tenancy cache revoke", () => {
  it("deletes the user and closes its connections; by id without the registry; --purge deletes keys", async () => {
    const granted = await tenancy("cache", "grant", "globex", ...flags(), "--rotate-password", "--json");
    const conn = await redis.connect(`tenant_${globex.id}`, granted.json.password);
    await conn.get(tenantKey(globex.id, "x"));
    const revoked = await tenancy("cache", "revoke", "globex", ...flags(), "--json");
    expect(revoked.json).toMatchObject({ slug: "globex", existed: true, connectionsClosed: 1 });
    expect(await errorOf(conn.get(tenantKey(globex.id, "x")))).toBeDefined();

    const byId = await tenancy("cache", "revoke", acme.id, "--redis-url", redis.server.adminUrl, "--purge");
    expect(byId.code).toBe(0);
    expect(byId.stdout).toMatch(/revoked Redis user tenant_.*\npurged 1 key\(s\)/);
    const none = await tenancy("cache", "revoke", "globex", ...flags());
    expect(none.stdout).toMatch(/nothing to revoke/);
    expect(((await redis.admin.call("ACL", "USERS")) as string[]).filter((u) => u.startsWith("tenant_"))).toEqual([]);
  });
});

describe("a Redis whose default user is on (RESET / AUTH default would undo every fence)", () => {
  const defaultOn = () => redis.admin.call("ACL", "SETUSER", "default", "on", "nopass", "~*", "&*", "+@all");
  const defaultOff = () => redis.admin.call("ACL", "SETUSER", "default", "reset", "off", "resetchannels", "-@all");

  it("cache grant refuses it (exit 1, nothing written) and cache usage --audit says so; with default off both pass", async () => {
    await redis.admin.del(...Object.values(quotaKeys(globex.id)));
    await defaultOn();
    try {
      const grant = await tenancy("cache", "grant", "globex", ...flags(), "--json");
      expect(grant.code).toBe(1);
      expect(grant.json.error).toMatchObject({ kind: "refused" });
      expect(grant.json.error.message).toMatch(/"default" user is on .*RESET, AUTH default or HELLO … AUTH default/);
      expect(await redis.admin.call("ACL", "GETUSER", `tenant_${globex.id}`)).toBeNull();
      expect(await redis.admin.exists(...Object.values(quotaKeys(globex.id)))).toBe(0);

      const usage = await tenancy("cache", "usage", "--redis-url", redis.server.adminUrl, "--audit", "--json");
      expect(usage.code).toBe(1);
      expect(usage.json.server.defaultUser).toMatchObject({ on: true });
      const human = await tenancy("cache", "usage", "--redis-url", redis.server.adminUrl, "--audit");
      expect(human.stdout).toMatch(/^UNSAFE SERVER: this Redis server's "default" user is on/);
    } finally {
      await defaultOff();
    }
    // Negative control: the same commands on the server as it should be.
    const grant = await tenancy("cache", "grant", "globex", ...flags(), "--rotate-password", "--json");
    expect(grant.code).toBe(0);
    const usage = await tenancy("cache", "usage", "--redis-url", redis.server.adminUrl, "--audit", "--json");
    expect(usage.json.server.defaultUser).toMatchObject({ on: false });
    expect(usage.stdout).not.toMatch(/UNSAFE/);
    await tenancy("cache", "revoke", "globex", ...flags(), "--purge");
  });
});
