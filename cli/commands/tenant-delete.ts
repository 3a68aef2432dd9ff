/**
 * `tenancy tenant delete <slug> [--export-dir <dir> | --skip-export] [--retention-days <n>] [--dry-run]
 * [--redis-url <url>]`: offboarding, on purpose and reversible for a while (docs/data-safety.md).
 *
 *  1. the tenant is suspended (no writes after the export's snapshot);
 *  2. its rows are exported, verified (lib/enterprise/export.ts), to `<dir>/<slug>-<UTC time>.jsonl`
 *     (default dir `.pulumi-local/exports`), signed with the region's key — unsigned, and said so, when
 *     no key is installed (a missing key must not block offboarding); a failed export restores the
 *     tenant's status and stops;
 *  3. with a Redis (`--redis-url` or `REDIS_URL`) its cache user is revoked (connections cut; keys kept);
 *     an unreachable Redis restores the tenant's status and stops (the export stays, it is not offboarded);
 *  4. it is marked `offboarded` with a purge date `--retention-days` (default 30) from now.
 *
 * Nothing is deleted: its rows, dedicated schema and registry entry stay until `tenancy tenant purge
 * <slug>` after the purge date; `tenancy tenant resume <slug>` before then undoes the offboarding.
 * `--dry-run` reports the rows that would be retained and changes nothing.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { exportTenant } from "../../lib/enterprise/export";
import { revokeTenantCache, type RevokeResult } from "../../lib/redis/tenant-users";
import { exportFileName } from "../../lib/tenant-stacks/offboarding";
import {
  countTenantRows,
  DEFAULT_RETENTION_DAYS,
  offboardTenant,
  RETENTION_DAYS_RANGE,
  setTenantStatus,
  type TableCount,
} from "../../lib/tenant/registry";
import type { Tenant } from "../../lib/tenant/model";
import { optionalFlag, parseInteger } from "../args";
import { withConnection, REDIS_OPTIONS, redisGiven, withRedis } from "../connection";
import { table, UsageError } from "../output";
import type { Command } from "../command";
import { findOrUsage, tenantRef } from "./common";

/** Where offboarding exports go when `--export-dir` is not given (gitignored in this repository). */
export const DEFAULT_EXPORT_DIR = path.join(".pulumi-local", "exports");

interface DeleteResult {
  tenant: Tenant;
  dryRun: boolean;
  alreadyOffboarded: boolean;
  retained: TableCount[];
  exportFile?: string;
  exportedRows?: number;
  /** The context key the export is signed with; null: unsigned (no key installed). */
  exportSignedWith?: string | null;
  retentionDays: number;
  cache?: RevokeResult;
  loginRole?: { role: string; sessionsClosed: number };
}

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
    const exportDir = path.resolve(exportDirFlag ?? DEFAULT_EXPORT_DIR);

    const result: DeleteResult = await withConnection(ctx, async (client) => {
      const tenant = await findOrUsage(client, ref);
      const base = { tenant, dryRun, retentionDays, alreadyOffboarded: tenant.status === "offboarded" };
      if (dryRun || tenant.status === "offboarded") return { ...base, retained: await countTenantRows(client, tenant) };

      const previous = tenant.status;
      if (previous === "active") await setTenantStatus(client, tenant.id, "suspended");
      let exported: { file: string; rows: number; signedWith: string | null } | undefined;
      if (!skipExport) {
        try {
          mkdirSync(exportDir, { recursive: true, mode: 0o700 });
          const report = await exportTenant(client, tenant.id, path.join(exportDir, exportFileName(tenant.slug, new Date())), {
            allowUnsigned: true,
            onProgress: (m) => ctx.out.progress(m),
          });
          exported = { file: report.file, rows: report.rows, signedWith: report.signedWith };
        } catch (err) {
          if (previous === "active") await setTenantStatus(client, tenant.id, "active");
          throw new Error(`export of ${tenant.slug} failed, the tenant was not offboarded: ${(err as Error).message}`, { cause: err });
        }
      }
      let cache: RevokeResult | undefined;
      if (redisGiven(ctx.flags)) {
        try {
          cache = await withRedis(ctx, (admin) => revokeTenantCache(admin, tenant.id));
        } catch (err) {
          if (previous === "active") await setTenantStatus(client, tenant.id, "active");
          throw err;
        }
      }
      const done = await offboardTenant(client, tenant.id, { retentionDays, exportFile: exported?.file });
      return {
        ...base,
        tenant: done.tenant,
        retained: done.retained,
        exportFile: exported?.file,
        exportedRows: exported?.rows,
        exportSignedWith: exported?.signedWith,
        cache,
        loginRole: done.loginRole,
      };
    });
    ctx.out.result(result, () => describe(result));
  },
};

function describe(r: DeleteResult): string {
  const total = r.retained.reduce((sum, d) => sum + d.rows, 0);
  const head = r.dryRun
    ? `would offboard tenant ${r.tenant.slug} (${r.tenant.id}): export ${total} row(s), then retain them ${r.retentionDays} day(s) until a purge`
    : r.alreadyOffboarded
      ? `tenant ${r.tenant.slug} (${r.tenant.id}) is already offboarded: ${total} row(s) retained until ${r.tenant.purgeAfter?.toISOString()}`
      : `offboarded tenant ${r.tenant.slug} (${r.tenant.id}): ${total} row(s) retained until ${r.tenant.purgeAfter?.toISOString()}`;
  return [
    head,
    table(
      ["table", "rows retained"],
      r.retained.map((d) => [d.table, d.rows]),
    ),
    ...(r.exportFile ? [`verified export: ${r.exportFile} (${r.exportedRows} row(s))`] : []),
    ...(r.exportFile && r.exportSignedWith ? [`the export is signed with the export key of context key ${r.exportSignedWith}`] : []),
    ...(r.exportFile && r.exportSignedWith === null
      ? ["the export is UNSIGNED: no tenant-context key is installed (`tenancy context-key install`); importing it needs --allow-unsigned"]
      : []),
    ...(!r.dryRun && !r.alreadyOffboarded && !r.exportFile ? ["no export written (--skip-export)"] : []),
    ...(r.loginRole ? [`login role ${r.loginRole.role} is NOLOGIN: ${r.loginRole.sessionsClosed} open session(s) cut`] : []),
    ...(r.cache ? [`revoked cache user ${r.cache.user} (${r.cache.connectionsClosed} connection(s) cut; keys kept until the purge)`] : []),
    ...(!r.dryRun
      ? [
          `\`tenancy tenant purge ${r.tenant.slug}\` removes its data after the purge date; \`tenancy tenant resume ${r.tenant.slug}\` before then undoes this`,
        ]
      : []),
  ].join("\n");
}
