/**
 * End-to-end tenant provisioning time against ADR-001's requirement "new tenant setup < 5 minutes
 * automated" (issue 8), and what the database executor transport costs against the direct one
 * (issue 20). What is timed is what an operator runs: `npm run tenant -- up <slug> --tier <tier> ...`
 * as a fresh process (tsx start, reading the platform stack, residency check, creating the stack,
 * recording its tags, `pulumi up` with the dynamic providers: registry entry, Redis ACL user and
 * quota, and for Enterprise the graduation to a dedicated schema and the login role), until it exits.
 * Also timed: offboarding (`destroy`, with the verified export), and optionally a bulk `up` of N
 * starter tenants with bounded concurrency (one process per stack).
 *
 * Runs against throwaway regions (test/tenant-stacks/support/region.ts: each its own PostgreSQL,
 * Redis, file backend and platform stack), so it never touches the local stacks: one region per
 * transport, opened once. `direct` reaches PostgreSQL itself; `executor` goes through a local
 * database executor answering like Lambda Invoke (the AWS regions' path). Per repetition the cells
 * run in ABBA order (direct starter, executor starter, executor Enterprise, direct Enterprise, then
 * reversed in the next repetition), so drift of the shared machine's load cancels out; the
 * executor/direct ratio is taken per repetition from cells measured side by side.
 *
 *   npx tsx bench/tenant-provisioning.ts [--transport direct|executor|both] [--reps 4] [--bulk 0] [--concurrency 4] [--json]
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { openTestRegion, runTenantCli, skipReason, toolchainLookup } from "../test/tenant-stacks/support/region";
import { median, spread, type Spread } from "./stats";
import { parseField, parseInteger } from "../cli/args";
import { entryPoint, headerComment, runMain } from "../cli/runner";
import { z } from "zod";

const REQUIREMENT_S = 300;
const TIERS = ["starter", "enterprise"] as const;
type Tier = (typeof TIERS)[number];
type Transport = "direct" | "executor";

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

const sec = (ms: number) => Number((ms / 1000).toFixed(1));

/** The cells of one repetition: ABBA over transports within each tier, the whole order reversed every other repetition. */
function cellOrder(rep: number, transports: readonly Transport[]): { transport: Transport; tier: Tier }[] {
  const [a, b] = transports;
  const pairs = (tier: Tier, first: Transport, second?: Transport) =>
    [first, second].filter((t) => t !== undefined).map((transport) => ({ transport, tier }));
  const cells = [...pairs("starter", a, b), ...pairs("enterprise", b ?? a, b ? a : undefined)];
  return rep % 2 === 1 ? cells : cells.reverse();
}

interface Timings {
  upWall: number[];
  upDriver: number[];
  destroyWall: number[];
}

