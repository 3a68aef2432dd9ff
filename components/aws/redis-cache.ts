/**
 * `alphapulse:aws:RedisCache` — ElastiCache for Redis 7: a Multi-AZ replication group with TLS in
 * transit (required, not preferred), encryption at rest under the region's KMS key, and RBAC:
 *
 * - one ElastiCache user per tenant whose access string comes from lib/redis/acl.ts
 *   `renderTenantAcl` — the same rules test/redis proves on a real redis-server;
 * - a user named `default` that is `off` with no permissions (every user group must contain one;
 *   RESET re-authenticates as `default`, so it must not be usable);
 * - an admin user for operations (loading the quota functions, usage audits).
 *
 * Passwords are generated and kept in Secrets Manager (one secret per tenant). The parameter group
 * sets the maxmemory policy and keyspace notifications (`KA`, keyspace channels only, as locally).
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { renderTenantAcl } from "../../lib/redis/acl";
import { assertZoneInRegion } from "../../lib/platform/residency";
import { Credential } from "./credential";
import { tcpRule } from "./tcp-rule";

export const REDIS_PORT = 6379;
/** The `default` user: disabled, no commands, no keys, no channels. */
export const DEFAULT_USER_ACCESS_STRING = "off resetchannels -@all";
/** The operations user: everything (quota function library, audits). Its password lives in Secrets Manager only. */
export const ADMIN_USER_NAME = "alphapulse_admin";
export const ADMIN_USER_ACCESS_STRING = "on ~* &* +@all";

export interface RedisTenant {
  id: string;
  slug: string;
}

export interface RedisCacheArgs {
  /** AWS region (plain: availability zones are checked against it). */
  region: string;
  vpcId: pulumi.Input<string>;
  subnetIds: pulumi.Input<string>[];
  /** Plain availability zones; the primary and replicas are spread over them in order. */
  availabilityZones: string[];
  /** Security groups allowed to reach 6379 (the application's). */
  clientSecurityGroupIds: pulumi.Input<string>[];
  kmsKeyArn: pulumi.Input<string>;
  alarmTopicArn: pulumi.Input<string>;
  nodeType: pulumi.Input<string>;
  /** @default "7.1" */
  engineVersion?: string;
  /** Read replicas besides the primary; at least one (Multi-AZ). Plain: decides the node count. @default 1 */
  replicas?: number;
  /** @default "volatile-lru" */
  maxmemoryPolicy?: pulumi.Input<string>;
  /** @default 7 */
  snapshotRetentionDays?: pulumi.Input<number>;
  /** Tenants with their own user (plain: one user and one secret each). @default [] */
  tenants?: RedisTenant[];
  /** Prefix of the Secrets Manager names, e.g. `alphapulse/eu-prod/redis`. */
  secretNamePrefix: string;
  /** @default 30 */
  logRetentionDays?: pulumi.Input<number>;
}

export class RedisCache extends pulumi.ComponentResource {
  readonly primaryEndpoint: pulumi.Output<string>;
  readonly readerEndpoint: pulumi.Output<string>;
  readonly port = REDIS_PORT;
  readonly securityGroupId: pulumi.Output<string>;
  readonly adminSecretArn: pulumi.Output<string>;
  /** Secrets Manager ARN of each tenant's credentials, by slug. */
  readonly tenantSecretArns: Record<string, pulumi.Output<string>>;

