/**
 * withTenantCache on a real redis-server, in both connection modes: each request acts as its
 * tenant's ACL user and nothing else; a failed AUTH never leaves a request running as the previous
 * tenant; revoking a tenant cuts its open connections.
 */
import type Redis from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tenantKey } from "../../lib/redis/keys";
import { CacheQuotaExceededError } from "../../lib/redis/quota";
import {
  createTenantCachePool,
  TenantCacheReleasedError,
  withTenantCache,
  type TenantCache,
  type TenantCachePool,
} from "../../lib/redis/tenant-cache";
import { grantPoolUser, grantTenantCache, revokeTenantCache } from "../../lib/redis/tenant-users";
import { errorOf, TENANT_A, TENANT_B, TENANT_C, useRedisServer } from "./harness";

const redis = useRedisServer();
const passwords: Record<string, string> = {};
const credentials = (id: string) => ({ username: `tenant_${id}`, password: passwords[id] ?? "no-such-password-000000" });
const POOL_USER = "cache_pool";
const POOL_PASSWORD = "pool-password-0123456789abcdef";

async function grant(tenantId: string): Promise<void> {
  const g = await grantTenantCache(redis.admin, tenantId, { limits: { maxBytes: 1_000_000, maxKeys: 1000 }, rotatePassword: true });
  passwords[tenantId] = g.password!;
}

/** Users of the connections currently open to the server (admin view). */
async function connectedUsers(): Promise<string[]> {
  const list = (await redis.admin.call("CLIENT", "LIST")) as string;
  return list
    .trim()
    .split("\n")
    .map((line) => /\buser=(\S+)/.exec(line)?.[1] ?? "")
    .filter((u) => u !== "admin");
}

beforeAll(async () => {
  await grant(TENANT_A);
  await grant(TENANT_B);
  await grantPoolUser(redis.admin, POOL_USER, POOL_PASSWORD);
  await redis.admin.set(tenantKey(TENANT_A, "owned"), "a-value");
  await redis.admin.set(tenantKey(TENANT_B, "owned"), "b-value");
});

describe.each([
  ["connection-per-tenant", () => createTenantCachePool({ url: redis.url, credentials })],
  [
    "auth-per-request",
    () =>
      createTenantCachePool({
        url: redis.url.replace("//", `//${POOL_USER}:${POOL_PASSWORD}@`),
        credentials,
        mode: "auth-per-request",
        poolSize: 2,
      }),
  ],
] as const)("withTenantCache (%s)", (_mode, create) => {
  let pool: TenantCachePool;
  beforeAll(() => {
    pool = create();
  });
  afterAll(() => pool.close());

  it("reads and writes its own keys, and the server refuses the other tenant's", async () => {
    await withTenantCache(pool, TENANT_A, async (cache) => {
      expect(await cache.get("owned")).toBe("a-value");
      await cache.set(["quotes", "AAPL"], "187.1", { ttlSeconds: 60 });
      expect(await cache.get(["quotes", "AAPL"])).toBe("187.1");
      expect(await cache.call("PTTL", cache.key(["quotes", "AAPL"]))).toBeGreaterThan(59_000);
      expect(await errorOf(cache.call("GET", tenantKey(TENANT_B, "owned")))).toMatch(/^NOPERM/);
      expect(await errorOf(cache.call("SCAN", 0))).toMatch(/^NOPERM/);
      expect(await errorOf(cache.get("a:b"))).toMatch(/separator/);
    });
  });

  it("keeps concurrent requests of different tenants apart", async () => {
    const tenants = [TENANT_A, TENANT_B];
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        withTenantCache(pool, tenants[i % 2], async (cache) => {
          await cache.set(["req", String(i)], `${cache.tenantId}:${i}`);
          await new Promise((r) => setTimeout(r, i % 3));
          return { tenant: cache.tenantId, owned: await cache.get("owned"), mine: await cache.get(["req", String(i)]) };
        }),
      ),
    );
    results.forEach((r, i) => {
      expect(r.tenant).toBe(tenants[i % 2]);
      expect(r.owned).toBe(i % 2 === 0 ? "a-value" : "b-value");
      expect(r.mine).toBe(`${tenants[i % 2]}:${i}`);
    });
  });

  it("refuses a TenantCache used after the request returned", async () => {
    let leaked: TenantCache | undefined;
    await withTenantCache(pool, TENANT_A, (cache) => {
      leaked = cache;
      return Promise.resolve();
    });
    await expect(leaked!.get("owned")).rejects.toBeInstanceOf(TenantCacheReleasedError);
    await expect(leaked!.call("GET", tenantKey(TENANT_A, "owned"))).rejects.toBeInstanceOf(TenantCacheReleasedError);
  });

  it("reports quota refusals as CacheQuotaExceededError", async () => {
    await expect(withTenantCache(pool, TENANT_A, (cache) => cache.set("big", "x".repeat(2_000_000)))).rejects.toBeInstanceOf(
      CacheQuotaExceededError,
    );
  });

  it("fails a tenant with a wrong password without running anything as another tenant", async () => {
    // Use the pool for A first, so an auth-per-request connection was last A's.
    await withTenantCache(pool, TENANT_A, (cache) => cache.get("owned"));
    const message = await errorOf(
      withTenantCache(pool, TENANT_C /* never granted */, async (cache) => {
        const value = await cache.call("GET", tenantKey(TENANT_A, "owned")).catch((e: Error) => e.message);
        expect(value).not.toBe("a-value");
        return value;
      }),
    );
    expect(message).toMatch(/WRONGPASS/);
    // The pool still works for granted tenants.
    expect(await withTenantCache(pool, TENANT_B, (cache) => cache.get("owned"))).toBe("b-value");
  });
});

