/**
 * `tenancy tenant login-role <slug> [--connection-limit N] [--statement-timeout-ms N] [--drop]`:
 * a dedicated tenant's own login role, tenant_<hex>_login (lib/enterprise/dedicated.ts): its schema only,
 * under RLS, with a connection limit and a statement timeout. The password, if any, is read from
 * TENANCY_LOGIN_PASSWORD (never a flag: flags end up in shell history). Needs a superuser session.
 */
import { dropTenantLoginRole, ensureTenantLoginRole } from "../../lib/enterprise/dedicated";
import { optionalFlag, parseInteger } from "../args";
import { CONNECTION_OPTIONS, withConnection } from "../connection";
import { UsageError } from "../output";
import type { Command } from "../command";
import { findOrUsage, tenantRef } from "./common";

export const tenantLoginRoleCommand: Command = {
  words: ["tenant", "login-role"],
  summary: "create/update (or --drop) a dedicated tenant's own login role: its schema only, connection limit, statement timeout",
  usage: "tenant login-role <slug> [--connection-limit N] [--statement-timeout-ms N] [--drop]",
  options: {
    ...CONNECTION_OPTIONS,
    "connection-limit": { type: "string" },
    "statement-timeout-ms": { type: "string" },
    drop: { type: "boolean", default: false },
  },
  async run(ctx) {
    const ref = tenantRef(ctx);
    const limit = optionalFlag(ctx, "connection-limit");
    const timeout = optionalFlag(ctx, "statement-timeout-ms");
    const drop = ctx.flags.drop === true;
    if (drop && (limit !== undefined || timeout !== undefined)) throw new UsageError("--drop takes no other option", "--drop");
    const options = {
      connectionLimit: limit === undefined ? undefined : parseInteger(limit, "--connection-limit", 1, 10_000),
      statementTimeoutMs: timeout === undefined ? undefined : parseInteger(timeout, "--statement-timeout-ms", 1, 24 * 3_600_000),
      password: process.env.TENANCY_LOGIN_PASSWORD || undefined,
    };
    const result = await withConnection(ctx, async (client) => {
      const tenant = await findOrUsage(client, ref);
      if (drop) return { tenant: tenant.slug, dropped: await dropTenantLoginRole(client, tenant) };
      if (tenant.placement !== "dedicated") throw new UsageError(`${tenant.slug} is not dedicated: graduate it first`, "slug");
      return { tenant: tenant.slug, ...(await ensureTenantLoginRole(client, tenant, options)) };
    });
    ctx.out.result(result, () =>
      "dropped" in result
        ? result.dropped
          ? `dropped the login role of ${result.tenant}`
          : `${result.tenant} has no login role`
        : `${result.role} is ready (${result.statements.length} statement(s)); it reaches only its schema, under RLS`,
    );
  },
};
