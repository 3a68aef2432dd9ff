/**
 * `tenancy cache revoke <slug> --redis-url <url> [--purge]`: no new logins for the tenant's Redis
 * user, its open connections closed, the user deleted; `--purge` also deletes its keys. A tenant id
 * works without the registry (offboarding after the registry row is gone).
 */
import { revokeTenantCache } from "../../lib/redis/tenant-users";
import { positionals } from "../args";
import type { Command } from "../command";
import { isTenantId, lookupTenant } from "./common";
import { REDIS_OPTIONS, redisUrl, withRedis } from "../connection";

export const cacheRevokeCommand: Command = {
  words: ["cache", "revoke"],
  summary: "delete a tenant's Redis ACL user and close its connections (--purge: delete its keys too)",
  usage: "cache revoke <slug|tenant-id> --redis-url <url> [--purge]",
  options: { ...REDIS_OPTIONS, purge: { type: "boolean", default: false } },
  async run(ctx) {
    redisUrl(ctx.flags);
    const { slug: ref } = positionals(ctx, ["slug"]);
    const tenant = isTenantId(ref) ? { id: ref.toLowerCase(), slug: undefined } : await lookupTenant(ctx);
    const result = await withRedis(ctx, (admin) => revokeTenantCache(admin, tenant.id, { purge: ctx.flags.purge === true }));
    const name = tenant.slug ?? tenant.id;
    ctx.out.result({ slug: tenant.slug, ...result }, () =>
      [
        result.existed
          ? `revoked Redis user ${result.user} (tenant ${name}): ${result.connectionsClosed} open connection(s) closed`
          : `no Redis user ${result.user} (tenant ${name}): nothing to revoke`,
        result.keysDeleted === undefined ? "" : `purged ${result.keysDeleted} key(s)`,
      ]
        .filter(Boolean)
        .join("\n"),
    );
  },
};
