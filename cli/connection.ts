/**
 * "Open a connection from the flags": every command that talks to PostgreSQL spreads
 * `CONNECTION_OPTIONS` into its options and runs its work inside `withConnection(ctx, fn)`;
 * one that talks to Redis spreads `REDIS_OPTIONS` and uses `withRedis(ctx, fn)`.
 *
 *   options: { ...CONNECTION_OPTIONS, tier: { type: "string" } },
 *   async run(ctx) {
 *     const input = parse(ctx);                       // validate everything first: bad input writes nothing
 *     return withConnection(ctx, (client) => work(client, input));
 *   }
 *
 * The URL comes from `--database-url`, else `DATABASE_URL`; neither is a usage error (exit 2)
 * naming both. The connection is one dedicated session (session-level advisory locks, SET LOCAL
 * ROLE in transactions), closed when `fn` settles. Server notices go to stderr as progress.
 * Messages never contain the password: `describeDatabaseUrl()` is what we print.
 */
import type Redis from "ioredis";
import pg from "pg";
import type { ParseArgsConfig } from "node:util";
import type { CommandContext } from "./command";
import { openRedis } from "../lib/redis/client";
import { connect } from "../lib/db/client";
import { hasBeenMigrated } from "../lib/schema/migrate";
import { UsageError } from "./output";

export const CONNECTION_OPTIONS = {
  "database-url": { type: "string" },
} as const satisfies NonNullable<ParseArgsConfig["options"]>;

/** Where a command finds a server's URL: a flag, else an environment variable. */
export interface ServiceUrlSource {
  /** The flag without its dashes, e.g. "database-url". */
  flag: string;
  envVar: string;
  /** What the URL names, for "no … given". */
  service: string;
  /** The shape shown with the flag, and the one expected of a URL that does not parse. */
  example: string;
  expected: string;
  /** Accepted URL schemes, with their colon: "postgres:". */
  protocols: readonly string[];
}

/** The URL from the flag or the environment variable; a UsageError naming the field when it is missing or malformed. */
export function serviceUrl(flags: CommandContext["flags"], env: NodeJS.ProcessEnv, source: ServiceUrlSource): string {
  const fromFlag = flags[source.flag];
  const url = typeof fromFlag === "string" ? fromFlag : env[source.envVar];
  const field = typeof fromFlag === "string" ? `--${source.flag}` : source.envVar;
  if (url === undefined || url.trim() === "") {
    throw new UsageError(
      `no ${source.service} given: pass --${source.flag} <${source.example}> or set ${source.envVar}`,
      `--${source.flag}`,
    );
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`is not a URL (expected ${source.expected})`, field);
  }
  if (!source.protocols.includes(parsed.protocol)) {
    const schemes = source.protocols.map((p) => `${p}//`).join(" or ");
    throw new UsageError(`must be a ${schemes} URL, not ${parsed.protocol}//`, field);
  }
  return url;
}

/** The connection URL from `--database-url` or `DATABASE_URL`; a UsageError naming both when neither is set or it is malformed. */
export function databaseUrl(flags: CommandContext["flags"], env: NodeJS.ProcessEnv = process.env): string {
  return serviceUrl(flags, env, {
    flag: "database-url",
    envVar: "DATABASE_URL",
    service: "database",
    example: "postgres://...",
    expected: "postgres://user@host:port/database",
    protocols: ["postgres:", "postgresql:"],
  });
}

/** The URL without its password, for messages: `postgres://user@host:5432/db`. */
export function describeDatabaseUrl(url: string): string {
  const u = new URL(url);
  u.password = "";
  u.search = "";
  return u.toString();
}

/**
 * Opens one session from the flags, runs `fn`, and always closes it. Connection failures become
 * an error naming the server (exit 1), never the password. When a statement of `fn` fails on a
 * database that was never migrated (no roles, registry or tables yet: "role … does not exist"),
 * the error says so and names the fix (`migrate` itself passes `{ requiresMigrated: false }`).
 * A command given a session (`ctx.database`: the executor's) runs on it and leaves it open.
 */
