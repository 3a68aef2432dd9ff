/** `tenancy tenant show <slug>`: the registry row and the tenant's row counts per table. */
import { countTenantRows, requireTenant, TenantNotFoundError } from "../../lib/tenant/registry";
import type { Tenant } from "../../lib/tenant/model";
import { positionals } from "../args";
import { CONNECTION_OPTIONS, withConnection } from "../connection";
import { table, UsageError } from "../output";
import type { Command, CommandContext } from "../command";
import type { Queryable } from "../../lib/db/client";
import { TenantId, TenantSlug } from "../../lib/tenant/model";

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

/** The one positional of the tenant commands: a slug (or a tenant id), validated before connecting. */
export function tenantRef(ctx: Pick<CommandContext, "args">): string {
  const { slug } = positionals(ctx, ["slug"]);
  if (TenantId.safeParse(slug).success) return slug.toLowerCase();
  const parsed = TenantSlug.safeParse(slug);
  if (!parsed.success) throw new UsageError(parsed.error.issues[0]?.message ?? "is invalid", "slug");
  return parsed.data;
}

/** The tenant, or a UsageError naming the slug when there is none. */
export async function findOrUsage(client: Queryable, ref: string): Promise<Tenant> {
  try {
    return await requireTenant(client, ref);
  } catch (err) {
    if (err instanceof TenantNotFoundError) throw new UsageError(`no tenant "${ref}"`, "slug");
    throw err;
  }
}

export function renderTenant(t: Tenant): string {
  return table(
    ["field", "value"],
    [
      ["slug", t.slug],
      ["id", t.id],
      ["name", t.displayName],
      ["tier", t.tier],
      ["region", t.region],
      ["placement", t.placement],
      ["status", t.status],
      ["created", t.createdAt.toISOString()],
      ["updated", t.updatedAt.toISOString()],
    ],
  );
}
