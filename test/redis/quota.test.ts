/**
 * Per-tenant cache quotas on a real redis-server: a burst from A over its quota is refused with a
 * clear error while B's writes keep succeeding; without the quota the same burst makes B fail
 * (negative control). Expiry, overwrite and delete accounting; the audit catches writes that bypass
 * the function and tampered bookkeeping, and freezes a tenant that stays over.
 */
import type Redis from "ioredis";
import { beforeAll, describe, expect, it } from "vitest";
import { quotaKeys, tenantKey } from "../../lib/redis/keys";
import {
  auditTenantCache,
  CacheQuotaExceededError,
  purgeTenantCache,
  quotaSet,
  readTenantUsage,
  setTenantLimits,
} from "../../lib/redis/quota";
import { createTenantCachePool, withTenantCache, type TenantCachePool } from "../../lib/redis/tenant-cache";
import { enforceTenantQuota, grantTenantCache, isTenantFrozen } from "../../lib/redis/tenant-users";
import { errorOf, TENANT_A, TENANT_B, TENANT_C, useRedisServer } from "./harness";

const redis = useRedisServer();
const passwords: Record<string, string> = {};
let pool: TenantCachePool;

/** A fresh tenant: its keys and bookkeeping deleted, then granted with these limits. */
async function grant(tenantId: string, maxBytes: number, maxKeys = 100_000): Promise<void> {
  await purgeTenantCache(redis.admin, tenantId);
  const g = await grantTenantCache(redis.admin, tenantId, { limits: { maxBytes, maxKeys }, rotatePassword: true });
  passwords[tenantId] = g.password!;
}

async function connectAs(tenantId: string): Promise<Redis> {
  return redis.connect(`tenant_${tenantId}`, passwords[tenantId]);
}

beforeAll(() => {
  // No local back-off here: these tests are about what the server decides.
  pool = createTenantCachePool({
    url: redis.url,
    credentials: (id) => ({ username: `tenant_${id}`, password: passwords[id] }),
    quotaBackoffMs: 0,
  });
  return () => pool.close();
});

/** Writes `count` values of `size` bytes for `tenantId` as fast as possible over `connections` connections (pipelined). */
async function burst(
  tenantId: string,
  count: number,
  size: number,
  connections = 4,
  raw = false,
): Promise<{ ok: number; refused: number; errors: string[] }> {
  const conns = await Promise.all(Array.from({ length: connections }, () => connectAs(tenantId)));
  const value = "x".repeat(size);
  const results = await Promise.allSettled(
    Array.from({ length: count }, (_, i) => {
      const c = conns[i % connections];
      const key = tenantKey(tenantId, "burst", String(i));
      return raw ? c.set(key, value) : quotaSet(c, tenantId, key, value);
    }),
  );
  for (const c of conns) c.disconnect();
  const errors = results.flatMap((r) => (r.status === "rejected" ? [(r.reason as Error).message] : []));
  return {
    ok: results.filter((r) => r.status === "fulfilled").length,
    refused: results.filter((r) => r.status === "rejected" && r.reason instanceof CacheQuotaExceededError).length,
    errors,
  };
}

/** B writes and reads back `count` keys, one at a time, while something else runs. Returns failures. */
async function steadyWriter(tenantId: string, until: Promise<unknown>): Promise<{ writes: number; failures: string[] }> {
  let done = false;
  void until.finally(() => (done = true));
  let writes = 0;
  const failures: string[] = [];
  await withTenantCache(pool, tenantId, async (cache) => {
    while (!done || writes < 50) {
      const key = ["steady", String(writes % 100)];
      try {
        await cache.set(key, `v${writes}`);
        if ((await cache.get(key)) !== `v${writes}`) failures.push(`read back mismatch at ${writes}`);
      } catch (err) {
        failures.push((err as Error).message);
      }
      writes++;
    }
  });
  return { writes, failures };
}

