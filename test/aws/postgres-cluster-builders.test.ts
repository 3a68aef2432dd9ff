/**
 * The PostgresCluster builders (components/aws/postgres-cluster.ts): pure functions, called directly,
 * exact values. No Pulumi runtime: Inputs are plain strings here. What the component declares
 * from them is test/aws/postgres-cluster.test.ts; that a partial `backup`/`alarms` reaches the
 * resources is test/aws/postgres-cluster-partial-args.test.ts.
 */
import { renderDatabaseBootstrapSql } from "../../lib/platform/database-bootstrap";
import { describe, expect, it } from "vitest";
import {
  ALARM_DEFAULTS,
  BACKUP_DEFAULTS,
  backupBucketLifecycleRules,
  backupBucketPolicy,
  clusterLogGroupName,
  clusterMetricAlarms,
  clusterPgbackrestConf,
  clusterPgHba,
  clusterPostgresqlConf,
  clusterSecurityGroupArgs,
  clusterSecurityGroupRules,
  credentialArgs,
  credentialName,
  dataVolumeArgs,
  goldenImageQuery,
  metricAlarmArgs,
  NODE_ASSUME_ROLE_POLICY,
  NODE_MANAGED_POLICIES,
  nodeBootstrapParams,
  nodeHost,
  nodeInstanceArgs,
  nodeRolePolicy,
  replicationSlotName,
  systemStatusAlarmArgs,
  validatePostgresClusterArgs,
  withDefaults,
  type PostgresAlarms,
  type PostgresBackup,
  type PostgresClusterArgs,
} from "../../components/aws/postgres-cluster";
import { PostgresConfig } from "../../lib/stack-config/aws";

const KEY = "arn:aws:kms:eu-central-1:111111111111:key/k";
const TOPIC = "arn:aws:sns:eu-central-1:111111111111:alarms";

describe("withDefaults: a nested arg states only what it changes", () => {
  it.each([
    ["absent", undefined, BACKUP_DEFAULTS],
    ["empty", {}, BACKUP_DEFAULTS],
    ["one field", { retentionFull: 8 }, { ...BACKUP_DEFAULTS, retentionFull: 8 }],
    [
      "two fields",
      { diffSchedule: "*-*-* 03:00:00", noncurrentVersionDays: 90 },
      { ...BACKUP_DEFAULTS, diffSchedule: "*-*-* 03:00:00", noncurrentVersionDays: 90 },
    ],
    ["an explicit undefined keeps the default", { retentionDiff: undefined }, BACKUP_DEFAULTS],
    [
      "0 and empty string are values, not absence",
      { retentionDiff: 0, fullSchedule: "" },
      { ...BACKUP_DEFAULTS, retentionDiff: 0, fullSchedule: "" },
    ],
    ["an unknown key is dropped", { retentionFull: 2, bogus: 1 } as Partial<PostgresBackup>, { ...BACKUP_DEFAULTS, retentionFull: 2 }],
  ] as [string, Partial<PostgresBackup> | undefined, PostgresBackup][])("backup, %s", (_, given, expected) => {
    expect(withDefaults(BACKUP_DEFAULTS, given)).toEqual(expected);
  });

  it.each([
    ["absent", undefined, ALARM_DEFAULTS],
    ["one field", { backupAgeHours: 25 }, { ...ALARM_DEFAULTS, backupAgeHours: 25 }],
    [
      "every field",
      { replicationLagSeconds: 1, diskUsedPercent: 2, connectionsUsedPercent: 3, backupAgeHours: 4 },
      {
        replicationLagSeconds: 1,
        diskUsedPercent: 2,
        connectionsUsedPercent: 3,
        backupAgeHours: 4,
      },
    ],
  ] as [string, Partial<PostgresAlarms> | undefined, PostgresAlarms][])("alarms, %s", (_, given, expected) => {
    expect(withDefaults(ALARM_DEFAULTS, given)).toEqual(expected);
  });

  it("never mutates the defaults", () => {
    const before = { ...BACKUP_DEFAULTS };
    withDefaults(BACKUP_DEFAULTS, { retentionFull: 9 });
    expect(BACKUP_DEFAULTS).toEqual(before);
  });

  it("the documented defaults are the stack config's defaults (lib/stack-config/aws.ts)", () => {
    const parsed = PostgresConfig.parse({ instanceType: "r7g.xlarge", dataVolumeGiB: 500 });
    expect(parsed.backup).toEqual(BACKUP_DEFAULTS);
    expect(parsed.alarms).toEqual(ALARM_DEFAULTS);
  });
});