  constructor(name: string, args: RedisCacheArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("alphapulse:aws:RedisCache", name, {}, opts);
    const replicas = args.replicas ?? 1;
    if (!Number.isInteger(replicas) || replicas < 1)
      throw new Error(`RedisCache ${name}: replicas must be an integer of at least 1 (Multi-AZ), got ${replicas}`);
    const zones = args.availabilityZones ?? [];
    if (zones.length < 2) throw new Error(`RedisCache ${name}: availabilityZones needs at least two zones, got ${zones.length}`);
    zones.forEach((zone, i) => assertZoneInRegion(zone, args.region, `RedisCache ${name} availabilityZones[${i}]`));
    if ((args.clientSecurityGroupIds ?? []).length === 0)
      throw new Error(`RedisCache ${name}: clientSecurityGroupIds must name at least one security group`);
    const tenants = args.tenants ?? [];
    // Render every access string first: a bad tenant id fails before anything is declared.
    const acls = tenants.map((t) => ({ tenant: t, acl: renderTenantAcl(t.id) }));
    const parent = { parent: this };

    const sg = new aws.ec2.SecurityGroup(
      `${name}-sg`,
      { vpcId: args.vpcId, description: `Redis of ${name}`, tags: { Name: `${name}-redis` } },
      parent,
    );
    args.clientSecurityGroupIds.forEach((client, i) => {
      const port = { port: REDIS_PORT, peer: { referencedSecurityGroupId: client } };
      tcpRule(
        `${name}-from-client-${i}`,
        { direction: "ingress", securityGroupId: sg.id, ...port, description: "Redis from the application" },
        parent,
      );
      tcpRule(
        `${name}-client-${i}-to-redis`,
        {
          direction: "egress",
          securityGroupId: client,
          peer: { referencedSecurityGroupId: sg.id },
          port: REDIS_PORT,
          description: "Application to Redis",
        },
        parent,
      );
    });

    const subnetGroup = new aws.elasticache.SubnetGroup(
      `${name}-subnets`,
      { subnetIds: args.subnetIds, description: `Private subnets of ${name}` },
      parent,
    );
    const parameterGroup = new aws.elasticache.ParameterGroup(
      `${name}-params`,
      {
        family: "redis7",
        description: `Redis settings of ${name}`,
        parameters: [
          { name: "maxmemory-policy", value: args.maxmemoryPolicy ?? "volatile-lru" },
          { name: "notify-keyspace-events", value: "KA" },
        ],
      },
      parent,
    );

    // RBAC: `default` off, an admin, one user per tenant with the renderer's access string.
    // The disabled `default` user still gets a password (never stored, never used): defence in depth.
    const defaultPassword = new random.RandomPassword(`${name}-default-password`, { length: 40, special: false }, parent);
    const defaultUser = new aws.elasticache.User(
      `${name}-default`,
      {
        userId: `${name}-default`,
        userName: "default",
        engine: "redis",
        accessString: DEFAULT_USER_ACCESS_STRING,
        authenticationMode: { type: "password", passwords: [defaultPassword.result] },
      },
      parent,
    );
    const admin = new Credential(
      `${name}-admin`,
      {
        username: ADMIN_USER_NAME,
        secretName: `${args.secretNamePrefix}/${ADMIN_USER_NAME}`,
        kmsKeyId: args.kmsKeyArn,
        description: `Redis operations user of ${name}`,
      },
      parent,
    );
    const adminUser = new aws.elasticache.User(
      `${name}-admin`,
      {
        userId: `${name}-admin`,
        userName: ADMIN_USER_NAME,
        engine: "redis",
        accessString: ADMIN_USER_ACCESS_STRING,
        authenticationMode: { type: "password", passwords: [admin.password] },
      },
      parent,
    );
    this.tenantSecretArns = {};
    const tenantUsers = acls.map(({ tenant, acl }) => {
      const credential = new Credential(
        `${name}-tenant-${tenant.slug}`,
        {
          username: acl.userName,
          secretName: `${args.secretNamePrefix}/tenants/${tenant.slug}`,
          kmsKeyId: args.kmsKeyArn,
          description: `Redis user of tenant ${tenant.slug}`,
        },
        parent,
      );
      this.tenantSecretArns[tenant.slug] = credential.secretArn;
      return new aws.elasticache.User(
        `${name}-tenant-${tenant.slug}`,
        {
          userId: acl.elasticacheUserId,
          userName: acl.userName,
          engine: "redis",
          accessString: acl.accessString,
          authenticationMode: { type: "password", passwords: [credential.password] },
        },
        parent,
      );
    });
    const userGroup = new aws.elasticache.UserGroup(
      `${name}-users`,
      {
        userGroupId: `${name}-users`,
        engine: "redis",
        userIds: [defaultUser.userId, adminUser.userId, ...tenantUsers.map((u) => u.userId)],
      },
      parent,
    );

    const slowLog = new aws.cloudwatch.LogGroup(
      `${name}-slow-log`,
      { name: `/alphapulse/${name}/redis-slow-log`, retentionInDays: args.logRetentionDays ?? 30, kmsKeyId: args.kmsKeyArn },
      parent,
    );
    const group = new aws.elasticache.ReplicationGroup(
      `${name}-group`,
      {
        replicationGroupId: name,
        description: `Tenant cache of ${name}`,
        engine: "redis",
        engineVersion: args.engineVersion ?? "7.1",
        nodeType: args.nodeType,
        port: REDIS_PORT,
        numCacheClusters: 1 + replicas,
        preferredCacheClusterAzs: Array.from({ length: 1 + replicas }, (_, i) => zones[i % zones.length]),
        automaticFailoverEnabled: true,
        multiAzEnabled: true,
        transitEncryptionEnabled: true,
        transitEncryptionMode: "required",
        atRestEncryptionEnabled: true,
        kmsKeyId: args.kmsKeyArn,
        userGroupIds: [userGroup.userGroupId],
        subnetGroupName: subnetGroup.name,
        securityGroupIds: [sg.id],
        parameterGroupName: parameterGroup.name,
        snapshotRetentionLimit: args.snapshotRetentionDays ?? 7,
        snapshotWindow: "02:00-03:00",
        maintenanceWindow: "sun:04:00-sun:05:00",
        finalSnapshotIdentifier: `${name}-final`,
        autoMinorVersionUpgrade: true,
        applyImmediately: false,
        notificationTopicArn: args.alarmTopicArn,
        logDeliveryConfigurations: [
          { destination: slowLog.name, destinationType: "cloudwatch-logs", logFormat: "json", logType: "slow-log" },
        ],
      },
      { parent: this, protect: true },
    );

    // Member clusters of a cluster-mode-disabled group are named <group>-001, -002, ...
    for (let i = 1; i <= 1 + replicas; i++) {
      const member = `${name}-${String(i).padStart(3, "0")}`;
      new aws.cloudwatch.MetricAlarm(
        `${member}-memory`,
        {
          alarmDescription: `Redis node ${member} close to maxmemory: evictions follow (per-tenant quotas should prevent this)`,
          namespace: "AWS/ElastiCache",
          metricName: "DatabaseMemoryUsagePercentage",
          dimensions: { CacheClusterId: member },
          statistic: "Maximum",
          period: 60,
          evaluationPeriods: 5,
          threshold: 80,
          comparisonOperator: "GreaterThanThreshold",
          alarmActions: [args.alarmTopicArn],
          okActions: [args.alarmTopicArn],
        },
        { parent: this, dependsOn: [group] },
      );
    }

    this.primaryEndpoint = group.primaryEndpointAddress;
    this.readerEndpoint = group.readerEndpointAddress;
    this.securityGroupId = sg.id;
    this.adminSecretArn = admin.secretArn;
    this.registerOutputs({
      primaryEndpoint: this.primaryEndpoint,
      readerEndpoint: this.readerEndpoint,
      adminSecretArn: this.adminSecretArn,
      tenantSecretArns: this.tenantSecretArns,
    });
  }
}
