import { describe, expect, it } from "vitest";
import {
  allowedRegions,
  assertImageAllowed,
  assertRegionAllowed,
  assertTenantsResident,
  assertZoneInRegion,
  isRegionAllowed,
  regionOfArn,
  regionOfAvailabilityZone,
  regionOfEcrImage,
  residencyOfRegion,
  ResidencyError,
} from "../../lib/platform/residency";

describe("residency regions", () => {
  it.each([
    ["eu", "eu-central-1", true],
    ["eu", "eu-west-1", true],
    ["eu", "eu-north-1", true],
    ["eu", "eu-west-2", false], // London: Europe, not EU
    ["eu", "eu-central-2", false], // Zurich: Europe, not EU
    ["eu", "us-east-1", false],
    ["eu", "EU-CENTRAL-1", false],
    ["eu", "eu-central-1a", false],
    ["us", "us-east-1", true],
    ["us", "us-west-2", true],
    ["us", "us-gov-west-1", false],
    ["us", "eu-central-1", false],
    ["us", "", false],
  ] as const)("%s allows %j: %s", (residency, region, allowed) => {
    expect(isRegionAllowed(residency, region)).toBe(allowed);
  });

  it("no region belongs to two residencies", () => {
    const eu = new Set(allowedRegions("eu"));
    expect(allowedRegions("us").filter((r) => eu.has(r))).toEqual([]);
  });

  it.each([
    ["eu-central-1", "eu"],
    ["us-east-2", "us"],
    ["ap-southeast-1", undefined],
    ["eu-west-2", undefined],
  ])("residencyOfRegion(%s) = %s", (region, residency) => {
    expect(residencyOfRegion(region)).toBe(residency);
  });

  it("assertRegionAllowed names the subject, the region and the allowed list", () => {
    expect(() => assertRegionAllowed("eu", "us-east-1", "provider eu-prod")).toThrow(
      new ResidencyError(
        'provider eu-prod: region "us-east-1" is outside residency "eu" (allowed: eu-central-1, eu-west-1, eu-west-3, eu-north-1, eu-south-1, eu-south-2)',
      ),
    );
    expect(() => assertRegionAllowed("us", "us-east-1", "x")).not.toThrow();
  });
});

describe("availability zones", () => {
  it.each([
    ["eu-central-1a", "eu-central-1"],
    ["us-east-1f", "us-east-1"],
    ["us-gov-west-1a", "us-gov-west-1"],
    ["us-east-1-bos-1a", undefined],
    ["euc1-az2", undefined],
    ["eu-central-1", undefined],
    ["eu-central-1ab", undefined],
  ])("regionOfAvailabilityZone(%s) = %s", (zone, region) => {
    expect(regionOfAvailabilityZone(zone)).toBe(region);
  });

  it.each([
    ["eu-central-1b", "eu-central-1", undefined],
    ["us-east-1a", "eu-central-1", 'subnets[1]: availability zone "us-east-1a" is in us-east-1, not in the stack\'s region eu-central-1'],
    ["euc1-az1", "eu-central-1", 'subnets[1]: "euc1-az1" is not an availability zone name like eu-central-1a'],
  ])("assertZoneInRegion(%s, %s)", (zone, region, message) => {
    const run = () => assertZoneInRegion(zone, region, "subnets[1]");
    if (message === undefined) expect(run).not.toThrow();
    else expect(run).toThrow(new ResidencyError(message));
  });
});

describe("ARNs and images", () => {
  it.each([
    ["arn:aws:kms:eu-central-1:123456789012:key/1234", "eu-central-1"],
    ["arn:aws:s3:::alphapulse-backups", ""],
    ["arn:aws:iam::123456789012:role/x", ""],
    ["arn:aws:secretsmanager:us-east-1:123456789012:secret:a:b-AbCd", "us-east-1"],
    ["not-an-arn", undefined],
    ["arn:aws:kms", undefined],
  ])("regionOfArn(%s) = %j", (arn, region) => {
    expect(regionOfArn(arn)).toBe(region);
  });

  it.each([
    ["123456789012.dkr.ecr.eu-central-1.amazonaws.com/alphapulse/pgbouncer:1.23.1", "eu-central-1"],
    ["123456789012.dkr.ecr-fips.us-east-1.amazonaws.com/pgbouncer@sha256:abc", "us-east-1"],
    ["docker.io/bitnami/pgbouncer:1.23", undefined],
    ["pgbouncer:latest", undefined],
    ["evil.com/123456789012.dkr.ecr.eu-central-1.amazonaws.com/x", undefined],
  ])("regionOfEcrImage(%s) = %s", (image, region) => {
    expect(regionOfEcrImage(image)).toBe(region);
  });

  it("assertImageAllowed refuses public registries and other residencies", () => {
    expect(() => assertImageAllowed("eu", "docker.io/pgbouncer/pgbouncer:1.23", "pgbouncer.image")).toThrow(
      'pgbouncer.image: image "docker.io/pgbouncer/pgbouncer:1.23" is not in a private ECR registry',
    );
    expect(() => assertImageAllowed("eu", "123456789012.dkr.ecr.us-east-1.amazonaws.com/p:1", "pgbouncer.image")).toThrow(
      'pgbouncer.image: region "us-east-1" is outside residency "eu"',
    );
    expect(() => assertImageAllowed("eu", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/p:1", "pgbouncer.image")).not.toThrow();
  });
});

describe("tenants", () => {
  it("an EU stack refuses US tenants and names each of them", () => {
    const tenants = [
      { slug: "acme", region: "eu" as const },
      { slug: "globex", region: "us" as const },
      { slug: "initech", region: "us" as const },
    ];
    expect(() => assertTenantsResident("eu", tenants, "tenants")).toThrow(
      new ResidencyError("tenants: a eu stack refuses tenants of another residency: globex (us), initech (us)"),
    );
    expect(() => assertTenantsResident("us", tenants.slice(1), "tenants")).not.toThrow();
    expect(() => assertTenantsResident("us", tenants.slice(0, 1), "tenants")).toThrow("acme (eu)");
    expect(() => assertTenantsResident("eu", [], "tenants")).not.toThrow();
  });
});