describe("a burst from A over its quota (server memory capped 3 MB above its baseline, noeviction)", () => {
  beforeAll(async () => {
    const used = Number(/used_memory:(\d+)/.exec((await redis.admin.call("INFO", "memory")) as string)![1]);
    await redis.admin.call("CONFIG", "SET", "maxmemory", used + 3_000_000, "maxmemory-policy", "noeviction");
    return async () => {
      await redis.admin.call("CONFIG", "SET", "maxmemory", 0);
      await redis.admin.call("FLUSHDB");
    };
  });

  it("is refused with a clear error at the limit while B's writes keep succeeding", async () => {
    await grant(TENANT_A, 1_000_000);
    await grant(TENANT_B, 200_000);
    const aBurst = burst(TENANT_A, 6000, 1000);
    const [a, b] = await Promise.all([aBurst, steadyWriter(TENANT_B, aBurst)]);

    expect(a.ok).toBeGreaterThan(500);
    expect(a.refused).toBe(6000 - a.ok);
    expect(a.errors[0]).toMatch(
      new RegExp(`^tenant ${TENANT_A}: cache quota exceeded: this write needs \\d+ bytes; \\d+ of 1000000 bytes`),
    );
    const usage = await readTenantUsage(redis.admin, TENANT_A);
    expect(usage.bytes).toBeLessThanOrEqual(1_000_000);
    expect(usage.bytes).toBeGreaterThan(1_000_000 - 2 * 1200);
    // The accounting matches the server: an audit changes nothing.
    const audit = await auditTenantCache(redis.admin, TENANT_A);
    expect(audit.bytes).toBe(usage.bytes);
    expect(audit.keys).toBe(a.ok);

    expect(b.failures).toEqual([]);
    expect(b.writes).toBeGreaterThanOrEqual(50);
    await withTenantCache(pool, TENANT_B, (cache) => cache.set("after-burst", "b".repeat(10_000)));
  });

  it("negative control: the same burst written around the quota exhausts memory and B's writes fail", async () => {
    await grant(TENANT_C, 1_000_000);
    const cBurst = burst(TENANT_C, 6000, 1000, 4, true);
    const [c] = await Promise.all([cBurst, steadyWriter(TENANT_B, cBurst)]);
    expect(c.errors.some((e) => e.startsWith("OOM"))).toBe(true);
    // The burst's connections closed and freed their buffers; keep the server full from one that stays open.
    const holder = await connectAs(TENANT_C);
    let i = 0;
    let refusal: string | undefined;
    while (refusal === undefined && i < 10_000)
      refusal = await errorOf(holder.set(tenantKey(TENANT_C, "fill", String(i++)), "x".repeat(1000)));
    expect(refusal).toMatch(/^OOM/);
    // The server now hovers at its limit: B's next 10 kB write (well within B's own quota) is refused.
    const bWrite = await errorOf(withTenantCache(pool, TENANT_B, (cache) => cache.set("after-burst", "b".repeat(10_000))));
    expect(bWrite).toMatch(/^OOM command not allowed/);
    holder.disconnect();
  });
});

describe("accounting", () => {
  it("refuses every helper write when no quota is configured", async () => {
    await grant(TENANT_A, 1000);
    await redis.admin.del(quotaKeys(TENANT_A).limit);
    const a = await connectAs(TENANT_A);
    expect(await errorOf(quotaSet(a, TENANT_A, tenantKey(TENANT_A, "x"), "v"))).toBe(
      `tenant ${TENANT_A}: no cache quota is configured for this tenant`,
    );
  });

  it("counts an overwrite once, frees on delete, and enforces the key limit", async () => {
    await grant(TENANT_A, 1_000_000, 3);
    await withTenantCache(pool, TENANT_A, async (cache) => {
      await cache.set("k1", "a".repeat(100));
      const one = (await cache.usage()).bytes;
      await cache.set("k1", "b".repeat(100));
      expect((await cache.usage()).bytes).toBe(one);
      await cache.set("k1", "c".repeat(200));
      expect((await cache.usage()).bytes).toBe(one + 100);
      await cache.set("k2", "x");
      await cache.set("k3", "x");
      expect(await errorOf(cache.set("k4", "x"))).toMatch(/3 of 3 keys in use/);
      await cache.set("k3", "overwrite is not a new key");
      expect(await cache.del("k2", "k3", "missing")).toBe(2);
      expect(await cache.usage()).toMatchObject({ keys: 1, bytes: one + 100 });
      await cache.set("k4", "x");
    });
  });

  it("reclaims expired keys, so a tenant at its limit can write again after its TTLs pass", async () => {
    await grant(TENANT_A, 10_000, 10);
    await withTenantCache(pool, TENANT_A, async (cache) => {
      for (let i = 0; i < 10; i++) await cache.set(["ttl", String(i)], "v", { ttlSeconds: 0.2 });
      expect(await errorOf(cache.set("more", "v"))).toMatch(/10 of 10 keys/);
      await new Promise((r) => setTimeout(r, 300));
      await cache.set("more", "v");
      expect(await cache.usage()).toMatchObject({ keys: 1 });
    });
  });

  it("refuses a data key of another tenant even when called by an admin", async () => {
    await grant(TENANT_A, 10_000);
    const message = await errorOf(
      redis.admin.call("FCALL", "tenancy_set", 4, ...Object.values(quotaKeys(TENANT_A)).slice(0, 3), tenantKey(TENANT_B, "x"), "v", 0),
    );
    expect(message).toMatch(/is not a data key of this tenant/);
    expect(await redis.admin.exists(tenantKey(TENANT_B, "x"))).toBe(0);
  });
});

