/**
 * `tenancy <command>`: parses the command line and calls the library. One file per command under
 * cli/commands/; this file only dispatches and maps errors to exit codes.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { ZodError } from "zod";
import {
  commandErrorOf,
  createOutput,
  printCommandError,
  UsageError,
  usageErrorFromParseArgs,
  usageErrorFromZod,
  type Output,
} from "./output";
import { commands } from "./commands";

export interface CommandContext {
  /** Positional arguments after the command words. */
  args: string[];
  /** Parsed flags (strict: an unknown flag is a usage error). */
  flags: Record<string, string | boolean | (string | boolean)[] | undefined>;
  out: Output;
}

export interface Command {
  /** The command words, e.g. ["tenant", "create"]. */
  words: string[];
  /** One line for `tenancy help`. */
  summary: string;
  usage: string;
  options?: ParseArgsConfig["options"];
  run(ctx: CommandContext): Promise<number | void>;
}

const COMMON_OPTIONS: NonNullable<ParseArgsConfig["options"]> = {
  json: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
};

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

export async function main(argv: string[]): Promise<number> {
  const json = argv.includes("--json");
  const out = createOutput(json);
  try {
    const found = findCommand(argv);
    if (!found) {
      if (argv.length === 0 || argv[0] === "help" || argv[0] === "--help" || argv[0] === "-h") {
        out.result({ commands: commands.map((c) => ({ usage: c.usage, summary: c.summary })) }, helpText);
        return 0;
      }
      throw new UsageError(`unknown command "${argv.join(" ")}"; run \`tenancy help\``, "command");
    }
    const { command, rest } = found;
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options: { ...COMMON_OPTIONS, ...command.options }, allowPositionals: true, strict: true });
    } catch (err) {
      throw usageErrorFromParseArgs(err, `usage: tenancy ${command.usage}`);
    }
    if (parsed.values.help) {
      out.result({ usage: command.usage, summary: command.summary }, () => `usage: tenancy ${command.usage}\n\n${command.summary}`);
      return 0;
    }
    const code = await command.run({ args: parsed.positionals, flags: parsed.values, out });
    return code ?? 0;
  } catch (err) {
    return reportError(err, out);
  }
}

function reportError(err: unknown, out: Output): number {
  const failure = err instanceof ZodError ? usageErrorFromZod(err) : err;
  printCommandError("tenancy", out.json, commandErrorOf(failure));
  return failure instanceof UsageError ? 2 : 1;
}

/** Entry point for bin/tenancy.js: runs and exits with the command's code. */
export function run(argv: string[]): void {
  main(argv).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`tenancy: ${String(err)}\n`);
      process.exit(1);
    },
  );
}
