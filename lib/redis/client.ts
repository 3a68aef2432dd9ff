/**
 * The subset of a Redis client the cache library needs, so the same code runs with an ioredis
 * connection, a cluster client or anything else that can send a command (the Redis counterpart of
 * lib/db/client.ts `Queryable`). ioredis' `Redis` and `Cluster` satisfy it.
 */
import Redis, { type RedisOptions } from "ioredis";

export type RedisArg = string | number | Buffer;

export interface RedisCaller {
  call(command: string, ...args: RedisArg[]): Promise<unknown>;
}

/** A Redis error reply's text (ioredis `ReplyError`), or undefined for anything else. */
export function replyErrorMessage(err: unknown): string | undefined {
  return err instanceof Error && err.name === "ReplyError" ? err.message : undefined;
}

/**
 * Opens a connection from a `redis://[user:password@]host:port[/db]` URL. Connections as a tenant
 * cannot run INFO, so the ready check is off; errors go to an `error` listener instead of crashing
 * the process (an unhandled `error` event on an EventEmitter throws).
 */
export function connectRedis(url: string, options: RedisOptions = {}): Redis {
  const redis = new Redis(url, { enableReadyCheck: false, maxRetriesPerRequest: 1, ...options });
  redis.on("error", () => {});
  return redis;
}

/**
 * Connects and waits until the connection is usable. A failed login rejects with the server's
 * error (e.g. `WRONGPASS ...`) rather than ioredis' generic "Connection is closed", and does not
 * retry: a wrong password stays wrong.
 */
export async function openRedis(url: string, options: RedisOptions = {}): Promise<Redis> {
  let lastError: Error | undefined;
  const redis = connectRedis(url, { retryStrategy: () => null, ...options, lazyConnect: true });
  const capture = (err: Error) => (lastError = err);
  redis.on("error", capture);
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw lastError ?? err;
  } finally {
    redis.off("error", capture);
  }
  return redis;
}

/** Parses a redis:// URL into the parts ioredis and the CLI report on (the password is never echoed). */
export function describeRedisUrl(url: string): { host: string; port: number; user?: string; db: number } {
  const u = new URL(url);
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") throw new Error(`expected a redis:// or rediss:// URL, got ${u.protocol}`);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    user: u.username ? decodeURIComponent(u.username) : undefined,
    db: Number(u.pathname.replace(/^\//, "") || 0),
  };
}
