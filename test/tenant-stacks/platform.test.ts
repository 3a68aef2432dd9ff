/**
 * The residency rule between a tenant and its platform stack, as pure functions: the CLI and the
 * rollout refuse a mismatch with these before any stack operation starts (the real-engine test
 * shows nothing is created), and the tenant program applies them again to what its stack reference
 * resolved.
 */
import { describe, expect, it } from "vitest";
import { PlatformContractError } from "../../lib/platform/contract";
import { awsTenantPlatform, readAwsTenantPlatform } from "../../lib/tenant-stacks/aws-platform";
import { ResidencyError } from "../../lib/platform/residency";
import { AWS, LOCAL } from "../platform/fixtures";
import {
  assertResidency,
  ownershipProblem,
  placementProblems,
  PlatformStackError,
  platformSummary,
  readPlatformSummary,
  residencyProblem,
  localTenantTarget,
  unwrapOutputs,
  type PlatformSummary,
} from "../../lib/tenant-stacks/platform";

const eu: PlatformSummary = { stack: "local-eu", region: "eu", declaredTenants: ["acme-capital"] };
const us: PlatformSummary = { stack: "local-us", region: "us", declaredTenants: [] };

describe("residency", () => {
  it.each([
    ["eu", eu, true],
    ["us", us, true],
    ["us", eu, false],
    ["eu", us, false],
  ] as const)("a %s tenant on %o: allowed=%s", (region, platform, allowed) => {
    const problem = residencyProblem({ slug: "bravo", region }, platform);
    expect(problem === undefined).toBe(allowed);
    if (allowed) expect(() => assertResidency({ slug: "bravo", region }, platform)).not.toThrow();
    else expect(() => assertResidency({ slug: "bravo", region }, platform)).toThrow(ResidencyError);
  });

  it("says which tenant, which stack, both regions and what to do", () => {
    expect(residencyProblem({ slug: "bravo", region: "us" }, eu)).toBe(
      'tenant "bravo" has residency "us" but platform stack local-eu serves "eu": its data may not be stored there (use --region eu, or --platform with a "us" stack)',
    );
  });

  it("refuses a slug the platform stack declares itself", () => {
    expect(ownershipProblem("acme-capital", eu)).toMatch(/declared by platform stack local-eu/);
    expect(ownershipProblem("bravo", eu)).toBeUndefined();
  });

  it("lists every problem of a batch in input order", () => {
    const platforms = new Map([
      ["local-eu", eu],
      ["local-us", us],
    ]);
    const problems = placementProblems(
      [
        { slug: "ok-one", region: "eu", platform: "local-eu" },
        { slug: "wrong-one", region: "eu", platform: "local-us" },
        { slug: "acme-capital", region: "eu", platform: "local-eu" },
        { slug: "lost-one", region: "us", platform: "prod-us" },
      ],
      platforms,
    );
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/^tenant "wrong-one" has residency "eu" but platform stack local-us/);
    expect(problems[1]).toMatch(/^tenant "acme-capital" is declared by platform stack local-eu/);
    expect(problems[2]).toBe('tenant "lost-one": platform stack prod-us was not read');
  });
});

describe("platform outputs, through the platform contract", () => {
  it("reads the residency and the declared tenants", () => {
    expect(readPlatformSummary("local-eu", LOCAL)).toEqual({ stack: "local-eu", region: "eu", declaredTenants: ["acme-capital"] });
    expect(platformSummary(AWS)).toEqual({ stack: "eu-prod", region: "eu", declaredTenants: [] });
    expect(unwrapOutputs({ region: { value: "eu", secret: false }, x: { value: 1, secret: true } })).toEqual({ region: "eu", x: 1 });
  });

  it("explains a platform stack that was never deployed, or whose outputs break the contract, naming output and stack", () => {
    expect(() => readPlatformSummary("local-us", {})).toThrow(
      new PlatformContractError(
        "platform stack local-us has no outputs: it has not been deployed yet (run `npm run pulumi -- up --stack local-us`)",
        "local-us",
        undefined,
      ),
    );
    expect(() => readPlatformSummary("local-eu", { ...LOCAL, region: undefined })).toThrow(
      "platform stack local-eu: output `region` is missing",
    );
    // The contract of before (a path to a file of the deployer's machine, no oid under `database`) is refused.
    const old = {
      kind: "local",
      region: "eu",
      postgres: { host: "127.0.0.1", port: 55432, database: "alphapulse", databaseOid: 16384 },
      redis: { host: "127.0.0.1", port: 56379, adminUser: "admin", adminPasswordFile: "/x/redis/admin-password" },
    };
    expect(() => readPlatformSummary("local-eu", old)).toThrow("platform stack local-eu: output `stack` is missing (expected a string)");
  });

  it("gives a local tenant stack its database and the Redis admin (password included, for the program to keep secret)", () => {
    expect(localTenantTarget(LOCAL)).toEqual({
      connection: LOCAL.database.connection,
      database: "alphapulse",
      databaseOid: 16384,
      redis: { host: "127.0.0.1", port: 56379, user: "admin", password: "s3cret-admin" },
    });
  });

  it("gives an AWS tenant stack the executor, the user group and the account, from the same contract", () => {
    expect(awsTenantPlatform(AWS)).toMatchObject({
      stack: "eu-prod",
      awsRegion: "eu-central-1",
      accountId: "123456789012",
      database: { name: "alphapulse", oid: 16384, connection: AWS.database.connection },
      userGroupId: "eu-prod-redis-users",
    });
    expect(() => readAwsTenantPlatform("local-eu", LOCAL)).toThrow(PlatformStackError);
    expect(() => readAwsTenantPlatform("eu-prod", { ...AWS, aws: { ...AWS.aws, accountId: "1" } })).toThrow(
      /^platform stack eu-prod: output `aws\.accountId` is invalid: must be a 12-digit AWS account id/,
    );
  });
});
