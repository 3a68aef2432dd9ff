/**
 * What the dynamic providers (components/db, components/cache) call at run time, under one path
 * that does not move. Pulumi keeps a dynamic provider's code in the stack's state and runs that old
 * code to delete a resource (pulumi/pulumi#6238); the code loads this file by name
 * (`dataLayer()` in components/db/provider-runtime.ts). Re-laying lib/ edits the re-exports below,
 * never this file's path.
 *
 * The names that older provider code calls to delete something (`deleteTenant`, `demoteTenant`,
 * `dropTenantLoginRole`, `revokeTenantCache`) are bound to the guards of lib/tenant/stack-guards.ts:
 * a stack created before docs/data-safety.md runs its old delete code from the state, and that code
 * must not delete a tenant's rows, schema, role or keys either. Never bind them to the destructive
 * functions again; the current providers call the guards by their own names.
 */
export { ident, qualified } from "./db/sql";
export { executorOperations, runOperation } from "./executor/operations";
export { ExecutorError, invokeExecutor } from "./executor/lambda-client";
export { ensureTenantLoginRole, tenantLoginRoleExists } from "./enterprise/dedicated";
export { graduateTenant } from "./enterprise/graduation";
export { redisUrl } from "./local/redis-server";
export { connectRedis } from "./redis/client";
export { cacheLimitsForTier } from "./redis/quota";
export { grantTenantCache } from "./redis/tenant-users";
export { migrate } from "./schema/migrate";
export { REGISTRY_SCHEMA } from "./schema/planner";
export { installContextKey, retireContextKey } from "./tenant-context/keys";
export { ROLES } from "./schema/roles";
export {
  countTenantRows,
  createTenant,
  findTenant,
  renameTenant,
  setTenantTier,
  TenantExistsError,
  TenantNotFoundError,
} from "./tenant/registry";
export {
  currentDatabaseOid,
  databaseDropProblem,
  databaseRecreationProblem,
  demoteForStack,
  dropLoginRoleForStack,
  releaseTenantFromStack,
  revokeCacheForStack,
  TenantStillServedError,
  // The names older provider code in stacks' state calls (see the file comment): guards, not deletes.
  releaseTenantFromStack as deleteTenant,
  demoteForStack as demoteTenant,
  revokeCacheForStack as revokeTenantCache,
} from "./tenant/stack-guards";
export { dropLoginRoleForStack as dropTenantLoginRole } from "./tenant/stack-guards";
