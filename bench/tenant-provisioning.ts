/**
 * End-to-end tenant provisioning time against ADR-001's requirement "new tenant setup < 5 minutes
 * automated" (issue 8). What is timed is what an operator runs: `npm run tenant -- up <slug> --tier
 * <tier> ...` as a fresh process (tsx start, reading the platform stack, residency check, creating the
 * stack, recording its tags, `pulumi up` with the dynamic providers: registry entry, Redis ACL user and
 * quota, and for Enterprise the graduation to a dedicated schema and the login role), until it exits.
 * Also timed: offboarding (`destroy`, with the verified export), and a bulk `up` of N starter tenants
 * with bounded concurrency (one process per stack).
 *
 * Runs against a throwaway region (test/tenant-stacks/support/region.ts: its own PostgreSQL, Redis,
 * file backend and platform stack), so it never touches the local stacks. Starter and Enterprise
 * alternate per repetition. The machine is shared: the load average is reported with the results.
 *
 *   npx tsx bench/tenant-provisioning.ts [--reps 3] [--bulk 10] [--concurrency 4] [--json]
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { openTestRegion, runTenantCli, skipReason, toolchainLookup } from "../test/tenant-stacks/support/region";
import { median } from "./stats";
import { parseInteger } from "../cli/args";
import { entryPoint, headerComment, runMain } from "../cli/runner";

const REQUIREMENT_S = 300;

interface CliRun {
  code: number | null;
  wallMs: number;
  report?: { results: { ok: boolean; durationMs: number; failure?: { message: string } }[] };
  stderr: string;
}

async function tenantCli(args: string[], env: Record<string, string>): Promise<CliRun> {
  const { code, stdout, stderr, wallMs } = await runTenantCli([...args, "--json"], env);
  let report;
  try {
    report = JSON.parse(stdout);
  } catch {
    report = undefined;
  }
  return { code, wallMs, report, stderr };
}

function must(run: CliRun, what: string): CliRun {
  if (run.code !== 0) {
    const failures = run.report?.results?.filter((r) => !r.ok).map((r) => r.failure?.message) ?? [];
    throw new Error(`${what} failed (exit ${run.code}): ${failures.join("; ") || run.stderr.slice(-2000)}`);
  }
  return run;
}

const sec = (ms: number) => (ms / 1000).toFixed(1);

async function main({ reps, bulk, concurrency, json }: { reps: number; bulk: number; concurrency: number; json: boolean }): Promise<void> {
  if (!toolchainLookup.ok) {
    process.stderr.write(`bench/tenant-provisioning: skipped: ${skipReason}\n`);
    return;
  }
  const log = (m: string) => process.stderr.write(m + "\n");
  const loadBefore = os.loadavg()[0];
  log("opening a throwaway region (PostgreSQL, Redis, platform stack)…");
  const region = await openTestRegion("eu");
  const exportDir = mkdtempSync(path.join(os.tmpdir(), "bench-offboarding-"));
  const timings: Record<"starter" | "enterprise", { upWall: number[]; upDriver: number[]; destroyWall: number[] }> = {
    starter: { upWall: [], upDriver: [], destroyWall: [] },
    enterprise: { upWall: [], upDriver: [], destroyWall: [] },
  };
  let bulkResult: { tenants: number; concurrency: number; wallMs: number; perTenantMedianMs: number; perTenantMaxMs: number } | undefined;
  try {
    for (let rep = 1; rep <= reps; rep++) {
      for (const tier of ["starter", "enterprise"] as const) {
        const slug = `bench-${tier}-${rep}`;
        const up = must(
          await tenantCli(["up", slug, "--tier", tier, "--region", "eu", "--platform", region.platformStack], region.env),
          `up ${slug}`,
        );
        const down = must(await tenantCli(["destroy", slug, "--export-dir", exportDir], region.env), `destroy ${slug}`);
        timings[tier].upWall.push(up.wallMs);
        timings[tier].upDriver.push(up.report!.results[0].durationMs);
        timings[tier].destroyWall.push(down.wallMs);
        log(
          `rep ${rep} ${tier}: up ${sec(up.wallMs)} s (stack operation ${sec(up.report!.results[0].durationMs)} s), offboarding ${sec(down.wallMs)} s`,
        );
      }
    }
    if (bulk > 0) {
      const slugs = Array.from({ length: bulk }, (_, i) => `bench-bulk-${String(i).padStart(3, "0")}`);
      const up = must(
        await tenantCli(
          ["up", ...slugs, "--tier", "starter", "--region", "eu", "--platform", region.platformStack, "--concurrency", String(concurrency)],
          region.env,
        ),
        "bulk up",
      );
      const per = up.report!.results.map((r) => r.durationMs);
      bulkResult = { tenants: bulk, concurrency, wallMs: up.wallMs, perTenantMedianMs: median(per), perTenantMaxMs: Math.max(...per) };
      log(`bulk: ${bulk} starter tenants, ${concurrency} at once: ${sec(up.wallMs)} s`);
      must(await tenantCli(["destroy", ...slugs, "--skip-export", "--concurrency", String(concurrency)], region.env), "bulk destroy");
    }
  } finally {
    rmSync(exportDir, { recursive: true, force: true });
    await region.dispose();
  }
  const loadAfter = os.loadavg()[0];

  const rows = (["starter", "enterprise"] as const).map((tier) => {
    const t = timings[tier];
    return {
      tier,
      runs: t.upWall.length,
      upMedianS: Number(sec(median(t.upWall))),
      upMaxS: Number(sec(Math.max(...t.upWall))),
      stackOperationMedianS: Number(sec(median(t.upDriver))),
      offboardingMedianS: Number(sec(median(t.destroyWall))),
      withinRequirement: Math.max(...t.upWall) < REQUIREMENT_S * 1000,
    };
  });
  const result = { requirementS: REQUIREMENT_S, loadAverage: { before: loadBefore, after: loadAfter }, tiers: rows, bulk: bulkResult };
  if (json) {
    process.stdout.write(JSON.stringify(result, null, 2) + "\n");
    return;
  }
  const lines = [
    `| tier | runs | \`up\` median s | \`up\` max s | of which the stack operation (median s) | offboarding (export + destroy), median s | < ${REQUIREMENT_S} s |`,
    "| --- | --- | --- | --- | --- | --- | --- |",
    ...rows.map(
      (r) =>
        `| ${r.tier} | ${r.runs} | ${r.upMedianS} | ${r.upMaxS} | ${r.stackOperationMedianS} | ${r.offboardingMedianS} | ${r.withinRequirement ? "yes" : "NO"} |`,
    ),
  ];
  if (bulkResult) {
    lines.push(
      "",
      `Bulk: ${bulkResult.tenants} starter tenants, ${bulkResult.concurrency} at once (a process each): ${sec(bulkResult.wallMs)} s in all; ` +
        `per tenant median ${sec(bulkResult.perTenantMedianMs)} s, max ${sec(bulkResult.perTenantMaxMs)} s.`,
    );
  }
  lines.push("", `Load average (1 min) ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after, on ${os.cpus().length} vCPUs.`);
  process.stdout.write(lines.join("\n") + "\n");
}

runMain(
  entryPoint({
    program: "bench/tenant-provisioning",
    usage: "usage: npx tsx bench/tenant-provisioning.ts [--reps 3] [--bulk 10] [--concurrency 4] [--json]",
    help: () => headerComment(__filename),
    options: {
      reps: { type: "string", default: "3" },
      bulk: { type: "string", default: "10" },
      concurrency: { type: "string", default: "4" },
    },
    async run({ values }) {
      await main({
        reps: parseInteger(values.reps, "--reps", 0, 1000),
        bulk: parseInteger(values.bulk, "--bulk", 0, 1000),
        concurrency: parseInteger(values.concurrency, "--concurrency", 1, 32),
        json: values.json,
      });
    },
  }),
);
