/**
 * What a `tenancy` command is and what it is given: the types that cli/tenancy.ts (the dispatcher)
 * and cli/commands/* (one file per command) both import, so neither imports the other for them.
 */
import type { ParseArgsConfig } from "node:util";
import type pg from "pg";
import type { ExportSink } from "../lib/tenant/export-sink";
import type { Output } from "./output";

/** Parsed flags (strict: an unknown flag is a usage error). */
export type Flags = Record<string, string | boolean | (string | boolean)[] | undefined>;

/**
 * A session the command is given instead of opening one from --database-url/DATABASE_URL: the
 * executor's, when the command runs inside the VPC (cli/remote-tenancy.ts). The command never closes it.
 */
export interface GivenDatabase {
  client: pg.Client;
  /** What messages call the server, e.g. "database alphapulse (the executor's session)". */
  description: string;
  /**
   * Where an offboarding keeps its export there (the executor's: the region's backup bucket,
   * lib/tenant/s3-export-sink.ts); undefined when that place keeps none.
   */
  exportSink?: () => Promise<ExportSink>;
}

export interface CommandContext {
  /** Positional arguments after the command words. */
  args: string[];
  flags: Flags;
  out: Output;
  /** Set when the command runs on a given session (the executor); unset on the operator's machine. */
  database?: GivenDatabase;
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
