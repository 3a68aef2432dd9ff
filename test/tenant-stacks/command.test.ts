/** `npm run tenant` argument parsing: strict flags, every error names the flag or entry at fault. */
import { describe, expect, it } from "vitest";
import { defaultPlatformStack, type PlatformStack } from "../../lib/stack-config/platform-stacks";
import { parseTenantCommand, type TenantCommand } from "../../cli/tenant-stacks";
import { TenantSpecError } from "../../lib/tenant-stacks/spec";

const files: Record<string, string> = {
  "/work/tenants.yaml": "- { slug: delta, tier: pro, region: us }\n- { slug: echo, tier: enterprise, region: eu, platform: eu-staging }\n",
};
const platforms: PlatformStack[] = [
  { stack: "local-eu", kind: "local", region: "eu", environment: "local" },
  { stack: "local-us", kind: "local", region: "us", environment: "local" },
  { stack: "eu-staging", kind: "aws", region: "eu", environment: "staging" },
  { stack: "eu-prod", kind: "aws", region: "eu", environment: "prod" },
  { stack: "us-prod", kind: "aws", region: "us", environment: "prod" },
];
const ctx = {
  platformFor: (environment: string, region: "eu" | "us") => defaultPlatformStack(platforms, environment, region),
  readFile: (file: string) => {
    if (!(file in files)) throw Object.assign(new Error("ENOENT"), { code: "ENOENT" });
    return files[file];
  },
  defaultExportDir: "/repo/.pulumi-local/exports",
  cwd: "/work",
};
const parse = (line: string): TenantCommand => parseTenantCommand(line.split(" ").filter(Boolean), ctx);
const jobs = (line: string) => {
  const cmd = parse(line);
  if (!("jobs" in cmd)) throw new Error(`"${line}" has no jobs`);
  return cmd.jobs;
};
const platformOf = (line: string) => jobs(line).map((j) => (j.action === "destroy" ? "" : j.spec.platform))[0];

function fieldOf(line: string): string {
  try {
    parse(line);
  } catch (err) {
    if (err instanceof TenantSpecError) return err.field;
    throw err;
  }
  throw new Error(`"${line}" parsed`);
}

describe("npm run tenant -- up|preview", () => {
  it("one tenant", () => {
    expect(parse("up acme --tier pro --region eu")).toEqual({
      command: "up",
      jobs: [{ action: "up", spec: { slug: "acme", tier: "pro", region: "eu", platform: "local-eu" } }],
      concurrency: 4,
      json: false,
    });
    expect(parse("preview acme --tier starter --region us --platform prod-us --json")).toMatchObject({
      command: "preview",
      jobs: [{ action: "preview", spec: { slug: "acme", tier: "starter", region: "us", platform: "prod-us" } }],
      json: true,
    });
    expect(platformOf("up acme --tier pro --region eu --env staging")).toBe("eu-staging");
    expect(platformOf("up acme --tier pro --region us --env prod")).toBe("us-prod");
  });

  it("a batch from arguments, --tenant and a file, in that order", () => {
    const line = "up alpha bravo --tier starter --region eu --tenant charlie:pro:us --file tenants.yaml --concurrency 10";
    expect(parse(line)).toMatchObject({ concurrency: 10 });
    expect(jobs(line).map((j) => (j.action === "destroy" ? j.slug : `${j.spec.slug}:${j.spec.tier}:${j.spec.platform}`))).toEqual([
      "alpha:starter:local-eu",
      "bravo:starter:local-eu",
      "charlie:pro:local-us",
      "delta:pro:local-us",
      "echo:enterprise:eu-staging",
    ]);
  });

  it("the display name belongs to one tenant", () => {
    expect(parse("up acme --tier pro --region eu --display-name Acme").command).toBe("up");
    expect(fieldOf("up acme bravo --tier pro --region eu --display-name Acme")).toBe("--display-name");
  });

  it.each([
    ["up acme --tier pro --region eu --teir pro", "arguments"], // strict: a typo'd flag fails
    ["up acme --region eu", "--tier"],
    ["up acme --tier pro", "--region"],
    ["up acme --tier gold --region eu", "--tier"],
    ["up acme --tier pro --region mars", "--region"],
    ["up Acme --tier pro --region eu", "argument 1.slug"],
    ["up --tier pro --region eu", "--tier"],
    ["up", "arguments"],
    ["up acme --tier pro --region eu --platform bad/stack/name/x", "--platform"],
    ["up acme --tier pro --region eu --env Prod", "--env"],
    ["up acme --tier pro --region us --env staging", "--platform"], // no us staging stack
    ["up --tenant acme:pro:us --env staging", "--tenant acme:pro:us.platform"],
    ["up acme --tier pro --region eu --concurrency 0", "--concurrency"],
    ["up acme --tier pro --region eu --concurrency 33", "--concurrency"],
    ["up acme --tier pro --region eu --concurrency two", "--concurrency"],
    ["up acme acme --tier pro --region eu", "tenants[1]"],
    ["up acme --tier pro --region eu --tenant acme:pro:eu", "tenants[1]"],
    ["up --file missing.yaml", "--file"],
    ["up --tenant acme:pro", "--tenant"],
    ["fly acme", "command"],
  ])("%s → error names %s", (line, field) => {
    expect(fieldOf(line)).toBe(field);
  });
});

