/**
 * `tenancy tenant import --in <file> [--as <slug> | --replace --tenant <slug|id>] [--allow-unsigned]
 * [--allow-retired-key]`: imports an export file. The whole file is checked first, its MAC with this
 * database's key included (a corrupted, edited or unsigned file, or one from another residency region,
 * is bad input: exit 2, nothing written); the rows go to exactly one tenant — the file's, or a new
 * tenant with `--as` — and are verified against the file before the transaction commits. A replace
 * names its tenant: `--tenant` must be the file's, by slug and id, in the file and in the registry.
 */
import { existsSync } from "node:fs";
import { CorruptExportError } from "../../lib/enterprise/export-file";
import { ImportConflictError, importTenant, ImportTargetError } from "../../lib/enterprise/import";
import { TenantId, TenantSlug } from "../../lib/tenant/model";
import { ResidencyMismatchError, TenantExistsError } from "../../lib/tenant/registry";
import { optionalFlag, parseField, positionals, requiredFlag } from "../args";
import { CONNECTION_OPTIONS, withConnection } from "../connection";
import { CommandFailure, table, UsageError } from "../output";
import type { Command } from "../command";

export const tenantImportCommand: Command = {
  words: ["tenant", "import"],
  summary:
    "import a tenant export (MAC and checksums checked first; --as imports under a new tenant; --replace --tenant restores over its rows)",
  usage: "tenant import --in <file> [--as <slug> | --replace --tenant <slug|id>] [--allow-unsigned] [--allow-retired-key]",
  options: {
    ...CONNECTION_OPTIONS,
    in: { type: "string" },
    as: { type: "string" },
    replace: { type: "boolean", default: false },
    tenant: { type: "string" },
    "allow-unsigned": { type: "boolean", default: false },
    "allow-retired-key": { type: "boolean", default: false },
  },
  async run(ctx) {
    positionals(ctx, []);
    const file = requiredFlag(ctx, "in");
    if (!existsSync(file)) throw new UsageError(`${file} does not exist`, "--in");
    const asSlug = optionalFlag(ctx, "as");
    const as = asSlug === undefined ? undefined : parseField(TenantSlug, asSlug, "--as");
    const replace = ctx.flags.replace === true;
    if (as !== undefined && replace)
      throw new UsageError("--replace restores an existing tenant; --as creates a new one: pick one", "--replace");
    const tenantFlag = optionalFlag(ctx, "tenant");
    if (tenantFlag !== undefined && as !== undefined)
      throw new UsageError("--as creates a new tenant; --tenant names an existing one: pick one", "--tenant");
    if (replace && tenantFlag === undefined)
      throw new UsageError("--replace overwrites a tenant's rows: name it with --tenant <slug|id> (it must be the file's)", "--tenant");
    const tenant =
      tenantFlag === undefined
        ? undefined
        : TenantId.safeParse(tenantFlag).success
          ? tenantFlag.toLowerCase()
          : parseField(TenantSlug, tenantFlag, "--tenant");
    const report = await withConnection(ctx, async (client) => {
      try {
        return await importTenant(client, file, {
          as,
          replace,
          tenant,
          allowUnsigned: ctx.flags["allow-unsigned"] === true,
          allowRetiredKey: ctx.flags["allow-retired-key"] === true,
          onProgress: (m) => ctx.out.progress(m),
        });
      } catch (err) {
        if (err instanceof CorruptExportError || err instanceof ResidencyMismatchError) throw new UsageError(err.message, "--in");
        // The operator's --tenant is not the file's tenant, or the header's slug and id name different tenants here.
        if (err instanceof ImportTargetError) throw new UsageError(err.message, err.field === "tenant" ? "--tenant" : err.field);
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
        `${report.rows} row(s) in ${report.durationMs} ms; ` +
          (report.authenticity.signed
            ? `MAC verified with key ${report.authenticity.kid}${report.authenticity.keyState === "retired" ? " (retired: --allow-retired-key)" : ""}`
            : `the file was UNSIGNED (version ${report.source.version}, accepted with --allow-unsigned)`),
      ].join("\n"),
    );
    return 0;
  },
};
