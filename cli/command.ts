/**
 * What a `tenancy` command is and what it is given: the types that cli/tenancy.ts (the dispatcher)
 * and cli/commands/* (one file per command) both import, so neither imports the other for them.
 */
import type { ParseArgsConfig } from "node:util";
import type { Output } from "./output";

/** Parsed flags (strict: an unknown flag is a usage error). */
export type Flags = Record<string, string | boolean | (string | boolean)[] | undefined>;

export interface CommandContext {
  /** Positional arguments after the command words. */
  args: string[];
  flags: Flags;
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
