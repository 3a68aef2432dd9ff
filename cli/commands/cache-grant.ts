/**
 * `tenancy cache grant <slug> --redis-url <url>`: creates or updates the tenant's Redis ACL user
 * (`tenant_<id>`) and its cache quota (the tier's defaults unless overridden). A new user's
 * password (or a rotated one) is printed exactly once; only its hash is stored, in Redis.
 * Refused (exit 1, nothing written) on a server whose `default` user is on: a tenant would escape
 * its fence with RESET / AUTH default (lib/redis/tenant-users.ts RedisDefaultUserOnError).
 */
import { cacheLimitsForTier } from "../../lib/redis/quota";
import { grantTenantCache, RedisDefaultUserOnError } from "../../lib/redis/tenant-users";
import { optionalFlag, parseInteger } from "../args";
import { printCommandError, table, UsageError } from "../output";
import type { Command } from "../command";
import { formatBytes, lookupTenant } from "./common";
import { REDIS_OPTIONS, redisUrl, withRedis } from "../connection";

export const cacheGrantCommand: Command = {
  words: ["cache", "grant"],
  summary: "create or update a tenant's Redis ACL user and cache quota; prints a new password once",
  usage: "cache grant <slug> --redis-url <url> [--max-bytes N] [--max-keys N] [--rotate-password] [--cluster]",
  options: {
    ...REDIS_OPTIONS,
    "max-bytes": { type: "string" },
    "max-keys": { type: "string" },
    "rotate-password": { type: "boolean", default: false },
    cluster: { type: "boolean", default: false },
  },
  async run(ctx) {
    redisUrl(ctx.flags); // validate before touching the registry
    const maxBytesFlag = optionalFlag(ctx, "max-bytes");
    const maxKeysFlag = optionalFlag(ctx, "max-keys");
    const maxBytes = maxBytesFlag === undefined ? undefined : parseInteger(maxBytesFlag, "--max-bytes", 0, Number.MAX_SAFE_INTEGER);
    const maxKeys = maxKeysFlag === undefined ? undefined : parseInteger(maxKeysFlag, "--max-keys", 0, Number.MAX_SAFE_INTEGER);
    const tenant = await lookupTenant(ctx);
    if (tenant.status !== "active")
      throw new UsageError(`tenant ${tenant.slug} is ${tenant.status}: resume it before granting cache access`, "slug");
    const defaults = cacheLimitsForTier(tenant.tier);
    const limits = { maxBytes: maxBytes ?? defaults.maxBytes, maxKeys: maxKeys ?? defaults.maxKeys };
    let result;
    try {
      result = await withRedis(ctx, (admin) =>
        grantTenantCache(admin, tenant.id, {
          limits,
          rotatePassword: ctx.flags["rotate-password"] === true,
          acl: { cluster: ctx.flags.cluster === true },
        }),
      );
    } catch (err) {
      // The server's default user is on: nothing was written, and the operator must decide.
      if (!(err instanceof RedisDefaultUserOnError)) throw err;
      printCommandError("tenancy", ctx.out.json, { kind: "refused", message: err.message });
      return 1;
    }
    ctx.out.result({ slug: tenant.slug, tier: tenant.tier, ...result }, () =>
      [
        `${result.created ? "created" : "updated"} Redis user ${result.user} for tenant ${tenant.slug} (${tenant.tier})`,
        table(
          ["field", "value"],
          [
            ["user", result.user],
            ["password", result.password ?? "(unchanged; --rotate-password to replace it)"],
            ["max bytes", `${result.limits.maxBytes} (${formatBytes(result.limits.maxBytes)})`],
            ["max keys", result.limits.maxKeys],
            ["key prefix", `tenant:{${tenant.id}}:`],
          ],
        ),
        result.password ? "The password is shown once and stored nowhere but as a hash in Redis: hand it to the application now." : "",
      ]
        .filter(Boolean)
        .join("\n"),
    );
    return 0;
  },
};
