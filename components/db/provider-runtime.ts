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
 * the directory of Pulumi.yaml); ALPHAPULSE_REPO_ROOT overrides it. No password is ever an input: the
 * connection uses libpq's environment (PGPASSWORD, PGPASSFILE) when the server asks for one.
 *
 * The one import below is type-only: it is erased when compiled, so nothing of lib/ is serialized.
 */
import type { Queryable } from "../../lib/db/client";

/** Where a dynamic resource reaches PostgreSQL: host, port and an admin role (superuser or database owner). */
export interface DatabaseConnection {
  host: string;
  port: number;
  user: string;
}

/** Opens one connection to `database`, runs `fn`, always closes it. */
export async function withDatabase<T>(connection: DatabaseConnection, database: string, fn: (client: Queryable) => Promise<T>): Promise<T> {
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
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

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
 * True when two connections point at the same server (the admin user may change freely). The
 * loopback spellings `localhost`, `127.0.0.1` and `::1` are one server; other names are compared as
 * written (no DNS lookup: a name and an address of one remote server count as different, and the
 * providers refuse that change rather than guess).
 */
export function sameServer(a: DatabaseConnection | undefined, b: DatabaseConnection | undefined): boolean {
  const host = (h: string) => {
    const lower = String(h)
      .toLowerCase()
      .replace(/^\[|\]$/g, "");
    return lower === "localhost" || lower === "::1" || /^127\.\d+\.\d+\.\d+$/.test(lower) ? "loopback" : lower;
  };
  return !!a && !!b && host(a.host) === host(b.host) && Number(a.port) === Number(b.port);
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
