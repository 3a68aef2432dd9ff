/** `tenancy tenant list` */
import { listTenants } from "../../lib/tenant/registry";
import { positionals } from "../args";
import { CONNECTION_OPTIONS, withConnection } from "../connection";
import { table } from "../output";
import type { Command } from "../command";

export const tenantListCommand: Command = {
  words: ["tenant", "list"],
  summary: "list every tenant of the registry",
  usage: "tenant list",
  options: { ...CONNECTION_OPTIONS },
  async run(ctx) {
    positionals(ctx, []);
    const tenants = await withConnection(ctx, (client) => listTenants(client));
    ctx.out.result(tenants, () =>
      tenants.length === 0
        ? "no tenants"
        : table(
            ["slug", "id", "name", "tier", "region", "placement", "status", "created"],
            tenants.map((t) => [t.slug, t.id, t.displayName, t.tier, t.region, t.placement, t.status, t.createdAt.toISOString()]),
          ),
    );
  },
};
