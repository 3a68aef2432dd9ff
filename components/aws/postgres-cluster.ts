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
 * - Network: 5432 only from the client security groups (PgBouncer) and from the cluster itself
 *   (replication); egress only to the cluster (5432), the interface endpoints and S3 (443).
 * - Alarms: replication lag, disk, connections, backup age, WAL archiving, EC2 system status
 *   (with automatic recovery). The log group receives the server and pgBackRest logs.
 */
import { schemaCapacitySettings } from "../../lib/enterprise/schema-capacity";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { renderPostgresNodeCloudInit, type NodeRole } from "../../lib/platform/cloud-init";
import { pgbackrestGlobalOptions, pgbackrestStanzaOptions, renderPgbackrestConf } from "../../lib/platform/pgbackrest-config";
import {
  composeSettings,
  connectionSettings,
  extensionSettings,
  loggingSettings,
  memorySettings,
  renderPgHba,
  renderPostgresqlConf,
  replicationSettings,
  walArchivingSettings,
} from "../../lib/platform/postgres-config";
import { assertZoneInRegion } from "../../lib/platform/residency";
import { Credential } from "./credential";
import { tcpRule, type TcpPeer } from "./tcp-rule";

/** Login roles the bootstrap creates on the primary; everything else in the database is the data layer's (components/db). */
export const CLUSTER_ROLES = {
  /** Superuser for the data-layer stack (roles with BYPASSRLS and CREATE EXTENSION timescaledb need one); loopback only. */
  admin: "alphapulse_admin",
  replication: "replicator",
} as const;

export const POSTGRES_MAJOR_VERSION = 15;
export const METRICS_NAMESPACE = "AlphaPulse/Postgres";
export const DATA_DEVICE = "/dev/sdf";
export const DATA_MOUNT = "/var/lib/postgresql";
export const STANZA = "main";

export interface ClusterSubnet {
  id: pulumi.Input<string>;
  /** Plain: the data volume is created in the same zone. */
  availabilityZone: string;
}

export interface PostgresClusterArgs {
  /** AWS region (plain: rendered into the bootstrap and the S3 endpoint). */
  region: string;
  vpcId: pulumi.Input<string>;
  /** VPC CIDR (plain: rendered into pg_hba.conf). */
  vpcCidr: string;
  /** Subnet of the primary. */
  primarySubnet: ClusterSubnet;
  /** Subnet of the replica: must be in another availability zone. */
  replicaSubnet: ClusterSubnet;
  /** Region KMS key (ARN) for volumes, bucket, secrets, logs. */
  kmsKeyArn: pulumi.Input<string>;
  /** SNS topic for alarms. */
  alarmTopicArn: pulumi.Input<string>;
  /** Security groups allowed to reach 5432 (PgBouncer's tasks). */
  clientSecurityGroupIds: pulumi.Input<string>[];
  /** Security group of the interface endpoints (egress 443). */
  endpointSecurityGroupId: pulumi.Input<string>;
  /** Prefix list of the S3 gateway endpoint (egress 443 for pgBackRest). */
  s3PrefixListId: pulumi.Input<string>;
  privateZoneId: pulumi.Input<string>;
  /** Plain: the node names `pg-primary.<zone>` are rendered into the bootstrap. */
  privateZoneName: string;
  /** Globally unique, region-local backup bucket name. Changing it replaces the bucket (protected: refused). */
  backupBucketName: string;
  /** Prefix of the Secrets Manager names, e.g. `alphapulse/eu-prod/postgres`. */
  secretNamePrefix: string;
  instanceType: pulumi.Input<string>;
  /** Memory of the instance type in MiB (plain: PostgreSQL's memory settings derive from it). */
  memoryMiB: number;
  dataVolumeGiB: pulumi.Input<number>;
  /** @default 3000 */
  dataVolumeIops?: pulumi.Input<number>;
  /** @default 125 */
  dataVolumeThroughputMiBps?: pulumi.Input<number>;
  /** @default 200 */
  maxConnections?: number;
  /** Name filter of the self-owned golden image. @default "alphapulse-postgresql-15-timescaledb-*" */
  imageNamePattern?: string;
  /** @default { retentionFull: 4, retentionDiff: 7, fullSchedule: "Sun *-*-* 01:00:00", diffSchedule: "Mon..Sat *-*-* 01:00:00", noncurrentVersionDays: 30 } */
  backup?: {
    retentionFull: number;
    retentionDiff: number;
    fullSchedule: string;
    diffSchedule: string;
    noncurrentVersionDays: number;
  };
  /** @default { replicationLagSeconds: 60, diskUsedPercent: 80, connectionsUsedPercent: 80, backupAgeHours: 49 } */
  alarms?: {
    replicationLagSeconds: number;
    diskUsedPercent: number;
    connectionsUsedPercent: number;
    backupAgeHours: number;
  };
  /** @default 30 */
  logRetentionDays?: pulumi.Input<number>;
}

