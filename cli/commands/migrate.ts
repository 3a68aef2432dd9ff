/**
 * `tenancy migrate [--region eu|us] [--tenant-context setting|verified] [--dry-run]`: brings the
 * database to the design (lib/schema/migrate.ts). A database it creates is strict (ADR-005);
 * `--tenant-context verified` switches an existing one without downtime once its clients send proofs
 * (refused while it has tenants and no active key); `setting` rolls it back.
 */
import { DatabaseRegionError, migrate, TenantContextSwitchError, type MigrationReport } from "../../lib/schema/migrate";
import { ResidencyRegion } from "../../lib/tenant/model";
import { z } from "zod";
import { optionalFlag, parseField, positionals } from "../args";
import { CONNECTION_OPTIONS, withConnection } from "../connection";
import { table, UsageError } from "../output";
import type { Command } from "../command";

export const migrateCommand: Command = {
  words: ["migrate"],
  summary: "create or update roles, registry, tenant tables, RLS and grants (idempotent, under an advisory lock)",
  usage: "migrate [--region eu|us] [--tenant-context setting|verified] [--dry-run] [--database-url URL]",
  options: {
    ...CONNECTION_OPTIONS,
    region: { type: "string" },
    "tenant-context": { type: "string" },
    "dry-run": { type: "boolean", default: false },
  },
  async run(ctx) {
    positionals(ctx, []);
    const region = optionalFlag(ctx, "region");
    const tenantContext = optionalFlag(ctx, "tenant-context");
    const options = {
      region: region === undefined ? undefined : parseField(ResidencyRegion, region, "--region"),
      tenantContext:
        tenantContext === undefined ? undefined : parseField(z.enum(["setting", "verified"]), tenantContext, "--tenant-context"),
      dryRun: ctx.flags["dry-run"] === true,
    };
    const report = await withConnection(
      ctx,
      async (client) => {
        try {
          return await migrate(client, {
            ...options,
            onProgress: (p) => ctx.out.progress(`[${p.phase}${p.total ? ` ${p.done}/${p.total}` : ""}] ${p.message}`),
          });
        } catch (err) {
          // Refused before anything changed.
          if (err instanceof DatabaseRegionError) throw new UsageError(err.message, "--region");
          if (err instanceof TenantContextSwitchError) throw new UsageError(err.message, "--tenant-context");
          throw err;
        }
      },
      { requiresMigrated: false },
    );
    ctx.out.result({ dryRun: options.dryRun, ...report }, () => renderReport(report, options.dryRun));
  },
};

export function renderReport(report: MigrationReport, dryRun: boolean): string {
  const verb = dryRun ? "would run" : "ran";
  const lines: string[] = [];
  if (report.unchanged) {
    lines.push(
      `database is up to date (catalogue ${report.fingerprint}, ${report.schemasChecked} schema(s) checked): nothing ${dryRun ? "to do" : "changed"}`,
    );
  } else {
    lines.push(
      table(
        ["step", `statements ${verb}`],
        [
          ["roles", report.roles.length],
          ["database privileges", report.database.length],
          ["versioned migrations", report.versioned.map((m) => `${m.version} ${m.name}`).join("\n") || 0],
          ["tenant context", report.tenantContext.statements.length ? `→ ${report.tenantContext.mode}` : 0],
          ...report.catalogue.map((c) => [`catalogue: ${c.schema}`, c.statements.length]),
        ],
      ),
    );
    lines.push(`catalogue ${report.fingerprint}, ${report.schemasChecked} schema(s) checked`);
    if (dryRun) {
      const statements = [
        ...report.roles,
        ...report.database,
        ...report.tenantContext.statements,
        ...report.catalogue.flatMap((c) => c.statements),
      ];
      if (statements.length) lines.push("", ...statements.map((s) => `${s};`));
      if (report.versioned.length) lines.push("", `-- and the versioned migrations ${report.versioned.map((m) => m.version).join(", ")}`);
    }
  }
  lines.push(
    `tenant context: ${report.tenantContext.mode}${report.tenantContext.mode === "verified" ? " (strict: proofs required)" : " (policies trust the raw setting)"}`,
  );
  if (!report.timescaledb) lines.push("note: TimescaleDB is not installed here; market_data.ohlcv is a plain table");
  return lines.join("\n");
}
