/** `tenancy tenant show <slug>`: the registry row and the tenant's row counts per table. */
import { countTenantRows } from "../../lib/tenant/registry";
import { CONNECTION_OPTIONS, withConnection } from "../connection";
import { table } from "../output";
import type { Command } from "../command";
import { findOrUsage, renderTenant, tenantRef } from "./common";

export const tenantShowCommand: Command = {
  words: ["tenant", "show"],
  summary: "show a tenant and its row count per tenant table",
  usage: "tenant show <slug>",
  options: { ...CONNECTION_OPTIONS },
  async run(ctx) {
    const ref = tenantRef(ctx);
    const shown = await withConnection(ctx, async (client) => {
      const tenant = await findOrUsage(client, ref);
      return { ...tenant, rows: await countTenantRows(client, tenant) };
    });
    ctx.out.result(
      shown,
      () =>
        `${renderTenant(shown)}\n${table(
          ["table", "rows"],
          shown.rows.map((r) => [r.table, r.rows]),
        )}`,
    );
  },
};