export class PostgresCluster extends pulumi.ComponentResource {
  readonly securityGroupId: pulumi.Output<string>;
  /** DNS name of the primary (`pg-primary.<zone>`), what PgBouncer connects to. */
  readonly primaryHost: string;
  readonly replicaHost: string;
  readonly port = 5432;
  readonly primaryInstanceId: pulumi.Output<string>;
  readonly replicaInstanceId: pulumi.Output<string>;
  readonly backupBucketName: pulumi.Output<string>;
  /** CloudWatch log group of the server logs (issue 10 adds metric filters and queries on it). */
  readonly logGroupName: pulumi.Output<string>;
  readonly adminSecretArn: pulumi.Output<string>;
  readonly replicationSecretArn: pulumi.Output<string>;

  constructor(name: string, args: PostgresClusterArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("alphapulse:aws:PostgresCluster", name, {}, opts);
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
    const backup = args.backup ?? {
      retentionFull: 4,
      retentionDiff: 7,
      fullSchedule: "Sun *-*-* 01:00:00",
      diffSchedule: "Mon..Sat *-*-* 01:00:00",
      noncurrentVersionDays: 30,
    };
    const alarms = args.alarms ?? { replicationLagSeconds: 60, diskUsedPercent: 80, connectionsUsedPercent: 80, backupAgeHours: 49 };
    const maxConnections = args.maxConnections ?? 200;
    // Configuration fragments (pure renderers, shared with the local clusters).
    this.primaryHost = `pg-primary.${args.privateZoneName}`;
    this.replicaHost = `pg-replica.${args.privateZoneName}`;
    const postgresqlConf = renderPostgresqlConf(
      composeSettings(
        connectionSettings({ listenAddresses: "*", port: 5432, ssl: true }),
        memorySettings({ memoryMiB: args.memoryMiB, maxConnections }),
        extensionSettings(),
        replicationSettings(),
        walArchivingSettings({ stanza: STANZA }),
        loggingSettings(),
        // The dedicated-schema cap's lock table (pg_dump/pg_upgrade lock every relation) and the memory it was sized for.
        schemaCapacitySettings({ memoryMiB: args.memoryMiB, maxConnections }),
      ),
      [`Rendered by components/aws/postgres-cluster.ts for ${name}; do not edit on the node.`],
    );
    const pgHba = renderPgHba(
      [
        { type: "local", database: "all", user: "postgres", method: "peer" },
        // The admin role logs in over loopback only: SSM port forwarding from an operator or CI runner.
        { type: "host", database: "all", user: CLUSTER_ROLES.admin, address: "127.0.0.1/32", method: "scram-sha-256" },
        { type: "host", database: "all", user: CLUSTER_ROLES.admin, address: "0.0.0.0/0", method: "reject" },
        { type: "hostssl", database: "replication", user: CLUSTER_ROLES.replication, address: args.vpcCidr, method: "scram-sha-256" },
        { type: "hostssl", database: "all", user: "all", address: args.vpcCidr, method: "scram-sha-256" },
      ],
      [`Rendered by components/aws/postgres-cluster.ts for ${name}. First match wins; anything else is refused.`],
    );

    const parent = { parent: this };
    const stateful = { parent: this, protect: true, retainOnDelete: true };

    // Logs first: the nodes ship to it from their first boot.
    const logGroupName = `/alphapulse/${name}/postgresql`;
    const logGroup = new aws.cloudwatch.LogGroup(
      `${name}-logs`,
      { name: logGroupName, retentionInDays: args.logRetentionDays ?? 30, kmsKeyId: args.kmsKeyArn },
      parent,
    );

    // Backups: a region-local bucket nobody outside the account can reach, TLS only.
    const bucket = new aws.s3.Bucket(`${name}-backups`, { bucket: args.backupBucketName, forceDestroy: false }, stateful);
    const bucketRef = { bucket: bucket.id };
    new aws.s3.BucketOwnershipControls(`${name}-backups`, { ...bucketRef, rule: { objectOwnership: "BucketOwnerEnforced" } }, parent);
    new aws.s3.BucketPublicAccessBlock(
      `${name}-backups`,
      { ...bucketRef, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true },
      parent,
    );
    new aws.s3.BucketVersioning(`${name}-backups`, { ...bucketRef, versioningConfiguration: { status: "Enabled" } }, parent);
    new aws.s3.BucketServerSideEncryptionConfiguration(
      `${name}-backups`,
      {
        ...bucketRef,
        rules: [
          { applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: args.kmsKeyArn }, bucketKeyEnabled: true },
        ],
      },
      parent,
    );
    new aws.s3.BucketLifecycleConfiguration(
      `${name}-backups`,
      {
        ...bucketRef,
        rules: [
          {
            // pgBackRest expires backups and WAL itself (repo1-retention-*); S3 keeps what it deleted
            // recoverable for a while as noncurrent versions, then drops it.
            id: "expire-noncurrent-versions",
            status: "Enabled",
            filter: {},
            noncurrentVersionExpiration: { noncurrentDays: backup.noncurrentVersionDays },
            abortIncompleteMultipartUpload: { daysAfterInitiation: 7 },
          },
          { id: "remove-expired-delete-markers", status: "Enabled", filter: {}, expiration: { expiredObjectDeleteMarker: true } },
        ],
      },
      parent,
    );
    new aws.s3.BucketPolicy(
      `${name}-backups`,
      {
        ...bucketRef,
        policy: pulumi.jsonStringify({
          Version: "2012-10-17",
          Statement: [
            {
              Sid: "DenyInsecureTransport",
              Effect: "Deny",
              Principal: "*",
              Action: "s3:*",
              Resource: [bucket.arn, pulumi.interpolate`${bucket.arn}/*`],
              Condition: { Bool: { "aws:SecureTransport": "false" } },
            },
          ],
        }),
      },
      parent,
    );

