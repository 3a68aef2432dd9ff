/**
 * A partial `backup` / `alarms` through the component: the one field given reaches its resource or
 * rendered file, every other field keeps its own default. A separate file because a recording is
 * one per process (test/aws/harness.ts); the defaults themselves are test/aws/postgres-cluster.test.ts.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { PostgresCluster, type PostgresClusterArgs } from "../../components/aws/postgres-cluster";
import { NODE_PATHS } from "../../lib/platform/cloud-init";
import { cloudInitFiles, record, T, type Recorded } from "./harness";

const args: PostgresClusterArgs = {
  region: "eu-central-1",
  vpcId: "vpc-1",
  vpcCidr: "10.20.0.0/16",
  primarySubnet: { id: "subnet-a", availabilityZone: "eu-central-1a" },
  replicaSubnet: { id: "subnet-b", availabilityZone: "eu-central-1b" },
  kmsKeyArn: "arn:aws:kms:eu-central-1:111111111111:key/k",
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
  // One field each: nothing else restated.
  backup: { retentionFull: 8 },
  alarms: { diskUsedPercent: 90 },
};

let rec: Recorded;

beforeAll(async () => {
  rec = await record((provider) => {
    new PostgresCluster("pg", args, { providers: { aws: provider } });
  });
});

describe("PostgresCluster with partial nested args", () => {
  it("backup: the given retention is rendered, the others keep their defaults", () => {
    const files = cloudInitFiles(rec.get(T.instance, "pg-primary").inputs.userData);
    const pgbackrest = files[NODE_PATHS.pgbackrestConf].split("\n");
    expect(pgbackrest).toContain("repo1-retention-full=8");
    expect(pgbackrest).toContain("repo1-retention-diff=7");
    const lifecycle = rec.get("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "pg-backups").inputs.rules as {
      noncurrentVersionExpiration?: { noncurrentDays: number };
    }[];
    expect(lifecycle[0].noncurrentVersionExpiration).toEqual({ noncurrentDays: 30 });
  });

  it("alarms: the given threshold on both disk alarms, the others at their defaults", () => {
    expect(
      rec
        .ofType(T.alarm)
        .filter((a) => a.inputs.namespace === "AlphaPulse/Postgres")
        .map((a) => [a.name, a.inputs.threshold]),
    ).toEqual([
      ["pg-backup-age", 49],
      ["pg-connections", 80],
      ["pg-primary-disk", 90],
      ["pg-replica-disk", 90],
      ["pg-replication-lag", 60],
      ["pg-wal-archive", 0],
    ]);
  });
});
