/** `tenancy audit`: lints the live database for isolation (lib/audit/isolation-audit.ts). Exit 0 when clean, 1 with findings. */
import { auditDatabase, type Finding } from "../../lib/audit/isolation-audit";
import { positionals } from "../args";
import { CONNECTION_OPTIONS, withConnection } from "../connection";
import { table } from "../output";
import type { Command } from "../command";

export const auditCommand: Command = {
  words: ["audit"],
  summary: "lint the database for tenant isolation (RLS, policies, roles, views, functions, grants, server version)",
  usage: "audit",
  options: { ...CONNECTION_OPTIONS },
  async run(ctx) {
    positionals(ctx, []);
    const { findings, server } = await withConnection(ctx, async (client) => ({
      findings: await auditDatabase(client),
      server: (await client.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0].v,
    }));
    ctx.out.result({ clean: findings.length === 0, server, findings }, () => renderFindings(findings, server));
    return findings.length === 0 ? 0 : 1;
  },
};

export function renderFindings(findings: Finding[], server: string): string {
  if (findings.length === 0) return `clean: no isolation findings (PostgreSQL ${server})`;
  const counts = findings.reduce<Record<string, number>>((acc, f) => ({ ...acc, [f.severity]: (acc[f.severity] ?? 0) + 1 }), {});
  return [
    table(
      ["severity", "check", "object", "finding / fix"],
      findings.map((f) => [f.severity, f.check, f.object, `${wrap(f.message)}\nfix: ${wrap(f.fix)}`]),
    ),
    `${findings.length} finding(s): ${Object.entries(counts)
      .map(([s, n]) => `${n} ${s}`)
      .join(", ")} (PostgreSQL ${server})`,
  ].join("\n");
}

/** Wraps long text at spaces so the table stays readable in a terminal. */
function wrap(text: string, width = 80): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && line.length + word.length + 1 > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.join("\n");
}
