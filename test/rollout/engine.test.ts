/**
 * The rollout through the real engine, across two throwaway regions (eu, us) sharing one backend,
 * each with its own PostgreSQL, Redis and platform stack, and tenant stacks in both:
 *   - a dry run previews every platform and tenant stack, finds nothing to change, records nothing;
 *   - a rollout halts at a real failure (a us tenant stack whose recorded region was tampered with is
 *     refused by the residency check) after completing the eu wave, and says what remains;
 *   - after the cause is fixed, the same rollout resumes: completed steps are skipped, it finishes.
 * Skipped, with the reason, where there is no toolchain; under CI that fails (test/support/toolchain.ts).
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWithToolchain } from "../support/toolchain";
import { REPO_ROOT } from "../../lib/pulumi/env";
import { inlinePlatformOps, tenantOps } from "../../lib/rollout/automation";
import { outcomeLines } from "../../lib/rollout/report";
import { runRollout, type RolloutOptions } from "../../lib/rollout/run";
import { FileStateStore } from "../../lib/rollout/state";
import type { Wave } from "../../lib/rollout/waves";
import { AutomationDriver } from "../../lib/tenant-stacks/automation";
import { changeTotal } from "../../lib/tenant-stacks/jobs";
import { TENANT_PROJECT, tenantStackName } from "../../lib/tenant-stacks/names";
import { ProcessDriver } from "../../lib/tenant-stacks/process-driver";
import { SPEC_TAGS } from "../../lib/tenant-stacks/tags";
import { openTestRegions, toolchainLookup, type TestRegions } from "../tenant-stacks/support/region";

describeWithToolchain(toolchainLookup)("rollout through the real engine", () => {
  let t: TestRegions;
  let waves: Wave[];
  let stateDir: string;
  let options: () => RolloutOptions;

  const setTag = (stack: string, tag: string, value: string) =>
    t.ctx.withWorkspace(TENANT_PROJECT, "tag", async (opts) => (await LocalWorkspace.create(opts)).setTag(stack, tag, value));

  beforeAll(async () => {
    t = await openTestRegions(["eu", "us"]);
    const [eu, us] = t.regions;
    waves = [
      { name: "eu", stacks: [eu.platformStack] },
      { name: "us", stacks: [us.platformStack] },
    ];
    const driver = new AutomationDriver(t.ctx);
    for (const [slug, region] of [
      ["eu-one", eu],
      ["eu-two", eu],
      ["us-one", us],
    ] as const) {
      const result = await driver.run(
        { action: "up", spec: { slug, tier: "starter", region: region.region, platform: region.platformStack } },
        () => {},
      );
      expect(result.failure).toBeUndefined();
    }
    stateDir = mkdtempSync(path.join(os.tmpdir(), "rollout-state-"));
    const platform = inlinePlatformOps(t.ctx, Object.fromEntries(t.regions.map((r) => [r.platformStack, r.platformProgram])));
    const tenants = tenantOps(t.ctx, new ProcessDriver({ repoRoot: REPO_ROOT, env: t.env }));
    options = () => ({
      environment: "test",
      waves,
      platform,
      tenants,
      store: new FileStateStore(path.join(stateDir, "state.json")),
      concurrency: 2,
    });
  }, 300_000);

  afterAll(async () => {
    await t?.dispose();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  }, 300_000);

  it("a dry run previews every stack, finds nothing to change and records nothing", async () => {
    const report = await runRollout({ ...options(), dryRun: true });
    expect(report.steps.map((s) => `${s.wave} ${s.kind} ${s.stack} ${s.status}`)).toEqual([
      `eu platform-preview ${waves[0].stacks[0]} done`,
      "eu tenant-preview tenant-eu-one done",
      "eu tenant-preview tenant-eu-two done",
      `us platform-preview ${waves[1].stacks[0]} done`,
      "us tenant-preview tenant-us-one done",
    ]);
    expect(report.steps.map((s) => changeTotal(s.changes ?? {}))).toEqual([0, 0, 0, 0, 0]);
    expect(report.completed).toBe(true);
    expect(existsSync(path.join(stateDir, "state.json"))).toBe(false);
  }, 300_000);

  it("halts at the first failure after the eu wave, then resumes and finishes once the cause is fixed", async () => {
    // A us tenant whose recorded region says eu: the residency check refuses it before any change.
    await setTag(tenantStackName("us-one"), SPEC_TAGS.region, "eu");
    const halted = await runRollout(options());
    expect(halted.completed).toBe(false);
    expect(halted.halt).toMatchObject({ wave: "us", kind: "tenant-up", stack: "tenant-us-one" });
    expect(halted.halt!.message).toMatch(/^tenant "us-one" has residency "eu" but platform stack test-us-\w+ serves "us"/);
    expect(halted.steps.filter((s) => s.wave === "eu").map((s) => `${s.kind} ${s.status}`)).toEqual([
      "platform-preview done",
      "platform-update done",
      "tenant-up done",
      "tenant-up done",
    ]);
    expect(halted.remaining).toEqual(["us: 1 tenant stack(s)"]);
    expect(outcomeLines(halted)[1]).toBe("HALTED at wave us, tenant-up of tenant-us-one:");

    await setTag(tenantStackName("us-one"), SPEC_TAGS.region, "us");
    const resumed = await runRollout(options());
    expect(resumed).toMatchObject({ resumed: true, completed: true, id: halted.id });
    expect(resumed.steps.map((s) => `${s.kind} ${s.stack} ${s.status}`)).toEqual([
      `platform-update ${waves[0].stacks[0]} already-done`,
      "tenant-up tenant-eu-one already-done",
      "tenant-up tenant-eu-two already-done",
      `platform-update ${waves[1].stacks[0]} already-done`,
      "tenant-up tenant-us-one done",
    ]);
    expect(changeTotal(resumed.steps[4].changes!)).toBe(0);
  }, 600_000);
});
