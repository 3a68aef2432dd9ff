/**
 * `npm run ops -- --stack <stack> [--json] -- <tenancy command…>`: one `tenancy` command run next to
 * a region's database, by an operator, with one command. On an AWS stack it runs inside the VPC in
 * the database executor (docs/adr/ADR-004-database-executor.md); on a local stack over the stack's
 * own connection. Either way it is the one code path of the providers: the stack's platform contract
 * names the connection (`database.connection`: direct, or the executor's function and region), and
 * `callDatabase` runs the `tenancy` operation on it (lib/executor/operations.ts), which runs the local
 * CLI's command code (cli/remote-tenancy.ts) under the executor's policy (cli/executor-policy.ts).
 *
 *   npm run ops -- --stack eu-prod -- tenant graduate acme-capital
 *   npm run ops -- --stack eu-prod --json -- tenant list
 *   npm run ops -- --stack local-eu -- audit
 *
 * Prints what `tenancy <command…>` prints (text, or JSON with --json) and exits with its exit code.
 * Progress on stderr: where it runs, a line every 30 s while it runs, and the elapsed time. Commands
 * that need files of this machine, Redis or an environment secret are refused with exit 2 naming the
 * argument (see cli/executor-policy.ts for why each).
 *
 * Exit codes: the command's (0 ok, 1 failed, 2 bad input); 2 for bad input to ops itself (no
 * --stack, an unknown stack, nothing after `--`, a contract output missing); 1 when the executor
 * failed or could not be invoked (nothing ran, or the handler's message says what did).
 */
import { callDatabase, describeConnection, isExecutorConnection, type DatabaseConnection } from "../components/db/provider-runtime";
import { invokeExecutor } from "../lib/executor/lambda-client";
import { runOperation } from "../lib/executor/operations";
import type { PlatformContract } from "../lib/platform/contract";
import type { PlatformStack } from "../lib/stack-config/platform-stacks";
import { CommandFailure, createOutput, PROCESS_SINK, UsageError, type Output, type OutputSink } from "./output";
import { printTenancyRun, TenancyRun } from "./remote-tenancy";
import { entryPoint, headerComment } from "./runner";

export const OPS_USAGE = "usage: npm run ops -- --stack <stack> [--json] -- <tenancy command> [options]";

export interface OpsDependencies {
  /** The platform stacks of this repository (stacks/Pulumi.<stack>.yaml). */
  stacks(): PlatformStack[];
  /** The stack's platform contract, read from its outputs on the backend. */
  readContract(stack: string): Promise<PlatformContract>;
  /** Where the command's output goes. @default PROCESS_SINK */
  sink?: OutputSink;
  /** How often a running command reports its elapsed time. @default 30000 */
  heartbeatMs?: number;
}

/** Seconds with one decimal: "12.3s". */
function elapsed(since: number): string {
  return `${((Date.now() - since) / 1000).toFixed(1)}s`;
}

/** Where the command runs, for the first progress line. */
function where(connection: DatabaseConnection): string {
  return isExecutorConnection(connection)
    ? `invoking ${connection.functionName} in ${connection.region}`
    : `running on ${describeConnection(connection)} (direct connection)`;
}

/** An executor that failed, in the operator's words; the handler's message is kept whole. */
function executorFailure(connection: DatabaseConnection, err: unknown): Error {
  const e = err as { kind?: string; errorType?: string; message?: string };
  if (e.kind !== "function") return err as Error; // an invoke failure already names the function and says nothing ran
  let hint = "";
  if (e.errorType === "OperationInputError" && /unknown operation "tenancy"/.test(e.message ?? ""))
    hint = "; the executor's artifact predates `npm run ops`: rebuild it (`npm run build:executor`) and deploy the stack";
  else if (/timed out/i.test(e.message ?? ""))
    hint = "; the invocation reached Lambda's time limit: moves (graduate, demote) resume where they stopped when run again";
  return new CommandFailure({ kind: "executor", message: `${describeConnection(connection)} failed: ${e.message}${hint}` });
}

/** Runs the tenancy operation on the contract's connection, with progress; returns the command's run. */
async function runOnStack(contract: PlatformContract, argv: string[], out: Output, heartbeatMs: number): Promise<TenancyRun> {
  const { connection, name: database } = contract.database;
  const started = Date.now();
  out.progress(`${where(connection)}: tenancy ${argv.join(" ")} on database ${database} of ${contract.stack}…`);
  const heartbeat = setInterval(() => out.progress(`… still running (${elapsed(started)})`), heartbeatMs);
  heartbeat.unref();
  let reply: unknown;
  try {
    reply = await callDatabase(connection, database, "tenancy", { argv }, { runOperation, invokeExecutor });
  } catch (err) {
    throw executorFailure(connection, err);
  } finally {
    clearInterval(heartbeat);
  }
  const run = TenancyRun.safeParse(reply);
  if (!run.success)
    throw new CommandFailure({
      kind: "executor",
      message: `${describeConnection(connection)} replied with something that is not a tenancy run (${run.error.issues[0]?.path.join(".") || "reply"}: ${run.error.issues[0]?.message})`,
    });
  out.progress(`finished in ${elapsed(started)} (exit ${run.data.exitCode})`);
  return run.data;
}

/** `main(argv)` of `npm run ops`, with its dependencies (scripts/ops.ts gives the real ones; tests their own). */
export function opsMain(deps: OpsDependencies): (argv: string[]) => Promise<number> {
  const sink = deps.sink ?? PROCESS_SINK;
  return entryPoint({
    program: "ops",
    usage: OPS_USAGE,
    help: () =>
      headerComment(__filename)
        .replace(/^\/\*\*\n/, "")
        .replace(/^ \* ?/gm, ""),
    options: { stack: { type: "string" } },
    allowPositionals: true,
    sink,
    async run({ values, positionals, argv, out }) {
      const end = argv.indexOf("--");
      const command = end === -1 ? [] : argv.slice(end + 1);
      // Everything after `--` is the command; a positional before it is a misplaced command.
      if (positionals.length !== command.length)
        throw new UsageError("the tenancy command goes after `--`: npm run ops -- --stack <stack> -- tenant list", "command");
      const stack = values.stack;
      if (stack === undefined || stack === "") throw new UsageError("is required: the platform stack whose database to run on", "--stack");
      if (command.length === 0)
        throw new UsageError("nothing after `--`: name the tenancy command to run, e.g. `-- tenant list`", "command");
      const known = deps.stacks();
      if (!known.some((s) => s.stack === stack))
        throw new UsageError(
          `no platform stack "${stack}" in stacks/ (known: ${known.map((s) => s.stack).join(", ") || "none"})`,
          "--stack",
        );
      const json = values.json === true || command.includes("--json");
      const contract = await deps.readContract(stack);
      // A --json after `--` is the command's: ops answers in JSON then too.
      const run = await runOnStack(contract, command, json === out.json ? out : createOutput(json, sink), deps.heartbeatMs ?? 30_000);
      return printTenancyRun(run, json, sink);
    },
  });
}
