import { describe, expect, it } from "vitest";
import { instanceMemoryMiB, parseAwsStackConfig } from "../../lib/stack-config/aws";
import { StackConfigError } from "../../lib/stack-config/common";
import { awsStacks, readStackFiles } from "../../scripts/synth";

const NS = "alphapulse-platform";
const euProd = () => readStackFiles("eu-prod").config;
const usProd = () => readStackFiles("us-prod").config;

/** eu-prod's config with some keys replaced (structured values given as objects) or removed (undefined). */
function variant(base: Record<string, string>, changes: Record<string, unknown>): Record<string, string> {
  const out = { ...base };
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined) delete out[key];
    else out[key] = typeof value === "string" ? value : JSON.stringify(value);
  }
  return out;
}

const json = (config: Record<string, string>, key: string) => JSON.parse(config[`${NS}:${key}`]);

describe("the AWS stacks in stacks/", () => {
  it("are eu-prod, eu-staging and us-prod", () => {
    expect(awsStacks()).toEqual(["eu-prod", "eu-staging", "us-prod"]);
  });

  it.each([
    ["eu-prod", "eu", "eu-central-1", "prod", ["acme-capital", "lumiere-gestion"]],
    ["eu-staging", "eu", "eu-central-1", "staging", ["staging-probe"]],
    ["us-prod", "us", "us-east-1", "prod", ["hudson-quant", "prairie-trading"]],
  ])("%s parses: residency %s in %s (%s)", (stack, residency, awsRegion, environment, tenants) => {
    const config = parseAwsStackConfig(readStackFiles(stack).config);
    expect([config.region, config.awsRegion, config.environment]).toEqual([residency, awsRegion, environment]);
    expect(config.tenants.map((t) => t.slug)).toEqual(tenants);
  });

  it("declares the tenant-context keys when told (a rotation: two ids), else leaves the default to RegionalDatabase", () => {
    expect(parseAwsStackConfig(readStackFiles("eu-prod").config).contextKeys).toBeUndefined();
    expect(parseAwsStackConfig(variant(euProd(), { [`${NS}:contextKeys`]: ["eu-1", "eu-2"] })).contextKeys).toEqual(["eu-1", "eu-2"]);
  });

  it("fills defaults for what a stack leaves out (eu-staging)", () => {
    const config = parseAwsStackConfig(readStackFiles("eu-staging").config);
    expect(config.accountId).toBe("333333333333");
    expect(config.postgres).toEqual({
      instanceType: "m7g.large",
      dataVolumeGiB: 100,
      dataVolumeIops: 3000,
      dataVolumeThroughputMiBps: 125,
      maxConnections: 300,
      imageNamePattern: "alphapulse-postgresql-15-timescaledb-*",
      backup: {
        retentionFull: 2,
        retentionDiff: 3,
        fullSchedule: "Sun *-*-* 01:00:00",
        diffSchedule: "Mon..Sat *-*-* 01:00:00",
        noncurrentVersionDays: 7,
      },
      alarms: { replicationLagSeconds: 60, diskUsedPercent: 80, connectionsUsedPercent: 80, backupAgeHours: 49 },
    });
    expect(config.pgbouncer).toEqual({
      image: "333333333333.dkr.ecr.eu-central-1.amazonaws.com/alphapulse/pgbouncer:1.23.1",
      desiredCount: 2,
      cpu: 512,
      memoryMiB: 1024,
      appInstances: 2,
      appPoolPerInstance: 20,
      maxClientConnections: 1000,
      reservePoolSize: 5,
    });
    expect(config.redis).toEqual({
      nodeType: "cache.t4g.medium",
      engineVersion: "7.1",
      replicas: 1,
      maxmemoryPolicy: "volatile-lru",
      snapshotRetentionDays: 7,
    });
  });
});

