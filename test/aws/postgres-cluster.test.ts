import { schemaCapacitySettings } from "../../lib/enterprise/schema-capacity";
import { beforeAll, describe, expect, it } from "vitest";
import { CLUSTER_ROLES, PostgresCluster, type PostgresClusterArgs } from "../../components/aws/postgres-cluster";
import { NODE_PATHS } from "../../lib/platform/cloud-init";
import { cloudInitFiles, record, T, type Recorded } from "./harness";

const KEY = "arn:aws:kms:eu-central-1:111111111111:key/k";
const args: PostgresClusterArgs = {
  region: "eu-central-1",
  vpcId: "vpc-1",
  vpcCidr: "10.20.0.0/16",
  primarySubnet: { id: "subnet-a", availabilityZone: "eu-central-1a" },
  replicaSubnet: { id: "subnet-b", availabilityZone: "eu-central-1b" },
  kmsKeyArn: KEY,
  alarmTopicArn: "arn:aws:sns:eu-central-1:111111111111:alarms",
  clientSecurityGroupIds: ["sg-pgbouncer"],
  endpointSecurityGroupId: "sg-endpoints",
  s3PrefixListId: "pl-s3",
  privateZoneId: "Z1",
  privateZoneName: "test.alphapulse.internal",
  backupBucketName: "alphapulse-test-pgbackrest-111111111111",
  secretNamePrefix: "alphapulse/test/postgres",
  instanceType: "r7g.xlarge",
  memoryMiB: 32768,
  dataVolumeGiB: 500,
};

let rec: Recorded;
let cluster: PostgresCluster;

beforeAll(async () => {
  rec = await record((provider) => {
    cluster = new PostgresCluster("pg", args, { providers: { aws: provider } });
  });
});

describe("PostgresCluster nodes", () => {
  it("a primary and a replica in two zones, each with its own protected data volume", () => {
    expect(rec.names(T.instance)).toEqual(["pg-primary", "pg-replica"]);
    expect(rec.names(T.volume)).toEqual(["pg-primary-data", "pg-replica-data"]);
    for (const [node, zone, subnet] of [
      ["primary", "eu-central-1a", "subnet-a"],
      ["replica", "eu-central-1b", "subnet-b"],
    ]) {
      const instance = rec.get(T.instance, `pg-${node}`);
      expect(instance.inputs.availabilityZone).toBe(zone);
      expect(instance.inputs.subnetId).toBe(subnet);
      const volume = rec.get(T.volume, `pg-${node}-data`);
      expect(volume.inputs).toEqual({
        availabilityZone: zone,
        size: 500,
        type: "gp3",
        iops: 3000,
        throughput: 125,
        encrypted: true,
        kmsKeyId: KEY,
        finalSnapshot: true,
        tags: { Name: `pg-${node}-data` },
      });
      expect([volume.protect, volume.retainOnDelete]).toEqual([true, true]);
      expect(rec.get("aws:ec2/volumeAttachment:VolumeAttachment", `pg-${node}-data`).inputs).toMatchObject({
        deviceName: "/dev/sdf",
        stopInstanceBeforeDetaching: true,
      });
    }
  });

  it("SSM only: no key pair, IMDSv2, no public IP, encrypted root, termination protection, protected", () => {
    for (const instance of rec.ofType(T.instance)) {
      expect(instance.inputs.keyName).toBeUndefined();
      expect(instance.inputs).toMatchObject({
        associatePublicIpAddress: false,
        disableApiTermination: true,
        metadataOptions: { httpTokens: "required", httpEndpoint: "enabled", httpPutResponseHopLimit: 1 },
        rootBlockDevice: { volumeType: "gp3", volumeSize: 30, encrypted: true, kmsKeyId: KEY, deleteOnTermination: true },
        iamInstanceProfile: "pg-node",
        instanceType: "r7g.xlarge",
      });
      expect(instance.protect).toBe(true);
      // A new golden image or bootstrap never restarts or replaces a database node by itself.
      expect(instance.ignoreChanges).toEqual(["ami", "userData"]);
    }
    const policies = rec.ofType("aws:iam/rolePolicyAttachment:RolePolicyAttachment").map((a) => a.inputs.policyArn);
    expect(policies.sort()).toEqual([
      "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
      "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy",
    ]);
  });

  it("bootstraps from the shared renderers; the user data holds secret ARNs, never a password", () => {
    const primary = cloudInitFiles(rec.get(T.instance, "pg-primary").inputs.userData);
    const replica = cloudInitFiles(rec.get(T.instance, "pg-replica").inputs.userData);
    expect(primary[NODE_PATHS.env]).toContain("ROLE=primary\n");
    expect(replica[NODE_PATHS.env]).toContain("ROLE=replica\nCLUSTER=pg\n");
    expect(replica[NODE_PATHS.env]).toContain("PRIMARY_HOST=pg-primary.test.alphapulse.internal\n");
    const conf = primary[NODE_PATHS.postgresqlConf];
    for (const line of [
      "shared_preload_libraries = 'timescaledb,pg_stat_statements'",
      "archive_mode = 'on'",
      "archive_command = 'pgbackrest --stanza=main archive-push %p'",
      "shared_buffers = '8192MB'",
      "max_connections = 200",
      "ssl = on",
      // sized for the dedicated-schema cap of this machine (lib/enterprise/schema-capacity.ts)
      `max_locks_per_transaction = ${schemaCapacitySettings({ memoryMiB: 32768, maxConnections: 200 }).max_locks_per_transaction}`,
      "alphapulse.memory_mib = 32768",
    ]) {
      expect(conf.split("\n")).toContain(line);
    }
    expect(primary[NODE_PATHS.pgHba].split("\n").slice(1)).toEqual([
      "local all postgres peer",
      "host all alphapulse_admin 127.0.0.1/32 scram-sha-256",
      "host all alphapulse_admin 0.0.0.0/0 reject",
      "host all alphapulse_executor 0.0.0.0/0 reject",
      "hostssl replication replicator 10.20.0.0/16 scram-sha-256",
      "hostssl all all 10.20.0.0/16 scram-sha-256",
      "",
    ]);
    const pgbackrest = primary[NODE_PATHS.pgbackrestConf];
    for (const line of [
      "repo1-type=s3",
      "repo1-s3-bucket=alphapulse-test-pgbackrest-111111111111",
      "repo1-s3-region=eu-central-1",
      "repo1-s3-key-type=auto",
      `repo1-s3-kms-key-id=${KEY}`,
      "repo1-retention-full=4",
      "repo1-retention-diff=7",
      "pg1-path=/var/lib/postgresql/15/main",
    ]) {
      expect(pgbackrest.split("\n")).toContain(line);
    }
    const roles = primary[NODE_PATHS.roles]
      .trim()
      .split("\n")
      .map((l) => l.split("\t"));
    expect(
      roles.map(([name, attrs, arn]) => [
        name,
        attrs,
        arn.startsWith("arn:aws:secretsmanager:eu-central-1:111111111111:secret:alphapulse/test/postgres/"),
      ]),
    ).toEqual([
      ["alphapulse_admin", "SUPERUSER", true],
      ["replicator", "REPLICATION", true],
      ["alphapulse_executor", "CREATEDB CREATEROLE", true],
    ]);
    expect(String(rec.get(T.instance, "pg-primary").inputs.userData)).not.toContain("mock-password");
  });
});

