/**
 * The minimal database client interface the data layer depends on, and the resource-scoped helpers
 * that always release what they take. Every SQL function in lib/ takes a `Queryable`, so the same
 * code runs in the CLI, in a Pulumi dynamic provider and in tests (node-postgres `Pool`,
 * `PoolClient` and `Client` all satisfy it). Advisory locks and their keys: lib/db/locks.ts.
 */
import pg from "pg";

export interface QueryResult<R> {
  rows: R[];
  rowCount: number | null;
}

/** The subset of node-postgres that the data layer needs. */
export interface Queryable {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  query<R = any>(text: string, params?: unknown[]): Promise<QueryResult<R>>;
}

/** How to reach a server: a URL, or node-postgres' client options (host, port, user, database, …). */
export type ConnectionTarget = string | pg.ClientConfig;

/**
 * Opens one dedicated connection (a session: session-level locks and settings stay with it).
 * Errors on an idle connection (server or PgBouncer restart) are swallowed here so they cannot
 * crash the process; the next query on it fails instead.
 */
export async function connect(target: ConnectionTarget, options: pg.ClientConfig = {}): Promise<pg.Client> {
  const config = typeof target === "string" ? { connectionString: target } : target;
  const client = new pg.Client({ ...config, ...options });
  client.on("error", () => {});
  await client.connect();
  return client;
}

/** Runs `fn` on one dedicated connection and always closes it: the one way to "connect, run, close". */
export async function withConnection<T>(
  target: ConnectionTarget,
  fn: (client: pg.Client) => Promise<T>,
  options: pg.ClientConfig = {},
): Promise<T> {
  const client = await connect(target, options);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** BEGIN … COMMIT around `fn`; ROLLBACK on any error (the error is rethrown). */
export async function withTransaction<T>(client: Queryable, fn: (client: Queryable) => Promise<T>): Promise<T> {
  await client.query("BEGIN");
  try {
    const result = await fn(client);
    await client.query("COMMIT");
    return result;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  }
}
