/**
 * `tenancy cache usage [<slug>] --redis-url <url> [--audit] [--enforce]`: accounted cache usage
 * against each tenant's quota. Without `<slug>`: every tenant that has a Redis user (slugs from the
 * registry when a database is given). `--audit` recomputes usage from the server (SCAN as admin);
 * `--enforce` also freezes tenants over their limit and thaws those back under — run it on a
 * schedule. `--audit` also checks that the server's `default` user is off (every tenant fence relies
 * on it: RESET re-authenticates as `default`) and says so loudly when it is not. Exit 1 when a
 * tenant is over its limit or the default user is on.
 */
import type { Queryable } from "../../lib/db/client";
import { tenantIdFromUserName } from "../../lib/redis/keys";
import { auditTenantCache, readTenantUsage, type AuditResult, type CacheUsage } from "../../lib/redis/quota";
import { enforceTenantQuota, isTenantFrozen, readDefaultUser, RedisDefaultUserOnError } from "../../lib/redis/tenant-users";
import { listTenants } from "../../lib/tenant/registry";
import { withConnection, REDIS_OPTIONS, redisUrl, withRedis } from "../connection";
import { table, UsageError } from "../output";
import type { Command, CommandContext } from "../command";
import { formatBytes, isTenantId, lookupTenant } from "./common";

interface UsageRow extends CacheUsage {
  slug?: string;
  frozen: boolean;
  overLimit: boolean;
  audit?: Pick<AuditResult, "bytesBefore" | "keysBefore" | "scannedKeys" | "staleEntries" | "durationMs">;
  action?: "froze" | "thawed";
}

function hasDatabase(ctx: Pick<CommandContext, "flags">): boolean {
  return typeof ctx.flags["database-url"] === "string" || Boolean(process.env.DATABASE_URL);
}

export const cacheUsageCommand: Command = {
  words: ["cache", "usage"],
  summary: "cache usage and quota per tenant (--audit: recompute from the server; --enforce: freeze/thaw over-quota tenants)",
  usage: "cache usage [<slug>] --redis-url <url> [--audit] [--enforce]",
  options: { ...REDIS_OPTIONS, audit: { type: "boolean", default: false }, enforce: { type: "boolean", default: false } },
  async run(ctx) {
    redisUrl(ctx.flags);
    if (ctx.args.length > 1) throw new UsageError(`unexpected arguments ${ctx.args.slice(1).join(" ")}`, "arguments");
    const enforce = ctx.flags.enforce === true;
    const audit = enforce || ctx.flags.audit === true;

    // Which tenants: one (slug via the registry, or an id), or every tenant user on the server.
    let targets: { id: string; slug?: string }[] | undefined;
    if (ctx.args.length === 1) {
      const ref = ctx.args[0];
      targets = [isTenantId(ref) ? { id: ref.toLowerCase() } : await lookupTenant(ctx)];
    }
    const slugs = new Map<string, string>();
    if (!targets && hasDatabase(ctx)) {
      for (const t of await withConnection(ctx, (client: Queryable) => listTenants(client))) slugs.set(t.id, t.slug);
    }

    let defaultUser: { on: boolean; flags: string[] } | undefined;
    const rows = await withRedis(ctx, async (admin) => {
      // The audit also checks the one server setting every fence relies on: `default` off.
      if (audit) defaultUser = await readDefaultUser(admin);
      const ids =
        targets ??
        ((await admin.call("ACL", "USERS")) as string[])
          .flatMap((u) => tenantIdFromUserName(u) ?? [])
          .map((id) => ({ id, slug: slugs.get(id) }));
      const result: UsageRow[] = [];
      for (const { id, slug } of ids) {
        if (audit) {
          const {
            audit: a,
            frozen,
            action,
          } = enforce
            ? await enforceTenantQuota(admin, id)
            : { audit: await auditTenantCache(admin, id), frozen: await isTenantFrozen(admin, id), action: undefined };
          result.push({
            tenantId: a.tenantId,
            slug,
            bytes: a.bytes,
            keys: a.keys,
            limits: a.limits,
            frozen,
            overLimit: a.overLimit,
            audit: {
              bytesBefore: a.bytesBefore,
              keysBefore: a.keysBefore,
              scannedKeys: a.scannedKeys,
              staleEntries: a.staleEntries,
              durationMs: Math.round(a.durationMs),
            },
            action,
          });
        } else {
          const u = await readTenantUsage(admin, id);
          const overLimit = u.limits !== undefined && (u.bytes > u.limits.maxBytes || u.keys > u.limits.maxKeys);
          result.push({ ...u, slug, frozen: await isTenantFrozen(admin, id), overLimit });
        }
      }
      return result;
    });

    const unsafe = defaultUser?.on
      ? new RedisDefaultUserOnError(defaultUser.flags).message.replace(/ Refusing to grant tenant access here\./, "")
      : undefined;
    if (unsafe) ctx.out.progress(`UNSAFE SERVER: ${unsafe}`);
    ctx.out.result(
      { audited: audit, enforced: enforce, ...(defaultUser ? { server: { defaultUser } } : {}), tenants: rows },
      () =>
        (unsafe ? `UNSAFE SERVER: ${unsafe}\n` : "") +
        (rows.length === 0
          ? "no tenant Redis users"
          : table(
              ["tenant", "bytes", "max bytes", "used", "keys", "max keys", "state", ...(audit ? ["audit drift", "stale"] : [])],
              rows.map((r) => [
                r.slug ?? r.tenantId,
                formatBytes(r.bytes),
                r.limits ? formatBytes(r.limits.maxBytes) : "no quota",
                r.limits && r.limits.maxBytes > 0 ? `${((100 * r.bytes) / r.limits.maxBytes).toFixed(1)}%` : "",
                r.keys,
                r.limits?.maxKeys ?? "",
                [r.overLimit ? "OVER LIMIT" : "ok", r.frozen ? "frozen" : "", r.action ?? ""].filter(Boolean).join(", "),
                ...(r.audit
                  ? [`${r.bytes - r.audit.bytesBefore >= 0 ? "+" : ""}${r.bytes - r.audit.bytesBefore} B`, r.audit.staleEntries]
                  : []),
              ]),
            )),
    );
    return unsafe || rows.some((r) => r.overLimit) ? 1 : 0;
  },
};
