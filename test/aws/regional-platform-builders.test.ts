/**
 * The RegionalPlatform builders (components/aws/regional-platform.ts) called directly: the checks
 * that run before anything is declared, and the default tags. Through the component (and that a
 * refused stack declares nothing) is test/aws/regional-platform.test.ts.
 */
import { describe, expect, it } from "vitest";
import {
  DEFAULT_MAX_CONNECTIONS,
  defaultTags,
  validateRegionalPlatformArgs,
  type RegionalPlatformArgs,
} from "../../components/aws/regional-platform";

const ok: RegionalPlatformArgs = {
  residency: "eu",
  awsRegion: "eu-central-1",
  accountId: "111111111111",
  costCentre: "CC-1",
  environment: "staging",
  network: { cidrBlock: "10.20.0.0/16", availabilityZones: ["eu-central-1a", "eu-central-1b"] },
  postgres: { instanceType: "m7g.large", memoryMiB: 8192, dataVolumeGiB: 100 },
  pgbouncer: {
    image: "111111111111.dkr.ecr.eu-central-1.amazonaws.com/pgbouncer:1",
    desiredCount: 2,
    cpu: 512,
    memoryMiB: 1024,
    appInstances: 10,
    appPoolPerInstance: 20,
    maxClientConnections: 1000,
    reservePoolSize: 5,
  },
  redis: { nodeType: "cache.t4g.medium", engineVersion: "7.1", replicas: 1, maxmemoryPolicy: "volatile-lru", snapshotRetentionDays: 7 },
  tenants: [{ id: "1d7499b2-0c1e-4f32-8233-b121324410da", slug: "acme-capital", tier: "pro", region: "eu" }],
};

describe("validateRegionalPlatformArgs", () => {
  it(`accepts a resident stack whose pools fit the default ${DEFAULT_MAX_CONNECTIONS} connections`, () => {
    expect(DEFAULT_MAX_CONNECTIONS).toBe(300);
    expect(() => validateRegionalPlatformArgs("p", ok)).not.toThrow();
    expect(() => validateRegionalPlatformArgs("p", { ...ok, tenants: undefined })).not.toThrow();
  });

  it.each([
    ["region", { awsRegion: "us-east-1" }, 'RegionalPlatform p: region "us-east-1" is outside residency "eu"'],
    [
      "zone",
      { network: { ...ok.network, availabilityZones: ["eu-central-1a", "eu-west-1b"] } },
      'RegionalPlatform p network.availabilityZones[1]: availability zone "eu-west-1b" is in eu-west-1',
    ],
    [
      "image",
      { pgbouncer: { ...ok.pgbouncer, image: "222222222222.dkr.ecr.us-east-1.amazonaws.com/p:1" } },
      'RegionalPlatform p pgbouncer.image: region "us-east-1" is outside residency "eu"',
    ],
    [
      "tenant",
      { tenants: [{ id: "dd6ad784-7363-46b4-8594-14f8bf1eac3c", slug: "hudson-quant", tier: "pro", region: "us" }] },
      "RegionalPlatform p: a eu stack refuses tenants of another residency: hudson-quant (us)",
    ],
    ["account", { accountId: "12345" }, 'RegionalPlatform p: accountId must be 12 digits, got "12345"'],
    [
      "budget",
      { postgres: { ...ok.postgres, maxConnections: 100 } },
      "RegionalPlatform p: postgres.maxConnections: PgBouncer may open 210 server connections (pools + reserve), but PostgreSQL leaves 87",
    ],
  ] as [string, Partial<RegionalPlatformArgs>, string][])("refuses a bad %s", (_, override, message) => {
    expect(() => validateRegionalPlatformArgs("p", { ...ok, ...override })).toThrow(message);
  });
});

describe("defaultTags", () => {
  it.each([
    ["eu-prod", "eu", "CC-1"],
    ["us-prod", "us", "CC-US-7"],
  ] as const)("%s / %s / %s", (stack, residency, costCentre) => {
    expect(defaultTags({ stack, residency, costCentre })).toEqual({
      "alphapulse:stack": stack,
      "alphapulse:residency": residency,
      "alphapulse:component": "regional-platform",
      "alphapulse:cost-centre": costCentre,
    });
  });
});
