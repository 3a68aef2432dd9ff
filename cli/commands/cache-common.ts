/**
 * What the `tenancy cache ...` commands share: the Redis admin connection from `--redis-url` or
 * `REDIS_URL` (validated before anything runs; messages never contain the password), and the
 * tenant lookup in the registry (PostgreSQL, `--database-url` / `DATABASE_URL`).
 */
import type Redis from "ioredis";
import type { ParseArgsConfig } from "node:util";
import { openRedis } from "../../lib/redis/client";
import { TenantId } from "../../lib/tenant/model";
import type { Tenant } from "../../lib/tenant/model";
import { CONNECTION_OPTIONS, serviceUrl, withConnection } from "../connection";
import type { CommandContext } from "../command";
import { findOrUsage, tenantRef } from "./tenant-show";

export const REDIS_OPTIONS = {
  ...CONNECTION_OPTIONS,
  "redis-url": { type: "string" },
} as const satisfies NonNullable<ParseArgsConfig["options"]>;

/** The admin URL from `--redis-url` or `REDIS_URL`; a UsageError naming the field otherwise. */
export function redisUrl(flags: CommandContext["flags"], env: NodeJS.ProcessEnv = process.env): string {
  return serviceUrl(flags, env, {
    flag: "redis-url",
    envVar: "REDIS_URL",
    service: "Redis",
    example: "redis://admin:password@host:port",
    expected: "redis://user:password@host:port",
    protocols: ["redis:", "rediss:"],
  });
}

/** The URL without its password, for messages. */
export function describeRedisUrl(url: string): string {
  const u = new URL(url);
  u.password = "";
  return u.toString();
}

/** True when a Redis is named (`--redis-url` or `REDIS_URL`): lifecycle commands then revoke cache access too. */
export function redisGiven(flags: CommandContext["flags"], env: NodeJS.ProcessEnv = process.env): boolean {
  return typeof flags["redis-url"] === "string" || !!env.REDIS_URL?.trim();
}

/** Opens the admin connection, runs `fn`, always closes it. */
export async function withRedis<T>(ctx: Pick<CommandContext, "flags">, fn: (admin: Redis) => Promise<T>): Promise<T> {
  const url = redisUrl(ctx.flags);
  let admin: Redis;
  try {
    admin = await openRedis(url, { connectTimeout: 5000 });
  } catch (err) {
    throw new Error(`could not connect to ${describeRedisUrl(url)}: ${(err as Error).message}`);
  }
  try {
    return await fn(admin);
  } finally {
    admin.disconnect();
  }
}

/** The tenant named by the `<slug>` positional (or a tenant id), from the registry. */
export async function lookupTenant(ctx: Pick<CommandContext, "args" | "flags" | "out">): Promise<Tenant> {
  const ref = tenantRef(ctx);
  return withConnection(ctx, (client) => findOrUsage(client, ref));
}

/** True when the positional is a tenant id (usable without the registry). */
export function isTenantId(ref: string): boolean {
  return TenantId.safeParse(ref).success;
}

/** Bytes in a human unit: 1536 → "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}
