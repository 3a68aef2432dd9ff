/**
 * The RedisCache builders (components/aws/redis-cache.ts): pure functions, called directly with
 * plain strings, exact values. What the component declares from them is test/aws/redis-cache.test.ts;
 * the access strings themselves are proven on a real redis-server in test/redis.
 */
import { describe, expect, it } from "vitest";
import {
  ADMIN_USER_ACCESS_STRING,
  adminCredentialArgs,
  adminUserArgs,
  DEFAULT_USER_ACCESS_STRING,
  defaultUserArgs,
  memberClusterIds,
  memoryAlarmArgs,
  preferredCacheClusterAzs,
  redisParameterGroupArgs,
  redisSecurityGroupArgs,
  redisSecurityGroupRules,
  redisSlowLogGroupName,
  replicationGroupArgs,
  validateRedisCacheArgs,
} from "../../components/aws/redis-cache";

const KEY = "arn:aws:kms:eu-central-1:111111111111:key/k";
const TOPIC = "arn:aws:sns:eu-central-1:111111111111:alarms";

describe("validateRedisCacheArgs", () => {
  const ok = {
    region: "eu-central-1",
    availabilityZones: ["eu-central-1a", "eu-central-1b"],
    clientSecurityGroupIds: ["sg-app"],
    replicas: 1,
  };

  it("accepts two zones of the region, a client group and a replica", () => {
    expect(() => validateRedisCacheArgs("cache", ok)).not.toThrow();
  });

  it.each([
    [{ replicas: 0 }, "RedisCache cache: replicas must be an integer of at least 1 (Multi-AZ), got 0"],
    [{ replicas: 1.5 }, "RedisCache cache: replicas must be an integer of at least 1 (Multi-AZ), got 1.5"],
    [{ availabilityZones: ["eu-central-1a"] }, "RedisCache cache: availabilityZones needs at least two zones, got 1"],
    [
      { availabilityZones: ["eu-central-1a", "us-east-1b"] },
      `RedisCache cache availabilityZones[1]: availability zone "us-east-1b" is in us-east-1, not in the stack's region eu-central-1`,
    ],
    [{ clientSecurityGroupIds: [] }, "RedisCache cache: clientSecurityGroupIds must name at least one security group"],
  ] as [Partial<typeof ok>, string][])("refuses %j", (override, message) => {
    expect(() => validateRedisCacheArgs("cache", { ...ok, ...override })).toThrow(message);
  });
});

describe("network", () => {
  it("the group", () => {
    expect(redisSecurityGroupArgs("cache", "vpc-1")).toEqual({
      vpcId: "vpc-1",
      description: "Redis of cache",
      tags: { Name: "cache-redis" },
    });
  });

  const pair = (i: number, client: string) => [
    [`cache-from-client-${i}`, "ingress", "sg-redis", { referencedSecurityGroupId: client }, 6379, "Redis from the application"],
    [`cache-client-${i}-to-redis`, "egress", client, { referencedSecurityGroupId: "sg-redis" }, 6379, "Application to Redis"],
  ];
  it.each([
    ["no client", [], []],
    ["one client", ["sg-app"], pair(0, "sg-app")],
    ["two clients, named by position", ["sg-a", "sg-b"], [...pair(0, "sg-a"), ...pair(1, "sg-b")]],
  ] as [string, string[], unknown[][]][])("rules, %s", (_, clientSecurityGroupIds, expected) => {
    expect(
      redisSecurityGroupRules("cache", { securityGroupId: "sg-redis", clientSecurityGroupIds }).map((r) => [
        r.name,
        r.args.direction,
        r.args.securityGroupId,
        r.args.peer,
        r.args.port,
        r.args.description,
      ]),
    ).toEqual(expected);
  });
});

describe("parameters", () => {
  it.each([
    [undefined, "volatile-lru"],
    ["allkeys-lfu", "allkeys-lfu"],
  ])("maxmemory policy %s → %s; keyspace notifications KA", (given, policy) => {
    expect(redisParameterGroupArgs("cache", given)).toEqual({
      family: "redis7",
      description: "Redis settings of cache",
      parameters: [
        { name: "maxmemory-policy", value: policy },
        { name: "notify-keyspace-events", value: "KA" },
      ],
    });
  });
});

