/**
 * `alphapulse:tenant:TenantStack` — everything one tenant owns in its region, declared by the tenant
 * stack `tenant-<slug>` (components/tenant/program.ts) against the regional platform stack:
 *
 *   <name>-registry  components/db Tenant: the registry entry. A tier change is an update; delete only
 *                    releases a tenant that was offboarded first and keeps its rows until `tenancy tenant
 *                    purge` (lib/tenant/stack-guards.ts, docs/data-safety.md).
 *   <name>-cache     components/cache TenantCacheUser: the tenant's Redis ACL user and tier quota
 *                    (delete revokes it and cuts its connections; its keys stay until the purge).
 *   Enterprise only:
 *   <name>-dedicated components/db DedicatedPlacement: the tenant's own schema. Becoming Enterprise
 *                    adds it (graduation); leaving Enterprise removes it (demotion). `deletedWith` the
 *                    registry entry, so offboarding does not first copy the rows back.
 *   <name>-login     components/db TenantLoginRole: its login role (secret password), created after
 *                    the graduation, dropped before a demotion (an offboarded tenant keeps it until the purge).
 */
import * as pulumi from "@pulumi/pulumi";
import type { ResidencyRegion, Tier } from "../../lib/tenant/model";
import { TenantCacheUser, type RedisAdminConnection } from "../cache/tenant-cache-user";
import { DedicatedPlacement } from "../db/dedicated-placement";
import type { DatabaseConnection } from "../db/provider-runtime";
import { Tenant } from "../db/tenant";
import { TenantLoginRole } from "../db/tenant-login-role";

export interface TenantStackArgs {
  /** Replaces (offboards and re-registers) the tenant when changed. */
  slug: string;
  /** A change is an update: the registry's tier and cache quota; to or from Enterprise, graduation or demotion. */
  tier: Tier;
  /** Must equal the platform stack's residency (the program checks before declaring this). */
  region: ResidencyRegion;
  /** @default the slug. Fixed at registration. */
  displayName?: string;
  /** The regional database server and admin role. Changing the server replaces everything. */
  connection: DatabaseConnection;
  database: string;
  databaseOid: number;
  /** The regional Redis, as an administrator (pass it as a secret: it carries the admin password). */
  redis: pulumi.Input<RedisAdminConnection>;
}

export class TenantStack extends pulumi.ComponentResource {
  readonly registry: Tenant;
  readonly cache: TenantCacheUser;
  readonly placement?: DedicatedPlacement;
  readonly loginRole?: TenantLoginRole;
  readonly tenantId: pulumi.Output<string>;

  constructor(name: string, args: TenantStackArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("alphapulse:tenant:TenantStack", name, {}, opts);
    const database = { connection: args.connection, database: args.database, databaseOid: args.databaseOid };
    this.registry = new Tenant(
      `${name}-registry`,
      { ...database, slug: args.slug, tier: args.tier, region: args.region, displayName: args.displayName },
      { parent: this },
    );
    this.tenantId = this.registry.tenantId;
    if (args.tier === "enterprise") {
      this.placement = new DedicatedPlacement(
        `${name}-dedicated`,
        { ...database, tenantId: this.tenantId },
        { parent: this, deletedWith: this.registry },
      );
      this.loginRole = new TenantLoginRole(
        `${name}-login`,
        { ...database, tenantId: this.tenantId, tier: args.tier, schema: this.placement.schema },
        { parent: this },
      );
    }
    this.cache = new TenantCacheUser(`${name}-cache`, { redis: args.redis, tenantId: this.tenantId, tier: args.tier }, { parent: this });
    this.registerOutputs({ tenantId: this.tenantId, cacheUser: this.cache.userName, schema: this.placement?.schema ?? "shared" });
  }
}
