/**
 * What `npm run tenant -- destroy` does before the stack is destroyed: lib/tenant/offboarding.ts
 * offboardOnPurpose, the same path as `tenancy tenant delete` (docs/data-safety.md) — suspended,
 * exported and verified (unless `--skip-export`), then `offboarded` with a purge date
 * (`--retention-days`), its rows kept until `tenancy tenant purge`. The database is reached with the
 * platform stack's admin connection (its outputs), from this process. The stack's Tenant delete then
 * releases the tenant; its TenantCacheUser delete revokes the cache user (keys kept).
 */
import { withConnection, type Queryable } from "../db/client";
import { offboardOnPurpose } from "../tenant/offboarding";
import type { TenantOffboarder } from "./automation";
import { readPlatformConnections } from "./platform";

/** An admin session on the platform stack's database (its outputs), for `fn`; always closed. */
function withPlatformDatabase<T>(platformOutputs: Record<string, unknown>, fn: (client: Queryable) => Promise<T>): Promise<T> {
  const { postgres } = readPlatformConnections("platform", platformOutputs);
  const target = { host: postgres.host, port: postgres.port, user: postgres.user, database: postgres.database };
  return withConnection(target, fn, { application_name: "alphapulse-offboarding" });
}

export const offboardBeforeDestroy: TenantOffboarder = ({ tenantId, platformOutputs, exportDir, retentionDays, dryRun }) =>
  withPlatformDatabase(platformOutputs, async (client) => {
    const done = await offboardOnPurpose(client, tenantId, { exportDir, retentionDays, dryRun });
    return {
      steps: done.steps,
      exportFile: done.exportFile,
      exportedRows: done.exportedRows,
      exportSignedWith: done.exportSignedWith,
      purgeAfter: done.dryRun ? undefined : done.tenant.purgeAfter?.toISOString(),
    };
  });
