/**
 * What `npm run tenant -- destroy` does before the stack is destroyed: lib/tenant/offboarding.ts
 * offboardOnPurpose, the same path as `tenancy tenant delete` (docs/data-safety.md) — suspended,
 * exported and verified (unless `--skip-export`), then `offboarded` with a purge date
 * (`--retention-days`), its rows kept until `tenancy tenant purge`. Only the transport differs:
 *
 *   local platform  from this process, on the platform's admin connection; the export is written to
 *                   `--export-dir` on this machine;
 *   AWS platform    inside the region, through its database executor (the `offboardTenant`
 *                   operation, lib/executor/operations.ts): the deployer has no network path into the
 *                   VPC, and the export is kept in the region's backup bucket
 *                   (`s3://<bucket>/tenant-exports/<tenant id>/…`, SSE-KMS, read back and verified).
 *
 * The stack's Tenant delete then releases the tenant; its cache user's delete revokes the user.
 */
import type { ExecutorConnection } from "../../components/db/provider-runtime";
import { withConnection, type Queryable } from "../db/client";
import { invokeExecutor } from "../executor/lambda-client";
import type { OperationResult } from "../executor/operations";
import type { PlatformContract } from "../platform/contract";
import { localDirectorySink } from "../tenant/export-sink";
import { offboardOnPurpose } from "../tenant/offboarding";
import type { TenantOffboarder } from "./automation";

/** An admin session on the platform stack's (direct) database connection, for `fn`; always closed. */
function withPlatformDatabase<T>(platform: PlatformContract, fn: (client: Queryable) => Promise<T>): Promise<T> {
  const { connection, name } = platform.database;
  if (connection.kind === "executor") throw new Error(`platform stack ${platform.stack}: no direct connection (use its executor)`);
  const target = { host: connection.host, port: connection.port, user: connection.user, database: name };
  return withConnection(target, fn, { application_name: "alphapulse-offboarding" });
}

type Request = Parameters<TenantOffboarder>[0];

/** Inside the region: the executor runs the same offboarding, keeping the export in the region's bucket. */
async function offboardThroughExecutor(request: Request, connection: ExecutorConnection) {
  const done = (await invokeExecutor(connection, {
    operation: "offboardTenant",
    database: request.platform.database.name,
    args: { ref: request.tenantId, retentionDays: request.retentionDays, dryRun: request.dryRun, skipExport: request.exportDir === null },
  })) as OperationResult<"offboardTenant">;
  return {
    steps: done.steps,
    exportFile: done.exportFile,
    exportedRows: done.exportedRows,
    exportSignedWith: done.exportSignedWith,
    exportSha256: done.exportSha256,
    purgeAfter: done.purgeAfter ?? undefined,
  };
}

export const offboardBeforeDestroy: TenantOffboarder = (request) => {
  const { connection } = request.platform.database;
  if (connection.kind === "executor") return offboardThroughExecutor(request, connection);
  const { tenantId, platform, exportDir, retentionDays, dryRun } = request;
  return withPlatformDatabase(platform, async (client) => {
    const exportTo = exportDir === null ? null : localDirectorySink(exportDir);
    const done = await offboardOnPurpose(client, tenantId, { exportTo, retentionDays, dryRun });
    return {
      steps: done.steps,
      exportFile: done.exportFile,
      exportedRows: done.exportedRows,
      exportSignedWith: done.exportSignedWith,
      purgeAfter: done.dryRun ? undefined : done.tenant.purgeAfter?.toISOString(),
    };
  });
};
