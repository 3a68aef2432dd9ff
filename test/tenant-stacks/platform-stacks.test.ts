import { describe, expect, it } from "vitest";
import {
  defaultPlatformStack,
  describePlatformStack,
  PlatformLookupError,
  readPlatformStacks,
  type PlatformStack,
} from "../../lib/stack-config/platform-stacks";
import { REPO_ROOT } from "../../lib/pulumi/env";

describe("platform stacks, by their stack files", () => {
  it.each([
    [
      { "alphapulse-platform:kind": "local", "alphapulse-platform:region": "eu" },
      { kind: "local", region: "eu", environment: "local" },
    ],
    [
      { "alphapulse-platform:kind": "aws", "alphapulse-platform:region": "us", "alphapulse-platform:environment": "prod" },
      { kind: "aws", region: "us", environment: "prod" },
    ],
    [{ "alphapulse-platform:kind": "aws", "alphapulse-platform:region": "us" }, undefined],
    [{ "alphapulse-platform:kind": "local", "alphapulse-platform:region": "ap" }, undefined],
    [{ "aws:region": "eu-central-1" }, undefined],
  ])("%j → %j", (config, expected) => {
    expect(describePlatformStack("s", config)).toEqual(expected && { stack: "s", ...expected });
  });

  it("finds the repository's local stacks", () => {
    const stacks = readPlatformStacks(REPO_ROOT);
    expect(defaultPlatformStack(stacks, "local", "eu")).toBe("local-eu");
    expect(defaultPlatformStack(stacks, "local", "us")).toBe("local-us");
  });

  const stacks: PlatformStack[] = [
    { stack: "local-eu", kind: "local", region: "eu", environment: "local" },
    { stack: "eu-a", kind: "aws", region: "eu", environment: "prod" },
    { stack: "eu-b", kind: "aws", region: "eu", environment: "prod" },
  ];

  it("refuses a missing or an ambiguous default, listing what exists", () => {
    expect(() => defaultPlatformStack(stacks, "local", "us")).toThrow(
      new PlatformLookupError(
        'no platform stack for region "us" in environment "local" (stacks: local-eu (local, eu), eu-a (prod, eu), eu-b (prod, eu)); name one with --platform',
      ),
    );
    expect(() => defaultPlatformStack(stacks, "prod", "eu")).toThrow(
      'several platform stacks for region "eu" in environment "prod": eu-a, eu-b; name one with --platform',
    );
  });
});
