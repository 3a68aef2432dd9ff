/**
 * `alphapulse:aws:RedisCache` — ElastiCache for Redis 7: a Multi-AZ replication group with TLS in
 * transit (required, not preferred), encryption at rest under the region's KMS key, and RBAC:
 *
 * - a user named `default` that is `off` with no permissions (every user group must contain one;
 *   RESET re-authenticates as `default`, so it must not be usable);
 * - an admin user for operations (loading the quota functions, usage audits);
 * - the user group lists those two only, and ignores changes to its `userIds`: each tenant's user
 *   joins it from the tenant's own stack (components/aws/tenant-redis-user.ts, an
 *   aws.elasticache.UserGroupAssociation), so adding a tenant never redeploys the region, and an
 *   update of this stack never drops a tenant's membership;
 * - the tenants of the regional config (`regionalTenants`) keep the user and secret this stack
 *   declared before tenant stacks existed, under the same names (an upgrade changes nothing), and
 *   retained on delete: removing a tenant from the config forgets them here and leaves them in AWS,
 *   for its tenant stack to import (docs/tenant-stacks.md "Moving a regional tenant").
 *
 * Passwords are generated and kept in Secrets Manager. The parameter group
 * sets the maxmemory policy and keyspace notifications (`KA`, keyspace channels only, as locally).
 *
 * Layout as in postgres-cluster.ts: module-level builders return plain values (rules, users,
 * the replication group's inputs, alarms; test/aws/redis-cache-builders.test.ts), the constructor
 * validates and declares.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { renderTenantAcl, type TenantAcl } from "../../lib/redis/acl";
import { assertZoneInRegion } from "../../lib/platform/residency";
import { Credential, type CredentialArgs } from "./credential";
import { tcpRule, type TcpRuleArgs } from "./tcp-rule";

export const REDIS_PORT = 6379;
/** The `default` user: disabled, no commands, no keys, no channels. */
export const DEFAULT_USER_ACCESS_STRING = "off resetchannels -@all";
/** The operations user: everything (quota function library, audits). Its password lives in Secrets Manager only. */
export const ADMIN_USER_NAME = "alphapulse_admin";
export const ADMIN_USER_ACCESS_STRING = "on ~* &* +@all";

/** A tenant of the regional config (RegionalPlatform `tenants`). */
export interface RedisTenant {
  id: string;
  slug: string;
}

/**
 * Args of {@link RedisCache}. "Caution" marks an arg whose change replaces a resource. Changes to
 * the replication group itself (`nodeType`, `engineVersion`, the parameter group) are applied in
 * the next maintenance window (`applyImmediately: false`), not during `up`.
 */
export interface RedisCacheArgs {
  /** AWS region (plain: availability zones are checked against it). */
  region: string;
  /** Caution: changing it replaces the security group. */
  vpcId: pulumi.Input<string>;
  /** Private subnets of the cache (the subnet group; in place). */
  subnetIds: pulumi.Input<string>[];
  /**
   * Plain availability zones, at least two; the primary and replicas are spread over them in order.
   * Read at creation only: ElastiCache ignores a change on an existing group.
   */
  availabilityZones: string[];
  /** Security groups allowed to reach 6379 (the application's), two rules each, named by position. */
  clientSecurityGroupIds: pulumi.Input<string>[];
  /**
   * Region KMS key (ARN) for the cache at rest, the secrets and the slow log. Caution: the cache's
   * at-rest key cannot change in place: a new key replaces the replication group (protected: refused).
   */
  kmsKeyArn: pulumi.Input<string>;
  /** SNS topic for the memory alarms and ElastiCache events. */
  alarmTopicArn: pulumi.Input<string>;
  /** Cache node type of every node (maintenance window). */
  nodeType: pulumi.Input<string>;
  /** Redis engine version (maintenance window; the parameter group's family is redis7). @default "7.1" */
  engineVersion?: string;
  /** Read replicas besides the primary; at least one (Multi-AZ). Plain: decides the node count and the memory alarms. @default 1 */
  replicas?: number;
  /** maxmemory-policy of the parameter group. @default "volatile-lru" */
  maxmemoryPolicy?: pulumi.Input<string>;
  /** Days of daily snapshots kept (in place). @default 7 */
  snapshotRetentionDays?: pulumi.Input<number>;
  /**
   * Prefix of the Secrets Manager names, e.g. `alphapulse/eu-prod/redis`. Caution: changing it
   * replaces every secret (protected: refused).
   */
  secretNamePrefix: string;
  /** Retention of the slow-log group, days (in place). @default 30 */
  logRetentionDays?: pulumi.Input<number>;
  /**
   * Tenants of the regional config: each keeps a user and a secret declared here, retained on delete
   * (removing the tenant from the config never deletes them in AWS). New tenants get theirs from
   * their tenant stacks instead. Caution: a slug change renames them. @default []
   */
  regionalTenants?: RedisTenant[];
}

