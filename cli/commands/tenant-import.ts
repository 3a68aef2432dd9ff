/**
 * `tenancy tenant import --in <file> [--as <slug>] [--replace]`: imports an export file. The whole
 * file is checked first (a corrupted file or one from another residency region is bad input:
 * exit 2, nothing written); the rows go to exactly one tenant — the file's, or a new tenant with
 * `--as` — and are verified against the file before the transaction commits.
 */
import { existsSync } from "node:fs";
import { CorruptExportError } from "../../lib/enterprise/export-file";
import { ImportConflictError, importTenant } from "../../lib/enterprise/import";
import { TenantSlug } from "../../lib/tenant/model";
import { ResidencyMismatchError, TenantExistsError } from "../../lib/tenant/registry";
import { optionalFlag, parseField, positionals, requiredFlag } from "../args";
import { CONNECTION_OPTIONS, withConnection } from "../connection";
import { CommandFailure, table, UsageError } from "../output";
import type { Command } from "../command";

export const tenantImportCommand: Command = {
  words: ["tenant", "import"],
  summary: "import a tenant export (checked first; --as imports under a new tenant; --replace restores over its rows)",
  usage: "tenant import --in <file> [--as <slug>] [--replace]",
  options: { ...CONNECTION_OPTIONS, in: { type: "string" }, as: { type: "string" }, replace: { type: "boolean", default: false } },
  async run(ctx) {
    positionals(ctx, []);
    const file = requiredFlag(ctx, "in");
    if (!existsSync(file)) throw new UsageError(`${file} does not exist`, "--in");
    const asSlug = optionalFlag(ctx, "as");
    const as = asSlug === undefined ? undefined : parseField(TenantSlug, asSlug, "--as");
    const replace = ctx.flags.replace === true;
    if (as !== undefined && replace)
      throw new UsageError("--replace restores an existing tenant; --as creates a new one: pick one", "--replace");
    const report = await withConnection(ctx, async (client) => {
      try {
        return await importTenant(client, file, { as, replace, onProgress: (m) => ctx.out.progress(m) });
      } catch (err) {
        if (err instanceof CorruptExportError || err instanceof ResidencyMismatchError) throw new UsageError(err.message, "--in");
        if (err instanceof TenantExistsError) throw new UsageError(err.message, "--as");
        if (err instanceof ImportConflictError) throw new CommandFailure({ kind: "refused", message: err.message });
        throw err;
      }
    });
    ctx.out.result(report, () =>
      [
        `imported ${report.source.slug} (exported ${report.source.exportedAt}) into ${report.tenant.slug} (${report.tenant.id}${report.tenant.created ? ", new" : ""}) in ${report.tenant.schema}` +
          (report.replacedRows ? `, replacing ${report.replacedRows} row(s)` : ""),
        table(
          ["table", "rows", "checksum", "verified by"],
          report.tables.map((t) => [t.table, t.rows, t.checksum, t.verified]),
        ),
        `${report.rows} row(s) in ${report.durationMs} ms`,
      ].join("\n"),
    );
    return 0;
  },
};
