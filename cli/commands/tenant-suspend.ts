/**
 * `tenancy tenant suspend <slug>` and `tenancy tenant resume <slug>`. A suspended tenant keeps its
 * rows but reads and writes none of them: enter_tenant() refuses it, and its dedicated login role,
 * if it has one, is NOLOGIN with its sessions cut (docs/data-layer.md). With a Redis
 * (`--redis-url` or `REDIS_URL`), suspend also revokes the tenant's cache user and cuts its open
 * connections (its keys stay); after resume, `tenancy cache grant` issues new credentials.
 */
import { revokeTenantCache, type RevokeResult } from "../../lib/redis/tenant-users";
import { setTenantStatus, type TenantStatusChange } from "../../lib/tenant/registry";
import type { TenantStatus } from "../../lib/tenant/model";
import { CONNECTION_OPTIONS, withConnection, REDIS_OPTIONS, redisGiven, withRedis } from "../connection";
import type { Command } from "../command";
import { findOrUsage, renderTenant, tenantRef } from "./common";

function statusCommand(verb: "suspend" | "resume", status: Exclude<TenantStatus, "offboarded">, summary: string): Command {
  return {
    words: ["tenant", verb],
    summary,
    usage: `tenant ${verb} <slug>${verb === "suspend" ? " [--redis-url <url>]" : ""}`,
    options: verb === "suspend" ? { ...REDIS_OPTIONS } : { ...CONNECTION_OPTIONS },
    async run(ctx) {
      const ref = tenantRef(ctx);
      const { change, cache } = await withConnection(ctx, async (client) => {
        const before = await findOrUsage(client, ref);
        let cache: RevokeResult | undefined;
        if (verb === "suspend" && redisGiven(ctx.flags)) cache = await withRedis(ctx, (admin) => revokeTenantCache(admin, before.id));
        return { change: await setTenantStatus(client, before.id, status), cache };
      });
      ctx.out.result({ ...change.tenant, loginRole: change.loginRole, cache }, () => describe(change, cache));
    },
  };
}

function describe({ tenant, loginRole }: TenantStatusChange, cache: RevokeResult | undefined): string {
  const lines = [`tenant ${tenant.slug} is ${tenant.status}`];
  if (loginRole)
    lines.push(
      loginRole.canLogin
        ? `login role ${loginRole.role} may log in again`
        : `login role ${loginRole.role} is NOLOGIN: ${loginRole.sessionsClosed} open session(s) cut`,
    );
  if (cache) lines.push(`revoked cache user ${cache.user}: ${cache.connectionsClosed} open connection(s) cut`);
  if (tenant.status === "active") lines.push("cache access, if revoked at suspension, is restored with `tenancy cache grant`");
  return [...lines, renderTenant(tenant)].join("\n");
}

export const tenantSuspendCommand = statusCommand(
  "suspend",
  "suspended",
  "suspend a tenant: its rows stay; enter_tenant refuses it and its login role is locked",
);
export const tenantResumeCommand = statusCommand("resume", "active", "resume a suspended tenant (or an offboarded one before its purge)");
