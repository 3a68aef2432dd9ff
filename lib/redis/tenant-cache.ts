/**
 * `withTenantCache(pool, tenantId, fn)`: the only way application code reaches the cache. `fn` gets
 * a `TenantCache` whose connection is authenticated as the tenant's ACL user, so a bug that builds
 * another tenant's key, scans, or subscribes to someone else's channel is refused by the server —
 * the cache's counterpart of RLS. Keys are built by lib/redis/keys.ts from validated parts; writes
 * go through the quota function.
 *
 * Two ways to get a tenant-authenticated connection (measured in bench/redis-tenant-cache.ts):
 *  - "connection-per-tenant" (default): one connection per tenant, opened on first use and kept
 *    (LRU, at most `maxTenantConnections` idle ones). Requests of the same tenant share it (Redis
 *    commands are independent; the TenantCache exposes no connection state such as WATCH/SELECT).
 *  - "auth-per-request": a pool of connections that log in as a permissionless pool user; each
 *    request takes one exclusively, AUTHs as the tenant (pipelined with the request's first
 *    command), and on release AUTHs back as the pool user before the connection is reused. If the
 *    tenant AUTH fails, the connection is still the powerless pool user: commands fail, they never
 *    run as the previous tenant. A reconnect also logs in as the pool user.
 *
 * After `fn` returns, the TenantCache refuses further use (a leaked reference cannot act for the
 * next tenant on a shared connection).
 */
import Redis from "ioredis";
import { openRedis, type RedisArg } from "./client";
import { checkTenantId, encodeKeyPart, tenantChannel, tenantKey, tenantUserName } from "./keys";
import { CacheQuotaExceededError, quotaDel, quotaSet, readTenantUsage, type CacheUsage } from "./quota";

export interface TenantCredentials {
  username: string;
  password: string;
}

/** Where the application gets a tenant's cache password (a secret store, a stack output...). */
export type CredentialSource = (tenantId: string) => TenantCredentials | Promise<TenantCredentials>;

export type TenantCacheMode = "connection-per-tenant" | "auth-per-request";

export interface TenantCachePoolOptions {
  /** `redis://host:port[/db]`; for "auth-per-request" it carries the pool user's credentials. */
  url: string;
  credentials: CredentialSource;
  /** @default "connection-per-tenant" */
  mode?: TenantCacheMode;
  /** connection-per-tenant: idle tenant connections kept open. @default 100 */
  maxTenantConnections?: number;
  /** auth-per-request: connections in the shared pool. @default 10 */
  poolSize?: number;
  /**
   * After the server refuses a tenant's write for its quota, refuse that tenant's writes locally for
   * this long (a `del` lifts it). A refused quota write costs the server several times a plain SET
   * (bench/redis-quota.ts), so an application loop retrying into a full quota would otherwise load
   * the server for everyone. 0 disables. @default 50
   */
  quotaBackoffMs?: number;
}

/** Per-pool memory of recent quota refusals, by tenant. */
class QuotaBackoff {
  readonly #until = new Map<string, { until: number; reply: string }>();
  constructor(readonly ms: number) {}

  check(tenantId: string): void {
    const entry = this.#until.get(tenantId);
    if (!entry) return;
    if (Date.now() < entry.until)
      throw new CacheQuotaExceededError(tenantId, `${entry.reply} (refused locally for ${this.ms} ms after the server refused)`);
    this.#until.delete(tenantId);
  }

  refused(tenantId: string, err: CacheQuotaExceededError): void {
    if (this.ms > 0) this.#until.set(tenantId, { until: Date.now() + this.ms, reply: err.reply });
  }

  lift(tenantId: string): void {
    this.#until.delete(tenantId);
  }
}

export class TenantCacheReleasedError extends Error {
  constructor(tenantId: string) {
    super(`TenantCache for tenant ${tenantId} used after withTenantCache returned`);
    this.name = "TenantCacheReleasedError";
  }
}

/** A key given as one part or as parts (joined by the separator, each validated). */
export type KeyParts = string | readonly string[];
const parts = (key: KeyParts): string[] => (typeof key === "string" ? [key] : [...key]);

export interface SetOptions {
  /** Expiry in seconds (fractions allowed, millisecond precision). */
  ttlSeconds?: number;
}

/** One tenant's view of the cache for the duration of a `withTenantCache` call. */
export class TenantCache {
  #released = false;

