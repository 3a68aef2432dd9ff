/**
 * `npm run rollout -- [--waves staging,eu,us] [--env <env>] [--dry-run] ...`: the region rollout
 * (lib/rollout/run.ts) on the repository's platform stacks and the tenant stacks of the backend.
 * Progress on stderr, the report as a table (or `--json`) on stdout.
 *
 * Exit codes: 0 completed (or a clean dry run) · 1 halted at a failure (resume by running it again)
 * or a dry run that found failures · 2 bad input, or an unfinished rollout of other waves.
 */
import { printCommandError, table, unexpectedFailure, type CommandError } from "../cli/output";
import { automationContext, environmentOverride, processDriver } from "../components/tenant/drivers";
import { readPlatformStacks } from "../lib/stack-config/platform-stacks";
import { REPO_ROOT } from "../lib/pulumi/env";
import { repoPlatformOps, tenantOps } from "../lib/rollout/automation";
import { parseRolloutCommand, ROLLOUT_USAGE } from "../cli/rollout";
import { outcomeLines, STEP_HEAD, stepRows } from "../lib/rollout/report";
import { runRollout } from "../lib/rollout/run";
import { FileStateStore, RolloutStateError } from "../lib/rollout/state";
import { formatChanges } from "../lib/tenant-stacks/jobs";
import { resultLine, seconds } from "../lib/tenant-stacks/progress";
import { TenantSpecError } from "../lib/tenant-stacks/spec";

function fail(json: boolean, error: CommandError, code: number): number {
  printCommandError("rollout", json, error);
  return code;
}

async function main(argv: string[]): Promise<number> {
  const json = argv.includes("--json");
  let command;
  try {
    command = parseRolloutCommand(argv, readPlatformStacks(REPO_ROOT), { repoRoot: REPO_ROOT, cwd: process.env.INIT_CWD ?? process.cwd() });
  } catch (err) {
    if (err instanceof TenantSpecError)
      return fail(json, { kind: "usage", message: err.message, field: err.field, usage: ROLLOUT_USAGE }, 2);
    throw err;
  }
  if (command.help) {
    process.stdout.write(ROLLOUT_USAGE + "\n");
    return 0;
  }
  const env = environmentOverride();
  const ctx = await automationContext({ repoRoot: REPO_ROOT, env });
  if ("unavailable" in ctx)
    return fail(json, { kind: "toolchain", message: `the Pulumi toolchain is not available: ${ctx.unavailable}` }, 1);

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
    if (err instanceof RolloutStateError) return fail(json, { kind: "state", message: err.message }, 2);
    throw err;
  }
  if (command.json) process.stdout.write(JSON.stringify(report, null, 2) + "\n");
  else process.stdout.write([table(STEP_HEAD, stepRows(report.steps)), ...outcomeLines(report)].join("\n") + "\n");
  return report.completed ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => process.exit(fail(process.argv.includes("--json"), unexpectedFailure(err), 1)),
);
