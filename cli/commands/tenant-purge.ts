/**
 * `tenancy tenant purge <slug> [--dry-run] [--redis-url <url>]`: the end of an offboarding. Removes an
 * offboarded tenant's rows, dedicated schema, login role and registry entry (and, with a Redis, its
 * cache user and keys) — refused with exit 2, changing nothing, unless the tenant was offboarded
 * (`tenancy tenant delete`) and its purge date has passed by the database's clock (docs/data-safety.md).
 */
import { revokeTenantCache, type RevokeResult } from "../../lib/redis/tenant-users";
import { countTenantRows, PurgeRefusedError, purgeTenant, type TableCount } from "../../lib/tenant/registry";
import type { Tenant } from "../../lib/tenant/model";
import { withConnection, REDIS_OPTIONS, redisGiven, withRedis } from "../connection";
import { table, UsageError } from "../output";
import type { Command } from "../command";
import { findOrUsage, tenantRef } from "./common";

interface PurgeResult {
  tenant: Tenant;
  dryRun: boolean;
  deleted: TableCount[];
  droppedSchema?: string;
  droppedLoginRole?: string;
  cache?: RevokeResult;
}

export const tenantPurgeCommand: Command = {
  words: ["tenant", "purge"],
  summary: "purge an offboarded tenant after its retention window: rows, schema, login role, registry entry",
  usage: "tenant purge <slug> [--dry-run] [--redis-url <url>]",
  options: { ...REDIS_OPTIONS, "dry-run": { type: "boolean", default: false } },
  async run(ctx) {
    const ref = tenantRef(ctx);
    const dryRun = ctx.flags["dry-run"] === true;
    const result: PurgeResult = await withConnection(ctx, async (client) => {
      const tenant = await findOrUsage(client, ref);
      try {
        if (dryRun) {
          if (tenant.status !== "offboarded")
            throw new PurgeRefusedError(`tenant "${tenant.slug}" is ${tenant.status}, not offboarded`, tenant);
          return { tenant, dryRun, deleted: await countTenantRows(client, tenant) };
        }
        const purged = await purgeTenant(client, tenant.id);
        let cache: RevokeResult | undefined;
        if (redisGiven(ctx.flags)) cache = await withRedis(ctx, (admin) => revokeTenantCache(admin, tenant.id, { purge: true }));
        return { ...purged, dryRun, cache };
      } catch (err) {
        if (err instanceof PurgeRefusedError) throw new UsageError(err.message, "slug");
        throw err;
      }
    });
    const total = result.deleted.reduce((sum, d) => sum + d.rows, 0);
    ctx.out.result(result, () =>
      [
        `${dryRun ? "would purge" : "purged"} tenant ${result.tenant.slug} (${result.tenant.id}): ${total} row(s)`,
        table(
          ["table", dryRun ? "rows to delete" : "rows deleted"],
          result.deleted.map((d) => [d.table, d.rows]),
        ),
        ...(result.droppedSchema ? [`dropped schema ${result.droppedSchema}`] : []),
        ...(result.droppedLoginRole ? [`dropped login role ${result.droppedLoginRole}`] : []),
        ...(result.cache ? [`removed cache user ${result.cache.user} and ${result.cache.keysDeleted ?? 0} key(s)`] : []),
      ].join("\n"),
    );
  },
};