describe("npm run tenant -- destroy|list", () => {
  it("destroy exports to the default directory unless told otherwise", () => {
    expect(parse("destroy acme bravo")).toEqual({
      command: "destroy",
      jobs: [
        { action: "destroy", slug: "acme", exportDir: "/repo/.pulumi-local/exports", retentionDays: 30, dryRun: false },
        { action: "destroy", slug: "bravo", exportDir: "/repo/.pulumi-local/exports", retentionDays: 30, dryRun: false },
      ],
      concurrency: 4,
      json: false,
    });
    expect(jobs("destroy acme --export-dir out")).toEqual([
      { action: "destroy", slug: "acme", exportDir: "/work/out", exportDirGiven: true, retentionDays: 30, dryRun: false },
    ]);
    expect(jobs("destroy acme --skip-export")).toEqual([
      { action: "destroy", slug: "acme", exportDir: null, retentionDays: 30, dryRun: false },
    ]);
    expect(jobs("destroy acme --retention-days 90 --dry-run")).toEqual([
      { action: "destroy", slug: "acme", exportDir: "/repo/.pulumi-local/exports", retentionDays: 90, dryRun: true },
    ]);
    // --platform: the stack the tenant stacks must belong to (an AWS one: the offboarding runs in the region).
    expect(jobs("destroy acme --platform eu-prod")).toEqual([
      { action: "destroy", slug: "acme", exportDir: "/repo/.pulumi-local/exports", platform: "eu-prod", retentionDays: 30, dryRun: false },
    ]);
    expect(jobs("destroy --file tenants.yaml").map((j) => (j.action === "destroy" ? j.slug : ""))).toEqual(["delta", "echo"]);
  });

  it.each([
    ["destroy", "arguments"],
    ["destroy acme --skip-export --export-dir x", "--skip-export"],
    ["destroy acme --tier pro", "arguments"],
    ["destroy acme --retention-days 0", "--retention-days"],
    ["destroy acme --platform eu:prod", "--platform"],
    ["destroy acme --retention-days 1.5", "--retention-days"],
    ["destroy acme --retention-days 3651", "--retention-days"],
    ["destroy acme --retention-days=-3", "--retention-days"],
    ["destroy acme --dryrun", "arguments"],
    ["list acme", "arguments"],
    ["list --all", "arguments"],
  ])("%s → error names %s", (line, field) => {
    expect(fieldOf(line)).toBe(field);
  });

  it("list and help", () => {
    expect(parse("list --json")).toEqual({ command: "list", json: true });
    expect(parse("")).toEqual({ command: "help" });
    expect(parse("up --help")).toEqual({ command: "help" });
  });
});