    // Credentials the bootstrap turns into login roles.
    const credential = (key: keyof typeof CLUSTER_ROLES) =>
      new Credential(
        `${name}-${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`,
        {
          username: CLUSTER_ROLES[key],
          secretName: `${args.secretNamePrefix}/${CLUSTER_ROLES[key]}`,
          kmsKeyId: args.kmsKeyArn,
          description: `PostgreSQL role ${CLUSTER_ROLES[key]} of ${name}`,
        },
        parent,
      );
    const admin = credential("admin");
    const replication = credential("replication");

    // Network: 5432 from PgBouncer and from the cluster itself; egress to the cluster, endpoints, S3.
    const sg = new aws.ec2.SecurityGroup(
      `${name}-sg`,
      { vpcId: args.vpcId, description: `PostgreSQL nodes of ${name}`, tags: { Name: `${name}-postgres` } },
      parent,
    );
    args.clientSecurityGroupIds.forEach((client, i) =>
      tcpRule(
        `${name}-from-client-${i}`,
        {
          direction: "ingress",
          securityGroupId: sg.id,
          peer: { referencedSecurityGroupId: client },
          port: 5432,
          description: "PostgreSQL from PgBouncer",
        },
        parent,
      ),
    );
    const rule = (suffix: string, direction: "ingress" | "egress", peer: TcpPeer, port: number, description: string) =>
      tcpRule(`${name}-${suffix}`, { direction, securityGroupId: sg.id, peer, port, description }, parent);
    rule("from-cluster", "ingress", { referencedSecurityGroupId: sg.id }, 5432, "Streaming replication between the nodes");
    rule("to-cluster", "egress", { referencedSecurityGroupId: sg.id }, 5432, "Streaming replication between the nodes");
    rule(
      "to-endpoints",
      "egress",
      { referencedSecurityGroupId: args.endpointSecurityGroupId },
      443,
      "SSM, Secrets Manager, KMS, CloudWatch endpoints",
    );
    rule("to-s3", "egress", { prefixListId: args.s3PrefixListId }, 443, "pgBackRest to S3 (gateway endpoint)");

