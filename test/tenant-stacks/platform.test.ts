/**
 * The residency rule between a tenant and its platform stack, as pure functions: the CLI and the
 * rollout refuse a mismatch with these before any stack operation starts (the real-engine test
 * shows nothing is created), and the tenant program applies them again to what its stack reference
 * resolved.
 */
import { describe, expect, it } from "vitest";
import { ResidencyError } from "../../lib/platform/residency";
import {
  assertResidency,
  ownershipProblem,
  placementProblems,
  PlatformStackError,
  readPlatformConnections,
  readPlatformSummary,
  residencyProblem,
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

describe("platform outputs", () => {
  const outputs = {
    region: "eu",
    tenants: { "acme-capital": "0b5e8f3c-1d2a-4c8e-9f1a-2b3c4d5e6f70" },
    postgres: { host: "127.0.0.1", port: 55432, database: "alphapulse", databaseOid: 16384 },
    adminUrl: "postgres://postgres@127.0.0.1:55432/alphapulse",
    redis: { host: "127.0.0.1", port: 56379, adminUser: "admin", adminPasswordFile: "/x/redis/admin-password" },
  };

  it("reads the residency and the declared tenants", () => {
    expect(readPlatformSummary("local-eu", outputs)).toEqual({ stack: "local-eu", region: "eu", declaredTenants: ["acme-capital"] });
    expect(unwrapOutputs({ region: { value: "eu", secret: false }, x: { value: 1, secret: true } })).toEqual({ region: "eu", x: 1 });
  });

  it("explains a platform stack that was never deployed or lacks its region", () => {
    expect(() => readPlatformSummary("local-us", {})).toThrow(
      new PlatformStackError(
        "platform stack local-us has no outputs: it has not been deployed yet (run `npm run pulumi -- up --stack local-us`)",
        "local-us",
      ),
    );
    expect(() => readPlatformSummary("local-us", { kind: "local" })).toThrow(/platform stack local-us: output `region`/);
    expect(() => readPlatformSummary("local-us", { region: "ap" })).toThrow(/output `region`/);
  });

  it("reads the connections, taking the admin user from adminUrl when postgres.user is absent", () => {
    expect(readPlatformConnections("local-eu", outputs)).toEqual({
      postgres: { host: "127.0.0.1", port: 55432, database: "alphapulse", databaseOid: 16384, user: "postgres" },
      redis: outputs.redis,
    });
    expect(readPlatformConnections("local-eu", { ...outputs, postgres: { ...outputs.postgres, user: "migrator" } }).postgres.user).toBe(
      "migrator",
    );
  });

  it.each([
    [{ postgres: { host: "127.0.0.1", port: 55432, database: "alphapulse" } }, "postgres.databaseOid"],
    [{ redis: { host: "127.0.0.1", port: 56379 } }, "redis.adminUser"],
  ])("names the missing output %#", (override, path) => {
    expect(() => readPlatformConnections("local-eu", { ...outputs, ...override })).toThrow(`output \`${path}\``);
  });
});