describe("audit", () => {
  it("accounts writes that bypassed the function, freezes the tenant over its limit, thaws it once under", async () => {
    await grant(TENANT_A, 50_000);
    const a = await connectAs(TENANT_A);
    await quotaSet(a, TENANT_A, tenantKey(TENANT_A, "tracked"), "v");
    // Raw writes: allowed by ACL (same namespace), invisible to the counter until the audit.
    for (let i = 0; i < 20; i++) await a.set(tenantKey(TENANT_A, "raw", String(i)), "r".repeat(5000));
    await a.rpush(tenantKey(TENANT_A, "list"), ...Array<string>(100).fill("l".repeat(100)));
    expect((await readTenantUsage(redis.admin, TENANT_A)).keys).toBe(1);

    const enforced = await enforceTenantQuota(redis.admin, TENANT_A);
    expect(enforced.action).toBe("froze");
    expect(enforced.audit).toMatchObject({ keys: 22, scannedKeys: 22, overLimit: true });
    expect(enforced.audit.bytes).toBeGreaterThan(20 * 5000 + 100 * 100);
    expect(await isTenantFrozen(redis.admin, TENANT_A)).toBe(true);

    // Frozen: raw writes refused by the server, helper writes get a clear quota error, deletes work.
    expect(await errorOf(a.set(tenantKey(TENANT_A, "raw", "more"), "r"))).toMatch(/NOPERM .*'set' command/);
    expect(await errorOf(quotaSet(a, TENANT_A, tenantKey(TENANT_A, "tracked"), "v"))).toMatch(/writes are frozen/);
    expect(await a.get(tenantKey(TENANT_A, "tracked"))).toBe("v");
    for (let i = 0; i < 20; i++) await a.del(tenantKey(TENANT_A, "raw", String(i)));
    await withTenantCache(pool, TENANT_A, (cache) => cache.del("list"));

    const thawed = await enforceTenantQuota(redis.admin, TENANT_A);
    expect(thawed.action).toBe("thawed");
    expect(thawed.audit).toMatchObject({ keys: 1, overLimit: false });
    await quotaSet(a, TENANT_A, tenantKey(TENANT_A, "tracked"), "again");
  });

  it("repairs tampered bookkeeping without touching another tenant", async () => {
    await grant(TENANT_A, 50_000);
    await grant(TENANT_B, 50_000);
    await redis.admin.set(tenantKey(TENANT_B, "keep"), "b");
    const a = await connectAs(TENANT_A);
    for (let i = 0; i < 5; i++) await quotaSet(a, TENANT_A, tenantKey(TENANT_A, "t", String(i)), "v".repeat(1000));
    const honest = await readTenantUsage(a, TENANT_A);
    const q = quotaKeys(TENANT_A);
    // The tenant can write its own counters (the function runs as the tenant) ...
    await a.set(q.used, 0);
    await a.hset(q.sizes, tenantKey(TENANT_A, "t", "0"), 1, tenantKey(TENANT_B, "keep"), 5);
    await a.zadd(q.expiry, 0, tenantKey(TENANT_B, "keep"));
    expect((await readTenantUsage(a, TENANT_A)).bytes).toBe(0);
    // ... and the audit puts them back.
    const audit = await auditTenantCache(redis.admin, TENANT_A);
    expect(audit).toMatchObject({ bytes: honest.bytes, keys: 5, staleEntries: 1 });
    expect(await redis.admin.get(tenantKey(TENANT_B, "keep"))).toBe("b");
    // Reclaiming a tampered expiry entry never touches the named key.
    await a.zadd(q.expiry, 0, tenantKey(TENANT_B, "keep"));
    await quotaSet(a, TENANT_A, tenantKey(TENANT_A, "t", "9"), "v");
    expect(await redis.admin.get(tenantKey(TENANT_B, "keep"))).toBe("b");
  });

  it("forgets keys that disappeared outside the function (raw DEL, expiry)", async () => {
    await grant(TENANT_A, 50_000);
    await setTenantLimits(redis.admin, TENANT_A, { maxBytes: 50_000, maxKeys: 100 });
    const a = await connectAs(TENANT_A);
    await quotaSet(a, TENANT_A, tenantKey(TENANT_A, "gone"), "v");
    await quotaSet(a, TENANT_A, tenantKey(TENANT_A, "stays"), "v");
    await a.del(tenantKey(TENANT_A, "gone"));
    const audit = await auditTenantCache(redis.admin, TENANT_A);
    expect(audit).toMatchObject({ keysBefore: 2, keys: 1, staleEntries: 1 });
  });
});
