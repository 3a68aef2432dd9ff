/**
 * `tenancy tenant delete <slug> [--export-dir <dir> | --skip-export] [--retention-days <n>] [--dry-run]
 * [--redis-url <url>]`: offboarding, on purpose and reversible for a while — lib/tenant/offboarding.ts
 * offboardOnPurpose, the same path as `npm run tenant -- destroy` (docs/data-safety.md): suspended,
 * exported and verified (default dir `.pulumi-local/exports`), its cache user revoked when a Redis is
 * given (keys kept), then `offboarded` with a purge date `--retention-days` (default 30) from now.
 *
 * Nothing is deleted: rows, dedicated schema and registry entry stay until `tenancy tenant purge
 * <slug>` after the purge date; `tenancy tenant resume <slug>` before then undoes the offboarding.
 * `--dry-run` says what it would do (the steps, the rows it would export) and changes nothing.
 */
import path from "node:path";
import { revokeTenantCache } from "../../lib/redis/tenant-users";
import { localDirectorySink } from "../../lib/tenant/export-sink";
import { offboardOnPurpose, type Offboarding } from "../../lib/tenant/offboarding";
import { DEFAULT_RETENTION_DAYS, RETENTION_DAYS_RANGE } from "../../lib/tenant/registry";
import { optionalFlag, parseInteger } from "../args";
import { withConnection, REDIS_OPTIONS, redisGiven, withRedis } from "../connection";
import { table, UsageError } from "../output";
import type { Command } from "../command";
import { findOrUsage, tenantRef } from "./common";

/** Where offboarding exports go when `--export-dir` is not given (gitignored in this repository). */
export const DEFAULT_EXPORT_DIR = path.join(".pulumi-local", "exports");

export const tenantDeleteCommand: Command = {
  words: ["tenant", "delete"],
  summary: "offboard a tenant: verified export, then offboarded with a purge date (rows kept until `tenant purge`)",
  usage: "tenant delete <slug> [--export-dir <dir> | --skip-export] [--retention-days <n>] [--dry-run] [--redis-url <url>]",
  options: {
    ...REDIS_OPTIONS,
    "dry-run": { type: "boolean", default: false },
    "export-dir": { type: "string" },
    "skip-export": { type: "boolean", default: false },
    "retention-days": { type: "string" },
  },
  async run(ctx) {
    const ref = tenantRef(ctx);
    const dryRun = ctx.flags["dry-run"] === true;
    const skipExport = ctx.flags["skip-export"] === true;
    const exportDirFlag = optionalFlag(ctx, "export-dir");
    if (skipExport && exportDirFlag !== undefined)
      throw new UsageError("--export-dir and --skip-export exclude each other", "--skip-export");
    const retentionFlag = optionalFlag(ctx, "retention-days");
    const retentionDays =
      retentionFlag === undefined
        ? DEFAULT_RETENTION_DAYS
        : parseInteger(retentionFlag, "--retention-days", RETENTION_DAYS_RANGE.min, RETENTION_DAYS_RANGE.max);
    const exportDir = skipExport ? null : path.resolve(exportDirFlag ?? DEFAULT_EXPORT_DIR);

    const result = await withConnection(ctx, async (client) => {
      const tenant = await findOrUsage(client, ref);
      // Inside the executor the export is kept where its session keeps exports (the region's bucket).
      const given = ctx.database?.exportSink;
      return offboardOnPurpose(client, tenant.id, {
        exportTo: exportDir === null ? null : given ? await given() : localDirectorySink(exportDir),
        retentionDays,
        dryRun,
        revokeCache: redisGiven(ctx.flags) ? (id) => withRedis(ctx, (admin) => revokeTenantCache(admin, id)) : undefined,
        onProgress: (m) => ctx.out.progress(m),
      });
    });
    ctx.out.result(result, () => describe(result));
  },
};

function describe(r: Offboarding): string {
  const total = r.retained.reduce((sum, d) => sum + d.rows, 0);
  const head = r.dryRun
    ? `would offboard tenant ${r.tenant.slug} (${r.tenant.id}); nothing was changed. It would:`
    : r.alreadyOffboarded
      ? `tenant ${r.tenant.slug} (${r.tenant.id}) is already offboarded: ${total} row(s) retained until ${r.tenant.purgeAfter?.toISOString()}`
      : `offboarded tenant ${r.tenant.slug} (${r.tenant.id}): ${total} row(s) retained until ${r.tenant.purgeAfter?.toISOString()}`;
  return [
    head,
    ...(r.alreadyOffboarded ? [] : r.steps.map((s, i) => `  ${i + 1}. ${s}`)),
    table(
      ["table", r.dryRun ? "rows to export and retain" : "rows retained"],
      r.retained.map((d) => [d.table, d.rows]),
    ),
    ...(r.exportFile ? [`verified export: ${r.exportFile} (${r.exportedRows} row(s))`] : []),
    ...(r.exportFile && r.exportSignedWith ? [`the export is signed with the export key of context key ${r.exportSignedWith}`] : []),
    ...(r.exportFile && r.exportSignedWith === null
      ? ["the export is UNSIGNED: no tenant-context key is installed (`tenancy context-key install`); importing it needs --allow-unsigned"]
      : []),
    ...(r.loginRole ? [`login role ${r.loginRole.role} is NOLOGIN: ${r.loginRole.sessionsClosed} open session(s) cut`] : []),
    ...(r.cache ? [`revoked cache user ${r.cache.user} (${r.cache.connectionsClosed} connection(s) cut; keys kept until the purge)`] : []),
  ].join("\n");
}
