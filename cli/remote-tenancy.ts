/**
 * A `tenancy` command run in one place and printed in another: inside the database executor (the
 * `tenancy` operation of lib/executor/operations.ts) on the executor's session, its output captured
 * and returned as JSON; then printed by `npm run ops` (cli/ops.ts) on the operator's machine exactly
 * as the local CLI prints it. The command code is the local CLI's (cli/tenancy.ts `runTenancy`, the
 * files of cli/commands): only the session, where the output goes and the executor's policy
 * (cli/executor-policy.ts) differ.
 *
 * The run is always in --json mode (its document is what `--json` prints), and it also carries the
 * text the command prints without --json, rendered by the command's own renderer from the same
 * value: the operator sees either, byte for byte what the local CLI would print.
 */
import { z } from "zod";
import type { GivenDatabase } from "./command";
import { executorRefusal } from "./executor-policy";
import { PROCESS_SINK, printCommandError, showsProgress, UsageError, type CommandError, type Output, type OutputSink } from "./output";
import { runTenancy } from "./tenancy";

/** The progress lines a run keeps (the last ones): a reply of Lambda is at most 6 MB. */
export const MAX_PROGRESS_LINES = 2000;

/** One `tenancy` command's run, as the `tenancy` operation returns it (JSON). */
export const TenancyRun = z.object({
  /** 0 ok, 1 failed or problems found, 2 bad input or refused (nothing ran). */
  exitCode: z.number().int().min(0).max(255),
  /** What `tenancy … --json` prints: the command's result, or `{ error: { kind, message, field? … } }`. */
  output: z.unknown(),
  /** What `tenancy …` prints on stdout without --json; absent when it failed (the error is in `output`). */
  text: z.string().optional(),
  /** Progress and notices (the local CLI's stderr), in order; the last MAX_PROGRESS_LINES. */
  progress: z.array(z.string()),
  /** Earlier progress lines left out to keep the reply small. */
  progressDropped: z.number().int().min(0).optional(),
});
export type TenancyRun = z.infer<typeof TenancyRun>;

/** A JSON document as printed; anything else is kept as its text rather than lost. */
function parseDocument(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text.replace(/\n$/, "");
  }
}

/** `--json` added before a `--` terminator, so it stays a flag. */
function withJson(argv: readonly string[]): string[] {
  if (argv.includes("--json")) return [...argv];
  const end = argv.indexOf("--");
  return end === -1 ? [...argv, "--json"] : [...argv.slice(0, end), "--json", ...argv.slice(end)];
}

/**
 * Runs `tenancy <argv…>` on `database` (a session this function does not close) under the
 * executor's policy, and captures what it prints. Never throws for the command's own failures:
 * they are in `exitCode` and `output.error`, as the local CLI reports them.
 */
export async function runTenancyOnSession(argv: readonly string[], database: GivenDatabase): Promise<TenancyRun> {
  let document: unknown = null;
  let text: string | undefined;
  const progress: string[] = [];
  let progressDropped = 0;
  const addProgress = (message: string) => {
    progress.push(message);
    if (progress.length > MAX_PROGRESS_LINES) {
      progress.shift();
      progressDropped++;
    }
  };
  // In --json mode runTenancy prints a failure as one JSON document on stdout: that is the output.
  const sink: OutputSink = {
    stdout: (chunk) => void (document = parseDocument(chunk)),
    stderr: (chunk) => chunk.replace(/\n$/, "").split("\n").forEach(addProgress),
  };
  const output = (): Output => ({
    json: true,
    result(value, human) {
      document = JSON.parse(JSON.stringify(value) ?? "null");
      text = human ? human() : String(value);
    },
    progress: addProgress,
  });
  const exitCode = await runTenancy(withJson(argv), {
    sink,
    output,
    database,
    admit(command, { flags }) {
      const refusal = executorRefusal(command.words, flags, { keepsExports: database.exportSink !== undefined });
      if (refusal) throw new UsageError(`not run inside the executor: ${refusal.reason}`, refusal.field);
    },
  });
  await endOpenTransaction(database);
  return { exitCode, output: document, ...(text !== undefined ? { text } : {}), progress, ...(progressDropped ? { progressDropped } : {}) };
}

/** A command that failed inside a transaction leaves the session as the local CLI's closed one would: nothing pending. */
async function endOpenTransaction({ client }: GivenDatabase): Promise<void> {
  if (client.getTransactionStatus?.() !== "I") await client.query("ROLLBACK").catch(() => {});
}

/** The failure a run reports (`output.error`), if any. */
export function runError(run: TenancyRun): CommandError | undefined {
  const error = (run.output as { error?: unknown } | null)?.error;
  const parsed = z.object({ kind: z.string(), message: z.string() }).loose().safeParse(error);
  return parsed.success ? parsed.data : undefined;
}

/**
 * Prints a run as `tenancy <argv…>` would have printed it here (progress on stderr with the same
 * rule, the result or the error), and returns its exit code.
 */
export function printTenancyRun(run: TenancyRun, json: boolean, sink: OutputSink = PROCESS_SINK): number {
  if (showsProgress(json)) {
    if (run.progressDropped) sink.stderr(`(${run.progressDropped} earlier progress line(s) left out)\n`);
    for (const line of run.progress) sink.stderr(`${line}\n`);
  }
  const error = runError(run);
  if (json) sink.stdout(JSON.stringify(run.output, null, 2) + "\n");
  else if (run.text !== undefined) sink.stdout(`${run.text}\n`);
  else if (error) printCommandError("tenancy", false, error, sink);
  else sink.stdout(JSON.stringify(run.output, null, 2) + "\n");
  return run.exitCode;
}
