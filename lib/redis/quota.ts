/**
 * Per-tenant cache quotas. Redis has no per-user memory limit (one tenant's writes evict or OOM
 * another's), so the bound is built here:
 *
 *  1. Writes through the library (`TenantCache.set`) run the `tenancy_set` function, which checks
 *     the tenant's byte and key limits and writes atomically: a burst cannot overshoot, and the
 *     refusal is a `CacheQuotaExceededError` for that tenant only.
 *  2. Writes that bypass the function (raw commands on the tenant's connection, other data types)
 *     and keys that disappear outside it (eviction, raw DEL) are found by the audit
 *     (`auditTenantCache`, run by an admin user on a schedule): it SCANs the tenant's keys, makes the
 *     accounting match the server key by key, and recounts. With `enforce`, a tenant still over its
 *     limit is frozen (ACL: writes removed, DEL/UNLINK kept) until it is back under — see
 *     lib/redis/tenant-users.ts. So the bound holds even against code that skips the helper; its
 *     precision there is one audit interval of writes.
 *
 * The limits live in `quota:{<id>}:limit`, which the tenant can read but not write.
 */
import { TIER_LIMITS, type Tier } from "../tenant/tiers";
import { checkTenantId, quotaKeys, tenantPrefix } from "./keys";
import { type RedisCaller, replyErrorMessage } from "./client";
import { DEFAULT_QUOTA_COSTS, QUOTA_LIBRARY_NAME, renderQuotaLibrary, type QuotaCosts } from "./quota-functions";

export interface CacheLimits {
  /** Accounted bytes (see lib/redis/quota-functions.ts for what a key costs). */
  maxBytes: number;
  maxKeys: number;
}

/** The tier's default cache limits (lib/tenant/tiers.ts is the single place they are defined). */
export function cacheLimitsForTier(tier: Tier): CacheLimits {
  const { cacheMaxBytes, cacheMaxKeys } = TIER_LIMITS[tier];
  return { maxBytes: cacheMaxBytes, maxKeys: cacheMaxKeys };
}

export class CacheQuotaExceededError extends Error {
  constructor(
    readonly tenantId: string,
    readonly reply: string,
  ) {
    super(`tenant ${tenantId}: ${reply.replace(/^QUOTA /, "")}`);
    this.name = "CacheQuotaExceededError";
  }
}

/** Maps a `QUOTA ...` error reply to CacheQuotaExceededError; anything else is rethrown unchanged. */
export function rethrowQuota(tenantId: string, err: unknown): never {
  const message = replyErrorMessage(err);
  if (message?.startsWith("QUOTA ")) throw new CacheQuotaExceededError(tenantId, message);
  throw err;
}

/** FCALL arguments: three quota keys, then data keys (the limit key is read undeclared, see quota-functions.ts). */
function fcallArgs(fn: string, tenantId: string, dataKeys: string[], args: (string | number)[] = []): (string | number)[] {
  const q = quotaKeys(tenantId);
  return [fn, 3 + dataKeys.length, q.used, q.sizes, q.expiry, ...dataKeys, ...args];
}

/**
 * Loads (or replaces) the quota function library when the server's copy differs. Needs an admin
 * connection (FUNCTION LOAD is denied to tenants). Returns true when it loaded.
 */
export async function ensureQuotaLibrary(admin: RedisCaller, costs: QuotaCosts = DEFAULT_QUOTA_COSTS): Promise<boolean> {
  const code = renderQuotaLibrary(costs);
  const listed = (await admin.call("FUNCTION", "LIST", "LIBRARYNAME", QUOTA_LIBRARY_NAME, "WITHCODE")) as unknown[][];
  const current = listed.find((lib) => lib[1] === QUOTA_LIBRARY_NAME);
  const currentCode = current ? current[current.indexOf("library_code") + 1] : undefined;
  if (currentCode === code) return false;
  await admin.call("FUNCTION", "LOAD", "REPLACE", code);
  return true;
}

