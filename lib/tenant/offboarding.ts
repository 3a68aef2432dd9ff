/**
 * Offboarding on purpose: the one path behind `tenancy tenant delete` and `npm run tenant --
 * destroy` (docs/data-safety.md). Nothing here deletes anything:
 *
 *  1. an active tenant is suspended (no writes after the export's snapshot);
 *  2. its rows are exported, verified (lib/enterprise/export.ts: one snapshot, checksums computed in
 *     PostgreSQL and over the file, renamed into place only when complete), kept where the caller's
 *     export sink says (a local directory, or the region's S3 bucket, verified after the upload:
 *     lib/tenant/export-sink.ts) and signed with the
 *     region's key — unsigned, and said so (`exportSignedWith: null`), when no key is installed: a
 *     missing key must not block an offboarding that the export protects — unless the caller
 *     explicitly skips the export (`exportTo: null`); a failed export restores the status and stops;
 *  3. with a cache, its Redis user is revoked (connections cut, keys kept); a failure restores the
 *     status and stops (the export stays; the tenant is not offboarded);
 *  4. it is marked `offboarded` with a purge date `retentionDays` from now (the database's clock),
 *     the export recorded with it (lib/tenant/registry.ts offboardTenant).
 *
 * The purge is a separate, explicit step after that date (`tenancy tenant purge`, refused before).
 * A dry run changes nothing and returns the steps it would take, with the rows it would export.
 */
import type { Queryable } from "../db/client";
import { exportTenant } from "../enterprise/export";
import type { RevokeResult } from "../redis/tenant-users";
import type { ExportSink } from "./export-sink";
import type { Tenant } from "./model";
import {
  checkRetentionDays,
  countTenantRows,
  DEFAULT_RETENTION_DAYS,
  offboardTenant,
  requireTenant,
  setTenantStatus,
  type TableCount,
} from "./registry";

export interface OffboardingOptions {
  /**
   * Where the verified export is kept (lib/tenant/export-sink.ts: a local directory, or the region's
   * S3 bucket inside the executor); `null` skips the export (an explicit `--skip-export`).
   */
  exportTo: ExportSink | null;
  /** Days the rows are kept before a purge may run. @default DEFAULT_RETENTION_DAYS (30) */
  retentionDays?: number;
  /** Change nothing; report the steps. @default false */
  dryRun?: boolean;
  /** Revokes the tenant's cache user (when the caller has a Redis); keys are kept. */
  revokeCache?: (tenantId: string) => Promise<RevokeResult>;
  onProgress?: (message: string) => void;
  /** Clock for the export's file name. @default new Date() */
  now?: Date;
}

export interface Offboarding {
  tenant: Tenant;
  dryRun: boolean;
  /** The tenant was offboarded before this call: nothing was done. */
  alreadyOffboarded: boolean;
  retentionDays: number;
  /** Rows kept until the purge (a dry run: the rows it would export and keep), per table. */
  retained: TableCount[];
  /** What this call did, or (dry run) would do, in order; each line a sentence for an operator. */
  steps: string[];
  /** Where the export is kept (recorded in the registry): a path or an `s3://` URI. */
  exportFile?: string;
  exportedRows?: number;
  /** SHA-256 (hex) of the kept export as read back (S3), when the sink reads it back. */
  exportSha256?: string;
  /** The context key the export is signed with; null: written unsigned (no key installed). */
  exportSignedWith?: string | null;
  cache?: RevokeResult;
  loginRole?: { role: string; sessionsClosed: number };
}

/** `acme-20261126T120000Z.jsonl`: sortable, one file per offboarding. */
export function exportFileName(slug: string, at: Date): string {
  return `${slug}-${at
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z")}.jsonl`;
}

const total = (counts: readonly TableCount[]) => counts.reduce((n, c) => n + c.rows, 0);

