/**
 * The bulk runner with a fake driver (pure): bounded concurrency, results in input order, a driver
 * that throws counted as that job's failure, halting at the first failure when asked, and the
 * summary and progress rendering.
 */
import { describe, expect, it } from "vitest";
import {
  changeTotal,
  formatChanges,
  runJobs,
  summarize,
  type JobEvent,
  type TenantJob,
  type TenantJobResult,
  type TenantStackDriver,
} from "../../lib/tenant-stacks/jobs";
import { ProgressBoard, renderBoard, resultLine } from "../../lib/tenant-stacks/progress";
import { failureDetails, summaryLine, summaryRows } from "../../lib/tenant-stacks/report";

const up = (slug: string): TenantJob => ({ action: "up", spec: { slug, tier: "starter", region: "eu", platform: "local-eu" } });

/** A driver whose operations take `ms` and fail for the slugs in `failing`; it records peak concurrency. */
function fakeDriver(options: { ms?: (slug: string) => number; failing?: string[]; throwing?: string[] } = {}) {
  const state = { running: 0, peak: 0, started: [] as string[] };
  const driver: TenantStackDriver = {
    async run(job, onEvent) {
      const slug = job.action === "destroy" ? job.slug : job.spec.slug;
      state.started.push(slug);
      state.running++;
      state.peak = Math.max(state.peak, state.running);
      onEvent({ slug, phase: "update", message: "updating", steps: 1 });
      await new Promise((r) => setTimeout(r, options.ms?.(slug) ?? 5));
      state.running--;
      if (options.throwing?.includes(slug)) throw new Error(`driver broke on ${slug}`);
      const ok = !options.failing?.includes(slug);
      const result: TenantJobResult = {
        slug,
        stack: `tenant-${slug}`,
        action: job.action,
        ok,
        changes: ok ? { create: 3 } : {},
        durationMs: 5,
        ...(ok ? {} : { failure: { kind: "failed" as const, message: `${slug} broke` } }),
      };
      return result;
    },
  };
  return { driver, state };
}

describe("runJobs", () => {
  it("never runs more than `concurrency` at once and returns results in input order", async () => {
    const { driver, state } = fakeDriver({ ms: (slug) => (slug.endsWith("0") ? 30 : 5) });
    const jobs = Array.from({ length: 12 }, (_, i) => up(`tenant-${String(i).padStart(2, "0")}`));
    const results = await runJobs(jobs, driver, { concurrency: 3 });
    expect(state.peak).toBe(3);
    expect(results.map((r) => r.slug)).toEqual(jobs.map((j) => (j.action === "destroy" ? "" : j.spec.slug)));
    expect(results.every((r) => r.ok)).toBe(true);
  });

  it("runs all ten at once when allowed", async () => {
    const { driver, state } = fakeDriver({ ms: () => 20 });
    await runJobs(
      Array.from({ length: 10 }, (_, i) => up(`t${i}-x`)),
      driver,
      { concurrency: 10 },
    );
    expect(state.peak).toBe(10);
  });

  it("bulk provisioning goes on after a failure and reports it", async () => {
    const { driver, state } = fakeDriver({ failing: ["bravo"] });
    const results = await runJobs([up("alpha"), up("bravo"), up("charlie")], driver, { concurrency: 1 });
    expect(state.started).toEqual(["alpha", "bravo", "charlie"]);
    expect(results.map((r) => r.ok)).toEqual([true, false, true]);
  });

  it("halts at the first failure when asked: nothing new starts, the rest is reported as skipped", async () => {
    const { driver, state } = fakeDriver({ failing: ["bravo"] });
    const results = await runJobs([up("alpha"), up("bravo"), up("charlie"), up("delta")], driver, { concurrency: 1, haltOnFailure: true });
    expect(state.started).toEqual(["alpha", "bravo"]);
    expect(results.map((r) => r.failure?.kind ?? "ok")).toEqual(["ok", "failed", "skipped", "skipped"]);
    expect(results[2].failure?.message).toBe("not started: tenant-bravo failed first");
  });

  it("a driver that throws counts as that job's failure", async () => {
    const { driver } = fakeDriver({ throwing: ["bravo"] });
    const results = await runJobs([up("alpha"), up("bravo")], driver, { concurrency: 2 });
    expect(results[1]).toMatchObject({
      slug: "bravo",
      stack: "tenant-bravo",
      ok: false,
      failure: { kind: "failed", message: "driver broke on bravo" },
    });
  });

  it("reports events and results as they happen", async () => {
    const { driver } = fakeDriver();
    const events: JobEvent[] = [];
    const finished: string[] = [];
    await runJobs([up("alpha")], driver, { concurrency: 1, onEvent: (e) => events.push(e), onResult: (r) => finished.push(r.slug) });
    expect(events.map((e) => e.phase)).toEqual(["queued", "update"]);
    expect(finished).toEqual(["alpha"]);
  });

  it("refuses a nonsensical concurrency", async () => {
    await expect(runJobs([], fakeDriver().driver, { concurrency: 0 })).rejects.toThrow(RangeError);
  });
});

