/**
 * `alphapulse:aws:PostgresCluster` — self-managed PostgreSQL 15 with TimescaleDB on EC2: a primary
 * and a streaming replica in another availability zone.
 *
 * Why not RDS/Aurora: neither offers the timescaledb extension (docs/aws.md cites the sources).
 *
 * - Nodes: a golden image (PostgreSQL + TimescaleDB + pgBackRest, docs/aws.md), IMDSv2 only, no key
 *   pair and no SSH: access is SSM Session Manager through the VPC endpoints. Root and data volumes
 *   are gp3, encrypted under the region's KMS key. The data volume is its own resource (protected,
 *   retained on delete, final snapshot) so a node can be replaced without touching the data.
 * - Bootstrap: cloud-init from lib/platform/cloud-init.ts with the postgresql.conf, pg_hba.conf
 *   and pgbackrest.conf fragments of lib/platform/postgres-config.ts and lib/platform/pgbackrest-config.ts, the same
 *   renderers the local clusters use. Passwords are never in user data: the node reads them from
 *   Secrets Manager with its instance role. A new image or changed user data does not replace or
 *   restart a running node (`ignoreChanges`); docs/aws.md describes the node rotation.
 * - Backups: pgBackRest to a region-local S3 bucket (versioned, SSE-KMS, public access blocked,
 *   TLS-only policy, lifecycle for noncurrent versions), WAL archiving for point-in-time recovery,
 *   retention from config.
 * - Network: 5432 only from the client security groups (PgBouncer), the database executor's group
 *   (one rule; pg_hba admits its role from its subnets only) and the cluster itself (replication); egress only to the cluster (5432), the interface endpoints and S3 (443).
 * - Alarms: replication lag, disk, connections, backup age, WAL archiving, EC2 system status
 *   (with automatic recovery). The log group receives the server and pgBackRest logs.
 *
 * Layout (pulumi-awsx style): everything that decides something is a module-level builder below the
 * args — a pure function returning plain values (configuration files, bootstrap parameters, policy
 * documents, security-group rules, alarm definitions, resource inputs), tested in
 * test/aws/postgres-cluster-builders.test.ts. The constructor only validates, resolves defaults and
 * declares the resources from those values, every child `{ parent: this }` and named from `name`.
 */
import { schemaCapacitySettings } from "../../lib/enterprise/schema-capacity";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { renderPostgresNodeCloudInit, type NodeRole, type PostgresNodeParams } from "../../lib/platform/cloud-init";
import { pgbackrestGlobalOptions, pgbackrestStanzaOptions, renderPgbackrestConf } from "../../lib/platform/pgbackrest-config";
import { EXECUTOR_ROLE, EXECUTOR_ROLE_ATTRIBUTES, renderDatabaseBootstrapSql } from "../../lib/platform/database-bootstrap";
import {
  composeSettings,
  connectionSettings,
  extensionSettings,
  loggingSettings,
  loginFromSubnetsOnly,
  memorySettings,
  renderPgHba,
  renderPostgresqlConf,
  replicationSettings,
  walArchivingSettings,
} from "../../lib/platform/postgres-config";
import { assertZoneInRegion } from "../../lib/platform/residency";
import { Credential } from "./credential";
import { tcpRule, type TcpRuleArgs } from "./tcp-rule";

/** Login roles the bootstrap creates on the primary; everything else in the database is the data layer's (components/db). */
export const CLUSTER_ROLES = {
  /** Superuser for the data-layer stack (roles with BYPASSRLS and CREATE EXTENSION timescaledb need one); loopback only. */
  admin: "alphapulse_admin",
  replication: "replicator",
  /**
   * What the database executor connects as (components/aws/executor.ts): CREATEDB CREATEROLE, not a
   * superuser; the bootstrap grants it the rest (lib/platform/database-bootstrap.ts). TLS + SCRAM
   * from the executor's subnets only.
   */
  executor: EXECUTOR_ROLE,
} as const;

export const POSTGRES_MAJOR_VERSION = 15;
export const METRICS_NAMESPACE = "AlphaPulse/Postgres";
export const DATA_DEVICE = "/dev/sdf";
export const DATA_MOUNT = "/var/lib/postgresql";
export const STANZA = "main";
export const POSTGRES_PORT = 5432;

export interface ClusterSubnet {
  id: pulumi.Input<string>;
  /** Plain: the data volume is created in the same zone. */
  availabilityZone: string;
}

/**
 * pgBackRest retention and schedules, and how long S3 keeps what pgBackRest expired. Every field is
 * optional with its own default: set only the one you change.
 *
 * Caution: retention and schedules are rendered into the nodes' user data, which a running node
 * ignores (`ignoreChanges`): a change reaches a node when it is rotated (docs/aws.md), not on `up`.
 */
export interface PostgresBackupArgs {
  /** Full backups kept (pgBackRest `repo1-retention-full`). WAL older than the oldest kept full expires with it. @default 4 */
  retentionFull?: number;
  /** Differential backups kept (pgBackRest `repo1-retention-diff`). @default 7 */
  retentionDiff?: number;
  /** systemd OnCalendar expression of the full backup timer. @default "Sun *-*-* 01:00:00" */
  fullSchedule?: string;
  /** systemd OnCalendar expression of the differential backup timer. @default "Mon..Sat *-*-* 01:00:00" */
  diffSchedule?: string;
  /** Days a backup object pgBackRest expired stays recoverable as a noncurrent S3 version (applied in place). @default 30 */
  noncurrentVersionDays?: number;
}

