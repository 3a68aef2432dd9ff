/**
 * `tenancy <command>`: parses the command line and calls the library. One file per command under
 * cli/commands/ (their types: cli/command.ts); this file only finds the command. Parsing, --help,
 * errors and exit codes are the runner's (cli/runner.ts), as for every entry point.
 */
import { createOutput, UsageError, type Output, type OutputSink } from "./output";
import { guard, parseCommandLine, runMain } from "./runner";
import type { Command, Flags, GivenDatabase } from "./command";
import { commands } from "./commands";

function findCommand(argv: string[]): { command: Command; rest: string[] } | undefined {
  const matches = commands.filter((c) => c.words.every((w, i) => argv[i] === w)).sort((a, b) => b.words.length - a.words.length);
  return matches[0] && { command: matches[0], rest: argv.slice(matches[0].words.length) };
}

function helpText(): string {
  return [
    "usage: tenancy <command> [options] [--json]",
    "",
    ...commands.flatMap((c) => [`  tenancy ${c.usage}`, `      ${c.summary}`]),
    "",
    "Every command takes --json. Exit codes: 0 ok, 1 problems found or failed, 2 bad input (nothing written).",
  ].join("\n");
}

/**
 * What one run of `tenancy` is given. The CLI (bin/tenancy.js) gives nothing: the process's stdout
 * and stderr, a session from --database-url/DATABASE_URL. Inside the executor, cli/remote-tenancy.ts
 * gives a capture, the executor's session and its policy: the same dispatch and the same commands.
 */
export interface TenancyIo {
  /** Where a failure is printed. @default PROCESS_SINK */
  sink?: OutputSink;
  /** The command's Output. @default createOutput(json, sink) */
  output?: (json: boolean) => Output;
  /** The session commands use instead of opening one from the flags. */
  database?: GivenDatabase;
  /** Sees the command and its parsed input before it runs; throws (a UsageError) to refuse it. */
  admit?: (command: Command, input: { args: string[]; flags: Flags }) => void;
}

/** Runs `tenancy <argv…>` and returns its exit code; never exits (tests and the executor call it in-process). */
export function runTenancy(argv: string[], io: TenancyIo = {}): Promise<number> {
  return guard(
    "tenancy",
    argv,
    async () => {
      const json = argv.includes("--json");
      const out = io.output ? io.output(json) : createOutput(json, io.sink);
      const found = findCommand(argv);
      if (!found) {
        if (argv.length === 0 || argv[0] === "help" || argv[0] === "--help" || argv[0] === "-h") {
          out.result({ commands: commands.map((c) => ({ usage: c.usage, summary: c.summary })) }, helpText);
          return 0;
        }
        throw new UsageError(`unknown command "${argv.join(" ")}"; run \`tenancy help\``, "command");
      }
      const { command, rest } = found;
      const parsed = parseCommandLine(rest, command.options ?? {}, { usage: `usage: tenancy ${command.usage}`, allowPositionals: true });
      if (parsed.values.help) {
        out.result({ usage: command.usage, summary: command.summary }, () => `usage: tenancy ${command.usage}\n\n${command.summary}`);
        return 0;
      }
      io.admit?.(command, { args: parsed.positionals, flags: parsed.values });
      return command.run({ args: parsed.positionals, flags: parsed.values, out, database: io.database });
    },
    { sink: io.sink },
  );
}

/** `tenancy <argv…>` on this machine: its exit code; never exits. */
export function main(argv: string[]): Promise<number> {
  return runTenancy(argv);
}

/** Entry point for bin/tenancy.js: runs, then exits with the command's code once stdout and stderr have drained. */
export function run(argv: string[]): void {
  runMain(main, argv);
}
