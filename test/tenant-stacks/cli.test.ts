/**
 * `npm run tenant` as a user runs it (scripts/tenant.ts in its own process), against a throwaway
 * region (./support/region.ts; ALPHAPULSE_TENANT_ENV_JSON points the CLI and its workers at the
 * region's backend): exit codes, --json documents, a residency mismatch and a platform stack whose
 * outputs break the platform contract refused with exit 2 before anything exists, a bulk up in worker processes, list, an idempotent second up, and destroy.
 */
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWithToolchain } from "../support/toolchain";
import { PLATFORM_PROJECT } from "../../lib/tenant-stacks/names";
import { openTestRegion, runTenantCli, toolchainLookup, type TestRegion } from "./support/region";

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  json: () => any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function tenantCli(args: string[], env: Record<string, string>): Promise<Run> {
  const { code, stdout, stderr } = await runTenantCli(args, env);
  return { code, stdout, stderr, json: () => JSON.parse(stdout) };
}

describeWithToolchain(toolchainLookup)("npm run tenant", () => {
  let region: TestRegion & { dispose(): Promise<void> };
  const cli = (...args: string[]) => tenantCli(args, region.env);

  beforeAll(async () => {
    region = await openTestRegion("eu");
  }, 180_000);

  afterAll(async () => {
    await region?.dispose();
  }, 180_000);

  it("bad input: exit 2 naming the flag, nothing runs", async () => {
    const run = await cli("up", "acme", "--tier", "gold", "--region", "eu", "--json");
    expect(run.code).toBe(2);
    expect(run.json().error).toMatchObject({ kind: "usage", message: expect.stringMatching(/^--tier: /) });
  }, 60_000);

  it("a residency mismatch is refused before any change: exit 2, the reason, no stack", async () => {
    const run = await cli("up", "cli-one", "cli-two", "--tier", "pro", "--region", "us", "--platform", region.platformStack, "--json");
    expect(run.code).toBe(2);
    expect(run.json().error).toMatchObject({ kind: "refused", message: "refused before any change (2 problem(s)):" });
    expect(run.json().error.details[0]).toMatch(
      new RegExp(`^tenant "cli-one" has residency "us" but platform stack ${region.platformStack} serves "eu"`),
    );
    expect((await cli("list", "--json")).json()).toEqual({ tenants: [] });
  }, 120_000);

  it("a platform stack whose outputs break the contract is refused before any change: exit 2, output and stack named", async () => {
    // On the region's backend: a platform stack that exports the contract without `database`.
    const broken = `${region.platformStack}-broken`;
    const program = () => Promise.resolve({ kind: "local", stack: broken, region: "eu" });
    await region.ctx.withWorkspace(PLATFORM_PROJECT, broken, async (opts) => {
      await (await LocalWorkspace.createStack({ projectName: PLATFORM_PROJECT, stackName: broken, program }, opts)).up();
    });
    try {
      const run = await cli("up", "cli-three", "--tier", "pro", "--region", "eu", "--platform", broken, "--json");
      expect(run.code).toBe(2);
      expect(run.json().error).toMatchObject({ kind: "refused", message: "refused before any change (1 problem(s)):" });
      expect(run.json().error.details).toEqual([`platform stack ${broken}: output \`database\` is missing (expected an object)`]);
      expect((await cli("list", "--json")).json()).toEqual({ tenants: [] });
    } finally {
      await region.ctx.withWorkspace(PLATFORM_PROJECT, broken, async (opts) => {
        const stack = await LocalWorkspace.selectStack({ projectName: PLATFORM_PROJECT, stackName: broken, program }, opts);
        await stack.destroy();
        await stack.workspace.removeStack(broken);
      });
    }
  }, 120_000);

  it("bulk up in worker processes, list, a second up that changes nothing, destroy", async () => {
    const up = await cli(
      "up",
      "cli-one",
      "cli-two",
      "--tier",
      "starter",
      "--region",
      "eu",
      "--platform",
      region.platformStack,
      "--concurrency",
      "2",
      "--json",
    );
    expect(up.stderr).not.toMatch(/✗/);
    expect(up.code).toBe(0);
    expect(up.json().summary).toMatchObject({ total: 2, succeeded: 2, failed: 0, changed: 2 });
    expect(up.json().results.map((r: { stack: string; createdStack: boolean }) => [r.stack, r.createdStack])).toEqual([
      ["tenant-cli-one", true],
      ["tenant-cli-two", true],
    ]);

    const list = await cli("list", "--json");
    expect(list.json().tenants.map((t: { stack: string; spec: unknown }) => [t.stack, t.spec])).toEqual([
      ["tenant-cli-one", { slug: "cli-one", tier: "starter", region: "eu", platform: region.platformStack }],
      ["tenant-cli-two", { slug: "cli-two", tier: "starter", region: "eu", platform: region.platformStack }],
    ]);

    const again = await cli(
      "up",
      "cli-one",
      "cli-two",
      "--tier",
      "starter",
      "--region",
      "eu",
      "--platform",
      region.platformStack,
      "--json",
    );
    expect(again.code).toBe(0);
    expect(again.json().summary).toMatchObject({ succeeded: 2, changed: 0 });

    const human = await cli("destroy", "cli-one", "cli-two", "cli-three", "--skip-export");
    expect(human.code).toBe(1); // cli-three has no stack
    expect(human.stdout).toMatch(/tenant-cli-one .* ok .* -4/);
    expect(human.stdout).toMatch(/3 stack\(s\): 2 ok, 1 failed, 0 skipped/);
    expect(human.stdout).toMatch(/tenant-cli-three: \[stack-not-found\] no stack tenant-cli-three/);
    expect((await cli("list", "--json")).json()).toEqual({ tenants: [] });
  }, 400_000);
});