export async function withConnection<T>(
  ctx: Pick<CommandContext, "flags" | "out" | "database">,
  fn: (client: pg.Client) => Promise<T>,
  options: { requiresMigrated?: boolean } = {},
): Promise<T> {
  if (ctx.database) return onSession(ctx, ctx.database.client, ctx.database.description, fn, options);
  const url = databaseUrl(ctx.flags);
  let client: pg.Client;
  try {
    client = await connect(url, { application_name: "tenancy-cli" });
  } catch (err) {
    throw new Error(`could not connect to ${describeDatabaseUrl(url)}: ${(err as Error).message}`);
  }
  try {
    return await onSession(ctx, client, describeDatabaseUrl(url), fn, options);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Runs `fn` on an open session: server notices as progress, the never-migrated hint on failure. */
async function onSession<T>(
  ctx: Pick<CommandContext, "out">,
  client: pg.Client,
  description: string,
  fn: (client: pg.Client) => Promise<T>,
  options: { requiresMigrated?: boolean },
): Promise<T> {
  const onNotice = (notice: { message?: string }) => ctx.out.progress(`notice: ${notice.message}`);
  client.on("notice", onNotice);
  try {
    return await fn(client);
  } catch (err) {
    if (options.requiresMigrated !== false && err instanceof pg.DatabaseError && (await neverMigrated(client))) {
      throw new Error(`${description} has not been migrated: run \`tenancy migrate --region <eu|us>\` first (${(err as Error).message})`, {
        cause: err,
      });
    }
    throw err;
  } finally {
    client.removeListener("notice", onNotice);
  }
}

/** True only when the check itself succeeds and finds no migrations table. */
async function neverMigrated(client: pg.Client): Promise<boolean> {
  try {
    if (client.getTransactionStatus() !== "I") await client.query("ROLLBACK");
    return !(await hasBeenMigrated(client));
  } catch {
    return false;
  }
}

// --- Redis (the `tenancy cache …` commands, and suspend/delete when a Redis is named) ---------

export const REDIS_OPTIONS = {
  ...CONNECTION_OPTIONS,
  "redis-url": { type: "string" },
} as const satisfies NonNullable<ParseArgsConfig["options"]>;

/** The admin URL from `--redis-url` or `REDIS_URL`; a UsageError naming the field otherwise. */
export function redisUrl(flags: CommandContext["flags"], env: NodeJS.ProcessEnv = process.env): string {
  return serviceUrl(flags, env, {
    flag: "redis-url",
    envVar: "REDIS_URL",
    service: "Redis",
    example: "redis://admin:password@host:port",
    expected: "redis://user:password@host:port",
    protocols: ["redis:", "rediss:"],
  });
}

/** The URL without its password, for messages. */
export function describeRedisUrl(url: string): string {
  const u = new URL(url);
  u.password = "";
  return u.toString();
}

/** True when a Redis is named (`--redis-url` or `REDIS_URL`): lifecycle commands then revoke cache access too. */
export function redisGiven(flags: CommandContext["flags"], env: NodeJS.ProcessEnv = process.env): boolean {
  return typeof flags["redis-url"] === "string" || !!env.REDIS_URL?.trim();
}

/** Opens the admin connection, runs `fn`, always closes it. */
export async function withRedis<T>(ctx: Pick<CommandContext, "flags">, fn: (admin: Redis) => Promise<T>): Promise<T> {
  const url = redisUrl(ctx.flags);
  let admin: Redis;
  try {
    admin = await openRedis(url, { connectTimeout: 5000 });
  } catch (err) {
    throw new Error(`could not connect to ${describeRedisUrl(url)}: ${(err as Error).message}`);
  }
  try {
    return await fn(admin);
  } finally {
    admin.disconnect();
  }
}
