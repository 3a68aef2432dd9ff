/**
 * The export that `npm run tenant -- destroy` writes before it deletes anything: the tenant's rows in
 * issue 6's verified format (lib/enterprise/export.ts exportTenant: one snapshot, checksums computed in
 * PostgreSQL and over the file, written to `.partial` and renamed only when complete). The database
 * is reached with the platform stack's admin connection (its outputs), from this process.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { withConnection } from "../db/client";
import { exportTenant } from "../enterprise/export";
import type { TenantExporter } from "./automation";
import { readPlatformConnections } from "./platform";

/** `acme-20261126T120000Z.jsonl`: sortable, one file per offboarding. */
export function exportFileName(slug: string, at: Date): string {
  return `${slug}-${at
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z")}.jsonl`;
}

export const exportBeforeOffboarding: TenantExporter = async ({ slug, tenantId, platformOutputs, dir }) => {
  const { postgres } = readPlatformConnections("platform", platformOutputs);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, exportFileName(slug, new Date()));
  const target = { host: postgres.host, port: postgres.port, user: postgres.user, database: postgres.database };
  const report = await withConnection(target, (client) => exportTenant(client, tenantId, file), {
    application_name: "alphapulse-offboarding",
  });
  return { file: report.file, rows: report.rows };
};
