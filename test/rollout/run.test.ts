/**
 * The rollout's orchestration against a fake workspace (pure): ordering, halting at the first
 * failure, resuming from the state, dry runs, and bounded tenant concurrency.
 */
import { describe, expect, it } from "vitest";
import { outcomeLines, stepRows } from "../../lib/rollout/report";
import { runRollout, type RolloutOptions } from "../../lib/rollout/run";
import { MemoryStateStore, RolloutStateError } from "../../lib/rollout/state";
import type { Wave } from "../../lib/rollout/waves";
import { FakeWorkspace } from "./fake";

const WAVES: Wave[] = [
  { name: "staging", stacks: ["eu-staging"] },
  { name: "eu", stacks: ["eu-prod"] },
  { name: "us", stacks: ["us-prod", "us-prod-2"] },
];

function setup() {
  const ws = new FakeWorkspace()
    .addTenant("s-one", "eu-staging")
    .addTenant("e-one", "eu-prod")
    .addTenant("e-two", "eu-prod")
    .addTenant("u-one", "us-prod", "us")
    .addTenant("u-two", "us-prod-2", "us");
  const store = new MemoryStateStore();
  let clock = Date.parse("2026-11-26T12:00:00Z");
  const options = (extra: Partial<RolloutOptions> = {}): RolloutOptions => ({
    environment: "prod",
    waves: WAVES,
    platform: ws.platform,
    tenants: ws.tenantOps,
    store,
    concurrency: 1,
    now: () => new Date((clock += 1000)),
    ...extra,
  });
  return { ws, store, options };
}

describe("rollout order", () => {
  it("wave by wave: previews every platform stack of the wave, then updates them, then the wave's tenants", async () => {
    const { ws, options, store } = setup();
    const report = await runRollout(options());
    expect(ws.log).toEqual([
      "preview:eu-staging",
      "update:eu-staging",
      "up:tenant-s-one",
      "preview:eu-prod",
      "update:eu-prod",
      "up:tenant-e-one",
      "up:tenant-e-two",
      "preview:us-prod",
      "preview:us-prod-2",
      "update:us-prod",
      "update:us-prod-2",
      "up:tenant-u-one",
      "up:tenant-u-two",
    ]);
    expect(report).toMatchObject({ completed: true, resumed: false, remaining: [] });
    expect(report.halt).toBeUndefined();
    expect(store.state?.finishedAt).toBeDefined();
    expect(outcomeLines(report)).toEqual([
      `rollout ${report.id}: environment prod, waves staging (eu-staging) → eu (eu-prod) → us (us-prod, us-prod-2)`,
      "completed: every wave is done",
    ]);
  });

  it("runs a wave's tenant stacks with bounded concurrency", async () => {
    const { ws, options } = setup();
    for (let i = 0; i < 12; i++) ws.addTenant(`many-${i}`, "eu-prod");
    ws.tenantMs = 15;
    await runRollout(options({ concurrency: 4 }));
    expect(ws.peak).toBe(4);
  });

  it("leaves alone tenant stacks outside the waves and those whose spec cannot be read, and says so", async () => {
    const { ws, options } = setup();
    ws.addTenant("elsewhere", "local-eu");
    ws.tenants.push({ stack: "tenant-broken", problem: "tenant-broken tag alphapulse:tier: Invalid option" });
    const report = await runRollout(options());
    expect(ws.log).not.toContain("up:tenant-elsewhere");
    expect(report.outside).toBe(1);
    expect(outcomeLines(report).slice(-2)).toEqual([
      "left alone: tenant-broken: tenant-broken tag alphapulse:tier: Invalid option",
      "left alone: 1 tenant stack(s) of platform stacks outside these waves",
    ]);
  });
});