describe("validatePostgresClusterArgs", () => {
  const ok = {
    region: "eu-central-1",
    primarySubnet: { id: "a", availabilityZone: "eu-central-1a" },
    replicaSubnet: { id: "b", availabilityZone: "eu-central-1b" },
    backupBucketName: "alphapulse-test-pgbackrest-111111111111",
  };

  it("accepts two zones of the region and a valid bucket name", () => {
    expect(() => validatePostgresClusterArgs("pg", ok)).not.toThrow();
  });

  it.each([
    [
      { primarySubnet: { id: "a", availabilityZone: "us-east-1a" } },
      `PostgresCluster pg primarySubnet: availability zone "us-east-1a" is in us-east-1, not in the stack's region eu-central-1`,
    ],
    [
      { replicaSubnet: { id: "b", availabilityZone: "eu-central-1a" } },
      "PostgresCluster pg: the replica must be in another availability zone than the primary (eu-central-1a)",
    ],
    [{ backupBucketName: "ab" }, 'PostgresCluster pg: backupBucketName "ab" must be 3-63 of a-z, 0-9 and inner hyphens'],
    [{ backupBucketName: "-leading" }, 'PostgresCluster pg: backupBucketName "-leading" must be 3-63 of a-z, 0-9 and inner hyphens'],
    [{ backupBucketName: "Upper" }, 'PostgresCluster pg: backupBucketName "Upper" must be 3-63 of a-z, 0-9 and inner hyphens'],
    [
      { backupBucketName: "a".repeat(64) },
      `PostgresCluster pg: backupBucketName "${"a".repeat(64)}" must be 3-63 of a-z, 0-9 and inner hyphens`,
    ],
  ] as [Partial<typeof ok>, string][])("refuses %j", (override, message) => {
    expect(() => validatePostgresClusterArgs("pg", { ...ok, ...override })).toThrow(message);
  });
});

describe("names", () => {
  it.each([
    ["primary", "eu-prod.alphapulse.internal", "pg-primary.eu-prod.alphapulse.internal"],
    ["replica", "eu-prod.alphapulse.internal", "pg-replica.eu-prod.alphapulse.internal"],
  ] as const)("nodeHost(%s, %s) = %s", (role, zone, host) => {
    expect(nodeHost(role, zone)).toBe(host);
  });

  it.each([
    ["primary", "eu-central-1a", "primary_eu_central_1a"],
    ["replica", "us-east-1b", "replica_us_east_1b"],
  ] as const)("replicationSlotName(%s, %s) = %s", (role, zone, slot) => {
    expect(replicationSlotName(role, zone)).toBe(slot);
  });

  it.each([
    ["pg", "/alphapulse/pg/postgresql"],
    ["eu-prod-postgres", "/alphapulse/eu-prod-postgres/postgresql"],
  ])("clusterLogGroupName(%s) = %s", (cluster, group) => {
    expect(clusterLogGroupName(cluster)).toBe(group);
  });

  it.each([
    ["admin", "pg-admin", "alphapulse/test/postgres/alphapulse_admin"],
    ["replication", "pg-replication", "alphapulse/test/postgres/replicator"],
    ["executor", "pg-executor", "alphapulse/test/postgres/alphapulse_executor"],
  ] as const)("credential %s is %s, secret %s", (key, name, secretName) => {
    expect(credentialName("pg", key)).toBe(name);
    expect(credentialArgs("pg", key, { secretNamePrefix: "alphapulse/test/postgres", kmsKeyArn: KEY })).toEqual({
      username: secretName.split("/").pop(),
      secretName,
      kmsKeyId: KEY,
      description: `PostgreSQL role ${secretName.split("/").pop()} of pg`,
    });
  });
});

