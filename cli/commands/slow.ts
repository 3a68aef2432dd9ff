/** `tenancy slow --since <interval> [--log-file <path>]`: slow statements per tenant, from the server log. */
import { readFile } from "node:fs/promises";
import { tenantsByLogTag } from "../../lib/observability/activity";
import { parseInterval, parseSlowLog, summariseSlow, type TenantSlowSummary } from "../../lib/observability/slow-log";
import type { Queryable } from "../../lib/db/client";
import { optionalFlag, requiredFlag } from "../args";
import { CONNECTION_OPTIONS, withConnection } from "../connection";
import { table, UsageError } from "../output";
import type { Command } from "../command";

export const slowCommand: Command = {
  words: ["slow"],
  summary: "slow statements per tenant since an interval ago, from the PostgreSQL log",
  usage: "slow --since <30s|15m|2h|1d> [--log-file <path>]",
  options: { ...CONNECTION_OPTIONS, since: { type: "string" }, "log-file": { type: "string" } },
  async run(ctx) {
    let sinceMs: number;
    try {
      sinceMs = parseInterval(requiredFlag(ctx, "since"));
    } catch (err) {
      if (err instanceof UsageError) throw err;
      throw new UsageError((err as Error).message, "--since");
    }
    const logFile = optionalFlag(ctx, "log-file");
    const since = new Date(Date.now() - sinceMs);
    const summary = await withConnection(ctx, async (client) => {
      const text = logFile ? await readLogFile(logFile) : await readServerLog(client);
      const tags = await tenantsByLogTag(client);
      return summariseSlow(parseSlowLog(text), since, new Map([...tags].map(([tag, t]) => [tag, t.slug])));
    });
    ctx.out.result({ since: since.toISOString(), tenants: summary }, () => renderSlow(summary));
  },
};

async function readLogFile(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read: ${(err as Error).message}`, "--log-file");
  }
}

/** The current server log through SQL (needs logging_collector and a superuser or pg_read_server_files). */
async function readServerLog(client: Queryable): Promise<string> {
  const { rows } = await client.query(`SELECT pg_current_logfile() AS file`);
  if (!rows[0]?.file) throw new UsageError("the server has no log collector running: pass the log file", "--log-file");
  const content = await client.query(`SELECT pg_read_file($1) AS text`, [rows[0].file]);
  return content.rows[0].text as string;
}

export function renderSlow(rows: TenantSlowSummary[]): string {
  if (!rows.length) return "no slow tenant statements";
  return table(
    ["tenant", "slow statements", "total ms", "max ms", "top statement (by total time)"],
    rows.map((r) => [r.tenant, r.count, r.totalMs, r.maxMs, r.topStatements[0]?.statement.slice(0, 70)]),
  );
}
