/** `tenancy top [--watch <seconds>]`: which tenants are using the database right now. */
import { tenantActivity, type TenantActivity } from "../../lib/observability/activity";
import { optionalFlag, parseInteger } from "../args";
import { CONNECTION_OPTIONS, withConnection } from "../connection";
import { table } from "../output";
import type { Command } from "../command";

export const topCommand: Command = {
  words: ["top"],
  summary: "live activity per tenant: sessions, active statements, waits, longest running",
  usage: "top [--watch <seconds>] [--count <n>]",
  options: { ...CONNECTION_OPTIONS, watch: { type: "string" }, count: { type: "string" } },
  async run(ctx) {
    const watch = optionalFlag(ctx, "watch");
    const intervalSeconds = watch === undefined ? undefined : parseInteger(watch, "--watch", 1, 3600);
    const countFlag = optionalFlag(ctx, "count");
    const count = countFlag === undefined ? (intervalSeconds ? Infinity : 1) : parseInteger(countFlag, "--count", 1, 1_000_000);
    await withConnection(ctx, async (client) => {
      for (let i = 0; i < count; i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, (intervalSeconds ?? 1) * 1000));
        const rows = await tenantActivity(client);
        const at = new Date().toISOString();
        ctx.out.result({ at, tenants: rows }, () => `${at}\n${renderTop(rows)}`);
      }
    });
  },
};

export function renderTop(rows: TenantActivity[]): string {
  if (!rows.length) return "no tenant sessions";
  return table(
    ["tenant", "tier", "sessions", "active", "waiting", "longest (s)", "longest statement"],
    rows.map((r) => [r.tenant, r.tier, r.sessions, r.active, r.waiting, r.longestRunningSeconds.toFixed(1), r.longestQuery?.slice(0, 60)]),
  );
}