    // Instance role: SSM, CloudWatch agent, its bucket, its key, its secrets, its metrics namespace.
    const role = new aws.iam.Role(
      `${name}-node`,
      {
        assumeRolePolicy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }],
        }),
      },
      parent,
    );
    for (const [suffix, policyArn] of [
      ["ssm", "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"],
      ["cloudwatch-agent", "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"],
    ] as const) {
      new aws.iam.RolePolicyAttachment(`${name}-node-${suffix}`, { role: role.name, policyArn }, parent);
    }
    new aws.iam.RolePolicy(
      `${name}-node`,
      {
        role: role.id,
        policy: pulumi.jsonStringify({
          Version: "2012-10-17",
          Statement: [
            { Sid: "BackupBucketList", Effect: "Allow", Action: ["s3:ListBucket", "s3:GetBucketLocation"], Resource: bucket.arn },
            {
              Sid: "BackupObjects",
              Effect: "Allow",
              Action: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
              Resource: pulumi.interpolate`${bucket.arn}/*`,
            },
            {
              Sid: "RegionKey",
              Effect: "Allow",
              Action: ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
              Resource: args.kmsKeyArn,
            },
            {
              Sid: "RoleSecrets",
              Effect: "Allow",
              Action: "secretsmanager:GetSecretValue",
              Resource: [admin.secretArn, replication.secretArn],
            },
            {
              Sid: "HealthMetrics",
              Effect: "Allow",
              Action: "cloudwatch:PutMetricData",
              Resource: "*",
              Condition: { StringEquals: { "cloudwatch:namespace": METRICS_NAMESPACE } },
            },
          ],
        }),
      },
      parent,
    );
    const profile = new aws.iam.InstanceProfile(`${name}-node`, { role: role.name }, parent);

    const image = aws.ec2.getAmiOutput(
      {
        owners: ["self"],
        mostRecent: true,
        filters: [{ name: "name", values: [args.imageNamePattern ?? "alphapulse-postgresql-15-timescaledb-*"] }],
      },
      { parent: this },
    );

    const node = (role: NodeRole, subnet: ClusterSubnet) => {
      const nodeName = `${name}-${role}`;
      const volume = new aws.ebs.Volume(
        `${nodeName}-data`,
        {
          availabilityZone: subnet.availabilityZone,
          size: args.dataVolumeGiB,
          type: "gp3",
          iops: args.dataVolumeIops ?? 3000,
          throughput: args.dataVolumeThroughputMiBps ?? 125,
          encrypted: true,
          kmsKeyId: args.kmsKeyArn,
          finalSnapshot: true,
          tags: { Name: `${nodeName}-data` },
        },
        stateful,
      );
      const userData = pulumi.all([args.kmsKeyArn, admin.secretArn, replication.secretArn]).apply(([kmsKeyArn, adminArn, replicationArn]) =>
        renderPostgresNodeCloudInit({
          role,
          cluster: name,
          region: args.region,
          majorVersion: POSTGRES_MAJOR_VERSION,
          stanza: STANZA,
          dataDevice: DATA_DEVICE,
          dataMount: DATA_MOUNT,
          primaryHost: this.primaryHost,
          replicationSlot: `${role}_${subnet.availabilityZone.replace(/-/g, "_")}`,
          replicationRole: CLUSTER_ROLES.replication,
          files: {
            postgresqlConf,
            pgHba,
            pgbackrestConf: renderPgbackrestConf(
              {
                global: pgbackrestGlobalOptions({
                  repository: { type: "s3", bucket: args.backupBucketName, region: args.region, kmsKeyId: kmsKeyArn },
                  retention: { full: backup.retentionFull, diff: backup.retentionDiff },
                  archiveAsync: true,
                  spoolPath: "/var/spool/pgbackrest",
                }),
                stanzas: { [STANZA]: pgbackrestStanzaOptions({ pgPath: `${DATA_MOUNT}/${POSTGRES_MAJOR_VERSION}/main` }) },
              },
              [`Rendered by components/aws/postgres-cluster.ts for ${name}.`],
            ),
          },
          roles: [
            { name: CLUSTER_ROLES.admin, attributes: "SUPERUSER", secretArn: adminArn },
            { name: CLUSTER_ROLES.replication, attributes: "REPLICATION", secretArn: replicationArn },
          ],
          backupSchedule: { full: backup.fullSchedule, diff: backup.diffSchedule },
          metricsNamespace: METRICS_NAMESPACE,
          logGroupName,
        }),
      );
      const instance = new aws.ec2.Instance(
        nodeName,
        {
          ami: image.id,
          instanceType: args.instanceType,
          subnetId: subnet.id,
          availabilityZone: subnet.availabilityZone,
          vpcSecurityGroupIds: [sg.id],
          iamInstanceProfile: profile.name,
          associatePublicIpAddress: false,
          userData,
          userDataReplaceOnChange: false,
          metadataOptions: { httpTokens: "required", httpEndpoint: "enabled", httpPutResponseHopLimit: 1 },
          rootBlockDevice: { volumeType: "gp3", volumeSize: 30, encrypted: true, kmsKeyId: args.kmsKeyArn, deleteOnTermination: true },
          ebsOptimized: true,
          monitoring: true,
          disableApiTermination: true,
          tags: { Name: nodeName, "alphapulse:postgres-role": role },
        },
        // A new golden image or changed bootstrap must not restart or replace a database node
        // behind the operator's back: nodes are rotated deliberately (docs/aws.md).
        { parent: this, protect: true, ignoreChanges: ["ami", "userData"], dependsOn: [logGroup] },
      );
      new aws.ec2.VolumeAttachment(
        `${nodeName}-data`,
        { deviceName: DATA_DEVICE, instanceId: instance.id, volumeId: volume.id, stopInstanceBeforeDetaching: true },
        parent,
      );
      new aws.route53.Record(
        `${nodeName}-dns`,
        {
          zoneId: args.privateZoneId,
          name: role === "primary" ? this.primaryHost : this.replicaHost,
          type: "A",
          ttl: 30,
          records: [instance.privateIp],
        },
        parent,
      );
      return instance;
    };
    const primary = node("primary", args.primarySubnet);
    const replica = node("replica", args.replicaSubnet);

    // Alarms on the metrics the nodes publish (lib/platform/cloud-init.ts METRICS_SCRIPT) and on EC2 health.
    const alarm = (suffix: string, description: string, metric: { name: string; role: NodeRole; threshold: number; statistic?: string }) =>
      new aws.cloudwatch.MetricAlarm(
        `${name}-${suffix}`,
        {
          alarmDescription: description,
          namespace: METRICS_NAMESPACE,
          metricName: metric.name,
          dimensions: { Cluster: name, Role: metric.role },
          statistic: metric.statistic ?? "Maximum",
          period: 60,
          evaluationPeriods: 5,
          datapointsToAlarm: 3,
          threshold: metric.threshold,
          comparisonOperator: "GreaterThanThreshold",
          // Silence is a failure: a node that stops reporting is as bad as one reporting trouble.
          treatMissingData: "breaching",
          alarmActions: [args.alarmTopicArn],
          okActions: [args.alarmTopicArn],
        },
        parent,
      );
    alarm("replication-lag", "Replica is behind the primary", {
      name: "ReplicationLagSeconds",
      role: "replica",
      threshold: alarms.replicationLagSeconds,
    });
    alarm("primary-disk", "Primary data volume filling up", {
      name: "DiskUsedPercent",
      role: "primary",
      threshold: alarms.diskUsedPercent,
    });
    alarm("replica-disk", "Replica data volume filling up", {
      name: "DiskUsedPercent",
      role: "replica",
      threshold: alarms.diskUsedPercent,
    });
    alarm("connections", "Connections close to max_connections", {
      name: "ConnectionsUsedPercent",
      role: "primary",
      threshold: alarms.connectionsUsedPercent,
    });
    alarm("backup-age", "No recent pgBackRest backup", { name: "BackupAgeHours", role: "primary", threshold: alarms.backupAgeHours });
    alarm("wal-archive", "WAL archiving to S3 is failing (point-in-time recovery at risk)", {
      name: "WalArchiveFailing",
      role: "primary",
      threshold: 0,
    });
    for (const [role, instance] of [
      ["primary", primary],
      ["replica", replica],
    ] as const) {
      new aws.cloudwatch.MetricAlarm(
        `${name}-${role}-system-status`,
        {
          alarmDescription: `EC2 system status check failed on the ${role}: recover the instance`,
          namespace: "AWS/EC2",
          metricName: "StatusCheckFailed_System",
          dimensions: { InstanceId: instance.id },
          statistic: "Maximum",
          period: 60,
          evaluationPeriods: 2,
          threshold: 0,
          comparisonOperator: "GreaterThanThreshold",
          alarmActions: [pulumi.interpolate`arn:aws:automate:${args.region}:ec2:recover`, args.alarmTopicArn],
        },
        parent,
      );
    }

    this.securityGroupId = sg.id;
    this.primaryInstanceId = primary.id;
    this.replicaInstanceId = replica.id;
    this.backupBucketName = bucket.id;
    this.logGroupName = logGroup.name;
    this.adminSecretArn = admin.secretArn;
    this.replicationSecretArn = replication.secretArn;
    this.registerOutputs({
      primaryHost: this.primaryHost,
      replicaHost: this.replicaHost,
      primaryInstanceId: this.primaryInstanceId,
      replicaInstanceId: this.replicaInstanceId,
      backupBucketName: this.backupBucketName,
      logGroupName: this.logGroupName,
      adminSecretArn: this.adminSecretArn,
    });
  }
}