describe("configuration files", () => {
  it("pg_hba.conf: peer for postgres, admin over loopback only, no executor subnets: its role refused, TLS + SCRAM from the VPC", () => {
    expect(clusterPgHba("pg", "10.20.0.0/16")).toBe(
      [
        "# Rendered by components/aws/postgres-cluster.ts for pg. First match wins; anything else is refused.",
        "local all postgres peer",
        "host all alphapulse_admin 127.0.0.1/32 scram-sha-256",
        "host all alphapulse_admin 0.0.0.0/0 reject",
        "host all alphapulse_executor 0.0.0.0/0 reject",
        "hostssl replication replicator 10.20.0.0/16 scram-sha-256",
        "hostssl all all 10.20.0.0/16 scram-sha-256",
        "",
      ].join("\n"),
    );
  });

  it("pg_hba.conf: the executor's role over TLS + SCRAM from its subnets only, refused elsewhere, before the VPC-wide line", () => {
    expect(clusterPgHba("pg", "10.20.0.0/16", ["10.20.0.0/20", "10.20.16.0/20"])).toBe(
      [
        "# Rendered by components/aws/postgres-cluster.ts for pg. First match wins; anything else is refused.",
        "local all postgres peer",
        "host all alphapulse_admin 127.0.0.1/32 scram-sha-256",
        "host all alphapulse_admin 0.0.0.0/0 reject",
        "hostssl all alphapulse_executor 10.20.0.0/20 scram-sha-256",
        "hostssl all alphapulse_executor 10.20.16.0/20 scram-sha-256",
        "host all alphapulse_executor 0.0.0.0/0 reject",
        "hostssl replication replicator 10.20.0.0/16 scram-sha-256",
        "hostssl all all 10.20.0.0/16 scram-sha-256",
        "",
      ].join("\n"),
    );
  });

  it("pg_hba.conf refuses an executor subnet that is not a CIDR, naming the role", () => {
    expect(() => clusterPgHba("pg", "10.20.0.0/16", ["10.20.0.0"])).toThrow(
      "pg_hba hostssl rule for alphapulse_executor needs an IPv4 CIDR address, got 10.20.0.0",
    );
  });

  it.each([
    [BACKUP_DEFAULTS, "4", "7"],
    [{ retentionFull: 12, retentionDiff: 3 }, "12", "3"],
  ])("pgbackrest.conf with retention %j", (backup, full, diff) => {
    expect(clusterPgbackrestConf("pg", { region: "eu-central-1", bucket: "bucket-1", kmsKeyArn: KEY, backup })).toBe(
      [
        "# Rendered by components/aws/postgres-cluster.ts for pg.",
        "",
        "[global]",
        "repo1-type=s3",
        "repo1-path=/pgbackrest",
        "repo1-s3-bucket=bucket-1",
        "repo1-s3-region=eu-central-1",
        "repo1-s3-endpoint=s3.eu-central-1.amazonaws.com",
        "repo1-s3-key-type=auto",
        `repo1-s3-kms-key-id=${KEY}`,
        "repo1-retention-full-type=count",
        `repo1-retention-full=${full}`,
        `repo1-retention-diff=${diff}`,
        "process-max=2",
        "compress-type=zst",
        "start-fast=y",
        "delta=y",
        "archive-async=y",
        "spool-path=/var/spool/pgbackrest",
        "log-path=/var/log/pgbackrest",
        "log-level-file=detail",
        "",
        "[main]",
        "pg1-path=/var/lib/postgresql/15/main",
        "",
      ].join("\n"),
    );
  });

  it.each([
    [32768, 200, ["max_connections = 200", "shared_buffers = '8192MB'", "alphapulse.memory_mib = 32768"]],
    [16384, 300, ["max_connections = 300", "shared_buffers = '4096MB'", "alphapulse.memory_mib = 16384"]],
  ])("postgresql.conf for %i MiB and %i connections", (memoryMiB, maxConnections, lines) => {
    const conf = clusterPostgresqlConf("pg", { memoryMiB, maxConnections }).split("\n");
    expect(conf[0]).toBe("# Rendered by components/aws/postgres-cluster.ts for pg; do not edit on the node.");
    for (const line of [
      ...lines,
      "listen_addresses = '*'",
      "port = 5432",
      "ssl = on",
      "archive_command = 'pgbackrest --stanza=main archive-push %p'",
      "shared_preload_libraries = 'timescaledb,pg_stat_statements'",
    ])
      expect(conf).toContain(line);
  });

  it("postgresql.conf refuses a machine too small, naming the field", () => {
    expect(() => clusterPostgresqlConf("pg", { memoryMiB: 512, maxConnections: 200 })).toThrow(
      "memoryMiB must be an integer of at least 1024, got 512",
    );
  });
});

