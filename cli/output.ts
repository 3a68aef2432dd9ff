/**
 * How every command talks to its user: human-readable tables by default, one JSON document with
 * `--json`, progress on stderr, and exit codes that scripts can rely on:
 *   0 success · 1 the command ran and found problems (audit findings, failed checks) · 2 bad input.
 */
import Table from "cli-table3";
import { ZodError } from "zod";

/** Bad input (flags, config, tenant ids, files): exit code 2, and nothing was written. */
export class UsageError extends Error {
  constructor(
    message: string,
    /** The flag, argument or config key at fault, e.g. "--tier" or "tenants[2].region". */
    readonly field?: string,
    /** The command's synopsis, printed after the message (a field of its own with --json). */
    readonly usage?: string,
  ) {
    super(field ? `${field}: ${message}` : message);
    this.name = "UsageError";
  }
}

/** node:util parseArgs' error as a UsageError naming the flag it is about ("Unknown option '--bogus'"). */
export function usageErrorFromParseArgs(err: unknown, usage?: string): UsageError {
  const message = err instanceof Error ? err.message : String(err);
  const flag = /[Oo]ption '(-[^' ]+)/.exec(message)?.[1];
  return new UsageError(message, flag ?? "arguments", usage);
}

/** Turns a zod error into one UsageError naming the first offending field. */
export function usageErrorFromZod(err: ZodError, fieldPrefix = ""): UsageError {
  const issue = err.issues[0];
  const field =
    fieldPrefix +
    issue.path
      .map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`))
      .join("")
      .replace(/^\./, "");
  return new UsageError(issue.message, field || undefined);
}

/**
 * Where an entry point's text goes: the process's stdout and stderr (`PROCESS_SINK`), or a capture
 * (cli/remote-tenancy.ts runs a `tenancy` command inside the executor and sends its output back).
 */
export interface OutputSink {
  stdout(text: string): void;
  stderr(text: string): void;
}

export const PROCESS_SINK: OutputSink = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
};

export interface Output {
  json: boolean;
  /** The command's result: printed as JSON with --json, else rendered by `human`. */
  result(value: unknown, human?: () => string): void;
  /** Progress and notices: stderr, so stdout stays parseable. Silent with --json unless `always`. */
  progress(message: string): void;
}

/**
 * A failed command as every entry point prints it (cli/runner.ts: the `tenancy` CLI, the npm scripts, the benchmarks).
 * `kind` says what went wrong ("usage" is bad input: exit 2, nothing written), `field` names the
 * input at fault, `details` lists several problems, `usage` is the command's synopsis.
 */
export interface CommandError {
  kind: string;
  message: string;
  field?: string;
  details?: string[];
  usage?: string;
}

/**
 * A failure an entry point reports as it is (a refusal, an unavailable toolchain, a rollout state
 * conflict): thrown, it is printed as `error` and ends the command with `code` (cli/runner.ts).
 */
export class CommandFailure extends Error {
  constructor(
    readonly error: CommandError,
    readonly code: 1 | 2 = 1,
  ) {
    super(error.message);
    this.name = "CommandFailure";
  }
}

/** With --json one document on stdout, `{ "error": { kind, message, … } }`; else `<program>: <message>` on stderr. */
export function printCommandError(program: string, json: boolean, error: CommandError, sink: OutputSink = PROCESS_SINK): void {
  if (json) {
    sink.stdout(JSON.stringify({ error }, null, 2) + "\n");
    return;
  }
  const details = (error.details ?? []).map((d) => `  - ${d}\n`).join("");
  sink.stderr(`${program}: ${error.message}\n${details}${error.usage ? `${error.usage}\n` : ""}`);
}

/** An error nobody expected, as a CommandError; its stack goes to stderr when TENANCY_DEBUG is set. */
export function unexpectedFailure(err: unknown): CommandError {
  if (process.env.TENANCY_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  return { kind: "failure", message: err instanceof Error ? err.message : String(err) };
}

export function createOutput(json: boolean, sink: OutputSink = PROCESS_SINK): Output {
  return {
    json,
    result(value, human) {
      if (json) sink.stdout(JSON.stringify(value, null, 2) + "\n");
      else sink.stdout((human ? human() : String(value)) + "\n");
    },
    progress(message) {
      if (showsProgress(json)) sink.stderr(message + "\n");
    },
  };
}

/** Progress is printed without --json, and with it only when TENANCY_PROGRESS=1 (stdout stays one document). */
export function showsProgress(json: boolean): boolean {
  return !json || process.env.TENANCY_PROGRESS === "1";
}

export type Cell = string | number | boolean | bigint | Date | null | undefined;

/** A plain text table; `rows` are arrays of cells in `head` order (null and undefined print empty). */
export function table(head: string[], rows: Cell[][]): string {
  const t = new Table({ head, style: { head: [], border: [] } });
  for (const row of rows)
    t.push(row.map((cell) => (cell === null || cell === undefined ? "" : cell instanceof Date ? cell.toISOString() : String(cell))));
  return t.toString();
}
