/** `tenancy seed --rows-per-tenant <n>`: realistic data for every tenant, generated server-side (lib/tenant/seed.ts). */
import { seedAllTenants } from "../../lib/tenant/seed";
import { parseInteger, positionals, requiredFlag } from "../args";
import { CONNECTION_OPTIONS, withConnection } from "../connection";
import { table } from "../output";
import type { Command } from "../command";

/** Ten million trades per tenant is already far past what a demo or benchmark needs. */
export const MAX_ROWS_PER_TENANT = 10_000_000;

export const seedCommand: Command = {
  words: ["seed"],
  summary: "add realistic trades, positions, history, allocations and risk metrics to every tenant",
  usage: "seed --rows-per-tenant <n>",
  options: { ...CONNECTION_OPTIONS, "rows-per-tenant": { type: "string" } },
  async run(ctx) {
    positionals(ctx, []);
    const rowsPerTenant = parseInteger(requiredFlag(ctx, "rows-per-tenant"), "--rows-per-tenant", 1, MAX_ROWS_PER_TENANT);
    const started = Date.now();
    const results = await withConnection(ctx, (client) => seedAllTenants(client, rowsPerTenant, (message) => ctx.out.progress(message)));
    const seconds = (Date.now() - started) / 1000;
    ctx.out.result({ rowsPerTenant, tenants: results, seconds }, () => {
      if (results.length === 0) return "no tenants to seed (create one with `tenancy tenant create`)";
      const tables = Object.keys(results[0].rows);
      return [
        table(
          ["tenant", ...tables],
          results.map((r) => [r.tenant, ...tables.map((t) => r.rows[t])]),
        ),
        `seeded ${results.length} tenant(s) in ${seconds.toFixed(1)} s`,
      ].join("\n");
    });
  },
};
