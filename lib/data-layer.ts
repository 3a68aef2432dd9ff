/**
 * What the dynamic providers (components/db, components/cache) call at run time, under one path
 * that does not move. Pulumi keeps a dynamic provider's code in the stack's state and runs that old
 * code to delete a resource (pulumi/pulumi#6238); the code loads this file by name
 * (`dataLayer()` in components/db/provider-runtime.ts). Re-laying lib/ edits the re-exports below,
 * never this file's path.
 */
export { ident, qualified } from "./db/sql";
export { dropTenantLoginRole, ensureTenantLoginRole, tenantLoginRoleExists } from "./enterprise/dedicated";
export { demoteTenant, graduateTenant } from "./enterprise/graduation";
export { redisUrl } from "./local/redis-server";
export { connectRedis } from "./redis/client";
export { cacheLimitsForTier } from "./redis/quota";
export { grantTenantCache, revokeTenantCache } from "./redis/tenant-users";
export { migrate } from "./schema/migrate";
export { REGISTRY_SCHEMA } from "./schema/planner";
export { ROLES } from "./schema/roles";
export { createTenant, deleteTenant, findTenant, setTenantTier, TenantNotFoundError } from "./tenant/registry";