  constructor(
    readonly tenantId: string,
    private readonly redis: Redis,
    private readonly backoff: QuotaBackoff = new QuotaBackoff(0),
  ) {}

  private live(): Redis {
    if (this.#released) throw new TenantCacheReleasedError(this.tenantId);
    return this.redis;
  }

  /** @internal */
  release(): void {
    this.#released = true;
  }

  /** The full key for `parts` (validated). */
  key(key: KeyParts): string {
    return tenantKey(this.tenantId, ...parts(key));
  }

  async get(key: KeyParts): Promise<string | null> {
    return this.live().get(this.key(key));
  }

  /**
   * Quota-checked write; throws CacheQuotaExceededError when over the tenant's limit (also for
   * `quotaBackoffMs` after a refusal, without asking the server).
   */
  async set(key: KeyParts, value: string, options: SetOptions = {}): Promise<void> {
    const ttlMs = options.ttlSeconds === undefined ? 0 : Math.max(1, Math.round(options.ttlSeconds * 1000));
    const fullKey = this.key(key);
    const redis = this.live();
    this.backoff.check(this.tenantId);
    try {
      await quotaSet(redis, this.tenantId, fullKey, value, ttlMs);
    } catch (err) {
      if (err instanceof CacheQuotaExceededError) this.backoff.refused(this.tenantId, err);
      throw err;
    }
  }

  async del(...keys: KeyParts[]): Promise<number> {
    const fullKeys = keys.map((k) => this.key(k));
    const deleted = await quotaDel(this.live(), this.tenantId, fullKeys);
    this.backoff.lift(this.tenantId);
    return deleted;
  }

  async publish(channel: KeyParts, message: string): Promise<number> {
    return this.live().publish(tenantChannel(this.tenantId, ...parts(channel)), message);
  }

  async usage(): Promise<CacheUsage> {
    return readTenantUsage(this.live(), this.tenantId);
  }

  /**
   * Any other command, still bounded by the tenant's ACL (a key outside its namespace is refused by
   * the server). Writes sent this way bypass the quota function until the next audit accounts them.
   */
  async call(command: string, ...args: RedisArg[]): Promise<unknown> {
    return this.live().call(command, ...args);
  }
}

interface TenantConnection {
  redis: Redis;
  users: number;
}

/** Connections for `withTenantCache`. Close it with `close()`. */
export class TenantCachePool {
  readonly mode: TenantCacheMode;
  readonly #options: TenantCachePoolOptions;
  /** connection-per-tenant: tenant id → connection, in LRU order (oldest first). */
  readonly #tenants = new Map<string, TenantConnection>();
  /** connection-per-tenant: connections being opened (concurrent first requests share one). */
  readonly #opening = new Map<string, Promise<TenantConnection>>();
  /** auth-per-request: idle connections and waiters. */
  readonly #idle: Redis[] = [];
  readonly #all = new Set<Redis>();
  readonly #waiters: ((redis: Redis) => void)[] = [];
  #poolCredentials?: TenantCredentials;
  #closed = false;
  readonly #backoff: QuotaBackoff;

  constructor(options: TenantCachePoolOptions) {
    this.#options = options;
    this.mode = options.mode ?? "connection-per-tenant";
    this.#backoff = new QuotaBackoff(options.quotaBackoffMs ?? 50);
    if (this.mode === "auth-per-request") {
      const u = new URL(options.url);
      if (!u.username || !u.password) throw new Error("auth-per-request needs the pool user's credentials in the URL");
      this.#poolCredentials = { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
    }
  }

  private baseUrl(): string {
    const u = new URL(this.#options.url);
    u.username = "";
    u.password = "";
    return u.toString();
  }

  async #tenantConnection(tenantId: string): Promise<TenantConnection> {
    const existing = this.#tenants.get(tenantId);
    if (existing && existing.redis.status !== "end") {
      this.#tenants.delete(tenantId);
      this.#tenants.set(tenantId, existing); // most recently used last
      return existing;
    }
    const opening = this.#opening.get(tenantId);
    if (opening) return opening;
    const promise = this.#openTenantConnection(tenantId).finally(() => this.#opening.delete(tenantId));
    this.#opening.set(tenantId, promise);
    return promise;
  }

