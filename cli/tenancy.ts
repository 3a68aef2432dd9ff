/**
 * `tenancy <command>`: parses the command line and calls the library. One file per command under
 * cli/commands/ (their types: cli/command.ts); this file only finds the command. Parsing, --help,
 * errors and exit codes are the runner's (cli/runner.ts), as for every entry point.
 */
import { createOutput, UsageError } from "./output";
import { guard, parseCommandLine, runMain } from "./runner";
import type { Command } from "./command";
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

/** Runs `tenancy <argv…>` and returns its exit code; never exits (tests call it in-process). */
export function main(argv: string[]): Promise<number> {
  return guard("tenancy", argv, async () => {
    const out = createOutput(argv.includes("--json"));
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
    return command.run({ args: parsed.positionals, flags: parsed.values, out });
  });
}

/** Entry point for bin/tenancy.js: runs, then exits with the command's code once stdout and stderr have drained. */
export function run(argv: string[]): void {
  runMain(main, argv);
}