/** Alarm thresholds. Every field is optional with its own default; changes apply in place. */
export interface PostgresAlarmArgs {
  /** Replica lag behind the primary, seconds. @default 60 */
  replicationLagSeconds?: number;
  /** Data volume used, percent (primary and replica each). @default 80 */
  diskUsedPercent?: number;
  /** Connections used of max_connections on the primary, percent. @default 80 */
  connectionsUsedPercent?: number;
  /** Hours since the newest pgBackRest backup finished; the default allows one missed daily run. @default 49 */
  backupAgeHours?: number;
}

/** {@link PostgresBackupArgs} with every default applied. */
export type PostgresBackup = Required<PostgresBackupArgs>;
/** {@link PostgresAlarmArgs} with every default applied. */
export type PostgresAlarms = Required<PostgresAlarmArgs>;

export const BACKUP_DEFAULTS: Readonly<PostgresBackup> = {
  retentionFull: 4,
  retentionDiff: 7,
  fullSchedule: "Sun *-*-* 01:00:00",
  diffSchedule: "Mon..Sat *-*-* 01:00:00",
  noncurrentVersionDays: 30,
};

export const ALARM_DEFAULTS: Readonly<PostgresAlarms> = {
  replicationLagSeconds: 60,
  diskUsedPercent: 80,
  connectionsUsedPercent: 80,
  backupAgeHours: 49,
};

/**
 * Args of {@link PostgresCluster}. "Caution" marks an arg whose change replaces a resource; the
 * stateful ones (instances, data volumes, bucket, secrets) are protected, so such a change is
 * refused by the engine rather than carried out.
 */
export interface PostgresClusterArgs {
  /**
   * AWS region (plain: rendered into the bootstrap, the S3 endpoint and the recovery action).
   * Caution: every resource lives in it; changing it replaces the whole cluster.
   */
  region: string;
  /** VPC of the nodes. Caution: changing it replaces the security group (and the subnets, so the nodes, move with it). */
  vpcId: pulumi.Input<string>;
  /** VPC CIDR (plain: rendered into pg_hba.conf, so a change reaches a node when it is rotated). */
  vpcCidr: string;
  /**
   * Subnet of the primary. Caution: a new subnet or zone replaces the primary instance, and a new
   * zone its data volume (both protected: refused).
   */
  primarySubnet: ClusterSubnet;
  /** Subnet of the replica: must be in another availability zone. Caution: as for `primarySubnet`. */
  replicaSubnet: ClusterSubnet;
  /**
   * Region KMS key (ARN) for volumes, bucket, secrets, logs. Caution: a new key replaces the data
   * volumes and the instances (root volume), all protected: refused.
   */
  kmsKeyArn: pulumi.Input<string>;
  /** SNS topic for alarms. */
  alarmTopicArn: pulumi.Input<string>;
  /** Security groups allowed to reach 5432 (PgBouncer's tasks), one ingress rule each, named by position. */
  clientSecurityGroupIds: pulumi.Input<string>[];
  /** Security group of the interface endpoints (egress 443). */
  endpointSecurityGroupId: pulumi.Input<string>;
  /**
   * The database executor (components/aws/executor.ts): its security group gets the one ingress rule
   * on 5432 beside PgBouncer's, and its subnets (plain: rendered into pg_hba.conf, reaching a node
   * when it is rotated) the only pg_hba lines that admit the executor's role.
   * @default none: no executor rule, and pg_hba refuses the executor's role from everywhere
   */
  executor?: { securityGroupId: pulumi.Input<string>; subnetCidrs: string[] };
  /** Prefix list of the S3 gateway endpoint (egress 443 for pgBackRest). */
  s3PrefixListId: pulumi.Input<string>;
  /** Private hosted zone of the node names. Caution: changing it replaces the DNS records. */
  privateZoneId: pulumi.Input<string>;
  /**
   * Plain: the node names `pg-primary.<zone>` are rendered into the bootstrap. Caution: changing it
   * replaces the DNS records; running nodes keep the old primary name until rotated.
   */
  privateZoneName: string;
  /** Globally unique, region-local backup bucket name. Caution: changing it replaces the bucket (protected: refused). */
  backupBucketName: string;
  /**
   * Prefix of the Secrets Manager names, e.g. `alphapulse/eu-prod/postgres`. Caution: changing it
   * replaces the secrets (protected: refused).
   */
  secretNamePrefix: string;
  /** EC2 instance type of both nodes. Changing it stops and starts each node (a restart, not a replacement). */
  instanceType: pulumi.Input<string>;
  /** Memory of the instance type in MiB (plain: PostgreSQL's memory settings derive from it; reaches a node when rotated). */
  memoryMiB: number;
  /** gp3 data volume per node, GiB. Grows in place; EBS refuses to shrink a volume. */
  dataVolumeGiB: pulumi.Input<number>;
  /** gp3 IOPS of each data volume (in place). @default 3000 */
  dataVolumeIops?: pulumi.Input<number>;
  /** gp3 throughput of each data volume, MiB/s (in place). @default 125 */
  dataVolumeThroughputMiBps?: pulumi.Input<number>;
  /** PostgreSQL max_connections (plain: rendered into postgresql.conf; reaches a node when rotated). @default 200 */
  maxConnections?: number;
  /**
   * Name filter of the self-owned golden image. A running node ignores a newer image (`ignoreChanges`):
   * it is used when a node is rotated. @default "alphapulse-postgresql-15-timescaledb-*"
   */
  imageNamePattern?: string;
  /** pgBackRest retention and schedules; each field has its own default ({@link BACKUP_DEFAULTS}). @default {} */
  backup?: PostgresBackupArgs;
  /** Alarm thresholds; each field has its own default ({@link ALARM_DEFAULTS}). @default {} */
  alarms?: PostgresAlarmArgs;
  /** Retention of the server-log group, days (in place). @default 30 */
  logRetentionDays?: pulumi.Input<number>;
}