  async #openTenantConnection(tenantId: string): Promise<TenantConnection> {
    const { username, password } = await this.#options.credentials(tenantId);
    if (username !== tenantUserName(tenantId))
      throw new Error(`credentials for tenant ${tenantId} name user ${username}, expected ${tenantUserName(tenantId)}`);
    const redis = await openRedis(this.baseUrl(), { username, password, connectionName: `tenant:${tenantId}` });
    // A revoked user's connection is closed by the server: do not reconnect, open a new one next time.
    redis.on("end", () => {
      if (this.#tenants.get(tenantId)?.redis === redis) this.#tenants.delete(tenantId);
    });
    const conn: TenantConnection = { redis, users: 0 };
    this.#tenants.set(tenantId, conn);
    this.#evictIdle();
    return conn;
  }

  #evictIdle(): void {
    const max = this.#options.maxTenantConnections ?? 100;
    for (const [tenantId, conn] of this.#tenants) {
      if (this.#tenants.size <= max) break;
      if (conn.users > 0) continue;
      this.#tenants.delete(tenantId);
      conn.redis.disconnect();
    }
  }

  async #takeShared(): Promise<Redis> {
    const idle = this.#idle.pop();
    if (idle) return idle;
    if (this.#all.size < (this.#options.poolSize ?? 10)) {
      const { username, password } = this.#poolCredentials!;
      const redis = await openRedis(this.baseUrl(), { username, password, retryStrategy: (times) => (times > 3 ? null : 100 * times) });
      this.#all.add(redis);
      return redis;
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #returnShared(redis: Redis, broken: boolean): void {
    if (broken || this.#closed) {
      this.#all.delete(redis);
      redis.disconnect();
      return;
    }
    const waiter = this.#waiters.shift();
    if (waiter) waiter(redis);
    else this.#idle.push(redis);
  }

  /** @internal Runs `fn` with a TenantCache for `tenantId`. */
  async run<T>(tenantId: string, fn: (cache: TenantCache) => Promise<T>): Promise<T> {
    if (this.#closed) throw new Error("TenantCachePool is closed");
    const id = checkTenantId(tenantId);
    if (this.mode === "connection-per-tenant") {
      const conn = await this.#tenantConnection(id);
      conn.users++;
      const cache = new TenantCache(id, conn.redis, this.#backoff);
      try {
        return await fn(cache);
      } finally {
        cache.release();
        conn.users--;
        this.#evictIdle();
      }
    }
    const redis = await this.#takeShared();
    let broken = true;
    const cache = new TenantCache(id, redis, this.#backoff);
    try {
      const { username, password } = await this.#options.credentials(id);
      if (username !== tenantUserName(id))
        throw new Error(`credentials for tenant ${id} name user ${username}, expected ${tenantUserName(id)}`);
      // Not awaited: ioredis writes AUTH before fn's first command on this connection (one round trip).
      const auth = redis.call("AUTH", username, password);
      auth.catch(() => {});
      let result: T;
      try {
        result = await fn(cache);
      } finally {
        await auth; // an AUTH failure wins over the NOPERM errors it caused
      }
      broken = false;
      return result;
    } finally {
      cache.release();
      // Off the caller's path: the connection goes back to the pool only once it is the pool user again.
      void this.#logOutAndReturn(redis, broken);
    }
  }

  async #logOutAndReturn(redis: Redis, broken: boolean): Promise<void> {
    if (!broken || redis.status === "ready") {
      const pool = this.#poolCredentials!;
      broken = await redis.call("AUTH", pool.username, pool.password).then(
        () => false,
        () => true,
      );
    }
    this.#returnShared(redis, broken);
  }

  /** Closes every connection. */
  async close(): Promise<void> {
    this.#closed = true;
    const all = [...[...this.#tenants.values()].map((c) => c.redis), ...this.#all];
    this.#tenants.clear();
    this.#idle.length = 0;
    await Promise.all(all.map((r) => r.quit().catch(() => r.disconnect())));
  }
}

export function createTenantCachePool(options: TenantCachePoolOptions): TenantCachePool {
  return new TenantCachePool(options);
}

/** Runs `fn` with the tenant's cache; the TenantCache is unusable after `fn` settles. */
export function withTenantCache<T>(pool: TenantCachePool, tenantId: string, fn: (cache: TenantCache) => Promise<T>): Promise<T> {
  return pool.run(tenantId, fn);
}

export { encodeKeyPart };