describe("nodeBootstrapParams", () => {
  it.each([
    ["primary", "eu-central-1a", "primary_eu_central_1a"],
    ["replica", "eu-central-1b", "replica_eu_central_1b"],
  ] as const)("%s in %s: the files, the roles by secret ARN, the timers", (role, availabilityZone, slot) => {
    expect(
      nodeBootstrapParams({
        cluster: "pg",
        role,
        availabilityZone,
        region: "eu-central-1",
        primaryHost: "pg-primary.z",
        postgresqlConf: "PG",
        pgHba: "HBA",
        pgbackrestConf: "BR",
        adminSecretArn: "arn:admin",
        replicationSecretArn: "arn:replication",
        executorSecretArn: "arn:executor",
        backup: { ...BACKUP_DEFAULTS, fullSchedule: "Sat *-*-* 02:00:00" },
        logGroupName: "/alphapulse/pg/postgresql",
      }),
    ).toEqual({
      role,
      cluster: "pg",
      region: "eu-central-1",
      majorVersion: 15,
      stanza: "main",
      dataDevice: "/dev/sdf",
      dataMount: "/var/lib/postgresql",
      primaryHost: "pg-primary.z",
      replicationSlot: slot,
      replicationRole: "replicator",
      files: {
        postgresqlConf: "PG",
        pgHba: "HBA",
        pgbackrestConf: "BR",
        bootstrapClusterSql: renderDatabaseBootstrapSql().cluster,
        bootstrapTemplateSql: renderDatabaseBootstrapSql().template,
      },
      roles: [
        { name: "alphapulse_admin", attributes: "SUPERUSER", secretArn: "arn:admin" },
        { name: "replicator", attributes: "REPLICATION", secretArn: "arn:replication" },
        { name: "alphapulse_executor", attributes: "CREATEDB CREATEROLE", secretArn: "arn:executor" },
      ],
      backupSchedule: { full: "Sat *-*-* 02:00:00", diff: "Mon..Sat *-*-* 01:00:00" },
      metricsNamespace: "AlphaPulse/Postgres",
      logGroupName: "/alphapulse/pg/postgresql",
    });
  });
});

describe("backup bucket", () => {
  it.each([30, 1, 365])("lifecycle keeps noncurrent versions %i days", (days) => {
    expect(backupBucketLifecycleRules({ noncurrentVersionDays: days })).toEqual([
      {
        id: "expire-noncurrent-versions",
        status: "Enabled",
        filter: {},
        noncurrentVersionExpiration: { noncurrentDays: days },
        abortIncompleteMultipartUpload: { daysAfterInitiation: 7 },
      },
      { id: "remove-expired-delete-markers", status: "Enabled", filter: {}, expiration: { expiredObjectDeleteMarker: true } },
    ]);
  });

  it("policy: deny anything without TLS on the bucket and its objects", () => {
    expect(JSON.stringify(backupBucketPolicy("arn:aws:s3:::b", "arn:aws:s3:::b/*"))).toBe(
      JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          {
            Sid: "DenyInsecureTransport",
            Effect: "Deny",
            Principal: "*",
            Action: "s3:*",
            Resource: ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
            Condition: { Bool: { "aws:SecureTransport": "false" } },
          },
        ],
      }),
    );
  });
});

describe("node role", () => {
  it("EC2 may assume it; SSM and the CloudWatch agent are the managed policies", () => {
    expect(JSON.stringify(NODE_ASSUME_ROLE_POLICY)).toBe(
      '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}',
    );
    expect(NODE_MANAGED_POLICIES).toEqual([
      ["ssm", "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"],
      ["cloudwatch-agent", "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"],
    ]);
  });

  it("its own policy: its bucket, its key, its two secrets, its metrics namespace, nothing else", () => {
    expect(nodeRolePolicy({ bucketArn: "arn:b", bucketObjectsArn: "arn:b/*", kmsKeyArn: KEY, secretArns: ["arn:s1", "arn:s2"] })).toEqual({
      Version: "2012-10-17",
      Statement: [
        { Sid: "BackupBucketList", Effect: "Allow", Action: ["s3:ListBucket", "s3:GetBucketLocation"], Resource: "arn:b" },
        { Sid: "BackupObjects", Effect: "Allow", Action: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], Resource: "arn:b/*" },
        {
          Sid: "RegionKey",
          Effect: "Allow",
          Action: ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
          Resource: KEY,
        },
        { Sid: "RoleSecrets", Effect: "Allow", Action: "secretsmanager:GetSecretValue", Resource: ["arn:s1", "arn:s2"] },
        {
          Sid: "HealthMetrics",
          Effect: "Allow",
          Action: "cloudwatch:PutMetricData",
          Resource: "*",
          Condition: { StringEquals: { "cloudwatch:namespace": "AlphaPulse/Postgres" } },
        },
      ],
    });
  });
});

