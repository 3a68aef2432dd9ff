/**
 * What `npm run tenant -- destroy` does before the stack is destroyed (docs/data-safety.md): the
 * export first — the tenant's rows in
 * issue 6's verified format (lib/enterprise/export.ts exportTenant: one snapshot, checksums computed in
 * PostgreSQL and over the file, written to `.partial` and renamed only when complete), signed with the
 * region's key, or unsigned (and said so) when none is installed: a missing key must not block a
 * destroy that the export protects. The database
 * is reached with the platform stack's admin connection (its outputs), from this process — then the
 * offboarding: the tenant is marked `offboarded` with a purge date, its rows kept until
 * `tenancy tenant purge`.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { withConnection, type Queryable } from "../db/client";
import { exportTenant } from "../enterprise/export";
import { offboardTenant } from "../tenant/registry";
import type { TenantExporter, TenantOffboarder } from "./automation";
import { readPlatformConnections } from "./platform";

/** `acme-20261126T120000Z.jsonl`: sortable, one file per offboarding. */
export function exportFileName(slug: string, at: Date): string {
  return `${slug}-${at
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z")}.jsonl`;
}

/** An admin session on the platform stack's database (its outputs), for `fn`; always closed. */
function withPlatformDatabase<T>(platformOutputs: Record<string, unknown>, fn: (client: Queryable) => Promise<T>): Promise<T> {
  const { postgres } = readPlatformConnections("platform", platformOutputs);
  const target = { host: postgres.host, port: postgres.port, user: postgres.user, database: postgres.database };
  return withConnection(target, fn, { application_name: "alphapulse-offboarding" });
}

export const exportBeforeOffboarding: TenantExporter = async ({ slug, tenantId, platformOutputs, dir }) => {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, exportFileName(slug, new Date()));
  const report = await withPlatformDatabase(platformOutputs, (client) => exportTenant(client, tenantId, file, { allowUnsigned: true }));
  return { file: report.file, rows: report.rows, signedWith: report.signedWith };
};

/** Marks the tenant offboarded (DEFAULT_RETENTION_DAYS), recording the export: the stack's delete then releases it. */
export const offboardBeforeDestroy: TenantOffboarder = async ({ tenantId, platformOutputs, exportFile }) =>
  withPlatformDatabase(platformOutputs, async (client) => {
    const { tenant } = await offboardTenant(client, tenantId, { exportFile });
    return { purgeAfter: tenant.purgeAfter!.toISOString() };
  });
