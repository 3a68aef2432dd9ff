/**
 * `npm run tenant -- <up|preview|destroy|list> ...`: per-tenant stacks through the Automation API.
 * Parses strictly (cli/tenant-stacks.ts), checks every tenant against its platform stack
 * before anything runs (residency, ownership: a mismatch is refused with exit 2 and nothing
 * changes), then runs the operations: one in this process, several each in its own process with
 * bounded concurrency, with a progress display on stderr and a summary table (or `--json`).
 *
 * Exit codes: 0 every operation succeeded · 1 an operation failed · 2 bad input (nothing changed).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { CommandFailure, table } from "../cli/output";
import { guard, runMain } from "../cli/runner";
import { automationContext, environmentOverride, processDriver } from "../components/tenant/drivers";
import { defaultPlatformStack, readPlatformStacks } from "../lib/stack-config/platform-stacks";
import { REPO_ROOT } from "../lib/pulumi/env";
import { AutomationDriver, type AutomationContext } from "../lib/tenant-stacks/automation";
import { parseTenantCommand, USAGE } from "../cli/tenant-stacks";
import { runTenantSynth } from "../cli/tenant-synth";
import { classifyFailure } from "../lib/tenant-stacks/errors";
import { runJobs, type TenantJob, type TenantStackDriver } from "../lib/tenant-stacks/jobs";
import { placementProblems, type PlatformSummary } from "../lib/tenant-stacks/platform";
import { attachProgress } from "../lib/tenant-stacks/progress";
import { batchReport, failureDetails, offboardingLines, SUMMARY_HEAD, summaryLine, summaryRows } from "../lib/tenant-stacks/report";
import type { TenantStackSpec } from "../lib/tenant-stacks/spec";

const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

function print(json: boolean, value: unknown, human: () => string): void {
  process.stdout.write((json ? JSON.stringify(value, null, 2) : human()) + "\n");
}

/** Reads every platform stack the batch names, once each; refuses the batch on any residency or ownership problem. */
async function checkPlatforms(ctx: AutomationContext, specs: TenantStackSpec[]): Promise<{ problems: string[] }> {
  const platforms = new Map<string, PlatformSummary>();
  const problems: string[] = [];
  for (const name of [...new Set(specs.map((s) => s.platform))]) {
    try {
      platforms.set(name, await ctx.platformSummary(name));
    } catch (err) {
      problems.push(classifyFailure(err, name).message);
    }
  }
  problems.push(
    ...placementProblems(
      specs.filter((s) => platforms.has(s.platform)),
      platforms,
    ),
  );
  return { problems };
}

async function list(ctx: AutomationContext, json: boolean): Promise<number> {
  const stacks = await ctx.recordedTenantStacks();
  print(json, { tenants: stacks }, () =>
    stacks.length === 0
      ? "no tenant stacks"
      : table(
          ["stack", "tier", "region", "platform", "resources", "last update", "note"],
          stacks.map((s) => [
            s.stack,
            s.spec?.tier,
            s.spec?.region,
            s.spec?.platform,
            s.resourceCount,
            s.lastUpdate,
            s.problem ?? (s.updateInProgress ? "update in progress" : ""),
          ]),
        ),
  );
  return EXIT.ok;
}

async function tenant(argv: string[]): Promise<number> {
  const platforms = readPlatformStacks(REPO_ROOT);
  const command = parseTenantCommand(argv, {
    readFile: (file) => readFileSync(file, "utf8"),
    platformFor: (environment, region) => defaultPlatformStack(platforms, environment, region),
    defaultExportDir: path.join(REPO_ROOT, ".pulumi-local", "exports"),
    cwd: process.env.INIT_CWD ?? process.cwd(),
  });
  if (command.command === "help") {
    process.stdout.write(USAGE + "\n");
    return EXIT.ok;
  }
  // Offline: no toolchain, no backend.
  if (command.command === "synth")
    return runTenantSynth(command, { stacks: platforms, repoRoot: REPO_ROOT, stdout: process.stdout, stderr: process.stderr });

  const env = environmentOverride();
  const ctx = await automationContext({ repoRoot: REPO_ROOT, env });
  if ("unavailable" in ctx)
    throw new CommandFailure({ kind: "toolchain", message: `the Pulumi toolchain is not available: ${ctx.unavailable}` });
  if (command.command === "list") return list(ctx, command.json);

  const specs = command.jobs.flatMap((job: TenantJob) => (job.action === "destroy" ? [] : [job.spec]));
  if (specs.length) {
    const { problems } = await checkPlatforms(ctx, specs);
    if (problems.length)
      throw new CommandFailure(
        { kind: "refused", message: `refused before any change (${problems.length} problem(s)):`, details: problems },
        EXIT.usage,
      );
  }

  // One operation runs here; a batch runs each operation in its own process.
  const driver: TenantStackDriver = command.jobs.length === 1 ? new AutomationDriver(ctx) : processDriver({ repoRoot: REPO_ROOT, env });
  const progress = attachProgress(
    `${command.command} ${command.jobs.length} tenant stack(s)`,
    process.stderr,
    !command.json || process.env.TENANCY_PROGRESS === "1",
  );
  const started = Date.now();
  const results = await runJobs(command.jobs, driver, {
    concurrency: command.concurrency,
    onEvent: (e) => progress.onEvent(e),
    onResult: (r) => progress.onResult(r),
  });
  progress.close();
  const report = batchReport(command.command, results, Date.now() - started);
  print(command.json, report, () => {
    const details = failureDetails(results);
    const offboarding = offboardingLines(results);
    return [
      table(SUMMARY_HEAD, summaryRows(results)),
      summaryLine(report.summary),
      ...(offboarding.length ? ["", "offboarding:", ...offboarding.map((l) => `  ${l}`)] : []),
      ...(details.length ? ["", "failures:", ...details.map((d) => `  ${d}`)] : []),
    ].join("\n");
  });
  return results.every((r) => r.ok) ? EXIT.ok : EXIT.failed;
}

/** Parsing (cli/tenant-stacks.ts, a TenantSpecError is bad input), errors and exit codes: cli/runner.ts. */
runMain((argv) => guard("tenant", argv, () => tenant(argv), { usage: USAGE }));
