import { describe, expect, it } from "vitest";
import type { PlatformStack } from "../../lib/stack-config/platform-stacks";
import { parseRolloutCommand } from "../../cli/rollout";
import { TenantSpecError } from "../../lib/tenant-stacks/spec";

const STACKS: PlatformStack[] = [
  { stack: "local-eu", kind: "local", region: "eu", environment: "local" },
  { stack: "local-us", kind: "local", region: "us", environment: "local" },
  { stack: "eu-staging", kind: "aws", region: "eu", environment: "staging" },
  { stack: "eu-prod", kind: "aws", region: "eu", environment: "prod" },
  { stack: "us-prod", kind: "aws", region: "us", environment: "prod" },
];
const parse = (line: string) => parseRolloutCommand(line.split(" ").filter(Boolean), STACKS, { repoRoot: "/repo", cwd: "/here" });

describe("npm run rollout -- ...", () => {
  it("defaults: the local regions, state per environment", () => {
    expect(parse("")).toEqual({
      help: false,
      environment: "local",
      waves: [
        { name: "eu", stacks: ["local-eu"] },
        { name: "us", stacks: ["local-us"] },
      ],
      dryRun: false,
      restart: false,
      concurrency: 4,
      stateFile: "/repo/.pulumi-local/rollout/local.json",
      json: false,
    });
  });

  it("staging, then EU, then US production", () => {
    expect(parse("--env prod --waves staging,eu,us --dry-run --concurrency 8 --state s.json --json")).toMatchObject({
      environment: "prod",
      waves: [
        { name: "staging", stacks: ["eu-staging"] },
        { name: "eu", stacks: ["eu-prod"] },
        { name: "us", stacks: ["us-prod"] },
      ],
      dryRun: true,
      concurrency: 8,
      stateFile: "/here/s.json",
      json: true,
    });
    expect(parse("--env prod").waves.map((w) => w.name)).toEqual(["staging", "eu", "us"]);
  });

  it.each([
    ["--wave eu", "arguments"],
    ["eu", "arguments"],
    ["--waves eu,,us", "--waves"],
    ["--waves mars", "--waves"],
    ["--waves eu,local-eu", "--waves"],
    ["--env Prod", "--env"],
    ["--concurrency 0", "--concurrency"],
    ["--dry-run --restart", "--restart"],
  ])("%s → error names %s", (line, field) => {
    expect(() => parse(line)).toThrow(TenantSpecError);
    try {
      parse(line);
    } catch (err) {
      expect((err as TenantSpecError).field).toBe(field);
    }
  });
});
