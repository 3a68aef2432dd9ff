/** `tenancy tenant create <slug> --tier <starter|pro|enterprise> --region <eu|us> [--name ...]` */
import { createTenant, ResidencyMismatchError, TenantExistsError } from "../../lib/tenant/registry";
import { ResidencyRegion, TenantDisplayName, TenantSlug, Tier } from "../../lib/tenant/model";
import { optionalFlag, parseField, positionals, requiredFlag } from "../args";
import { CONNECTION_OPTIONS, withConnection } from "../connection";
import { UsageError } from "../output";
import type { Command } from "../command";
import { renderTenant } from "./common";

export const tenantCreateCommand: Command = {
  words: ["tenant", "create"],
  summary: "register a tenant (shared placement, active)",
  usage: "tenant create <slug> --tier <starter|pro|enterprise> --region <eu|us> [--name NAME]",
  options: { ...CONNECTION_OPTIONS, tier: { type: "string" }, region: { type: "string" }, name: { type: "string" } },
  async run(ctx) {
    const { slug } = positionals(ctx, ["slug"]);
    const name = optionalFlag(ctx, "name");
    const input = {
      slug: parseField(TenantSlug, slug, "slug"),
      tier: parseField(Tier, requiredFlag(ctx, "tier"), "--tier"),
      region: parseField(ResidencyRegion, requiredFlag(ctx, "region"), "--region"),
      displayName: name === undefined ? undefined : parseField(TenantDisplayName, name, "--name"),
    };
    const tenant = await withConnection(ctx, async (client) => {
      try {
        return await createTenant(client, input);
      } catch (err) {
        // Both are refusals of the input; the insert ran in a transaction that rolled back.
        if (err instanceof TenantExistsError) throw new UsageError(err.message, "slug");
        if (err instanceof ResidencyMismatchError) throw new UsageError(err.message, "--region");
        throw err;
      }
    });
    ctx.out.result(tenant, () => `created tenant ${tenant.slug}\n${renderTenant(tenant)}`);
  },
};