export class PostgresCluster extends pulumi.ComponentResource {
  readonly securityGroupId: pulumi.Output<string>;
  /** DNS name of the primary (`pg-primary.<zone>`), what PgBouncer connects to. */
  readonly primaryHost: string;
  readonly replicaHost: string;
  readonly port = POSTGRES_PORT;
  readonly primaryInstanceId: pulumi.Output<string>;
  readonly replicaInstanceId: pulumi.Output<string>;
  readonly backupBucketName: pulumi.Output<string>;
  /** CloudWatch log group of the server logs (issue 10 adds metric filters and queries on it). */
  readonly logGroupName: pulumi.Output<string>;
  readonly adminSecretArn: pulumi.Output<string>;
  readonly replicationSecretArn: pulumi.Output<string>;
  /** The executor role's secret (`{"username","password"}`): what the database executor reads, and nothing else does. */
  readonly executorSecretArn: pulumi.Output<string>;

  constructor(name: string, args: PostgresClusterArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("alphapulse:aws:PostgresCluster", name, {}, opts);
    validatePostgresClusterArgs(name, args);
    const backup = withDefaults(BACKUP_DEFAULTS, args.backup);
    const alarms = withDefaults(ALARM_DEFAULTS, args.alarms);
    const maxConnections = args.maxConnections ?? 200;
    this.primaryHost = nodeHost("primary", args.privateZoneName);
    this.replicaHost = nodeHost("replica", args.privateZoneName);
    // Rendered before anything is declared: a bad size fails here, not halfway through.
    const postgresqlConf = clusterPostgresqlConf(name, { memoryMiB: args.memoryMiB, maxConnections });
    const pgHba = clusterPgHba(name, args.vpcCidr, args.executor?.subnetCidrs ?? []);

    const parent = { parent: this };
    const stateful = { parent: this, protect: true, retainOnDelete: true };

    // Logs first: the nodes ship to it from their first boot.
    const logGroupName = clusterLogGroupName(name);
    const logGroup = new aws.cloudwatch.LogGroup(
      `${name}-logs`,
      { name: logGroupName, retentionInDays: args.logRetentionDays ?? 30, kmsKeyId: args.kmsKeyArn },
      parent,
    );

    // Backups: a region-local bucket nobody outside the account can reach, TLS only.
    const bucket = new aws.s3.Bucket(`${name}-backups`, { bucket: args.backupBucketName, forceDestroy: false }, stateful);
    const bucketRef = { bucket: bucket.id };
    const bucketObjectsArn = pulumi.interpolate`${bucket.arn}/*`;
    new aws.s3.BucketOwnershipControls(`${name}-backups`, { ...bucketRef, rule: { objectOwnership: "BucketOwnerEnforced" } }, parent);
    new aws.s3.BucketPublicAccessBlock(`${name}-backups`, { ...bucketRef, ...BLOCK_ALL_PUBLIC_ACCESS }, parent);
    new aws.s3.BucketVersioning(`${name}-backups`, { ...bucketRef, versioningConfiguration: { status: "Enabled" } }, parent);
    new aws.s3.BucketServerSideEncryptionConfiguration(
      `${name}-backups`,
      { ...bucketRef, rules: backupBucketEncryptionRules(args.kmsKeyArn) },
      parent,
    );
    new aws.s3.BucketLifecycleConfiguration(`${name}-backups`, { ...bucketRef, rules: backupBucketLifecycleRules(backup) }, parent);
    new aws.s3.BucketPolicy(
      `${name}-backups`,
      { ...bucketRef, policy: pulumi.jsonStringify(backupBucketPolicy(bucket.arn, bucketObjectsArn)) },
      parent,
    );

    // Credentials the bootstrap turns into login roles.
    const credential = (key: keyof typeof CLUSTER_ROLES) =>
      new Credential(credentialName(name, key), credentialArgs(name, key, args), parent);
    const admin = credential("admin");
    const replication = credential("replication");
    const executor = credential("executor");

    // Network: 5432 from PgBouncer and from the cluster itself; egress to the cluster, endpoints, S3.
    const sg = new aws.ec2.SecurityGroup(`${name}-sg`, clusterSecurityGroupArgs(name, args.vpcId), parent);
    for (const rule of clusterSecurityGroupRules(name, { ...args, securityGroupId: sg.id })) tcpRule(rule.name, rule.args, parent);

    // Instance role: SSM, CloudWatch agent, its bucket, its key, its secrets, its metrics namespace.
    const role = new aws.iam.Role(`${name}-node`, { assumeRolePolicy: JSON.stringify(NODE_ASSUME_ROLE_POLICY) }, parent);
    for (const [suffix, policyArn] of NODE_MANAGED_POLICIES) {
      new aws.iam.RolePolicyAttachment(`${name}-node-${suffix}`, { role: role.name, policyArn }, parent);
    }
    const nodePolicy = nodeRolePolicy({
      bucketArn: bucket.arn,
      bucketObjectsArn,
      kmsKeyArn: args.kmsKeyArn,
      secretArns: [admin.secretArn, replication.secretArn, executor.secretArn],
    });
    new aws.iam.RolePolicy(`${name}-node`, { role: role.id, policy: pulumi.jsonStringify(nodePolicy) }, parent);
    const profile = new aws.iam.InstanceProfile(`${name}-node`, { role: role.name }, parent);

    const image = aws.ec2.getAmiOutput(goldenImageQuery(args.imageNamePattern), parent);

    // One node per role: its data volume, the instance, the attachment and its DNS name.
    const instances = {} as Record<NodeRole, aws.ec2.Instance>;
    for (const [nodeRole, subnet] of [
      ["primary", args.primarySubnet],
      ["replica", args.replicaSubnet],
    ] as const) {
      const nodeName = `${name}-${nodeRole}`;
      const volume = new aws.ebs.Volume(`${nodeName}-data`, dataVolumeArgs(nodeName, subnet.availabilityZone, args), stateful);
      // Only ARNs cross into the bootstrap; the apply renders text, it declares nothing.
      const userData = pulumi
        .all([args.kmsKeyArn, admin.secretArn, replication.secretArn, executor.secretArn])
        .apply(([kmsKeyArn, adminSecretArn, replicationSecretArn, executorSecretArn]) =>
          renderPostgresNodeCloudInit(
            nodeBootstrapParams({
              cluster: name,
              role: nodeRole,
              availabilityZone: subnet.availabilityZone,
              region: args.region,
              primaryHost: this.primaryHost,
              postgresqlConf,
              pgHba,
              pgbackrestConf: clusterPgbackrestConf(name, { region: args.region, bucket: args.backupBucketName, kmsKeyArn, backup }),
              adminSecretArn,
              replicationSecretArn,
              executorSecretArn,
              backup,
              logGroupName,
            }),
          ),
        );
      const instance = new aws.ec2.Instance(
        nodeName,
        nodeInstanceArgs({
          nodeName,
          role: nodeRole,
          subnet,
          imageId: image.id,
          instanceType: args.instanceType,
          securityGroupId: sg.id,
          instanceProfile: profile.name,
          kmsKeyArn: args.kmsKeyArn,
          userData,
        }),
        // A new golden image or changed bootstrap must not restart or replace a database node
        // behind the operator's back: nodes are rotated deliberately (docs/aws.md).
        { parent: this, protect: true, ignoreChanges: [...NODE_IGNORED_CHANGES], dependsOn: [logGroup] },
      );
      new aws.ec2.VolumeAttachment(
        `${nodeName}-data`,
        { deviceName: DATA_DEVICE, instanceId: instance.id, volumeId: volume.id, stopInstanceBeforeDetaching: true },
        parent,
      );
      new aws.route53.Record(
        `${nodeName}-dns`,
        { zoneId: args.privateZoneId, name: nodeHost(nodeRole, args.privateZoneName), type: "A", ttl: 30, records: [instance.privateIp] },
        parent,
      );
      instances[nodeRole] = instance;
    }

    // Alarms on the metrics the nodes publish (lib/platform/cloud-init.ts METRICS_SCRIPT) and on EC2 health.
    for (const alarm of clusterMetricAlarms(alarms)) {
      new aws.cloudwatch.MetricAlarm(`${name}-${alarm.suffix}`, metricAlarmArgs(name, alarm, args.alarmTopicArn), parent);
    }
    for (const [nodeRole, instance] of Object.entries(instances) as [NodeRole, aws.ec2.Instance][]) {
      new aws.cloudwatch.MetricAlarm(
        `${name}-${nodeRole}-system-status`,
        systemStatusAlarmArgs({ role: nodeRole, instanceId: instance.id, region: args.region, alarmTopicArn: args.alarmTopicArn }),
        parent,
      );
    }

    this.securityGroupId = sg.id;
    this.primaryInstanceId = instances.primary.id;
    this.replicaInstanceId = instances.replica.id;
    this.backupBucketName = bucket.id;
    this.logGroupName = logGroup.name;
    this.adminSecretArn = admin.secretArn;
    this.replicationSecretArn = replication.secretArn;
    this.executorSecretArn = executor.secretArn;
    this.registerOutputs({
      primaryHost: this.primaryHost,
      replicaHost: this.replicaHost,
      primaryInstanceId: this.primaryInstanceId,
      replicaInstanceId: this.replicaInstanceId,
      backupBucketName: this.backupBucketName,
      logGroupName: this.logGroupName,
      adminSecretArn: this.adminSecretArn,
      executorSecretArn: this.executorSecretArn,
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Builders: pure, module-level, plain values in and out (Inputs pass through untouched).
// ---------------------------------------------------------------------------------------------

/**
 * `defaults` with every field of `given` that is set (not `undefined`) laid over it: a nested arg
 * states only what it changes. Keys not in `defaults` are dropped; `0`, `false` and `""` are kept.
 */
export function withDefaults<T extends object>(defaults: Readonly<T>, given: Partial<T> | undefined): T {
  const out = { ...defaults } as T;
  for (const key of Object.keys(defaults) as (keyof T)[]) {
    const value = given?.[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/** The checks that need no resource: zones in the region and apart, the bucket name's shape. Throws naming the field. */
export function validatePostgresClusterArgs(
  name: string,
  args: Pick<PostgresClusterArgs, "region" | "primarySubnet" | "replicaSubnet" | "backupBucketName">,
): void {
  assertZoneInRegion(args.primarySubnet.availabilityZone, args.region, `PostgresCluster ${name} primarySubnet`);
  assertZoneInRegion(args.replicaSubnet.availabilityZone, args.region, `PostgresCluster ${name} replicaSubnet`);
  if (args.primarySubnet.availabilityZone === args.replicaSubnet.availabilityZone) {
    throw new Error(
      `PostgresCluster ${name}: the replica must be in another availability zone than the primary (${args.primarySubnet.availabilityZone})`,
    );
  }
  if (!/^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(args.backupBucketName)) {
    throw new Error(`PostgresCluster ${name}: backupBucketName "${args.backupBucketName}" must be 3-63 of a-z, 0-9 and inner hyphens`);
  }
}

/** DNS name of a node in the private zone (`pg-primary.<zone>`): what PgBouncer and the replica connect to. */
export function nodeHost(role: NodeRole, privateZoneName: string): string {
  return `pg-${role}.${privateZoneName}`;
}

/** The cluster's CloudWatch log group (server and pgBackRest logs). */
export function clusterLogGroupName(cluster: string): string {
  return `/alphapulse/${cluster}/postgresql`;
}

/** Replication slot of a node: role and zone, e.g. `replica_eu_central_1b`. */
export function replicationSlotName(role: NodeRole, availabilityZone: string): string {
  return `${role}_${availabilityZone.replace(/-/g, "_")}`;
}

/** postgresql.conf of every node (the renderers the local clusters use). Throws on a bad size. */
export function clusterPostgresqlConf(cluster: string, sizing: { memoryMiB: number; maxConnections: number }): string {
  return renderPostgresqlConf(
    composeSettings(
      connectionSettings({ listenAddresses: "*", port: POSTGRES_PORT, ssl: true }),
      memorySettings(sizing),
      extensionSettings(),
      replicationSettings(),
      walArchivingSettings({ stanza: STANZA }),
      loggingSettings(),
      // The dedicated-schema cap's lock table (pg_dump/pg_upgrade lock every relation) and the memory it was sized for.
      schemaCapacitySettings(sizing),
    ),
    [`Rendered by components/aws/postgres-cluster.ts for ${cluster}; do not edit on the node.`],
  );
}

/**
 * pg_hba.conf of every node: peer for postgres, admin over loopback only, the executor's role over
 * TLS + SCRAM from the executor's subnets only (refused elsewhere), TLS + SCRAM from the VPC.
 */
export function clusterPgHba(cluster: string, vpcCidr: string, executorSubnetCidrs: readonly string[] = []): string {
  return renderPgHba(
    [
      { type: "local", database: "all", user: "postgres", method: "peer" },
      // The admin role logs in over loopback only: SSM port forwarding from an operator or CI runner.
      { type: "host", database: "all", user: CLUSTER_ROLES.admin, address: "127.0.0.1/32", method: "scram-sha-256" },
      { type: "host", database: "all", user: CLUSTER_ROLES.admin, address: "0.0.0.0/0", method: "reject" },
      ...loginFromSubnetsOnly(CLUSTER_ROLES.executor, executorSubnetCidrs),
      { type: "hostssl", database: "replication", user: CLUSTER_ROLES.replication, address: vpcCidr, method: "scram-sha-256" },
      { type: "hostssl", database: "all", user: "all", address: vpcCidr, method: "scram-sha-256" },
    ],
    [`Rendered by components/aws/postgres-cluster.ts for ${cluster}. First match wins; anything else is refused.`],
  );
}

/** pgbackrest.conf of every node: the S3 repository (SSE-KMS under the region key), retention, async archiving. */
export function clusterPgbackrestConf(
  cluster: string,
  o: { region: string; bucket: string; kmsKeyArn: string; backup: Pick<PostgresBackup, "retentionFull" | "retentionDiff"> },
): string {
  return renderPgbackrestConf(
    {
      global: pgbackrestGlobalOptions({
        repository: { type: "s3", bucket: o.bucket, region: o.region, kmsKeyId: o.kmsKeyArn },
        retention: { full: o.backup.retentionFull, diff: o.backup.retentionDiff },
        archiveAsync: true,
        spoolPath: "/var/spool/pgbackrest",
      }),
      stanzas: { [STANZA]: pgbackrestStanzaOptions({ pgPath: `${DATA_MOUNT}/${POSTGRES_MAJOR_VERSION}/main` }) },
    },
    [`Rendered by components/aws/postgres-cluster.ts for ${cluster}.`],
  );
}

export interface NodeBootstrapInputs {
  cluster: string;
  role: NodeRole;
  availabilityZone: string;
  region: string;
  primaryHost: string;
  postgresqlConf: string;
  pgHba: string;
  pgbackrestConf: string;
  adminSecretArn: string;
  replicationSecretArn: string;
  executorSecretArn: string;
  backup: Pick<PostgresBackup, "fullSchedule" | "diffSchedule">;
  logGroupName: string;
}

/** What lib/platform/cloud-init.ts renders into a node's user data: the files, the roles (secret ARNs only), the timers. */
export function nodeBootstrapParams(i: NodeBootstrapInputs): PostgresNodeParams {
  const bootstrap = renderDatabaseBootstrapSql({ executorRole: CLUSTER_ROLES.executor });
  return {
    role: i.role,
    cluster: i.cluster,
    region: i.region,
    majorVersion: POSTGRES_MAJOR_VERSION,
    stanza: STANZA,
    dataDevice: DATA_DEVICE,
    dataMount: DATA_MOUNT,
    primaryHost: i.primaryHost,
    replicationSlot: replicationSlotName(i.role, i.availabilityZone),
    replicationRole: CLUSTER_ROLES.replication,
    files: {
      postgresqlConf: i.postgresqlConf,
      pgHba: i.pgHba,
      pgbackrestConf: i.pgbackrestConf,
      bootstrapClusterSql: bootstrap.cluster,
      bootstrapTemplateSql: bootstrap.template,
    },
    roles: [
      { name: CLUSTER_ROLES.admin, attributes: "SUPERUSER", secretArn: i.adminSecretArn },
      { name: CLUSTER_ROLES.replication, attributes: "REPLICATION", secretArn: i.replicationSecretArn },
      { name: CLUSTER_ROLES.executor, attributes: EXECUTOR_ROLE_ATTRIBUTES, secretArn: i.executorSecretArn },
    ],
    backupSchedule: { full: i.backup.fullSchedule, diff: i.backup.diffSchedule },
    metricsNamespace: METRICS_NAMESPACE,
    logGroupName: i.logGroupName,
  };
}

/** Public access blocked four ways on the backup bucket. */
export const BLOCK_ALL_PUBLIC_ACCESS = {
  blockPublicAcls: true,
  blockPublicPolicy: true,
  ignorePublicAcls: true,
  restrictPublicBuckets: true,
} as const;

/** SSE-KMS under the region key, with an S3 bucket key (fewer KMS calls). */
export function backupBucketEncryptionRules(kmsKeyArn: pulumi.Input<string>) {
  return [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: kmsKeyArn }, bucketKeyEnabled: true }];
}

/**
 * pgBackRest expires backups and WAL itself (repo1-retention-*); S3 keeps what it deleted
 * recoverable for a while as noncurrent versions, then drops it.
 */
export function backupBucketLifecycleRules(backup: Pick<PostgresBackup, "noncurrentVersionDays">) {
  return [
    {
      id: "expire-noncurrent-versions",
      status: "Enabled",
      filter: {},
      noncurrentVersionExpiration: { noncurrentDays: backup.noncurrentVersionDays },
      abortIncompleteMultipartUpload: { daysAfterInitiation: 7 },
    },
    { id: "remove-expired-delete-markers", status: "Enabled", filter: {}, expiration: { expiredObjectDeleteMarker: true } },
  ];
}

/** The bucket policy document: TLS only. `T` is a string in tests, an Output in the component. */
export function backupBucketPolicy<T>(bucketArn: T, bucketObjectsArn: T) {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "DenyInsecureTransport",
        Effect: "Deny",
        Principal: "*",
        Action: "s3:*",
        Resource: [bucketArn, bucketObjectsArn],
        Condition: { Bool: { "aws:SecureTransport": "false" } },
      },
    ],
  };
}

/** Name of a login role's Credential: `<cluster>-<key in kebab case>`. */
export function credentialName(cluster: string, key: keyof typeof CLUSTER_ROLES): string {
  return `${cluster}-${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

export function credentialArgs(
  cluster: string,
  key: keyof typeof CLUSTER_ROLES,
  args: Pick<PostgresClusterArgs, "secretNamePrefix" | "kmsKeyArn">,
) {
  return {
    username: CLUSTER_ROLES[key],
    secretName: `${args.secretNamePrefix}/${CLUSTER_ROLES[key]}`,
    kmsKeyId: args.kmsKeyArn,
    description: `PostgreSQL role ${CLUSTER_ROLES[key]} of ${cluster}`,
  };
}

export function clusterSecurityGroupArgs(cluster: string, vpcId: pulumi.Input<string>) {
  return { vpcId, description: `PostgreSQL nodes of ${cluster}`, tags: { Name: `${cluster}-postgres` } };
}

/**
 * The cluster group's rules, one resource each: 5432 in from every client group (named by
 * position) and from the cluster itself; out to the cluster (5432), the interface endpoints and
 * S3 (443). Nothing else, and no CIDR.
 */
export function clusterSecurityGroupRules(
  cluster: string,
  o: {
    securityGroupId: pulumi.Input<string>;
    clientSecurityGroupIds: readonly pulumi.Input<string>[];
    endpointSecurityGroupId: pulumi.Input<string>;
    s3PrefixListId: pulumi.Input<string>;
    executor?: { securityGroupId: pulumi.Input<string> };
  },
): { name: string; args: TcpRuleArgs }[] {
  const self = { referencedSecurityGroupId: o.securityGroupId };
  const rule = (suffix: string, args: Omit<TcpRuleArgs, "securityGroupId">) => ({
    name: `${cluster}-${suffix}`,
    args: { ...args, securityGroupId: o.securityGroupId },
  });
  return [
    ...o.clientSecurityGroupIds.map((client, i) =>
      rule(`from-client-${i}`, {
        direction: "ingress",
        peer: { referencedSecurityGroupId: client },
        port: POSTGRES_PORT,
        description: "PostgreSQL from PgBouncer",
      }),
    ),
    // The one rule the database executor adds: 5432 from its group, nothing wider (policy rule executor-ingress).
    ...(o.executor
      ? [
          rule("from-executor", {
            direction: "ingress",
            peer: { referencedSecurityGroupId: o.executor.securityGroupId },
            port: POSTGRES_PORT,
            description: "PostgreSQL from the database executor (TLS + SCRAM, its role only)",
          }),
        ]
      : []),
    rule("from-cluster", { direction: "ingress", peer: self, port: POSTGRES_PORT, description: "Streaming replication between the nodes" }),
    rule("to-cluster", { direction: "egress", peer: self, port: POSTGRES_PORT, description: "Streaming replication between the nodes" }),
    rule("to-endpoints", {
      direction: "egress",
      peer: { referencedSecurityGroupId: o.endpointSecurityGroupId },
      port: 443,
      description: "SSM, Secrets Manager, KMS, CloudWatch endpoints",
    }),
    rule("to-s3", {
      direction: "egress",
      peer: { prefixListId: o.s3PrefixListId },
      port: 443,
      description: "pgBackRest to S3 (gateway endpoint)",
    }),
  ];
}

/** Who may assume the node role: EC2 only. */
export const NODE_ASSUME_ROLE_POLICY = {
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }],
} as const;

/** AWS-managed policies on the node role, by attachment-name suffix: SSM Session Manager and the CloudWatch agent. */
export const NODE_MANAGED_POLICIES = [
  ["ssm", "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"],
  ["cloudwatch-agent", "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"],
] as const;

/** The node role's own policy: its bucket, its key, its role secrets, its metrics namespace. `T` as in {@link backupBucketPolicy}. */
export function nodeRolePolicy<T>(o: { bucketArn: T; bucketObjectsArn: T; kmsKeyArn: T; secretArns: T[] }) {
  return {
    Version: "2012-10-17",
    Statement: [
      { Sid: "BackupBucketList", Effect: "Allow", Action: ["s3:ListBucket", "s3:GetBucketLocation"], Resource: o.bucketArn },
      {
        Sid: "BackupObjects",
        Effect: "Allow",
        Action: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
        Resource: o.bucketObjectsArn,
      },
      {
        Sid: "RegionKey",
        Effect: "Allow",
        Action: ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
        Resource: o.kmsKeyArn,
      },
      { Sid: "RoleSecrets", Effect: "Allow", Action: "secretsmanager:GetSecretValue", Resource: o.secretArns },
      {
        Sid: "HealthMetrics",
        Effect: "Allow",
        Action: "cloudwatch:PutMetricData",
        Resource: "*",
        Condition: { StringEquals: { "cloudwatch:namespace": METRICS_NAMESPACE } },
      },
    ],
  };
}

/** The newest self-owned golden image matching the pattern. */
export function goldenImageQuery(imageNamePattern: string | undefined) {
  return {
    owners: ["self"],
    mostRecent: true,
    filters: [{ name: "name", values: [imageNamePattern ?? "alphapulse-postgresql-15-timescaledb-*"] }],
  };
}

/** A node's data volume: gp3, encrypted under the region key, final snapshot on delete. */
export function dataVolumeArgs(
  nodeName: string,
  availabilityZone: string,
  args: Pick<PostgresClusterArgs, "dataVolumeGiB" | "dataVolumeIops" | "dataVolumeThroughputMiBps" | "kmsKeyArn">,
): aws.ebs.VolumeArgs {
  return {
    availabilityZone,
    size: args.dataVolumeGiB,
    type: "gp3",
    iops: args.dataVolumeIops ?? 3000,
    throughput: args.dataVolumeThroughputMiBps ?? 125,
    encrypted: true,
    kmsKeyId: args.kmsKeyArn,
    finalSnapshot: true,
    tags: { Name: `${nodeName}-data` },
  };
}

/** Instance inputs a running node ignores: a new image or bootstrap reaches it by rotation only. */
export const NODE_IGNORED_CHANGES = ["ami", "userData"] as const;

/** A node: no public IP, no key pair, IMDSv2 only, encrypted gp3 root, termination protection, detailed monitoring. */
export function nodeInstanceArgs(o: {
  nodeName: string;
  role: NodeRole;
  subnet: ClusterSubnet;
  imageId: pulumi.Input<string>;
  instanceType: pulumi.Input<string>;
  securityGroupId: pulumi.Input<string>;
  instanceProfile: pulumi.Input<string>;
  kmsKeyArn: pulumi.Input<string>;
  userData: pulumi.Input<string>;
}): aws.ec2.InstanceArgs {
  return {
    ami: o.imageId,
    instanceType: o.instanceType,
    subnetId: o.subnet.id,
    availabilityZone: o.subnet.availabilityZone,
    vpcSecurityGroupIds: [o.securityGroupId],
    iamInstanceProfile: o.instanceProfile,
    associatePublicIpAddress: false,
    userData: o.userData,
    userDataReplaceOnChange: false,
    metadataOptions: { httpTokens: "required", httpEndpoint: "enabled", httpPutResponseHopLimit: 1 },
    rootBlockDevice: { volumeType: "gp3", volumeSize: 30, encrypted: true, kmsKeyId: o.kmsKeyArn, deleteOnTermination: true },
    ebsOptimized: true,
    monitoring: true,
    disableApiTermination: true,
    tags: { Name: o.nodeName, "alphapulse:postgres-role": o.role },
  };
}

/** An alarm on a metric the nodes publish (lib/platform/cloud-init.ts METRICS_SCRIPT), before it is named and wired. */
export interface ClusterMetricAlarm {
  /** Child name suffix: the alarm is `<cluster>-<suffix>`. */
  suffix: string;
  description: string;
  metricName: string;
  role: NodeRole;
  threshold: number;
}

/** The cluster's metric alarms with their thresholds. WAL archiving has none to tune: any failure alarms. */
export function clusterMetricAlarms(alarms: PostgresAlarms): ClusterMetricAlarm[] {
  return [
    {
      suffix: "replication-lag",
      description: "Replica is behind the primary",
      metricName: "ReplicationLagSeconds",
      role: "replica",
      threshold: alarms.replicationLagSeconds,
    },
    {
      suffix: "primary-disk",
      description: "Primary data volume filling up",
      metricName: "DiskUsedPercent",
      role: "primary",
      threshold: alarms.diskUsedPercent,
    },
    {
      suffix: "replica-disk",
      description: "Replica data volume filling up",
      metricName: "DiskUsedPercent",
      role: "replica",
      threshold: alarms.diskUsedPercent,
    },
    {
      suffix: "connections",
      description: "Connections close to max_connections",
      metricName: "ConnectionsUsedPercent",
      role: "primary",
      threshold: alarms.connectionsUsedPercent,
    },
    {
      suffix: "backup-age",
      description: "No recent pgBackRest backup",
      metricName: "BackupAgeHours",
      role: "primary",
      threshold: alarms.backupAgeHours,
    },
    {
      suffix: "wal-archive",
      description: "WAL archiving to S3 is failing (point-in-time recovery at risk)",
      metricName: "WalArchiveFailing",
      role: "primary",
      threshold: 0,
    },
  ];
}

/** A metric alarm's inputs: 3 of 5 minutes above the threshold, and silence counts as trouble. */
export function metricAlarmArgs(
  cluster: string,
  alarm: ClusterMetricAlarm,
  alarmTopicArn: pulumi.Input<string>,
): aws.cloudwatch.MetricAlarmArgs {
  return {
    alarmDescription: alarm.description,
    namespace: METRICS_NAMESPACE,
    metricName: alarm.metricName,
    dimensions: { Cluster: cluster, Role: alarm.role },
    statistic: "Maximum",
    period: 60,
    evaluationPeriods: 5,
    datapointsToAlarm: 3,
    threshold: alarm.threshold,
    comparisonOperator: "GreaterThanThreshold",
    // Silence is a failure: a node that stops reporting is as bad as one reporting trouble.
    treatMissingData: "breaching",
    alarmActions: [alarmTopicArn],
    okActions: [alarmTopicArn],
  };
}

/** EC2's system status check on a node: recover the instance (same volumes, same IP) and notify. */
export function systemStatusAlarmArgs(o: {
  role: NodeRole;
  instanceId: pulumi.Input<string>;
  region: string;
  alarmTopicArn: pulumi.Input<string>;
}): aws.cloudwatch.MetricAlarmArgs {
  return {
    alarmDescription: `EC2 system status check failed on the ${o.role}: recover the instance`,
    namespace: "AWS/EC2",
    metricName: "StatusCheckFailed_System",
    dimensions: { InstanceId: o.instanceId },
    statistic: "Maximum",
    period: 60,
    evaluationPeriods: 2,
    threshold: 0,
    comparisonOperator: "GreaterThanThreshold",
    alarmActions: [`arn:aws:automate:${o.region}:ec2:recover`, o.alarmTopicArn],
  };
}