describe("RBAC users and their secrets", () => {
  const user = (userId: string, userName: string, accessString: string, password: string) => ({
    userId,
    userName,
    engine: "redis",
    accessString,
    authenticationMode: { type: "password", passwords: [password] },
  });

  it("default is off with no permissions; admin has everything", () => {
    expect(DEFAULT_USER_ACCESS_STRING).toBe("off resetchannels -@all");
    expect(defaultUserArgs("cache", "p0")).toEqual(user("cache-default", "default", "off resetchannels -@all", "p0"));
    expect(adminUserArgs("cache", "p1")).toEqual(user("cache-admin", "alphapulse_admin", ADMIN_USER_ACCESS_STRING, "p1"));
  });

  it("secrets: admin under the prefix", () => {
    const prefix = { secretNamePrefix: "alphapulse/test/redis", kmsKeyArn: KEY };
    expect(adminCredentialArgs("cache", prefix)).toEqual({
      username: "alphapulse_admin",
      secretName: "alphapulse/test/redis/alphapulse_admin",
      kmsKeyId: KEY,
      description: "Redis operations user of cache",
    });
  });
});

describe("replication group", () => {
  it.each([
    [["a", "b"], 1, ["a", "b"], ["cache-001", "cache-002"]],
    [["a", "b"], 2, ["a", "b", "a"], ["cache-001", "cache-002", "cache-003"]],
    [["a", "b", "c"], 2, ["a", "b", "c"], ["cache-001", "cache-002", "cache-003"]],
    [["a", "b", "c"], 3, ["a", "b", "c", "a"], ["cache-001", "cache-002", "cache-003", "cache-004"]],
  ])("zones %j with %i replicas: nodes in %j, members %j", (zones, replicas, azs, members) => {
    expect(preferredCacheClusterAzs(zones, replicas)).toEqual(azs);
    expect(memberClusterIds("cache", replicas)).toEqual(members);
  });

  it("members past 9 keep three digits", () => {
    expect(memberClusterIds("cache", 10).slice(-2)).toEqual(["cache-010", "cache-011"]);
  });

  it.each([
    [{}, "7.1", 7],
    [{ engineVersion: "7.0", snapshotRetentionDays: 14 }, "7.0", 14],
  ])("inputs with %j", (overrides, engineVersion, snapshotRetentionLimit) => {
    expect(
      replicationGroupArgs("cache", {
        nodeType: "cache.r7g.large",
        availabilityZones: ["eu-central-1a", "eu-central-1b"],
        kmsKeyArn: KEY,
        alarmTopicArn: TOPIC,
        replicas: 1,
        userGroupId: "cache-users",
        subnetGroupName: "cache-subnets",
        securityGroupId: "sg-redis",
        parameterGroupName: "cache-params",
        slowLogGroupName: redisSlowLogGroupName("cache"),
        ...overrides,
      }),
    ).toEqual({
      replicationGroupId: "cache",
      description: "Tenant cache of cache",
      engine: "redis",
      engineVersion,
      nodeType: "cache.r7g.large",
      port: 6379,
      numCacheClusters: 2,
      preferredCacheClusterAzs: ["eu-central-1a", "eu-central-1b"],
      automaticFailoverEnabled: true,
      multiAzEnabled: true,
      transitEncryptionEnabled: true,
      transitEncryptionMode: "required",
      atRestEncryptionEnabled: true,
      kmsKeyId: KEY,
      userGroupIds: ["cache-users"],
      subnetGroupName: "cache-subnets",
      securityGroupIds: ["sg-redis"],
      parameterGroupName: "cache-params",
      snapshotRetentionLimit,
      snapshotWindow: "02:00-03:00",
      maintenanceWindow: "sun:04:00-sun:05:00",
      finalSnapshotIdentifier: "cache-final",
      autoMinorVersionUpgrade: true,
      applyImmediately: false,
      notificationTopicArn: TOPIC,
      logDeliveryConfigurations: [
        { destination: "/alphapulse/cache/redis-slow-log", destinationType: "cloudwatch-logs", logFormat: "json", logType: "slow-log" },
      ],
    });
  });

  it("memory alarm per member", () => {
    expect(memoryAlarmArgs("cache-002", TOPIC)).toEqual({
      alarmDescription: "Redis node cache-002 close to maxmemory: evictions follow (per-tenant quotas should prevent this)",
      namespace: "AWS/ElastiCache",
      metricName: "DatabaseMemoryUsagePercentage",
      dimensions: { CacheClusterId: "cache-002" },
      statistic: "Maximum",
      period: 60,
      evaluationPeriods: 5,
      threshold: 80,
      comparisonOperator: "GreaterThanThreshold",
      alarmActions: [TOPIC],
      okActions: [TOPIC],
    });
  });
});
