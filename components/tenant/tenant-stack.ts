/**
 * `alphapulse:tenant:TenantStack` — everything one tenant owns in its region, declared by the tenant
 * stack `tenant-<slug>` (components/tenant/program.ts) against the regional platform stack:
 *
 *   <name>-registry  components/db Tenant: the registry entry. A tier change is an update; delete only
 *                    releases a tenant that was offboarded first and keeps its rows until `tenancy tenant
 *                    purge` (lib/tenant/stack-guards.ts, docs/data-safety.md).
 *   <name>-cache     its Redis user. Local regions: components/cache TenantCacheUser, the ACL user and
 *                    tier quota on the region's redis-server (delete revokes it and cuts its
 *                    connections). AWS regions: components/aws TenantRedisUser, an ElastiCache RBAC
 *                    user in the regional user group, its password in Secrets Manager under the
 *                    region's key. Either way its keys stay until the purge.
 *   Enterprise only:
 *   <name>-dedicated components/db DedicatedPlacement: the tenant's own schema. Becoming Enterprise
 *                    adds it (graduation); leaving Enterprise removes it (demotion). `deletedWith` the
 *                    registry entry, so offboarding does not first copy the rows back.
 *   <name>-login     components/db TenantLoginRole: its login role (secret password), created after
 *                    the graduation, dropped before a demotion (an offboarded tenant keeps it until the purge).
 *   AWS regions only:
 *   <name>-aws       the tenant's AWS provider: the platform's region and account, default tags
 *                    alphapulse:tenant / tier / residency / cost-centre on every taggable resource.
 *   <name>-alarms    components/aws TenantAlarms: its CloudWatch alarms (and an Enterprise tenant's
 *                    own metric filters) on the region's log group and topic.
 *
 * The database side is the same components on both; only the connection differs (a direct one
 * locally, the region's executor on AWS: components/db/provider-runtime.ts).
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { tenantDefaultTags, type AwsTenantPlatform } from "../../lib/tenant-stacks/aws-platform";
import type { ResidencyRegion, Tier } from "../../lib/tenant/model";
import { TenantAlarms } from "../aws/tenant-alarms";
import { TenantRedisUser } from "../aws/tenant-redis-user";
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
  /**
   * Where the tenant's Redis user lives: the local region's redis-server (as an administrator; pass it
   * as a secret, it carries the admin password), or
   * the AWS region's ElastiCache user group (with the platform's account, key, topic and log group).
   */
  cache: { kind: "local"; redis: pulumi.Input<RedisAdminConnection> } | { kind: "aws"; platform: AwsTenantPlatform };
  /**
   * The tenant was offboarded and its stack is being destroyed (`npm run tenant -- destroy`): the
   * AWS Redis secret is declared unprotected so the destroy can schedule its deletion (recovery
   * window kept). Nothing else changes; nothing else is ever unprotected. @default false
   */
  releaseForDestroy?: boolean;
}

export class TenantStack extends pulumi.ComponentResource {
  readonly registry: Tenant;
  /** The Redis user name the tenant AUTHs as. */
  readonly cacheUser: pulumi.Output<string>;
  /** Local regions: the Redis password (secret). AWS: undefined (applications read the secret). */
  readonly cachePassword?: pulumi.Output<string>;
  /** AWS: the Secrets Manager ARN of the Redis credential. */
  readonly cacheSecretArn?: pulumi.Output<string>;
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
    if (args.cache.kind === "local") {
      const cache = new TenantCacheUser(
        `${name}-cache`,
        { redis: args.cache.redis, tenantId: this.tenantId, tier: args.tier },
        { parent: this },
      );
      this.cacheUser = cache.userName;
      this.cachePassword = cache.password;
    } else {
      const platform = args.cache.platform;
      const provider = new aws.Provider(
        `${name}-aws`,
        {
          region: platform.awsRegion,
          allowedAccountIds: [platform.accountId],
          defaultTags: { tags: tenantDefaultTags(args, platform.costCentre) },
        },
        { parent: this },
      );
      const onAws = { parent: this, providers: { aws: provider } };
      const cache = new TenantRedisUser(
        `${name}-cache`,
        {
          tenantId: this.tenantId,
          slug: args.slug,
          secretNamePrefix: platform.tenantSecretPrefix,
          kmsKeyArn: platform.kmsKeyArn,
          userGroupId: platform.userGroupId,
          releaseSecret: args.releaseForDestroy ?? false,
        },
        onAws,
      );
      new TenantAlarms(
        `${name}-alarms`,
        {
          slug: args.slug,
          tenantId: this.tenantId,
          logTag: this.registry.logTag,
          metricNamespace: platform.metricNamespace,
          logGroupName: platform.logGroupName,
          alarmTopicArn: platform.alarmTopicArn,
          ownFilters: args.tier === "enterprise",
        },
        onAws,
      );
      this.cacheUser = cache.userName;
      this.cacheSecretArn = cache.secretArn;
    }
    this.registerOutputs({ tenantId: this.tenantId, cacheUser: this.cacheUser, schema: this.placement?.schema ?? "shared" });
  }
}
