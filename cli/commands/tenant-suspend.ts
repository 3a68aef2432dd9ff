/**
 * `tenancy tenant suspend <slug>` and `tenancy tenant resume <slug>`. A suspended tenant keeps its
 * rows but reads and writes none of them: tenancy.current_tenant_id() is NULL for it, so every
 * policy matches nothing, and enter_tenant() refuses it (docs/data-layer.md).
 */
import { setTenantStatus } from "../../lib/tenants";
import type { TenantStatus } from "../../lib/tenant";
import { CONNECTION_OPTIONS, withConnection } from "../connection";
import type { Command } from "../tenancy";
import { findOrUsage, renderTenant, tenantRef } from "./tenant-show";

function statusCommand(verb: "suspend" | "resume", status: TenantStatus, summary: string): Command {
  return {
    words: ["tenant", verb],
    summary,
    usage: `tenant ${verb} <slug>`,
    options: { ...CONNECTION_OPTIONS },
    async run(ctx) {
      const ref = tenantRef(ctx);
      const tenant = await withConnection(ctx, async (client) => {
        const before = await findOrUsage(client, ref);
        return setTenantStatus(client, before.id, status);
      });
      ctx.out.result(tenant, () => `tenant ${tenant.slug} is ${tenant.status}\n${renderTenant(tenant)}`);
    },
  };
}

export const tenantSuspendCommand = statusCommand("suspend", "suspended", "suspend a tenant: its rows stay, every query of it sees none");
export const tenantResumeCommand = statusCommand("resume", "active", "resume a suspended tenant");