describe("a bad stack file fails with the key path and the reason", () => {
  const cases: [string, () => Record<string, string>, string][] = [
    [
      "an EU stack refuses a US tenant",
      () => variant(euProd(), { [`${NS}:tenants`]: [...json(euProd(), "tenants"), json(usProd(), "tenants")[0]] }),
      `${NS}:tenants[2].region: tenant: a eu stack refuses tenants of another residency: hudson-quant (us)`,
    ],
    [
      "a US stack refuses an EU tenant",
      () => variant(usProd(), { [`${NS}:tenants`]: json(euProd(), "tenants") }),
      `${NS}:tenants[0].region: tenant: a us stack refuses tenants of another residency: acme-capital (eu)`,
    ],
    [
      "an EU stack in a US region",
      () => variant(euProd(), { "aws:region": "us-east-1" }),
      `aws:region: the stack's AWS region: region "us-east-1" is outside residency "eu" (allowed: eu-central-1, eu-west-1, eu-west-3, eu-north-1, eu-south-1, eu-south-2)`,
    ],
    [
      "an EU stack in London (not in the EU)",
      () =>
        variant(euProd(), {
          "aws:region": "eu-west-2",
          [`${NS}:network`]: { cidrBlock: "10.20.0.0/16", availabilityZones: ["eu-west-2a", "eu-west-2b"] },
        }),
      `aws:region: the stack's AWS region: region "eu-west-2" is outside residency "eu"`,
    ],
    ["no aws:region", () => variant(euProd(), { "aws:region": undefined }), "aws:region: is required"],
    [
      "a zone of another region",
      () => variant(euProd(), { [`${NS}:network`]: { cidrBlock: "10.20.0.0/16", availabilityZones: ["eu-central-1a", "us-east-1b"] } }),
      `${NS}:network.availabilityZones[1]: availability zone: availability zone "us-east-1b" is in us-east-1, not in the stack's region eu-central-1`,
    ],
    [
      "a single zone",
      () => variant(euProd(), { [`${NS}:network`]: { cidrBlock: "10.20.0.0/16", availabilityZones: ["eu-central-1a"] } }),
      `${NS}:network.availabilityZones: needs at least two availability zones`,
    ],
    [
      "a PgBouncer image from a public registry",
      () => variant(euProd(), { [`${NS}:pgbouncer`]: { image: "docker.io/bitnami/pgbouncer:1.23" } }),
      `${NS}:pgbouncer.image: PgBouncer image: image "docker.io/bitnami/pgbouncer:1.23" is not in a private ECR registry`,
    ],
    [
      "a PgBouncer image from the other residency's registry",
      () =>
        variant(euProd(), { [`${NS}:pgbouncer`]: { image: "222222222222.dkr.ecr.us-east-1.amazonaws.com/alphapulse/pgbouncer:1.23.1" } }),
      `${NS}:pgbouncer.image: PgBouncer image: region "us-east-1" is outside residency "eu"`,
    ],
    ["a misspelled top-level key", () => variant(euProd(), { [`${NS}:postgress`]: {} }), `${NS}:postgress: unknown key`],
    [
      "a misspelled nested key",
      () => variant(euProd(), { [`${NS}:postgres`]: { ...json(euProd(), "postgres"), dataVolumeGib: 10 } }),
      `${NS}:postgres.dataVolumeGib: unknown key`,
    ],
    [
      "a volume too small",
      () => variant(euProd(), { [`${NS}:postgres`]: { ...json(euProd(), "postgres"), dataVolumeGiB: 10 } }),
      `${NS}:postgres.dataVolumeGiB: Too small: expected number to be >=20`,
    ],
    [
      "Redis without a replica",
      () => variant(euProd(), { [`${NS}:redis`]: { nodeType: "cache.r7g.large", replicas: 0 } }),
      `${NS}:redis.replicas: Multi-AZ needs at least one replica`,
    ],
    [
      "an unknown instance type without memoryMiB",
      () => variant(euProd(), { [`${NS}:postgres`]: { ...json(euProd(), "postgres"), instanceType: "t4g.medium" } }),
      `${NS}:postgres.memoryMiB: unknown memory for t4g.medium: set postgres.memoryMiB`,
    ],
    [
      "an account id of 11 digits",
      () => variant(euProd(), { [`${NS}:accountId`]: "11111111111" }),
      `${NS}:accountId: must be a 12-digit AWS account id`,
    ],
    [
      "a duplicate tenant slug",
      () =>
        variant(euProd(), { [`${NS}:tenants`]: [json(euProd(), "tenants")[0], { ...json(euProd(), "tenants")[1], slug: "acme-capital" }] }),
      `${NS}:tenants[1].slug: duplicate slug "acme-capital" (also tenants[0])`,
    ],
    ["a local kind", () => variant(euProd(), { [`${NS}:kind`]: "local" }), `${NS}:kind: Invalid input: expected "aws"`],
    [
      "a duplicate context key id",
      () => variant(euProd(), { [`${NS}:contextKeys`]: ["eu-1", "eu-1"] }),
      `${NS}:contextKeys: duplicate key id`,
    ],
    [
      "a context key id with capitals",
      () => variant(euProd(), { [`${NS}:contextKeys`]: ["eu-1", "EU-2"] }),
      `${NS}:contextKeys[1]: must be 1-32 characters of a-z, 0-9, _ and -`,
    ],
    ["no context key at all", () => variant(euProd(), { [`${NS}:contextKeys`]: [] }), `${NS}:contextKeys: Too small`],
  ];

  it.each(cases)("%s", (_, config, message) => {
    const run = () => parseAwsStackConfig(config());
    expect(run).toThrow(StackConfigError);
    expect(run).toThrow(message);
  });
});

describe("instanceMemoryMiB", () => {
  it.each([
    ["r7g.xlarge", 32768],
    ["r6i.large", 16384],
    ["m7g.large", 8192],
    ["m6i.2xlarge", 32768],
    ["c7g.4xlarge", 32768],
    ["x2gd.large", undefined],
    ["r4.large", undefined],
    ["r7g.2xlarge", 65536],
    ["t4g.medium", undefined],
    ["i4i.large", undefined],
    ["r7g.metal", undefined],
    ["r7g.medium", undefined],
  ])("%s → %s MiB", (type, mib) => {
    expect(instanceMemoryMiB(type)).toBe(mib);
  });
});
