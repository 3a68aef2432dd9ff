/**
 * `tenancy tenant export <slug> --out <file> [--allow-unsigned]`: one tenant's rows in the versioned
 * export format (docs/enterprise.md), gzip when the name ends in .gz, signed with the export key
 * derived from the region's tenant-context key. The file appears only once complete and verified
 * against the source; an existing file is never overwritten. Without an installed key it refuses
 * (exit 2) unless `--allow-unsigned`.
 */
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { exportTenant } from "../../lib/enterprise/export";
import { ExportKeyMissingError } from "../../lib/enterprise/export-key";
import { requiredFlag } from "../args";
import { CONNECTION_OPTIONS, withConnection } from "../connection";
import { table, UsageError } from "../output";
import type { Command } from "../command";
import { findOrUsage, tenantRef } from "./common";

export const tenantExportCommand: Command = {
  words: ["tenant", "export"],
  summary: "export one tenant's rows to a checksummed file signed with the region's key (shared or dedicated)",
  usage: "tenant export <slug> --out <file[.gz]> [--allow-unsigned]",
  options: { ...CONNECTION_OPTIONS, out: { type: "string" }, "allow-unsigned": { type: "boolean", default: false } },
  async run(ctx) {
    const ref = tenantRef(ctx);
    const out = requiredFlag(ctx, "out");
    if (existsSync(out)) throw new UsageError(`${out} exists; refusing to overwrite it`, "--out");
    const dir = path.dirname(path.resolve(out));
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`directory ${dir} does not exist`, "--out");
    const report = await withConnection(ctx, async (client) => {
      const tenant = await findOrUsage(client, ref);
      try {
        return await exportTenant(client, tenant.id, out, {
          allowUnsigned: ctx.flags["allow-unsigned"] === true,
          onProgress: (m) => ctx.out.progress(m),
        });
      } catch (err) {
        if (err instanceof ExportKeyMissingError) throw new UsageError(err.message, "context-key");
        throw err;
      }
    });
    ctx.out.result(report, () =>
      [
        `exported ${report.tenant.slug} (${report.tenant.id}, region ${report.tenant.region}, ${report.tenant.placement}) to ${report.file}`,
        table(
          ["table", "rows", "checksum"],
          report.tables.map((t) => [t.table, t.rows, t.checksum]),
        ),
        `${report.rows} row(s), ${report.bytes} bytes, catalogue ${report.fingerprint}, ${report.durationMs} ms`,
        report.signedWith
          ? `signed with the export key of context key ${report.signedWith}`
          : `UNSIGNED (--allow-unsigned): it imports only with --allow-unsigned`,
      ].join("\n"),
    );
  },
};