/** The steps of an offboarding, for the dry run and the report (pure). */
export function offboardingSteps(
  tenant: Pick<Tenant, "slug" | "status">,
  plan: { rows: number; exportFile: string | null; retentionDays: number; revokesCache: boolean; purgeAfter?: Date },
): string[] {
  const until = plan.purgeAfter ? `until ${plan.purgeAfter.toISOString()}` : `for ${plan.retentionDays} day(s)`;
  return [
    ...(tenant.status === "active" ? [`suspend ${tenant.slug} (no writes after the export's snapshot)`] : []),
    plan.exportFile === null
      ? `no export (--skip-export): ${plan.rows} row(s) are kept only in the database`
      : `export ${plan.rows} row(s), verified, to ${plan.exportFile}`,
    ...(plan.revokesCache ? [`revoke its cache user (connections cut; keys kept until the purge)`] : []),
    `mark it offboarded: rows, schema and registry entry kept ${until}`,
    `then, after that date: \`tenancy tenant purge ${tenant.slug}\` (refused before it); \`tenancy tenant resume ${tenant.slug}\` undoes this before it`,
  ];
}

/** Offboards one tenant on purpose (see the file comment). Idempotent for an offboarded tenant. */
export async function offboardOnPurpose(client: Queryable, ref: string, options: OffboardingOptions): Promise<Offboarding> {
  const retentionDays = checkRetentionDays(options.retentionDays ?? DEFAULT_RETENTION_DAYS);
  const dryRun = options.dryRun ?? false;
  const tenant = await requireTenant(client, ref);
  const base = { tenant, dryRun, retentionDays, alreadyOffboarded: tenant.status === "offboarded" };
  if (tenant.status === "offboarded") {
    const retained = await countTenantRows(client, tenant);
    return { ...base, retained, steps: [`nothing: ${tenant.slug} is offboarded, kept until ${tenant.purgeAfter?.toISOString()}`] };
  }
  const fileName = exportFileName(tenant.slug, options.now ?? new Date());
  const sink = options.exportTo;
  const file = sink === null ? null : sink.locationOf(tenant, fileName);
  const planOf = (rows: number, purgeAfter?: Date) =>
    offboardingSteps(tenant, { rows, exportFile: file, retentionDays, revokesCache: options.revokeCache !== undefined, purgeAfter });
  if (dryRun) {
    const retained = await countTenantRows(client, tenant);
    return { ...base, retained, steps: planOf(total(retained)) };
  }

  const previous = tenant.status;
  const restore = async () => {
    if (previous === "active") await setTenantStatus(client, tenant.id, "active");
  };
  if (previous === "active") await setTenantStatus(client, tenant.id, "suspended");
  let exported: { file: string; rows: number; signedWith: string | null; sha256?: string } | undefined;
  if (sink !== null) {
    try {
      const kept = await sink.keep(tenant, fileName, (local) =>
        exportTenant(client, tenant.id, local, { allowUnsigned: true, onProgress: options.onProgress }),
      );
      exported = { file: kept.location, rows: kept.result.rows, signedWith: kept.result.signedWith, sha256: kept.sha256 };
    } catch (err) {
      await restore();
      throw new Error(`export of ${tenant.slug} failed, the tenant was not offboarded: ${(err as Error).message}`, { cause: err });
    }
  }
  let cache: RevokeResult | undefined;
  if (options.revokeCache) {
    try {
      cache = await options.revokeCache(tenant.id);
    } catch (err) {
      await restore();
      throw err;
    }
  }
  const done = await offboardTenant(client, tenant.id, { retentionDays, exportFile: exported?.file });
  return {
    ...base,
    tenant: done.tenant,
    retained: done.retained,
    steps: planOf(exported?.rows ?? total(done.retained), done.tenant.purgeAfter ?? undefined),
    exportFile: exported?.file,
    exportedRows: exported?.rows,
    exportSha256: exported?.sha256,
    exportSignedWith: exported?.signedWith,
    cache,
    loginRole: done.loginRole,
  };
}
