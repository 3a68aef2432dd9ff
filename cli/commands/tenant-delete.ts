/**
 * `tenancy tenant delete <slug> [--dry-run]`: offboarding. Deletes every row of the tenant, its
 * dedicated schema if any, and its registry entry, in one transaction, and reports what it removed
 * per table. `--dry-run` reports the counts that would be removed and changes nothing.
 */
import { countTenantRows, deleteTenant } from "../../lib/tenants";
import { CONNECTION_OPTIONS, withConnection } from "../connection";
import { table } from "../output";
import type { Command } from "../tenancy";
import { findOrUsage, tenantRef } from "./tenant-show";

export const tenantDeleteCommand: Command = {
  words: ["tenant", "delete"],
  summary: "offboard a tenant: delete all of its rows and its registry entry, report counts per table",
  usage: "tenant delete <slug> [--dry-run]",
  options: { ...CONNECTION_OPTIONS, "dry-run": { type: "boolean", default: false } },
  async run(ctx) {
    const ref = tenantRef(ctx);
    const dryRun = ctx.flags["dry-run"] === true;
    const result = await withConnection(ctx, async (client) => {
      const tenant = await findOrUsage(client, ref);
      if (dryRun) return { tenant, deleted: await countTenantRows(client, tenant), droppedSchema: undefined, dryRun };
      return { ...(await deleteTenant(client, tenant.id)), dryRun };
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
      ].join("\n"),
    );
  },
};