async function main(options: { transports: Transport[]; reps: number; bulk: number; concurrency: number; json: boolean }): Promise<void> {
  if (!toolchainLookup.ok) {
    process.stderr.write(`bench/tenant-provisioning: skipped: ${skipReason}\n`);
    return;
  }
  const { transports, reps, bulk, concurrency, json } = options;
  const log = (m: string) => process.stderr.write(m + "\n");
  const loadBefore = os.loadavg()[0];
  const started = Date.now();
  const regions = new Map<Transport, Awaited<ReturnType<typeof openTestRegion>>>();
  const exportDir = mkdtempSync(path.join(os.tmpdir(), "bench-offboarding-"));
  // timings[transport][tier], and per repetition the cells' `up` wall times for the side-by-side ratio.
  const timings = new Map(
    transports.map((t) => [t, new Map(TIERS.map((tier): [Tier, Timings] => [tier, { upWall: [], upDriver: [], destroyWall: [] }]))]),
  );
  const perRep: Record<Tier, { direct?: number; executor?: number }[]> = { starter: [], enterprise: [] };
  const bulkResults: {
    transport: Transport;
    tenants: number;
    concurrency: number;
    wallS: number;
    perTenantMedianS: number;
    perTenantMaxS: number;
  }[] = [];
  try {
    for (const transport of transports) {
      log(`opening a throwaway region with the ${transport} transport (PostgreSQL, Redis, platform stack)…`);
      regions.set(transport, await openTestRegion("eu", { transport }));
    }
    for (let rep = 1; rep <= reps; rep++) {
      for (const tier of TIERS) perRep[tier].push({});
      for (const { transport, tier } of cellOrder(rep, transports)) {
        const region = regions.get(transport)!;
        const slug = `bench-${tier}-${rep}`;
        const up = must(
          await tenantCli(["up", slug, "--tier", tier, "--region", "eu", "--platform", region.platformStack], region.env),
          `${transport} up ${slug}`,
        );
        const down = must(await tenantCli(["destroy", slug, "--export-dir", exportDir], region.env), `${transport} destroy ${slug}`);
        const t = timings.get(transport)!.get(tier)!;
        t.upWall.push(up.wallMs);
        t.upDriver.push(up.report!.results[0].durationMs);
        t.destroyWall.push(down.wallMs);
        perRep[tier][rep - 1][transport] = up.wallMs;
        log(
          `rep ${rep}/${reps} ${transport} ${tier}: up ${sec(up.wallMs)} s (stack operation ${sec(up.report!.results[0].durationMs)} s), offboarding ${sec(down.wallMs)} s`,
        );
      }
    }
    for (const transport of bulk > 0 ? transports : []) {
      const region = regions.get(transport)!;
      const slugs = Array.from({ length: bulk }, (_, i) => `bench-bulk-${String(i).padStart(3, "0")}`);
      const up = must(
        await tenantCli(
          ["up", ...slugs, "--tier", "starter", "--region", "eu", "--platform", region.platformStack, "--concurrency", String(concurrency)],
          region.env,
        ),
        `${transport} bulk up`,
      );
      const per = up.report!.results.map((r) => r.durationMs);
      bulkResults.push({
        transport,
        tenants: bulk,
        concurrency,
        wallS: sec(up.wallMs),
        perTenantMedianS: sec(median(per)),
        perTenantMaxS: sec(Math.max(...per)),
      });
      log(`${transport} bulk: ${bulk} starter tenants, ${concurrency} at once: ${sec(up.wallMs)} s`);
      must(
        await tenantCli(["destroy", ...slugs, "--skip-export", "--concurrency", String(concurrency)], region.env),
        `${transport} bulk destroy`,
      );
    }
  } finally {
    rmSync(exportDir, { recursive: true, force: true });
    for (const region of regions.values()) await region.dispose();
  }
  const loadAfter = os.loadavg()[0];

  const rows = transports.flatMap((transport) =>
    TIERS.map((tier) => {
      const t = timings.get(transport)!.get(tier)!;
      return {
        transport,
        tier,
        runs: t.upWall.length,
        upMedianS: sec(median(t.upWall)),
        upMinS: sec(Math.min(...t.upWall)),
        upMaxS: sec(Math.max(...t.upWall)),
        stackOperationMedianS: sec(median(t.upDriver)),
        offboardingMedianS: sec(median(t.destroyWall)),
        withinRequirement: Math.max(...t.upWall) < REQUIREMENT_S * 1000,
      };
    }),
  );
  const ratios: { tier: Tier; executorOverDirect: Spread }[] =
    transports.length === 2
      ? TIERS.map((tier) => ({ tier, executorOverDirect: spread(perRep[tier].map((r) => r.executor! / r.direct!)) }))
      : [];
  const result = {
    requirementS: REQUIREMENT_S,
    date: new Date(started).toISOString(),
    wallS: sec(Date.now() - started),
    loadAverage: { before: loadBefore, after: loadAfter },
    tiers: rows,
    ratios,
    bulk: bulkResults,
  };
  if (json) {
    process.stdout.write(JSON.stringify(result, null, 2) + "\n");
    return;
  }
  const r2 = (x: number) => x.toFixed(2);
  const lines = [
    `| transport | tier | runs | \`up\` median s | \`up\` min s | \`up\` max s | of which the stack operation (median s) | offboarding (export + destroy), median s | < ${REQUIREMENT_S} s |`,
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...rows.map(
      (r) =>
        `| ${r.transport} | ${r.tier} | ${r.runs} | ${r.upMedianS} | ${r.upMinS} | ${r.upMaxS} | ${r.stackOperationMedianS} | ${r.offboardingMedianS} | ${r.withinRequirement ? "yes" : "NO"} |`,
    ),
  ];
  if (ratios.length) {
    lines.push("", "| tier | executor / direct, `up` wall time: median of per-repetition ratios (range) |", "| --- | --- |");
    for (const r of ratios)
      lines.push(`| ${r.tier} | ${r2(r.executorOverDirect.median)} (${r2(r.executorOverDirect.min)}–${r2(r.executorOverDirect.max)}) |`);
  }
  for (const b of bulkResults)
    lines.push(
      "",
      `Bulk (${b.transport}): ${b.tenants} starter tenants, ${b.concurrency} at once (a process each): ${b.wallS} s in all; ` +
        `per tenant median ${b.perTenantMedianS} s, max ${b.perTenantMaxS} s.`,
    );
  lines.push(
    "",
    `Run ${result.date}, ${result.wallS} s; load average (1 min) ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after, on ${os.cpus().length} vCPUs.`,
  );
  process.stdout.write(lines.join("\n") + "\n");
}

const TRANSPORTS = { direct: ["direct"], executor: ["executor"], both: ["direct", "executor"] } as const satisfies Record<
  string,
  Transport[]
>;

runMain(
  entryPoint({
    program: "bench/tenant-provisioning",
    usage:
      "usage: npx tsx bench/tenant-provisioning.ts [--transport direct|executor|both] [--reps 4] [--bulk 0] [--concurrency 4] [--json]",
    help: () => headerComment(__filename),
    options: {
      transport: { type: "string", default: "both" },
      reps: { type: "string", default: "4" },
      bulk: { type: "string", default: "0" },
      concurrency: { type: "string", default: "4" },
    },
    async run({ values }) {
      await main({
        transports: [...TRANSPORTS[parseField(z.enum(["direct", "executor", "both"]), values.transport, "--transport")]],
        reps: parseInteger(values.reps, "--reps", 1, 1000),
        bulk: parseInteger(values.bulk, "--bulk", 0, 1000),
        concurrency: parseInteger(values.concurrency, "--concurrency", 1, 32),
        json: values.json,
      });
    },
  }),
);
