/**
 * What the dynamic providers in this folder run INSIDE the provider process. Pulumi serializes a
 * dynamic provider's code (and every function it references) into the stack's state and runs it
 * later in `pulumi-resource-pulumi-nodejs`, a plain Node process. So this file holds only plain
 * functions that capture nothing at module level, and they reach their dependencies at call time:
 *
 *   - npm packages with `require("pg")` inside the function (resolved from the project's node_modules);
 *   - the data-layer library with `dataLayer()`, which loads lib/data-layer.ts (TypeScript, a path
 *     that never moves: state keeps this code) through tsx's scoped `require` from the project
 *     directory. Importing lib/ at module level instead would serialize the library by value (zod
 *     schemas and all), which fails.
 *
 * The project directory is the provider process's working directory (the engine starts plugins in
 * the directory of Pulumi.yaml); ALPHAPULSE_REPO_ROOT overrides it.
 *
 * One code path, two transports (docs/adr/ADR-004-database-executor.md): every provider calls
 * `callDatabase(connection, database, operation, args)`, and the named operation of
 * lib/executor/operations.ts runs either here on a direct connection (local regions) or in the
 * database executor, a Lambda inside the VPC (AWS regions). No password is ever an input: a direct
 * connection uses libpq's environment (PGPASSWORD, PGPASSFILE) when the server asks for one; the
 * executor reads its credential from Secrets Manager.
 *
 * The imports below are type-only: they are erased when compiled, so nothing of lib/ is serialized.
 */
import type { Queryable } from "../../lib/db/client";
import type { OperationArgs, OperationName, OperationResult } from "../../lib/executor/operations";

/**
 * A connection from this process to PostgreSQL: host, port and an admin role (superuser or database
 * owner). Connections written by older code have no `kind`: they are direct.
 */
export interface DirectConnection {
  kind?: "direct";
  host: string;
  port: number;
  user: string;
}

/**
 * PostgreSQL behind the database executor (docs/adr/ADR-004-database-executor.md): a Lambda function
 * inside the VPC that runs the same operations (lib/executor/operations.ts) on its own connection.
 * The deployer needs only `lambda:InvokeFunction` on it; the credential stays in Secrets Manager.
 */
export interface ExecutorConnection {
  kind: "executor";
  /** The executor's Lambda function name (or ARN). */
  functionName: string;
  /** Its AWS region, e.g. "eu-central-1". */
  region: string;
  /** Another Lambda API endpoint: only the local executor (lib/executor/local-endpoint.ts) and tests set it. */
  endpoint?: string;
  /** Stable identity of the PostgreSQL server behind it, e.g. "eu-prod/pg": what "the same server" means. */
  server: string;
}

/** Where a dynamic resource reaches PostgreSQL: directly, or through the database executor. */
export type DatabaseConnection = DirectConnection | ExecutorConnection;

export function isExecutorConnection(c: DatabaseConnection | undefined): c is ExecutorConnection {
  return !!c && (c as { kind?: string }).kind === "executor";
}

/** For messages: "127.0.0.1:5432" or "executor eu-prod-db-executor (eu-central-1)". */
export function describeConnection(c: DatabaseConnection): string {
  return isExecutorConnection(c) ? `executor ${c.functionName} (${c.region})` : `${c.host}:${c.port}`;
}

/**
 * The server a connection reaches, as a stable string: `host:port` with the loopback spellings
 * `localhost`, `127.0.0.1` and `::1` written as 127.0.0.1, or the executor's `server`. Other names
 * are kept as written (no DNS lookup). A local executor names its server by this value of the
 * direct connection, so switching a local stack's transport is an update, not a move.
 */
export function serverId(c: DatabaseConnection): string {
  if (isExecutorConnection(c)) return String(c.server);
  const lower = String(c.host)
    .toLowerCase()
    .replace(/^\[|\]$/g, "");
  const host = lower === "localhost" || lower === "::1" || /^127\.\d+\.\d+\.\d+$/.test(lower) ? "127.0.0.1" : lower;
  return `${host}:${Number(c.port)}`;
}

/**
 * True when two connections point at the same server (the admin user, the spelling of a loopback
 * host and the transport may change freely). A name and an address of one remote server count as
 * different: the providers refuse that change rather than guess.
 */
export function sameServer(a: DatabaseConnection | undefined, b: DatabaseConnection | undefined): boolean {
  return !!a && !!b && serverId(a) === serverId(b);
}

/** Opens one direct connection to `database`, runs `fn`, always closes it (what `callDatabase` does locally). */
export async function withDatabase<T>(connection: DirectConnection, database: string, fn: (client: Queryable) => Promise<T>): Promise<T> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const pg = require("pg");
  const client = new pg.Client({
    host: connection.host,
    port: connection.port,
    user: connection.user,
    database,
    application_name: "alphapulse-pulumi",
    connectionTimeoutMillis: 10_000,
  });
  client.on("error", () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Runs the named operation of lib/executor/operations.ts on `database`: the one code path of every
 * provider here. Direct: on a connection of this process. Executor: the Lambda runs it inside the
 * VPC; an error there (X-Amz-Function-Error) throws an ExecutorError with the handler's message and
 * the PostgreSQL error code, so `isMissingDatabase` works the same on both transports. The result is
 * JSON on both (dates are ISO strings).
 *
 * `lib` is the data layer to run with: the providers load it at call time (`dataLayer()`, see the
 * file comment); a process that imports lib/ itself (`npm run ops`, cli/ops.ts) passes its own, so
 * the library is not loaded a second time beside it.
 */
export async function callDatabase<N extends OperationName>(
  connection: DatabaseConnection,
  database: string,
  operation: N,
  args: OperationArgs<N>,
  lib: DataLayerTransport = dataLayer(),
): Promise<OperationResult<N>> {
  if (isExecutorConnection(connection)) {
    return (await lib.invokeExecutor(connection, { operation, database, args })) as OperationResult<N>;
  }
  return withDatabase(connection, database, (client) =>
    lib.runOperation(operation, client, args, {
      database,
      withDatabase: (other, fn) => withDatabase(connection, other, fn),
    }),
  ) as Promise<OperationResult<N>>;
}

/** What `callDatabase` needs of the data layer: the operations, and the executor's client. */
export type DataLayerTransport = Pick<typeof import("../../lib/data-layer"), "runOperation" | "invokeExecutor">;

/** Loads the project's lib/data-layer.ts at call time (see the file comment). */
export function dataLayer(): typeof import("../../lib/data-layer") {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const path = require("node:path");
  const root = process.env.ALPHAPULSE_REPO_ROOT ?? process.cwd();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const tsx = require("tsx/cjs/api");
  return tsx.require("./lib/data-layer.ts", path.join(root, "Pulumi.yaml"));
}

/** A new random password for a login role: 32 url-safe characters. */
export function generatePassword(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require("node:crypto").randomBytes(24).toString("base64url");
}

/** Deep equality for JSON-shaped values (inputs as the engine hands them back: key order may differ). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/**
 * The data-safety generation of a provider's code (docs/data-safety.md). Outputs carry it; a diff
 * against outputs without it reports a change, so one `pulumi up` rewrites the provider code kept
 * in the state (the code the engine runs to delete: pulumi/pulumi#6238). A literal in each diff,
 * not a captured constant.
 */
export const DATA_SAFETY_GENERATION = 1;

/** PostgreSQL's "database does not exist" (3D000): what a resource inside a dropped database sees. */
export function isMissingDatabase(err: unknown): boolean {
  return (err as { code?: string } | undefined)?.code === "3D000";
}
