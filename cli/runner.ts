/**
 * The one runner of every entry point: the `tenancy` CLI (bin/tenancy.js), the npm scripts
 * (scripts/*.ts) and the benchmarks (bench/*.ts). It owns what they used to copy each:
 *
 *   - parsing: node:util parseArgs in strict mode, plus `--json` and `--help`/`-h` for everyone;
 *     a typo'd flag is bad input naming the flag (`parseCommandLine`);
 *   - `--help`: the entry point's help text on stdout, exit 0 (`{ usage }` with --json);
 *   - errors: whatever is thrown becomes one printed CommandError (cli/output.ts): bad input
 *     (UsageError, a zod error, a parseArgs error, a stack config or tenant spec error, a platform
 *     stack's outputs that break lib/platform/contract.ts) exits 2,
 *     anything else 1 (`guard`);
 *   - the end of the process: the exit code is set, stdout and stderr are drained, and only then
 *     does the process end (`runMain`). `process.exit()` with writes still queued cuts the output
 *     at the pipe's capacity (64 KiB on Linux: `npm run synth -- --stack eu-prod --out - | jq` used
 *     to get broken JSON), so no entry point calls it itself.
 *
 * A script with flags:
 *
 *   const main = entryPoint({
 *     program: "synth", usage: "usage: npm run synth -- --stack <name> [--json]",
 *     options: { stack: { type: "string" } },
 *     async run({ values, out }) { …; return failed ? 1 : 0; },
 *   });
 *   if (require.main === module) runMain(main);
 *
 * `main(argv)` never exits and never throws: tests call it in-process.
 * Model: graphile/migrate's src/cli.ts, where every command goes through one wrapper.
 */
import { readFileSync } from "node:fs";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { ZodError } from "zod";
import { PlatformContractError } from "../lib/platform/contract-error";
import { StackConfigError } from "../lib/stack-config/common";
import { TenantSpecError } from "../lib/tenant-stacks/spec";
import {
  CommandFailure,
  createOutput,
  printCommandError,
  unexpectedFailure,
  UsageError,
  usageErrorFromParseArgs,
  usageErrorFromZod,
  type CommandError,
  type Output,
  type OutputSink,
} from "./output";

export type Options = NonNullable<ParseArgsConfig["options"]>;