describe("PostgresCluster credentials", () => {
  it("one Secrets Manager secret per login role, KMS-encrypted, protected, value secret", () => {
    expect(rec.ofType(T.secret).map((s) => [s.name, s.inputs.name, s.inputs.kmsKeyId, s.protect])).toEqual([
      ["pg-admin-secret", `alphapulse/test/postgres/${CLUSTER_ROLES.admin}`, KEY, true],
      ["pg-executor-secret", `alphapulse/test/postgres/${CLUSTER_ROLES.executor}`, KEY, true],
      ["pg-replication-secret", `alphapulse/test/postgres/${CLUSTER_ROLES.replication}`, KEY, true],
    ]);
    for (const version of rec.ofType(T.secretVersion)) expect(version.inputs.secretString).toBe("[secret]");
    for (const password of rec.ofType("random:index/randomPassword:RandomPassword")) {
      expect(password.inputs).toEqual({ length: 40, special: false, minLower: 1, minUpper: 1, minNumeric: 1 });
      expect(password.additionalSecretOutputs).toContain("result");
    }
  });
});

describe("PostgresCluster network", () => {
  it("5432 only from PgBouncer and from the cluster itself; no CIDR ingress at all", () => {
    const ingress = rec
      .ofType(T.ingress)
      .map((r) => [r.name, r.inputs.referencedSecurityGroupId, r.inputs.fromPort, r.inputs.toPort, r.inputs.cidrIpv4]);
    const sg = rec.get(T.sg, "pg-sg");
    const sgId = ingress.find(([name]) => name === "pg-from-cluster")?.[1];
    expect(String(sgId)).toMatch(/^pg-sg-/);
    expect(ingress).toEqual([
      ["pg-from-client-0", "sg-pgbouncer", 5432, 5432, undefined],
      ["pg-from-cluster", sgId, 5432, 5432, undefined],
    ]);
    expect(sg.inputs.ingress).toBeUndefined();
  });

  it("egress only to the cluster, the interface endpoints and S3", () => {
    expect(
      rec.ofType(T.egress).map((r) => [r.name, r.inputs.referencedSecurityGroupId ?? r.inputs.prefixListId, r.inputs.fromPort]),
    ).toEqual([
      ["pg-to-cluster", expect.stringMatching(/^pg-sg-/), 5432],
      ["pg-to-endpoints", "sg-endpoints", 443],
      ["pg-to-s3", "pl-s3", 443],
    ]);
  });
});

