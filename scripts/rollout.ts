/**
 * `npm run rollout -- [--waves staging,eu,us] [--env <env>] [--dry-run] ...`: the region rollout
 * (lib/rollout/run.ts) on the repository's platform stacks and the tenant stacks of the backend.
 * Progress on stderr, the report as a table (or `--json`) on stdout.
 *
 * Exit codes: 0 completed (or a clean dry run) · 1 halted at a failure (resume by running it again)
 * or a dry run that found failures · 2 bad input, an unfinished rollout of other waves, or a platform
 * stack whose outputs break the platform contract (lib/platform/contract.ts; its tenant stacks untouched).
 */
import { CommandFailure, table } from "../cli/output";
import { guard, runMain } from "../cli/runner";
import { automationContext, environmentOverride, processDriver } from "../components/tenant/drivers";
import { readPlatformStacks } from "../lib/stack-config/platform-stacks";
import { REPO_ROOT } from "../lib/pulumi/env";
import { repoPlatformOps, tenantOps } from "../lib/rollout/automation";
import { parseRolloutCommand, ROLLOUT_USAGE } from "../cli/rollout";
import { outcomeLines, STEP_HEAD, stepRows } from "../lib/rollout/report";
import { planLines, platformRegions, RolloutRefusedError } from "../lib/rollout/plan";
import { runRollout } from "../lib/rollout/run";
import { FileStateStore, RolloutStateError } from "../lib/rollout/state";
import { formatChanges } from "../lib/tenant-stacks/jobs";
import { resultLine, seconds } from "../lib/tenant-stacks/progress";

async function rollout(argv: string[]): Promise<number> {
  const stacks = readPlatformStacks(REPO_ROOT);
  const command = parseRolloutCommand(argv, stacks, {
    repoRoot: REPO_ROOT,
    cwd: process.env.INIT_CWD ?? process.cwd(),
  });
  if (command.help) {
    process.stdout.write(ROLLOUT_USAGE + "\n");
    return 0;
  }
  const env = environmentOverride();
  const ctx = await automationContext({ repoRoot: REPO_ROOT, env });
  if ("unavailable" in ctx)
    throw new CommandFailure({ kind: "toolchain", message: `the Pulumi toolchain is not available: ${ctx.unavailable}` });

  const progress = !command.json || process.env.TENANCY_PROGRESS === "1";
  const say = (line: string) => progress && process.stderr.write(line + "\n");
  let report;
  try {
    report = await runRollout({
      environment: command.environment,
      waves: command.waves,
      platform: repoPlatformOps(ctx),
      tenants: tenantOps(ctx, processDriver({ repoRoot: REPO_ROOT, env })),
      store: new FileStateStore(command.stateFile),
      concurrency: command.concurrency,
      dryRun: command.dryRun,
      regions: platformRegions(stacks),
      restart: command.restart,
      onEvent: (e) => {
        if (e.kind === "wave" || e.kind === "tenants") say(`== ${e.message}`);
        else if (e.step && !e.step.kind.startsWith("tenant")) {
          const s = e.step;
          say(
            `   ${s.kind} ${s.stack}: ${s.status === "failed" ? `FAILED: ${s.message}` : `${s.status}${s.changes ? ` (${formatChanges(s.changes)})` : ""}`}${s.durationMs ? ` ${seconds(s.durationMs)}` : ""}`,
          );
        }
      },
      onTenantResult: (r) => say(`   ${resultLine(r)}`),
    });
  } catch (err) {
    if (err instanceof RolloutStateError) throw new CommandFailure({ kind: "state", message: err.message }, 2);
    if (err instanceof RolloutRefusedError)
      throw new CommandFailure({ kind: "refused", message: "refused before any stack was touched:", details: err.problems }, 2);
    throw err;
  }
  if (command.json) process.stdout.write(JSON.stringify(report, null, 2) + "\n");
  else
    process.stdout.write(
      [
        ...(command.dryRun ? ["plan:", ...planLines(report.plan), ""] : []),
        table(STEP_HEAD, stepRows(report.steps)),
        ...outcomeLines(report),
      ].join("\n") + "\n",
    );
  if (report.completed) return 0;
  return report.steps.some((s) => s.kind === "platform-contract" && s.status === "failed") ? 2 : 1;
}

/** Parsing (cli/rollout.ts, a TenantSpecError is bad input), errors and exit codes: cli/runner.ts. */
runMain((argv) => guard("rollout", argv, () => rollout(argv), { usage: ROLLOUT_USAGE }));