describe("change counts", () => {
  it.each([
    [{}, "no changes", 0],
    [{ same: 4 }, "no changes", 0],
    [{ same: 3, read: 1 }, "no changes", 0],
    [{ create: 4 }, "+4", 4],
    [{ delete: 4, discard: 1 }, "-4", 4],
    [{ update: 2, delete: 2, same: 2 }, "~2 -2", 4],
    [{ delete: 1, create: 2, replace: 1 }, "+2 +-1 -1", 4],
  ])("%j → %s (%d)", (changes, text, total) => {
    expect(formatChanges(changes)).toBe(text);
    expect(changeTotal(changes)).toBe(total);
  });
});

describe("summary and progress", () => {
  const results: TenantJobResult[] = [
    {
      slug: "alpha",
      stack: "tenant-alpha",
      action: "up",
      ok: true,
      createdStack: true,
      changes: { create: 4 },
      durationMs: 5200,
      tier: "pro",
      region: "eu",
      platform: "local-eu",
    },
    {
      slug: "bravo",
      stack: "tenant-bravo",
      action: "up",
      ok: true,
      changes: { same: 4 },
      durationMs: 2100,
      tier: "starter",
      region: "eu",
      platform: "local-eu",
    },
    {
      slug: "charlie",
      stack: "tenant-charlie",
      action: "up",
      ok: false,
      changes: {},
      durationMs: 700,
      failure: { kind: "residency", message: "tenant charlie has residency us\nmore" },
    },
    {
      slug: "delta",
      stack: "tenant-delta",
      action: "up",
      ok: false,
      changes: {},
      durationMs: 0,
      failure: { kind: "skipped", message: "not started" },
    },
  ];

  it("summarises", () => {
    const summary = summarize(results, 9000);
    expect(summary).toEqual({ total: 4, succeeded: 2, failed: 1, skipped: 1, changed: 1, durationMs: 9000 });
    expect(summaryLine(summary)).toBe("4 stack(s): 2 ok, 1 failed, 1 skipped; 1 changed; 9.0 s");
    expect(summaryRows(results)[0]).toEqual(["alpha", "tenant-alpha", "up", "pro", "eu", "local-eu", "ok (new stack)", "+4", "5.2 s"]);
    expect(summaryRows(results)[1][7]).toBe("no changes");
    expect(summaryRows(results)[2][6]).toBe("residency");
    expect(failureDetails(results)).toEqual([
      "tenant-charlie: [residency] tenant charlie has residency us\nmore",
      "tenant-delta: [skipped] not started",
    ]);
  });

  it("renders one line per finished stack", () => {
    expect(resultLine(results[0])).toBe("✓ tenant-alpha up: +4 (5.2 s)");
    expect(resultLine(results[2])).toBe("✗ tenant-charlie up failed: tenant charlie has residency us");
    expect(resultLine(results[3])).toBe("✗ tenant-delta up skipped: not started");
  });

  it("draws the live board: header, then running stacks", () => {
    const board = new ProgressBoard("up 3 tenant stack(s)");
    for (const slug of ["alpha", "bravo", "charlie"]) board.apply({ slug, phase: "queued", message: "queued" }, 0);
    board.apply({ slug: "alpha", phase: "update", message: "create alpha-registry", steps: 2 }, 1000);
    board.apply({ slug: "bravo", phase: "platform", message: "reading platform stack local-eu" }, 2000);
    board.finish(results[1]);
    expect(renderBoard(board, 4000)).toEqual([
      "up 3 tenant stack(s): 1/3 done, 1 running, 1 queued",
      "  … tenant-alpha update (2 steps): create alpha-registry 3.0 s",
    ]);
  });
});