describe("security group", () => {
  const base = { securityGroupId: "sg-pg", endpointSecurityGroupId: "sg-endpoints", s3PrefixListId: "pl-s3" };
  const fixed = [
    ["pg-from-cluster", "ingress", { referencedSecurityGroupId: "sg-pg" }, 5432, "Streaming replication between the nodes"],
    ["pg-to-cluster", "egress", { referencedSecurityGroupId: "sg-pg" }, 5432, "Streaming replication between the nodes"],
    ["pg-to-endpoints", "egress", { referencedSecurityGroupId: "sg-endpoints" }, 443, "SSM, Secrets Manager, KMS, CloudWatch endpoints"],
    ["pg-to-s3", "egress", { prefixListId: "pl-s3" }, 443, "pgBackRest to S3 (gateway endpoint)"],
  ];
  const client = (i: number, id: string) => [
    `pg-from-client-${i}`,
    "ingress",
    { referencedSecurityGroupId: id },
    5432,
    "PostgreSQL from PgBouncer",
  ];

  it.each([
    ["no client", [], fixed],
    ["one client", ["sg-a"], [client(0, "sg-a"), ...fixed]],
    ["two clients, named by position", ["sg-a", "sg-b"], [client(0, "sg-a"), client(1, "sg-b"), ...fixed]],
  ] as [string, string[], unknown[][]][])("%s", (_, clientSecurityGroupIds, expected) => {
    const rules = clusterSecurityGroupRules("pg", { ...base, clientSecurityGroupIds });
    expect(rules.map((r) => [r.name, r.args.direction, r.args.peer, r.args.port, r.args.description])).toEqual(expected);
    for (const r of rules) expect(r.args.securityGroupId).toBe("sg-pg");
    // No CIDR peer at all: the cluster is reachable from groups, never from address ranges.
    expect(rules.filter((r) => "cidrIpv4" in r.args.peer)).toEqual([]);
  });

  it("the executor adds exactly one rule: 5432 in from its group", () => {
    const without = clusterSecurityGroupRules("pg", { ...base, clientSecurityGroupIds: ["sg-a"] });
    const rules = clusterSecurityGroupRules("pg", { ...base, clientSecurityGroupIds: ["sg-a"], executor: { securityGroupId: "sg-exec" } });
    expect(rules.filter((r) => !without.some((w) => w.name === r.name)).map((r) => [r.name, r.args])).toEqual([
      [
        "pg-from-executor",
        {
          direction: "ingress",
          securityGroupId: "sg-pg",
          peer: { referencedSecurityGroupId: "sg-exec" },
          port: 5432,
          description: "PostgreSQL from the database executor (TLS + SCRAM, its role only)",
        },
      ],
    ]);
    expect(rules).toHaveLength(without.length + 1);
  });

  it("the group itself", () => {
    expect(clusterSecurityGroupArgs("pg", "vpc-1")).toEqual({
      vpcId: "vpc-1",
      description: "PostgreSQL nodes of pg",
      tags: { Name: "pg-postgres" },
    });
  });
});

describe("nodes", () => {
  const sizes = { dataVolumeGiB: 500, kmsKeyArn: KEY };
  it.each([
    ["defaults", sizes, 3000, 125],
    ["provisioned", { ...sizes, dataVolumeIops: 6000, dataVolumeThroughputMiBps: 250 }, 6000, 250],
  ] as [
    string,
    Pick<PostgresClusterArgs, "dataVolumeGiB" | "kmsKeyArn" | "dataVolumeIops" | "dataVolumeThroughputMiBps">,
    number,
    number,
  ][])("data volume, %s", (_, args, iops, throughput) => {
    expect(dataVolumeArgs("pg-primary", "eu-central-1a", args)).toEqual({
      availabilityZone: "eu-central-1a",
      size: 500,
      type: "gp3",
      iops,
      throughput,
      encrypted: true,
      kmsKeyId: KEY,
      finalSnapshot: true,
      tags: { Name: "pg-primary-data" },
    });
  });

  it.each([
    [undefined, "alphapulse-postgresql-15-timescaledb-*"],
    ["custom-pg-*", "custom-pg-*"],
  ])("golden image query for pattern %s", (pattern, expected) => {
    expect(goldenImageQuery(pattern)).toEqual({ owners: ["self"], mostRecent: true, filters: [{ name: "name", values: [expected] }] });
  });

  it("instance: private, IMDSv2, encrypted root, termination protection, user data never replaces it", () => {
    expect(
      nodeInstanceArgs({
        nodeName: "pg-replica",
        role: "replica",
        subnet: { id: "subnet-b", availabilityZone: "eu-central-1b" },
        imageId: "ami-1",
        instanceType: "r7g.xlarge",
        securityGroupId: "sg-pg",
        instanceProfile: "pg-node",
        kmsKeyArn: KEY,
        userData: "#cloud-config\n",
      }),
    ).toEqual({
      ami: "ami-1",
      instanceType: "r7g.xlarge",
      subnetId: "subnet-b",
      availabilityZone: "eu-central-1b",
      vpcSecurityGroupIds: ["sg-pg"],
      iamInstanceProfile: "pg-node",
      associatePublicIpAddress: false,
      userData: "#cloud-config\n",
      userDataReplaceOnChange: false,
      metadataOptions: { httpTokens: "required", httpEndpoint: "enabled", httpPutResponseHopLimit: 1 },
      rootBlockDevice: { volumeType: "gp3", volumeSize: 30, encrypted: true, kmsKeyId: KEY, deleteOnTermination: true },
      ebsOptimized: true,
      monitoring: true,
      disableApiTermination: true,
      tags: { Name: "pg-replica", "alphapulse:postgres-role": "replica" },
    });
  });
});