describe("halting at the first failure", () => {
  it("a failed preview stops the wave before any of its updates, and nothing later runs", async () => {
    const { ws, options } = setup();
    ws.failing.set("preview:us-prod-2", "error: connect ECONNREFUSED 127.0.0.1:5432");
    const report = await runRollout(options());
    expect(ws.log.slice(-2)).toEqual(["preview:us-prod", "preview:us-prod-2"]);
    expect(ws.log.filter((l) => l.startsWith("update:us"))).toEqual([]);
    expect(report.completed).toBe(false);
    expect(report.halt).toEqual({
      wave: "us",
      kind: "platform-preview",
      stack: "us-prod-2",
      message: "error: connect ECONNREFUSED 127.0.0.1:5432",
    });
    expect(report.remaining).toEqual(["us: platform stack us-prod", "us: platform stack us-prod-2", "us: 2 tenant stack(s)"]);
    const lines = outcomeLines(report);
    expect(lines[1]).toBe("HALTED at wave us, platform-preview of us-prod-2:");
    expect(lines[3]).toBe("not done: us: platform stack us-prod; us: platform stack us-prod-2; us: 2 tenant stack(s)");
    expect(lines[4]).toMatch(/^resume: fix the cause and run the same command again \(npm run rollout -- --waves staging,eu,us\)/);
  });

  it("a failed platform update stops before the wave's tenants", async () => {
    const { ws, options } = setup();
    ws.failing.set("update:eu-prod", "update failed");
    const report = await runRollout(options());
    expect(ws.log.slice(-2)).toEqual(["preview:eu-prod", "update:eu-prod"]);
    expect(report.halt).toMatchObject({ wave: "eu", kind: "platform-update", stack: "eu-prod" });
  });

  it("a platform stack whose outputs break the contract stops before its tenants, naming output and stack", async () => {
    const { ws, options } = setup();
    const message = "platform stack eu-prod: output `database.oid` is missing (expected a number)";
    ws.failing.set("contract:eu-prod", message);
    const report = await runRollout(options());
    expect(ws.log.slice(-2)).toEqual(["preview:eu-prod", "update:eu-prod"]);
    expect(ws.log.filter((l) => l.includes("tenant-e-"))).toEqual([]);
    expect(report.halt).toEqual({ wave: "eu", kind: "platform-contract", stack: "eu-prod", message });
    expect(report.remaining).toEqual([
      "eu: 2 tenant stack(s)",
      "us: platform stack us-prod",
      "us: platform stack us-prod-2",
      "us: 2 tenant stack(s)",
    ]);
  });

  it("a failed tenant stops new tenant operations and the next wave", async () => {
    const { ws, options } = setup();
    ws.addTenant("e-three", "eu-prod");
    ws.failing.set("up:tenant-e-one", "a tenant with slug already exists");
    const report = await runRollout(options());
    expect(ws.log.slice(-1)).toEqual(["up:tenant-e-one"]);
    expect(report.halt).toMatchObject({ wave: "eu", kind: "tenant-up", stack: "tenant-e-one" });
    expect(report.steps.filter((s) => s.wave === "eu" && s.kind === "tenant-up").map((s) => `${s.stack}:${s.status}`)).toEqual([
      "tenant-e-one:failed",
      "tenant-e-two:skipped",
      "tenant-e-three:skipped",
    ]);
    expect(report.remaining).toEqual([
      "eu: 3 tenant stack(s)",
      "us: platform stack us-prod",
      "us: platform stack us-prod-2",
      "us: 2 tenant stack(s)",
    ]);
    expect(stepRows(report.steps.filter((s) => s.status === "failed"))).toEqual([
      ["eu", "tenant-up", "tenant-e-one", "FAILED: a tenant with slug already exists", "", "0.0 s"],
    ]);
  });
});