describe("quota back-off", () => {
  it("refuses a tenant's writes locally for a moment after a server refusal; a delete lifts it", async () => {
    const pool = createTenantCachePool({ url: redis.url, credentials, quotaBackoffMs: 300 });
    try {
      await withTenantCache(pool, TENANT_A, async (cache) => {
        await cache.set("small", "x");
        expect(await errorOf(cache.set("big", "x".repeat(2_000_000)))).toMatch(/cache quota exceeded: this write needs/);
        expect(await errorOf(cache.set("small", "y"))).toMatch(/refused locally for 300 ms/);
        await cache.del("nothing");
        await cache.set("small", "y");
        expect(await errorOf(cache.set("big", "x".repeat(2_000_000)))).not.toMatch(/locally/);
        await new Promise((r) => setTimeout(r, 350));
        await cache.set("small", "z");
      });
      // Other tenants are not affected.
      await withTenantCache(pool, TENANT_B, (cache) => cache.set("small", "b"));
    } finally {
      await pool.close();
    }
  });
});

describe("auth-per-request connections between requests", () => {
  it("are logged in as the permissionless pool user", async () => {
    const pool = createTenantCachePool({
      url: redis.url.replace("//", `//${POOL_USER}:${POOL_PASSWORD}@`),
      credentials,
      mode: "auth-per-request",
      poolSize: 1,
    });
    try {
      await withTenantCache(pool, TENANT_A, async (cache) => {
        expect(await connectedUsers()).toContain(`tenant_${TENANT_A}`);
        return cache.get("owned");
      });
      // The log-out runs just after the request returns, before the connection is reused.
      await expect.poll(connectedUsers).toContain(POOL_USER);
      expect(await connectedUsers()).not.toContain(`tenant_${TENANT_A}`);
    } finally {
      await pool.close();
    }
  });

  it("negative control: the pool user itself can do nothing", async () => {
    const c = await redis.connect(POOL_USER, POOL_PASSWORD);
    expect(await errorOf(c.get(tenantKey(TENANT_A, "owned")))).toMatch(/^NOPERM/);
    expect(await errorOf(c.call("PING"))).toMatch(/^NOPERM/);
  });
});

describe("connection-per-tenant", () => {
  it("keeps at most maxTenantConnections idle connections", async () => {
    await grant(TENANT_C);
    const pool = createTenantCachePool({ url: redis.url, credentials, maxTenantConnections: 2 });
    try {
      for (const id of [TENANT_A, TENANT_B, TENANT_C]) await withTenantCache(pool, id, (cache) => cache.get("owned"));
      await new Promise((r) => setTimeout(r, 50));
      const users = (await connectedUsers()).filter((u) => u.startsWith("tenant_"));
      expect(users.sort()).toEqual([`tenant_${TENANT_B}`, `tenant_${TENANT_C}`]);
    } finally {
      await pool.close();
    }
  });
});

describe("revoking a tenant", () => {
  let held: Redis[];

  async function hold(tenantId: string): Promise<Redis[]> {
    const plain = await redis.connect(`tenant_${tenantId}`, passwords[tenantId]);
    const subscriber = await redis.connect(`tenant_${tenantId}`, passwords[tenantId]);
    await subscriber.subscribe(tenantKey(tenantId, "events"));
    await plain.get(tenantKey(tenantId, "owned"));
    return [plain, subscriber];
  }

  it("cuts its open connections, including subscribers and pooled ones, and refuses new logins", async () => {
    await grant(TENANT_C);
    held = await hold(TENANT_C);
    const pool = createTenantCachePool({ url: redis.url, credentials });
    await withTenantCache(pool, TENANT_C, (cache) => cache.get("owned"));
    try {
      const result = await revokeTenantCache(redis.admin, TENANT_C);
      expect(result).toMatchObject({ existed: true, connectionsClosed: 3 });
      expect(await connectedUsers()).not.toContain(`tenant_${TENANT_C}`);
      expect(await errorOf(held[0].get(tenantKey(TENANT_C, "owned")))).toBeDefined();
      expect(await errorOf(withTenantCache(pool, TENANT_C, (cache) => cache.get("owned")))).toMatch(
        /WRONGPASS|Connection is closed|closed/,
      );
      expect(await errorOf(redis.connect(`tenant_${TENANT_C}`, passwords[TENANT_C]))).toMatch(/WRONGPASS/);
      expect(await revokeTenantCache(redis.admin, TENANT_C)).toMatchObject({ existed: false, connectionsClosed: 0 });
    } finally {
      await pool.close();
    }
  });

  it("negative control: switching the user off alone leaves its open connections working", async () => {
    await grant(TENANT_C);
    held = await hold(TENANT_C);
    await redis.admin.call("ACL", "SETUSER", `tenant_${TENANT_C}`, "off");
    expect(await held[0].get(tenantKey(TENANT_C, "owned"))).toBeNull();
    expect(await connectedUsers()).toContain(`tenant_${TENANT_C}`);
    await revokeTenantCache(redis.admin, TENANT_C);
  });

  it("with purge, deletes the tenant's keys and bookkeeping but no one else's", async () => {
    await grant(TENANT_C);
    await withTenantCache(createTenantCachePool({ url: redis.url, credentials }), TENANT_C, (cache) => cache.set("x", "y"));
    const result = await revokeTenantCache(redis.admin, TENANT_C, { purge: true });
    expect(result.keysDeleted).toBe(1);
    expect(await redis.admin.call("KEYS", `*${TENANT_C}*`)).toEqual([]);
    expect(await redis.admin.get(tenantKey(TENANT_B, "owned"))).toBe("b-value");
  });
});
