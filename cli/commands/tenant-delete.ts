/**
 * `tenancy tenant delete <slug> [--dry-run] [--redis-url <url>]`: offboarding. Deletes every row
 * of the tenant, its dedicated schema if any, and its registry entry, in one transaction, and
 * reports what it removed per table. `--dry-run` reports the counts that would be removed and
 * changes nothing. With a Redis (`--redis-url` or `REDIS_URL`) the tenant's cache user is revoked
 * (open connections cut) and its keys purged first, so credentials die before the data does; an
 * unreachable Redis stops the command before the database is touched.
 */
import { revokeTenantCache, type RevokeResult } from "../../lib/redis/tenant-users";
import { countTenantRows, deleteTenant } from "../../lib/tenant/registry";
import { withConnection, REDIS_OPTIONS, redisGiven, withRedis } from "../connection";
import { table } from "../output";
import type { Command } from "../command";
import { findOrUsage, tenantRef } from "./common";

export const tenantDeleteCommand: Command = {
  words: ["tenant", "delete"],
  summary: "offboard a tenant: delete all of its rows and its registry entry, report counts per table",
  usage: "tenant delete <slug> [--dry-run] [--redis-url <url>]",
  options: { ...REDIS_OPTIONS, "dry-run": { type: "boolean", default: false } },
  async run(ctx) {
    const ref = tenantRef(ctx);
    const dryRun = ctx.flags["dry-run"] === true;
    const result = await withConnection(ctx, async (client) => {
      const tenant = await findOrUsage(client, ref);
      if (dryRun) return { tenant, deleted: await countTenantRows(client, tenant), droppedSchema: undefined, dryRun };
      let cache: RevokeResult | undefined;
      if (redisGiven(ctx.flags)) cache = await withRedis(ctx, (admin) => revokeTenantCache(admin, tenant.id, { purge: true }));
      return { ...(await deleteTenant(client, tenant.id)), cache, dryRun };
    });
    const total = result.deleted.reduce((sum, d) => sum + d.rows, 0);
    ctx.out.result(result, () =>
      [
        `${dryRun ? "would delete" : "deleted"} tenant ${result.tenant.slug} (${result.tenant.id}): ${total} row(s)`,
        table(
          ["table", dryRun ? "rows to delete" : "rows deleted"],
          result.deleted.map((d) => [d.table, d.rows]),
        ),
        ...(result.droppedSchema ? [`dropped schema ${result.droppedSchema}`] : []),
        ...("droppedLoginRole" in result && result.droppedLoginRole ? [`dropped login role ${result.droppedLoginRole}`] : []),
        ...("cache" in result && result.cache
          ? [
              `revoked cache user ${result.cache.user} (${result.cache.connectionsClosed} connection(s) cut, ${result.cache.keysDeleted ?? 0} key(s) purged)`,
            ]
          : []),
      ].join("\n"),
    );
  },
};
