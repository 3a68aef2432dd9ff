/**
 * How `npm run rollout` scales with the number of tenant stacks (issue 20): total time, time per
 * stack, and how the total grows with N against linear growth (total(N) / total(smallest) vs N /
 * smallest). What is timed is `runRollout` (lib/rollout/run.ts) as scripts/rollout.ts runs it, with
 * the real engine: the wave's platform stack previewed and updated, its platform contract read, then
 * every tenant stack brought up in its own process (ProcessDriver), `--concurrency` at once.
 *
 * The rollout has work to do in every stack: before each timed rollout every tenant's display name
 * is changed in its stack's recorded spec (the `alphapulse:display-name` tag, untimed), the way an
 * operator renames a tenant, so each tenant stack's `up` updates its registry entry. The platform
 * stack has nothing to change (no platform release between rounds).
 *
 * Against one throwaway region (test/tenant-stacks/support/region.ts, direct transport). Sizes are
 * run in ascending order on a growing set: the stacks missing for the next size are created with the
 * bulk path (`npm run tenant -- up <slug>...`'s runJobs over a process per stack, timed separately),
 * then each concurrency gets its own rollout. Progress per stack on stderr. All stacks are destroyed
 * and the region removed afterwards.
 *
 *   npx tsx bench/rollout-scale.ts [--sizes 10,50,100] [--concurrency 2[,4]] [--json]
 */
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pLimit from "p-limit";
import { openTestRegions, skipReason, toolchainLookup } from "../test/tenant-stacks/support/region";
import { median } from "./stats";
import { parseInteger } from "../cli/args";
import { entryPoint, headerComment, runMain } from "../cli/runner";
import { REPO_ROOT } from "../lib/pulumi/env";
import { inlinePlatformOps, tenantOps } from "../lib/rollout/automation";
import { runRollout } from "../lib/rollout/run";
import { FileStateStore } from "../lib/rollout/state";
import { changeTotal, runJobs, type TenantJob, type TenantJobResult } from "../lib/tenant-stacks/jobs";
import { TENANT_PROJECT, tenantStackName } from "../lib/tenant-stacks/names";
import { ProcessDriver } from "../lib/tenant-stacks/process-driver";
import { resultLine } from "../lib/tenant-stacks/progress";
import { SPEC_TAGS } from "../lib/tenant-stacks/tags";

const sec = (ms: number) => Number((ms / 1000).toFixed(1));

interface RolloutRun {
  stacks: number;
  concurrency: number;
  totalS: number;
  perStackS: number;
  /** Median of the tenant stack operations (each a process: start, `pulumi up`, exit). */
  stackOperationMedianS: number;
  stackOperationMaxS: number;
  /** Platform preview + update + contract read: the part that does not grow with N. */
  platformS: number;
  /** Tenant stacks whose `up` changed something (should be all of them). */
  changed: number;
  loadAverage: number;
}