describe("resuming", () => {
  it("runs again from the failed step, skipping everything done", async () => {
    const { ws, options, store } = setup();
    ws.failing.set("up:tenant-e-two", "boom");
    const first = await runRollout(options());
    expect(first.completed).toBe(false);
    expect(store.state?.steps["tenant:tenant-e-two"]).toMatchObject({ status: "failed", message: "boom" });

    ws.failing.clear();
    ws.log.length = 0;
    const second = await runRollout(options());
    expect(second).toMatchObject({ resumed: true, completed: true, id: first.id });
    expect(ws.log).toEqual([
      "up:tenant-e-two",
      "preview:us-prod",
      "preview:us-prod-2",
      "update:us-prod",
      "update:us-prod-2",
      "up:tenant-u-one",
      "up:tenant-u-two",
    ]);
    expect(second.steps.filter((s) => s.status === "already-done").map((s) => s.stack)).toEqual([
      "eu-staging",
      "tenant-s-one",
      "eu-prod",
      "tenant-e-one",
    ]);

    // Finished: the next run is a new rollout that does everything again.
    ws.log.length = 0;
    const third = await runRollout(options());
    expect(third.resumed).toBe(false);
    expect(ws.log).toHaveLength(13);
  });

  it("refuses to resume with other waves, and --restart discards the unfinished rollout", async () => {
    const { ws, options } = setup();
    ws.failing.set("update:eu-prod", "boom");
    await runRollout(options());
    ws.failing.clear();
    const other = options({ waves: [WAVES[1], WAVES[2]] });
    await expect(runRollout(other)).rejects.toThrow(RolloutStateError);
    await expect(runRollout(other)).rejects.toThrow(
      /an unfinished rollout .* waves staging \(eu-staging\) → eu \(eu-prod\) → us \(us-prod, us-prod-2\) is recorded in memory: run it again with the same waves to resume it, or pass --restart/,
    );
    ws.log.length = 0;
    const restarted = await runRollout({ ...other, restart: true });
    expect(restarted).toMatchObject({ resumed: false, completed: true });
    expect(ws.log[0]).toBe("preview:eu-prod");
  });

  it("records each step as it completes (a crash loses at most the running step)", async () => {
    const { options, store } = setup();
    await runRollout(options());
    // One save per completed step, plus the start and the finish.
    const steps = Object.keys(store.state!.steps);
    expect(steps).toEqual([
      "platform:eu-staging",
      "tenant:tenant-s-one",
      "platform:eu-prod",
      "tenant:tenant-e-one",
      "tenant:tenant-e-two",
      "platform:us-prod",
      "platform:us-prod-2",
      "tenant:tenant-u-one",
      "tenant:tenant-u-two",
    ]);
    expect(store.saves).toBe(steps.length + 2);
  });
});

describe("one rollout at a time", () => {
  it("refuses to start while another rollout holds the state, before touching any stack; a dry run does not wait", async () => {
    const { ws, options, store } = setup();
    store.locked = true;
    await expect(runRollout(options())).rejects.toThrow(RolloutStateError);
    expect(ws.log).toEqual([]);
    expect(store.saves).toBe(0);
    expect((await runRollout(options({ dryRun: true }))).completed).toBe(true);
    store.locked = false;
    await runRollout(options());
    expect(store.locked).toBe(false); // released when it ends
  });
});

describe("dry run", () => {
  it("previews platform and tenant stacks, updates nothing, records nothing, and shows every failure", async () => {
    const { ws, options, store } = setup();
    ws.failing.set("preview:eu-prod", "bad config");
    ws.failing.set("preview:tenant-u-one", "residency");
    const report = await runRollout(options({ dryRun: true }));
    expect(ws.log.filter((l) => l.startsWith("update:") || l.startsWith("up:"))).toEqual([]);
    expect(ws.log).toContain("preview:us-prod-2");
    expect(ws.log).toContain("preview:tenant-u-two");
    expect(store.saves).toBe(0);
    expect(report.steps.filter((s) => s.status === "failed").map((s) => s.stack)).toEqual(["eu-prod", "tenant-u-one"]);
    expect(report.completed).toBe(false);
    expect(outcomeLines(report)[1]).toBe("dry run found 2 failure(s); nothing was changed");
  });
});