describe("PostgresCluster backups", () => {
  it("a region-local bucket: protected, versioned, SSE-KMS, public access blocked, lifecycle, TLS only", () => {
    const bucket = rec.get(T.bucket, "pg-backups");
    expect(bucket.inputs).toEqual({ bucket: "alphapulse-test-pgbackrest-111111111111", forceDestroy: false });
    expect([bucket.protect, bucket.retainOnDelete]).toEqual([true, true]);
    const sub = (type: string) => rec.get(type, "pg-backups").inputs;
    expect(sub("aws:s3/bucketVersioning:BucketVersioning").versioningConfiguration).toEqual({ status: "Enabled" });
    expect(sub("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration").rules).toEqual([
      { applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: KEY }, bucketKeyEnabled: true },
    ]);
    expect(sub("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")).toMatchObject({
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    });
    expect(sub("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").rules).toEqual([
      {
        id: "expire-noncurrent-versions",
        status: "Enabled",
        filter: {},
        noncurrentVersionExpiration: { noncurrentDays: 30 },
        abortIncompleteMultipartUpload: { daysAfterInitiation: 7 },
      },
      { id: "remove-expired-delete-markers", status: "Enabled", filter: {}, expiration: { expiredObjectDeleteMarker: true } },
    ]);
    const policy = JSON.parse(String(sub("aws:s3/bucketPolicy:BucketPolicy").policy));
    expect(policy.Statement).toEqual([
      {
        Sid: "DenyInsecureTransport",
        Effect: "Deny",
        Principal: "*",
        Action: "s3:*",
        Resource: ["arn:aws:s3:::alphapulse-test-pgbackrest-111111111111", "arn:aws:s3:::alphapulse-test-pgbackrest-111111111111/*"],
        Condition: { Bool: { "aws:SecureTransport": "false" } },
      },
    ]);
  });
});

describe("PostgresCluster alarms and logs", () => {
  it("replication lag, disk, connections, backup age, WAL archiving, EC2 recovery", () => {
    const alarms = rec
      .ofType(T.alarm)
      .map((a) => [a.name, a.inputs.namespace, a.inputs.metricName, a.inputs.dimensions, a.inputs.threshold]);
    expect(alarms).toEqual([
      ["pg-backup-age", "AlphaPulse/Postgres", "BackupAgeHours", { Cluster: "pg", Role: "primary" }, 49],
      ["pg-connections", "AlphaPulse/Postgres", "ConnectionsUsedPercent", { Cluster: "pg", Role: "primary" }, 80],
      ["pg-primary-disk", "AlphaPulse/Postgres", "DiskUsedPercent", { Cluster: "pg", Role: "primary" }, 80],
      ["pg-primary-system-status", "AWS/EC2", "StatusCheckFailed_System", { InstanceId: expect.stringMatching(/^pg-primary-/) }, 0],
      ["pg-replica-disk", "AlphaPulse/Postgres", "DiskUsedPercent", { Cluster: "pg", Role: "replica" }, 80],
      ["pg-replica-system-status", "AWS/EC2", "StatusCheckFailed_System", { InstanceId: expect.stringMatching(/^pg-replica-/) }, 0],
      ["pg-replication-lag", "AlphaPulse/Postgres", "ReplicationLagSeconds", { Cluster: "pg", Role: "replica" }, 60],
      ["pg-wal-archive", "AlphaPulse/Postgres", "WalArchiveFailing", { Cluster: "pg", Role: "primary" }, 0],
    ]);
    for (const a of rec.ofType(T.alarm).filter((x) => x.inputs.namespace === "AlphaPulse/Postgres"))
      expect(a.inputs.treatMissingData).toBe("breaching");
    expect(rec.get(T.alarm, "pg-primary-system-status").inputs.alarmActions).toEqual([
      "arn:aws:automate:eu-central-1:ec2:recover",
      "arn:aws:sns:eu-central-1:111111111111:alarms",
    ]);
  });

  it("an encrypted log group for the server logs (per-tenant observability builds on it)", () => {
    expect(rec.get(T.logGroup, "pg-logs").inputs).toEqual({ name: "/alphapulse/pg/postgresql", retentionInDays: 30, kmsKeyId: KEY });
    expect(cluster.primaryHost).toBe("pg-primary.test.alphapulse.internal");
  });
});

describe("PostgresCluster validation", () => {
  it.each([
    [
      "same-zone",
      { replicaSubnet: { id: "s", availabilityZone: "eu-central-1a" } },
      "PostgresCluster same-zone: the replica must be in another availability zone than the primary (eu-central-1a)",
    ],
    [
      "other-region",
      { replicaSubnet: { id: "s", availabilityZone: "eu-west-1a" } },
      `PostgresCluster other-region replicaSubnet: availability zone "eu-west-1a" is in eu-west-1, not in the stack's region eu-central-1`,
    ],
    [
      "bucket",
      { backupBucketName: "Alphapulse_Backups" },
      'PostgresCluster bucket: backupBucketName "Alphapulse_Backups" must be 3-63 of a-z, 0-9 and inner hyphens',
    ],
    ["memory", { memoryMiB: 512 }, "memoryMiB must be an integer of at least 1024, got 512"],
  ] as [string, Partial<PostgresClusterArgs>, string][])("%s: refuses %j", (name, override, message) => {
    expect(() => new PostgresCluster(name, { ...args, ...override })).toThrow(message);
  });
});