export class RedisCache extends pulumi.ComponentResource {
  readonly primaryEndpoint: pulumi.Output<string>;
  readonly readerEndpoint: pulumi.Output<string>;
  readonly port = REDIS_PORT;
  readonly securityGroupId: pulumi.Output<string>;
  readonly adminSecretArn: pulumi.Output<string>;
  /** The RBAC user group: tenant stacks add their users to it (aws.elasticache.UserGroupAssociation). */
  readonly userGroupId: pulumi.Output<string>;
  /** Where tenant stacks keep their users' secrets: `<secretNamePrefix>/tenants` (the names this stack used before). */
  readonly tenantSecretPrefix: string;

  constructor(name: string, args: RedisCacheArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("alphapulse:aws:RedisCache", name, {}, opts);
    const replicas = args.replicas ?? 1;
    validateRedisCacheArgs(name, { ...args, replicas });
    // Render every access string first: a bad tenant id fails before anything is declared.
    const regionalAcls = (args.regionalTenants ?? []).map((tenant) => ({ tenant, acl: renderTenantAcl(tenant.id) }));
    const parent = { parent: this };

    const sg = new aws.ec2.SecurityGroup(`${name}-sg`, redisSecurityGroupArgs(name, args.vpcId), parent);
    for (const rule of redisSecurityGroupRules(name, { securityGroupId: sg.id, clientSecurityGroupIds: args.clientSecurityGroupIds })) {
      tcpRule(rule.name, rule.args, parent);
    }

    const subnetGroup = new aws.elasticache.SubnetGroup(
      `${name}-subnets`,
      { subnetIds: args.subnetIds, description: `Private subnets of ${name}` },
      parent,
    );
    const parameterGroup = new aws.elasticache.ParameterGroup(
      `${name}-params`,
      redisParameterGroupArgs(name, args.maxmemoryPolicy),
      parent,
    );

    // RBAC: `default` off and an admin; the regional config's tenants (retained on delete); other
    // tenants' users join from their own stacks.
    // The disabled `default` user still gets a password (never stored, never used): defence in depth.
    const defaultPassword = new random.RandomPassword(`${name}-default-password`, { length: 40, special: false }, parent);
    const defaultUser = new aws.elasticache.User(`${name}-default`, defaultUserArgs(name, defaultPassword.result), parent);
    const admin = new Credential(`${name}-admin`, adminCredentialArgs(name, args), parent);
    const adminUser = new aws.elasticache.User(`${name}-admin`, adminUserArgs(name, admin.password), parent);
    const regionalUsers = regionalAcls.map(({ tenant, acl }) => {
      const credential = new Credential(`${name}-tenant-${tenant.slug}`, regionalTenantCredentialArgs(tenant, acl, args), parent);
      return new aws.elasticache.User(`${name}-tenant-${tenant.slug}`, regionalTenantUserArgs(acl, credential.password), {
        parent: this,
        retainOnDelete: true,
      });
    });
    const userGroup = new aws.elasticache.UserGroup(
      `${name}-users`,
      {
        userGroupId: `${name}-users`,
        engine: "redis",
        userIds: [defaultUser.userId, adminUser.userId, ...regionalUsers.map((u) => u.userId)],
      },
      // Tenant stacks' associations add members; an update of this stack must not remove them.
      { parent: this, ignoreChanges: ["userIds"] },
    );

    const slowLog = new aws.cloudwatch.LogGroup(
      `${name}-slow-log`,
      { name: redisSlowLogGroupName(name), retentionInDays: args.logRetentionDays ?? 30, kmsKeyId: args.kmsKeyArn },
      parent,
    );
    const group = new aws.elasticache.ReplicationGroup(
      `${name}-group`,
      replicationGroupArgs(name, {
        ...args,
        replicas,
        userGroupId: userGroup.userGroupId,
        subnetGroupName: subnetGroup.name,
        securityGroupId: sg.id,
        parameterGroupName: parameterGroup.name,
        slowLogGroupName: slowLog.name,
      }),
      { parent: this, protect: true },
    );

    for (const member of memberClusterIds(name, replicas)) {
      new aws.cloudwatch.MetricAlarm(`${member}-memory`, memoryAlarmArgs(member, args.alarmTopicArn), { parent: this, dependsOn: [group] });
    }

    this.primaryEndpoint = group.primaryEndpointAddress;
    this.readerEndpoint = group.readerEndpointAddress;
    this.securityGroupId = sg.id;
    this.adminSecretArn = admin.secretArn;
    this.userGroupId = userGroup.userGroupId;
    this.tenantSecretPrefix = `${args.secretNamePrefix}/tenants`;
    this.registerOutputs({
      primaryEndpoint: this.primaryEndpoint,
      readerEndpoint: this.readerEndpoint,
      adminSecretArn: this.adminSecretArn,
      userGroupId: this.userGroupId,
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Builders: pure, module-level, plain values in and out (Inputs pass through untouched).
// ---------------------------------------------------------------------------------------------

/** The checks that need no resource. Throws naming the field. */
export function validateRedisCacheArgs(
  name: string,
  args: Pick<RedisCacheArgs, "region" | "availabilityZones" | "clientSecurityGroupIds"> & { replicas: number },
): void {
  if (!Number.isInteger(args.replicas) || args.replicas < 1)
    throw new Error(`RedisCache ${name}: replicas must be an integer of at least 1 (Multi-AZ), got ${args.replicas}`);
  const zones = args.availabilityZones ?? [];
  if (zones.length < 2) throw new Error(`RedisCache ${name}: availabilityZones needs at least two zones, got ${zones.length}`);
  zones.forEach((zone, i) => assertZoneInRegion(zone, args.region, `RedisCache ${name} availabilityZones[${i}]`));
  if ((args.clientSecurityGroupIds ?? []).length === 0)
    throw new Error(`RedisCache ${name}: clientSecurityGroupIds must name at least one security group`);
}

export function redisSecurityGroupArgs(cache: string, vpcId: pulumi.Input<string>) {
  return { vpcId, description: `Redis of ${cache}`, tags: { Name: `${cache}-redis` } };
}

/** Per client group (named by position): 6379 into the cache's group and out of the client's. Nothing else. */
export function redisSecurityGroupRules(
  cache: string,
  o: { securityGroupId: pulumi.Input<string>; clientSecurityGroupIds: readonly pulumi.Input<string>[] },
): { name: string; args: TcpRuleArgs }[] {
  return o.clientSecurityGroupIds.flatMap((client, i) => [
    {
      name: `${cache}-from-client-${i}`,
      args: {
        direction: "ingress" as const,
        securityGroupId: o.securityGroupId,
        port: REDIS_PORT,
        peer: { referencedSecurityGroupId: client },
        description: "Redis from the application",
      },
    },
    {
      name: `${cache}-client-${i}-to-redis`,
      args: {
        direction: "egress" as const,
        securityGroupId: client,
        peer: { referencedSecurityGroupId: o.securityGroupId },
        port: REDIS_PORT,
        description: "Application to Redis",
      },
    },
  ]);
}

/** Family redis7: the maxmemory policy and keyspace notifications (`KA`, keyspace channels only, as locally). */
export function redisParameterGroupArgs(cache: string, maxmemoryPolicy: pulumi.Input<string> | undefined) {
  return {
    family: "redis7",
    description: `Redis settings of ${cache}`,
    parameters: [
      { name: "maxmemory-policy", value: maxmemoryPolicy ?? "volatile-lru" },
      { name: "notify-keyspace-events", value: "KA" },
    ],
  };
}

/** An ElastiCache RBAC user with one password (also the tenant stacks' users, components/aws/tenant-redis-user.ts). */
export function redisUserArgs(
  userId: pulumi.Input<string>,
  userName: pulumi.Input<string>,
  accessString: pulumi.Input<string>,
  password: pulumi.Input<string>,
) {
  return { userId, userName, engine: "redis", accessString, authenticationMode: { type: "password", passwords: [password] } };
}

/** The `default` user every group needs, disabled with no permissions (RESET falls back to it). */
export function defaultUserArgs(cache: string, password: pulumi.Input<string>) {
  return redisUserArgs(`${cache}-default`, "default", DEFAULT_USER_ACCESS_STRING, password);
}

export function adminUserArgs(cache: string, password: pulumi.Input<string>) {
  return redisUserArgs(`${cache}-admin`, ADMIN_USER_NAME, ADMIN_USER_ACCESS_STRING, password);
}

export function adminCredentialArgs(cache: string, args: Pick<RedisCacheArgs, "secretNamePrefix" | "kmsKeyArn">) {
  return {
    username: ADMIN_USER_NAME,
    secretName: `${args.secretNamePrefix}/${ADMIN_USER_NAME}`,
    kmsKeyId: args.kmsKeyArn,
    description: `Redis operations user of ${cache}`,
  };
}

/** A regional-config tenant's user: id, name and access string from lib/redis/acl.ts `renderTenantAcl`. */
export function regionalTenantUserArgs(
  acl: Pick<TenantAcl, "elasticacheUserId" | "userName" | "accessString">,
  password: pulumi.Input<string>,
) {
  return redisUserArgs(acl.elasticacheUserId, acl.userName, acl.accessString, password);
}

/** Its secret, under the name this stack always used (`<prefix>/tenants/<slug>`), retained on removal. */
export function regionalTenantCredentialArgs(
  tenant: Pick<RedisTenant, "slug">,
  acl: Pick<TenantAcl, "userName">,
  args: Pick<RedisCacheArgs, "secretNamePrefix" | "kmsKeyArn">,
): CredentialArgs {
  return {
    username: acl.userName,
    secretName: `${args.secretNamePrefix}/tenants/${tenant.slug}`,
    kmsKeyId: args.kmsKeyArn,
    description: `Redis user of tenant ${tenant.slug}`,
    onRemoval: "retain",
  };
}

export function redisSlowLogGroupName(cache: string): string {
  return `/alphapulse/${cache}/redis-slow-log`;
}

/** Zones of the primary and each replica: round-robin over the given zones, primary first. */
export function preferredCacheClusterAzs(zones: readonly string[], replicas: number): string[] {
  return Array.from({ length: 1 + replicas }, (_, i) => zones[i % zones.length]);
}

/** Member cluster ids of a cluster-mode-disabled group: `<group>-001`, `-002`, ... (primary and replicas). */
export function memberClusterIds(cache: string, replicas: number): string[] {
  return Array.from({ length: 1 + replicas }, (_, i) => `${cache}-${String(i + 1).padStart(3, "0")}`);
}

/** The replication group: Multi-AZ with failover, TLS required, encrypted at rest, RBAC only, slow log, final snapshot. */
export function replicationGroupArgs(
  cache: string,
  o: Pick<RedisCacheArgs, "engineVersion" | "nodeType" | "availabilityZones" | "kmsKeyArn" | "snapshotRetentionDays" | "alarmTopicArn"> & {
    replicas: number;
    userGroupId: pulumi.Input<string>;
    subnetGroupName: pulumi.Input<string>;
    securityGroupId: pulumi.Input<string>;
    parameterGroupName: pulumi.Input<string>;
    slowLogGroupName: pulumi.Input<string>;
  },
): aws.elasticache.ReplicationGroupArgs {
  return {
    replicationGroupId: cache,
    description: `Tenant cache of ${cache}`,
    engine: "redis",
    engineVersion: o.engineVersion ?? "7.1",
    nodeType: o.nodeType,
    port: REDIS_PORT,
    numCacheClusters: 1 + o.replicas,
    preferredCacheClusterAzs: preferredCacheClusterAzs(o.availabilityZones, o.replicas),
    automaticFailoverEnabled: true,
    multiAzEnabled: true,
    transitEncryptionEnabled: true,
    transitEncryptionMode: "required",
    atRestEncryptionEnabled: true,
    kmsKeyId: o.kmsKeyArn,
    userGroupIds: [o.userGroupId],
    subnetGroupName: o.subnetGroupName,
    securityGroupIds: [o.securityGroupId],
    parameterGroupName: o.parameterGroupName,
    snapshotRetentionLimit: o.snapshotRetentionDays ?? 7,
    snapshotWindow: "02:00-03:00",
    maintenanceWindow: "sun:04:00-sun:05:00",
    finalSnapshotIdentifier: `${cache}-final`,
    autoMinorVersionUpgrade: true,
    applyImmediately: false,
    notificationTopicArn: o.alarmTopicArn,
    logDeliveryConfigurations: [
      { destination: o.slowLogGroupName, destinationType: "cloudwatch-logs", logFormat: "json", logType: "slow-log" },
    ],
  };
}

/** A node close to maxmemory: evictions follow. */
export function memoryAlarmArgs(member: string, alarmTopicArn: pulumi.Input<string>): aws.cloudwatch.MetricAlarmArgs {
  return {
    alarmDescription: `Redis node ${member} close to maxmemory: evictions follow (per-tenant quotas should prevent this)`,
    namespace: "AWS/ElastiCache",
    metricName: "DatabaseMemoryUsagePercentage",
    dimensions: { CacheClusterId: member },
    statistic: "Maximum",
    period: 60,
    evaluationPeriods: 5,
    threshold: 80,
    comparisonOperator: "GreaterThanThreshold",
    alarmActions: [alarmTopicArn],
    okActions: [alarmTopicArn],
  };
}