/** Writes the tenant's limits (admin). */
export async function setTenantLimits(admin: RedisCaller, tenantId: string, limits: CacheLimits): Promise<void> {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative integer, got ${value}`);
  }
  await admin.call("HSET", quotaKeys(tenantId).limit, "bytes", limits.maxBytes, "keys", limits.maxKeys);
}

export interface CacheUsage {
  tenantId: string;
  bytes: number;
  keys: number;
  /** Undefined when no quota is configured (writes through the helper are then refused). */
  limits?: CacheLimits;
}

/** The accounted usage (O(1); as the tenant or an admin). */
export async function readTenantUsage(redis: RedisCaller, tenantId: string): Promise<CacheUsage> {
  const id = checkTenantId(tenantId);
  const [bytes, keys, maxBytes, maxKeys] = (await redis.call("FCALL_RO", ...fcallArgs("tenancy_usage", id, []))) as number[];
  return { tenantId: id, bytes, keys, limits: maxBytes >= 0 && maxKeys >= 0 ? { maxBytes, maxKeys } : undefined };
}

/** Quota-checked SET of one of the tenant's keys; `ttlMs` 0 means no expiry. Returns accounted bytes after the write. */
export async function quotaSet(redis: RedisCaller, tenantId: string, key: string, value: string | Buffer, ttlMs = 0): Promise<number> {
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 0) throw new RangeError(`ttlMs must be a non-negative integer, got ${ttlMs}`);
  try {
    return (await redis.call("FCALL", ...fcallArgs("tenancy_set", tenantId, [key]), value, ttlMs)) as number;
  } catch (err) {
    rethrowQuota(tenantId, err);
  }
}

/** DEL of the tenant's keys with their accounting. Returns how many existed. */
export async function quotaDel(redis: RedisCaller, tenantId: string, keys: string[]): Promise<number> {
  if (keys.length === 0) return 0;
  return (await redis.call("FCALL", ...fcallArgs("tenancy_del", tenantId, keys))) as number;
}

export interface AuditResult extends CacheUsage {
  /** Accounted bytes before the audit; `bytes - bytesBefore` is the drift it corrected. */
  bytesBefore: number;
  keysBefore: number;
  /** Data keys found by SCAN. */
  scannedKeys: number;
  /** Bookkeeping entries naming keys that no longer exist (or not the tenant's), removed. */
  staleEntries: number;
  overLimit: boolean;
  durationMs: number;
}

/** SCAN MATCH `match`, calling `onBatch` with each non-empty page. */
async function scanKeys(admin: RedisCaller, match: string, onBatch: (keys: string[]) => Promise<void>): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = (await admin.call("SCAN", cursor, "MATCH", match, "COUNT", 1000)) as [string, string[]];
    cursor = next;
    if (keys.length > 0) await onBatch(keys);
  } while (cursor !== "0");
}

/** HSCAN of a hash's field names, page by page. */
async function scanHashFields(admin: RedisCaller, key: string, onBatch: (fields: string[]) => Promise<void>): Promise<void> {
  let cursor = "0";
  do {
    const [next, flat] = (await admin.call("HSCAN", key, cursor, "COUNT", 1000)) as [string, string[]];
    cursor = next;
    const fields = flat.filter((_, i) => i % 2 === 0);
    if (fields.length > 0) await onBatch(fields);
  } while (cursor !== "0");
}

/**
 * Recomputes a tenant's usage from the server (admin connection): every data key found by SCAN and
 * every bookkeeping entry is reconciled in batches (each batch atomic), then the byte counter is
 * recounted. Cost: O(tenant keys) SCAN + one function call per `batch` keys; it never blocks the
 * server longer than one batch (and the final recount, O(keys) in one call).
 */
export async function auditTenantCache(admin: RedisCaller, tenantId: string, options: { batch?: number } = {}): Promise<AuditResult> {
  const started = performance.now();
  const id = checkTenantId(tenantId);
  const batch = options.batch ?? 500;
  const before = await readTenantUsage(admin, id);
  const prefix = tenantPrefix(id);
  let scannedKeys = 0;
  const reconcile = async (keys: string[]) => {
    for (let i = 0; i < keys.length; i += batch) await admin.call("FCALL", ...fcallArgs("tenancy_reconcile", id, keys.slice(i, i + batch)));
  };
  await scanKeys(admin, `${prefix}*`, async (keys) => {
    scannedKeys += keys.length;
    await reconcile(keys);
  });
  // Entries for keys SCAN did not return (deleted, evicted, expired) or that are not the tenant's.
  let staleEntries = 0;
  const q = quotaKeys(id);
  await scanHashFields(admin, q.sizes, async (fields) => {
    const foreign = fields.filter((f) => !f.startsWith(prefix));
    if (foreign.length > 0) {
      await admin.call("HDEL", q.sizes, ...foreign);
      await admin.call("ZREM", q.expiry, ...foreign);
      staleEntries += foreign.length;
    }
    const own = fields.filter((f) => f.startsWith(prefix));
    if (own.length === 0) return;
    const exists = (await Promise.all(own.map((k) => admin.call("EXISTS", k)))) as number[];
    const gone = own.filter((_, i) => exists[i] === 0);
    staleEntries += gone.length;
    await reconcile(gone);
  });
  await admin.call("FCALL", ...fcallArgs("tenancy_recount", id, []));
  const after = await readTenantUsage(admin, id);
  const overLimit = after.limits !== undefined && (after.bytes > after.limits.maxBytes || after.keys > after.limits.maxKeys);
  return {
    ...after,
    bytesBefore: before.bytes,
    keysBefore: before.keys,
    scannedKeys,
    staleEntries,
    overLimit,
    durationMs: performance.now() - started,
  };
}

/** Deletes every key of the tenant, data and bookkeeping (admin; offboarding). Returns data keys deleted. */
export async function purgeTenantCache(admin: RedisCaller, tenantId: string): Promise<number> {
  const id = checkTenantId(tenantId);
  let deleted = 0;
  await scanKeys(admin, `${tenantPrefix(id)}*`, async (keys) => {
    deleted += (await admin.call("UNLINK", ...keys)) as number;
  });
  const q = quotaKeys(id);
  await admin.call("UNLINK", q.used, q.sizes, q.expiry, q.limit);
  return deleted;
}