describe("alarms", () => {
  const row = (suffix: string, metricName: string, role: string, threshold: number) => [suffix, metricName, role, threshold];
  it.each([
    [
      "defaults",
      ALARM_DEFAULTS,
      [
        row("replication-lag", "ReplicationLagSeconds", "replica", 60),
        row("primary-disk", "DiskUsedPercent", "primary", 80),
        row("replica-disk", "DiskUsedPercent", "replica", 80),
        row("connections", "ConnectionsUsedPercent", "primary", 80),
        row("backup-age", "BackupAgeHours", "primary", 49),
        row("wal-archive", "WalArchiveFailing", "primary", 0),
      ],
    ],
    [
      "tuned: disk applies to both nodes, WAL archiving stays at any failure",
      { replicationLagSeconds: 300, diskUsedPercent: 90, connectionsUsedPercent: 95, backupAgeHours: 25 },
      [
        row("replication-lag", "ReplicationLagSeconds", "replica", 300),
        row("primary-disk", "DiskUsedPercent", "primary", 90),
        row("replica-disk", "DiskUsedPercent", "replica", 90),
        row("connections", "ConnectionsUsedPercent", "primary", 95),
        row("backup-age", "BackupAgeHours", "primary", 25),
        row("wal-archive", "WalArchiveFailing", "primary", 0),
      ],
    ],
  ] as [string, PostgresAlarms, unknown[][]][])("%s", (_, thresholds, expected) => {
    expect(clusterMetricAlarms(thresholds).map((a) => [a.suffix, a.metricName, a.role, a.threshold])).toEqual(expected);
  });

  it("a metric alarm: 3 of 5 minutes, silence breaches, notifies on alarm and on recovery", () => {
    const [lag] = clusterMetricAlarms(ALARM_DEFAULTS);
    expect(metricAlarmArgs("pg", lag, TOPIC)).toEqual({
      alarmDescription: "Replica is behind the primary",
      namespace: "AlphaPulse/Postgres",
      metricName: "ReplicationLagSeconds",
      dimensions: { Cluster: "pg", Role: "replica" },
      statistic: "Maximum",
      period: 60,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
      threshold: 60,
      comparisonOperator: "GreaterThanThreshold",
      treatMissingData: "breaching",
      alarmActions: [TOPIC],
      okActions: [TOPIC],
    });
  });

  it.each([
    ["primary", "eu-central-1", "arn:aws:automate:eu-central-1:ec2:recover"],
    ["replica", "us-east-1", "arn:aws:automate:us-east-1:ec2:recover"],
  ] as const)("system status of the %s in %s recovers the instance", (role, region, recover) => {
    expect(systemStatusAlarmArgs({ role, instanceId: "i-1", region, alarmTopicArn: TOPIC })).toEqual({
      alarmDescription: `EC2 system status check failed on the ${role}: recover the instance`,
      namespace: "AWS/EC2",
      metricName: "StatusCheckFailed_System",
      dimensions: { InstanceId: "i-1" },
      statistic: "Maximum",
      period: 60,
      evaluationPeriods: 2,
      threshold: 0,
      comparisonOperator: "GreaterThanThreshold",
      alarmActions: [recover, TOPIC],
    });
  });
});
