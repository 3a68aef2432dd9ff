/**
 * A real redis-server per test file (started on a free loopback port, stopped after), an admin
 * connection, and fixed tenant ids. B's id shares A's first eight hex digits on purpose, so a key
 * pattern that does not terminate the tenant segment is caught by the tests.
 */
import type Redis from "ioredis";
import { afterAll, beforeAll } from "vitest";
import { startRedis, type RedisServer, type RedisServerOptions } from "../../lib/local/redis-server";
import { connectRedis, openRedis } from "../../lib/redis/client";

export const TENANT_A = "0b5e8f3c-1d2a-4c8e-9f1a-2b3c4d5e6f70";
export const TENANT_B = "0b5e8f3c-7777-4bbb-8bbb-bbbbbbbbbbbb";
export const TENANT_C = "c0c0c0c0-0000-4ccc-8ccc-cccccccccccc";

export interface TestRedis {
  server: RedisServer;
  admin: Redis;
  /** A connection as `user` (closed by the harness after the file). */
  connect(user: string, password: string): Promise<Redis>;
  /** `redis://127.0.0.1:<port>` without credentials. */
  url: string;
}

/** Starts a redis-server for this test file; the returned object is filled in `beforeAll`. */
export function useRedisServer(options: RedisServerOptions = {}): TestRedis {
  const opened: Redis[] = [];
  const ctx = {} as TestRedis;
  beforeAll(async () => {
    ctx.server = await startRedis(options);
    ctx.admin = connectRedis(ctx.server.adminUrl);
    opened.push(ctx.admin);
    ctx.url = `redis://127.0.0.1:${ctx.server.port}`;
    ctx.connect = async (user, password) => {
      const redis = await openRedis(ctx.url, { username: user, password });
      opened.push(redis);
      return redis;
    };
  });
  afterAll(async () => {
    for (const r of opened) r.disconnect();
    await ctx.server?.stop({ removeDir: true });
  });
  return ctx;
}

/** The error message of a rejected promise, or undefined when it resolved. */
export async function errorOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
