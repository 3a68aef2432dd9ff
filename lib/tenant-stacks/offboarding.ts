/**
 * What `npm run tenant -- destroy` does before the stack is destroyed: lib/tenant/offboarding.ts
 * offboardOnPurpose, the same path as `tenancy tenant delete` (docs/data-safety.md) — suspended,
 * exported and verified (unless `--skip-export`), then `offboarded` with a purge date
 * (`--retention-days`), its rows kept until `tenancy tenant purge`. The database is reached with the
 * platform stack's admin connection (its platform contract), from this process. The stack's Tenant delete then
 * releases the tenant; its TenantCacheUser delete revokes the cache user (keys kept).
 */
import { withConnection, type Queryable } from "../db/client";
import type { PlatformContract } from "../platform/contract";
import { localDirectorySink } from "../tenant/export-sink";
import { offboardOnPurpose } from "../tenant/offboarding";
import type { TenantOffboarder } from "./automation";
import { PlatformStackError } from "./platform";

/** An admin session on the platform stack's database (its contract), for `fn`; always closed. */
function withPlatformDatabase<T>(platform: PlatformContract, fn: (client: Queryable) => Promise<T>): Promise<T> {
  const { connection, name } = platform.database;
  if (connection.kind === "executor")
    throw new PlatformStackError(
      `platform stack ${platform.stack} reaches its database only through its executor (${connection.functionName}): offboard from inside the region`,
      platform.stack,
    );
  const target = { host: connection.host, port: connection.port, user: connection.user, database: name };
  return withConnection(target, fn, { application_name: "alphapulse-offboarding" });
}

export const offboardBeforeDestroy: TenantOffboarder = ({ tenantId, platform, exportDir, retentionDays, dryRun }) =>
  withPlatformDatabase(platform, async (client) => {
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