/** The flags every entry point takes. */
export const COMMON_OPTIONS = {
  json: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const satisfies Options;

export interface CommandLineSpec {
  /** The synopsis, attached to a parse error (printed after the message; its own field with --json). */
  usage?: string;
  /** Positional arguments allowed. @default false */
  allowPositionals?: boolean;
}

/** `argv` parsed strictly with the entry point's options plus COMMON_OPTIONS; a parse error is a UsageError naming the flag. */
export function parseCommandLine<O extends Options>(argv: string[], options: O, spec: CommandLineSpec = {}) {
  try {
    return parseArgs({
      args: argv,
      options: { ...COMMON_OPTIONS, ...options },
      allowPositionals: spec.allowPositionals ?? false,
      strict: true,
    });
  } catch (err) {
    throw usageErrorFromParseArgs(err, spec.usage);
  }
}

/** True for node:util parseArgs' own errors (ERR_PARSE_ARGS_UNKNOWN_OPTION, …). */
function isParseArgsError(err: unknown): boolean {
  return typeof (err as { code?: unknown } | null)?.code === "string" && (err as { code: string }).code.startsWith("ERR_PARSE_ARGS");
}

/**
 * A thrown error as the CommandError every entry point prints, and its exit code: 2 for bad input
 * (nothing was written), 1 for anything else. The one mapping of the repository's bad-input errors.
 */
export function commandFailure(err: unknown, usage?: string): { error: CommandError; code: 1 | 2 } {
  if (err instanceof CommandFailure) return { error: err.error, code: err.code };
  if (err instanceof UsageError) return { error: { kind: "usage", message: err.message, field: err.field, usage: err.usage }, code: 2 };
  if (err instanceof TenantSpecError) return { error: { kind: "usage", message: err.message, field: err.field, usage }, code: 2 };
  if (err instanceof StackConfigError) return commandFailure(new UsageError(err.reason, err.key));
  // A platform stack's outputs that break the contract: nothing was changed by the reader.
  if (err instanceof PlatformContractError) return { error: { kind: "contract", message: err.message, field: err.output }, code: 2 };
  if (err instanceof ZodError) return commandFailure(usageErrorFromZod(err));
  if (isParseArgsError(err)) return commandFailure(usageErrorFromParseArgs(err, usage));
  return { error: unexpectedFailure(err), code: 1 };
}

/**
 * Runs `fn` and returns its exit code (0 when it returns nothing); a thrown error is printed as a
 * CommandError (`<program>: <message>` on stderr, or `{ "error": … }` on stdout with --json; to
 * `options.sink` when given, else the process) and becomes exit 2 (bad input) or 1.
 */
export async function guard(
  program: string,
  argv: readonly string[],
  fn: () => Promise<number | void> | number | void,
  options: { usage?: string; sink?: OutputSink } = {},
): Promise<number> {
  try {
    return (await fn()) ?? 0;
  } catch (err) {
    const { error, code } = commandFailure(err, options.usage);
    printCommandError(program, argv.includes("--json"), error, options.sink);
    return code;
  }
}

/** Parsed flags: the entry point's options plus --json and --help. */
export type ParsedValues<O extends Options> = ReturnType<typeof parseCommandLine<O>>["values"];

export interface EntryPointInput<O extends Options> {
  values: ParsedValues<O>;
  positionals: string[];
  /** Results on stdout (JSON with --json), progress on stderr (cli/output.ts). */
  out: Output;
  argv: string[];
}

export interface EntryPointSpec<O extends Options> extends CommandLineSpec {
  /** The name errors start with: `synth: --stack: no stack file …`. */
  program: string;
  /** The synopsis: `usage: npm run synth -- …`. */
  usage: string;
  /** What --help prints. @default usage */
  help?: string | (() => string);
  options: O;
  /** Where results, progress and errors go. @default PROCESS_SINK (tests capture with their own) */
  sink?: OutputSink;
  /** The work; its return value is the exit code (0 when nothing is returned). */
  run(input: EntryPointInput<O>): Promise<number | void> | number | void;
}

/** An entry point's `main(argv)`: parse strictly, answer --help, run, map errors to exit codes. Never exits, never throws. */
export function entryPoint<O extends Options>(spec: EntryPointSpec<O>): (argv: string[]) => Promise<number> {
  return (argv) =>
    guard(
      spec.program,
      argv,
      async () => {
        const { values, positionals } = parseCommandLine(argv, spec.options, spec);
        const common = values as { json?: boolean; help?: boolean };
        const out = createOutput(common.json === true, spec.sink);
        if (common.help) {
          const help = typeof spec.help === "function" ? spec.help() : (spec.help ?? spec.usage);
          out.result({ usage: spec.usage }, () => help.replace(/\n+$/, ""));
          return 0;
        }
        return spec.run({ values, positionals, out, argv });
      },
      { usage: spec.usage, sink: spec.sink },
    );
}

/** An entry point's help text taken from its file's header comment (the part before the first `*\/`). */
export function headerComment(file: string): string {
  return readFileSync(file, "utf8").split("*/")[0];
}

/** Resolves once everything written to `stream` so far has been handed to the operating system (or the stream is gone). */
export function drained(stream: NodeJS.WritableStream & { destroyed?: boolean; writableLength?: number }): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed) return resolve();
    // Writes complete in order: the callback of an empty write runs after every earlier write has.
    try {
      stream.write("", () => resolve());
    } catch {
      resolve();
    }
  });
}

/**
 * Sets the exit code, waits until stdout and stderr have drained, then ends the process with
 * that code. Ending explicitly (after the drain) keeps the old contract that a finished command
 * ends even when a library left a handle open (a pool's idle timer, the Automation API's server).
 */
export async function exitAfterDrain(code: number): Promise<never> {
  process.exitCode = code;
  await Promise.all([drained(process.stdout), drained(process.stderr)]);
  process.exit(code);
}

/** Runs an entry point's main as the process: its exit code, after stdout and stderr have drained. */
export function runMain(main: (argv: string[]) => Promise<number>, argv: string[] = process.argv.slice(2)): void {
  main(argv).then(
    (code) => exitAfterDrain(code),
    (err: unknown) => {
      // `guard` catches everything; this is the net under a main that does not use it.
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      return exitAfterDrain(1);
    },
  );
}
