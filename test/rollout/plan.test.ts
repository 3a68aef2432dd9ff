/**
 * The rollout's plan and residency refusal (lib/rollout/plan.ts), over the repository's own stack
 * files: the AWS environments (eu-staging → eu-prod → us-prod) and the local regions are planned by
 * the same function and run by the same runRollout; a tenant stack of another residency anywhere
 * refuses the rollout before any stack is touched.
 */
import { describe, expect, it } from "vitest";
import { planLines, planRollout, platformRegions, RolloutRefusedError } from "../../lib/rollout/plan";
import { runRollout } from "../../lib/rollout/run";
import { MemoryStateStore } from "../../lib/rollout/state";
import { defaultWaveTokens, resolveWaves } from "../../lib/rollout/waves";
import { REPO_ROOT } from "../../lib/pulumi/env";
import { readPlatformStacks } from "../../lib/stack-config/platform-stacks";
import { FakeWorkspace } from "./fake";

const stacks = readPlatformStacks(REPO_ROOT);
const regions = platformRegions(stacks);
const wavesOf = (env: string) => resolveWaves(defaultWaveTokens(stacks, env), stacks, env);

function workspace() {
  return new FakeWorkspace()
    .addTenant("s-one", "eu-staging")
    .addTenant("e-one", "eu-prod")
    .addTenant("u-one", "us-prod", "us")
    .addTenant("l-eu", "local-eu")
    .addTenant("l-us", "local-us", "us");
}

describe("one plan for the AWS environments and the local regions", () => {
  it("prod: staging first, then eu-prod, then us-prod; each wave's platform stacks, then its tenant stacks", () => {
    const plan = planRollout(wavesOf("prod"), workspace().tenants as never, regions);
    expect(plan.residencyProblems).toEqual([]);
    expect(planLines(plan)).toEqual([
      "1. wave staging: platform eu-staging (eu), then 1 tenant stack(s): tenant-s-one",
      "2. wave eu: platform eu-prod (eu), then 1 tenant stack(s): tenant-e-one",
      "3. wave us: platform us-prod (us), then 1 tenant stack(s): tenant-u-one",
    ]);
  });

  it("local: local-eu, then local-us, from the same function", () => {
    expect(planLines(planRollout(wavesOf("local"), workspace().tenants as never, regions))).toEqual([
      "1. wave eu: platform local-eu (eu), then 1 tenant stack(s): tenant-l-eu",
      "2. wave us: platform local-us (us), then 1 tenant stack(s): tenant-l-us",
    ]);
  });

  it("runRollout runs the AWS plan in that order (dry run: previews only) and reports the plan", async () => {
    const ws = workspace();
    const report = await runRollout({
      environment: "prod",
      waves: wavesOf("prod"),
      platform: ws.platform,
      tenants: ws.tenantOps,
      store: new MemoryStateStore(),
      concurrency: 2,
      dryRun: true,
      regions,
    });
    expect(ws.log).toEqual([
      "preview:eu-staging",
      "preview:tenant-s-one",
      "preview:eu-prod",
      "preview:tenant-e-one",
      "preview:us-prod",
      "preview:tenant-u-one",
    ]);
    expect(report.plan.waves.map((w) => w.wave)).toEqual(["staging", "eu", "us"]);
  });
});

describe("a residency mismatch anywhere refuses the rollout before any stack is touched", () => {
  it.each([true, false])("dry run %s: an EU tenant recorded on us-prod", async (dryRun) => {
    const ws = workspace().addTenant("eu-on-us", "us-prod", "eu");
    const store = new MemoryStateStore();
    const run = runRollout({
      environment: "prod",
      waves: wavesOf("prod"),
      platform: ws.platform,
      tenants: ws.tenantOps,
      store,
      concurrency: 1,
      dryRun,
      regions,
    });
    await expect(run).rejects.toThrow(RolloutRefusedError);
    await expect(run).rejects.toThrow('tenant-eu-on-us: tenant "eu-on-us" has residency "eu" but platform stack us-prod serves "us"');
    expect(ws.log).toEqual([]);
    expect(store.load()).toBeUndefined();
  });

  it("negative control: without the stack regions the same rollout starts (the refusal comes from the plan)", async () => {
    const ws = workspace().addTenant("eu-on-us", "us-prod", "eu");
    await runRollout({
      environment: "prod",
      waves: wavesOf("prod"),
      platform: ws.platform,
      tenants: ws.tenantOps,
      store: new MemoryStateStore(),
      concurrency: 1,
      dryRun: true,
    });
    expect(ws.log).toContain("preview:us-prod");
  });
});
