import { beforeAll, describe, expect, it } from "vitest";
import { ADMIN_USER_ACCESS_STRING, DEFAULT_USER_ACCESS_STRING, RedisCache, type RedisCacheArgs } from "../../components/aws/redis-cache";
import { record, T, type Recorded } from "./harness";

const KEY = "arn:aws:kms:eu-central-1:111111111111:key/k";
const args: RedisCacheArgs = {
  region: "eu-central-1",
  vpcId: "vpc-1",
  subnetIds: ["subnet-a", "subnet-b"],
  availabilityZones: ["eu-central-1a", "eu-central-1b"],
  clientSecurityGroupIds: ["sg-app"],
  kmsKeyArn: KEY,
  alarmTopicArn: "arn:aws:sns:eu-central-1:111111111111:alarms",
  nodeType: "cache.r7g.large",
  replicas: 2,
  secretNamePrefix: "alphapulse/test/redis",
};

let rec: Recorded;
beforeAll(async () => {
  rec = await record((provider) => new RedisCache("cache", args, { providers: { aws: provider } }));
});

describe("RedisCache", () => {
  it("a Multi-AZ replication group, TLS required, encrypted at rest with the region key, RBAC, protected", () => {
    const group = rec.get(T.replicationGroup, "cache-group");
    expect(group.protect).toBe(true);
    expect(group.inputs).toMatchObject({
      replicationGroupId: "cache",
      engine: "redis",
      engineVersion: "7.1",
      nodeType: "cache.r7g.large",
      port: 6379,
      numCacheClusters: 3,
      preferredCacheClusterAzs: ["eu-central-1a", "eu-central-1b", "eu-central-1a"],
      automaticFailoverEnabled: true,
      multiAzEnabled: true,
      transitEncryptionEnabled: true,
      transitEncryptionMode: "required",
      atRestEncryptionEnabled: true,
      kmsKeyId: KEY,
      userGroupIds: ["cache-users"],
      finalSnapshotIdentifier: "cache-final",
      snapshotRetentionLimit: 7,
    });
    expect(group.inputs.authToken).toBeUndefined();
  });

  it("the maxmemory policy and keyspace notifications are set in the parameter group", () => {
    expect(rec.get("aws:elasticache/parameterGroup:ParameterGroup", "cache-params").inputs.parameters).toEqual([
      { name: "maxmemory-policy", value: "volatile-lru" },
      { name: "notify-keyspace-events", value: "KA" },
    ]);
  });

  it("users: default off and an admin; the group lists only them and leaves tenant members to the tenant stacks", () => {
    const users = rec.ofType(T.ecUser).map((u) => [u.inputs.userId, u.inputs.userName, u.inputs.accessString]);
    expect(users).toEqual([
      ["cache-admin", "alphapulse_admin", ADMIN_USER_ACCESS_STRING],
      ["cache-default", "default", DEFAULT_USER_ACCESS_STRING],
    ]);
    expect(DEFAULT_USER_ACCESS_STRING.startsWith("off ")).toBe(true);
    for (const u of rec.ofType(T.ecUser)) expect(u.inputs.authenticationMode).toEqual({ type: "password", passwords: ["[secret]"] });
    const group = rec.get(T.ecUserGroup, "cache-users");
    expect(group.inputs.userIds).toEqual(["cache-default", "cache-admin"]);
    // Tenant stacks add members (UserGroupAssociation): an update of the region must not remove them.
    expect(group.ignoreChanges).toEqual(["userIds"]);
  });

  it("the admin password lives in Secrets Manager under the region key, protected", () => {
    expect(rec.ofType(T.secret).map((s) => [s.name, s.inputs.name, s.inputs.kmsKeyId, s.protect])).toEqual([
      ["cache-admin-secret", "alphapulse/test/redis/alphapulse_admin", KEY, true],
    ]);
  });

  it("6379 only from the client security groups", () => {
    expect(rec.ofType(T.ingress).map((r) => [r.name, r.inputs.referencedSecurityGroupId, r.inputs.fromPort, r.inputs.cidrIpv4])).toEqual([
      ["cache-from-client-0", "sg-app", 6379, undefined],
    ]);
  });

  it("a memory alarm per node", () => {
    expect(rec.ofType(T.alarm).map((a) => [a.name, a.inputs.dimensions])).toEqual([
      ["cache-001-memory", { CacheClusterId: "cache-001" }],
      ["cache-002-memory", { CacheClusterId: "cache-002" }],
      ["cache-003-memory", { CacheClusterId: "cache-003" }],
    ]);
  });

  it("validates its args", () => {
    expect(() => new RedisCache("no-replica", { ...args, replicas: 0 })).toThrow(
      "RedisCache no-replica: replicas must be an integer of at least 1 (Multi-AZ), got 0",
    );
    expect(() => new RedisCache("zone", { ...args, availabilityZones: ["eu-central-1a", "us-east-1a"] })).toThrow(
      'RedisCache zone availabilityZones[1]: availability zone "us-east-1a" is in us-east-1',
    );
  });
});