async function main({ sizes, concurrencies, json }: { sizes: number[]; concurrencies: number[]; json: boolean }): Promise<void> {
  if (!toolchainLookup.ok) {
    process.stderr.write(`bench/rollout-scale: skipped: ${skipReason}\n`);
    return;
  }
  const log = (m: string) => process.stderr.write(m + "\n");
  const started = Date.now();
  const loadBefore = os.loadavg()[0];
  const creationConcurrency = Math.max(...concurrencies);
  log("opening a throwaway region (PostgreSQL, Redis, platform stack)…");
  const t = await openTestRegions(["eu"]);
  const [region] = t.regions;
  const stateDir = mkdtempSync(path.join(os.tmpdir(), "bench-rollout-state-"));
  const driver = new ProcessDriver({ repoRoot: REPO_ROOT, env: t.env });
  const platform = inlinePlatformOps(t.ctx, { [region.platformStack]: region.platformProgram });
  const tenants = tenantOps(t.ctx, driver);
  const waves = [{ name: "eu", stacks: [region.platformStack] }];
  const slugs: string[] = [];
  const creations: { from: number; to: number; concurrency: number; wallS: number; perStackS: number }[] = [];
  const runs: RolloutRun[] = [];
  let round = 0;

  const bulk = async (jobs: TenantJob[], what: string, concurrency: number): Promise<TenantJobResult[]> => {
    let done = 0;
    const results = await runJobs(jobs, driver, {
      concurrency,
      onResult: (r) => log(`   ${what} ${++done}/${jobs.length} ${resultLine(r)}`),
    });
    const failed = results.filter((r) => !r.ok);
    if (failed.length) throw new Error(`${what}: ${failed.length} failed, first: ${failed[0].stack}: ${failed[0].failure?.message}`);
    return results;
  };
  const renameAll = async () => {
    round++;
    const limit = pLimit(4);
    await Promise.all(
      slugs.map((slug) =>
        limit(() =>
          t.ctx.withWorkspace(TENANT_PROJECT, tenantStackName(slug), async (opts) =>
            (await LocalWorkspace.create(opts)).setTag(tenantStackName(slug), SPEC_TAGS.displayName, `Bench ${slug} round ${round}`),
          ),
        ),
      ),
    );
  };

  try {
    for (const size of [...sizes].sort((a, b) => a - b)) {
      const fresh = Array.from({ length: size - slugs.length }, (_, i) => `bench-roll-${String(slugs.length + i).padStart(3, "0")}`);
      if (fresh.length) {
        log(`creating tenant stacks ${slugs.length + 1}–${size} (${creationConcurrency} at once)…`);
        const t0 = Date.now();
        await bulk(
          fresh.map((slug) => ({ action: "up", spec: { slug, tier: "starter", region: "eu", platform: region.platformStack } })),
          "create",
          creationConcurrency,
        );
        const wall = Date.now() - t0;
        creations.push({
          from: slugs.length + 1,
          to: size,
          concurrency: creationConcurrency,
          wallS: sec(wall),
          perStackS: sec(wall / fresh.length),
        });
        slugs.push(...fresh);
      }
      for (const concurrency of concurrencies) {
        log(`renaming ${size} tenants (untimed), then the rollout over ${size} tenant stacks, ${concurrency} at once…`);
        await renameAll();
        const load = os.loadavg()[0];
        let done = 0;
        const t0 = Date.now();
        const report = await runRollout({
          environment: "bench",
          waves,
          platform,
          tenants,
          store: new FileStateStore(path.join(stateDir, `state-${size}-${concurrency}.json`)),
          concurrency,
          onEvent: (e) => e.step && !e.step.kind.startsWith("tenant") && log(`   ${e.message} ${sec(e.step.durationMs)} s`),
          onTenantResult: (r) => log(`   rollout ${size}×${concurrency} ${++done}/${size} ${resultLine(r)}`),
        });
        const total = Date.now() - t0;
        if (!report.completed) throw new Error(`rollout of ${size} halted: ${report.halt?.stack}: ${report.halt?.message}`);
        const tenantSteps = report.steps.filter((s) => s.kind === "tenant-up");
        const ops = tenantSteps.map((s) => s.durationMs);
        const run: RolloutRun = {
          stacks: tenantSteps.length,
          concurrency,
          totalS: sec(total),
          perStackS: Number((total / 1000 / tenantSteps.length).toFixed(2)),
          stackOperationMedianS: sec(median(ops)),
          stackOperationMaxS: sec(Math.max(...ops)),
          platformS: sec(report.steps.filter((s) => !s.kind.startsWith("tenant")).reduce((sum, s) => sum + s.durationMs, 0)),
          changed: tenantSteps.filter((s) => changeTotal(s.changes ?? {}) > 0).length,
          loadAverage: Number(load.toFixed(1)),
        };
        runs.push(run);
        log(`rollout of ${size} stacks, ${concurrency} at once: ${run.totalS} s, ${run.perStackS} s per stack (${run.changed} changed)`);
      }
    }
  } finally {
    if (slugs.length) {
      log(`destroying ${slugs.length} tenant stacks…`);
      await bulk(
        slugs.map((slug) => ({ action: "destroy", slug, exportDir: null })),
        "destroy",
        creationConcurrency,
      ).catch((err: Error) => log(`cleanup: ${err.message} (the region's dispose removes the rest)`));
    }
    rmSync(stateDir, { recursive: true, force: true });
    await t.dispose();
  }

  const growth = runs.map((r) => {
    const base = runs.find((b) => b.concurrency === r.concurrency)!;
    return { ...r, growth: Number((r.totalS / base.totalS).toFixed(2)), linear: Number((r.stacks / base.stacks).toFixed(2)) };
  });
  const result = {
    date: new Date(started).toISOString(),
    wallS: sec(Date.now() - started),
    vcpus: os.cpus().length,
    loadAverage: { before: loadBefore, after: os.loadavg()[0] },
    creations,
    rollouts: growth,
  };
  if (json) {
    process.stdout.write(JSON.stringify(result, null, 2) + "\n");
    return;
  }
  const lines = [
    "| tenant stacks | at once | rollout total s | s per stack | tenant stack operation median / max s | platform part s | growth vs smallest | N vs smallest | stacks changed | load (1 min) |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...growth.map(
      (r) =>
        `| ${r.stacks} | ${r.concurrency} | ${r.totalS} | ${r.perStackS} | ${r.stackOperationMedianS} / ${r.stackOperationMaxS} | ${r.platformS} | ${r.growth.toFixed(2)} | ${r.linear.toFixed(2)} | ${r.changed} | ${r.loadAverage} |`,
    ),
    "",
    ...creations.map(
      (c) => `Created stacks ${c.from}–${c.to} with the bulk path, ${c.concurrency} at once: ${c.wallS} s (${c.perStackS} s per stack).`,
    ),
    "",
    `Run ${result.date}, ${result.wallS} s in all; load average (1 min) ${loadBefore.toFixed(1)} before, ${result.loadAverage.after.toFixed(1)} after, on ${result.vcpus} vCPUs.`,
  ];
  process.stdout.write(lines.join("\n") + "\n");
}

function parseList(value: string, field: string, min: number, max: number): number[] {
  return value.split(",").map((v) => parseInteger(v.trim(), field, min, max));
}

runMain(
  entryPoint({
    program: "bench/rollout-scale",
    usage: "usage: npx tsx bench/rollout-scale.ts [--sizes 10,50,100] [--concurrency 2[,4]] [--json]",
    help: () => headerComment(__filename),
    options: {
      sizes: { type: "string", default: "10,50,100" },
      // The machine's cores: each tenant stack operation is a process that keeps about one core busy.
      concurrency: { type: "string", default: String(os.cpus().length) },
    },
    async run({ values }) {
      await main({
        sizes: [...new Set(parseList(values.sizes, "--sizes", 1, 1000))],
        concurrencies: [...new Set(parseList(values.concurrency, "--concurrency", 1, 32))],
        json: values.json,
      });
    },
  }),
);
