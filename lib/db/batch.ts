/**
 * Pipelining for node-postgres: several statements as one batch — extended-protocol messages
 * (Parse and Describe, both skipped for a named statement the connection already has; Bind; Execute) for
 * each, then ONE Sync — corked into one network write, answered in one round trip.
 *
 * Why not node-postgres' own pipeline mode (`pipeline: true`, pg ≥ 8.23): it ends every statement
 * with its own Sync, so the server flushes, and the client wakes up, once per statement; with one
 * Sync the server answers the whole batch in one flush. In the interleaved benchmark
 * (bench/tenant-context.ts, "raw batch, BEGIN…COMMIT" vs "pg pipeline mode") the same four statements
 * cost about 8–16% less this way. More important: one Sync makes the batch one unit for the server — at the
 * first error it skips every message up to the Sync, so nothing after a failed statement runs.
 *
 * The batch is a node-postgres Submittable: the client queues it like any query, so it must not be
 * a client in pipeline mode (which refuses Submittables). Parameters are serialised by
 * node-postgres' own prepareValue; rows are parsed with the client's type parsers.
 */
import pg from "pg";

export interface Statement {
  text: string;
  values?: unknown[];
  /**
   * A named prepared statement: parsed on the first batch that uses it on a connection (recorded
   * in `prepared` once that batch succeeded), then only bound and executed. Unnamed statements are
   * parsed and planned every time, for their own parameters.
   */
  name?: string;
}

/** What one batch of statements came back with. */
export interface BatchOutcome {
  /** One result per statement that completed, in order. */
  results: pg.QueryResult[];
  /** The first error; the statements after it did not run. */
  error?: Error;
  /** Transaction status after the batch ('I' idle, 'T' in a transaction, 'E' failed); meaningful when it succeeded. */
  status: pg.TransactionStatus;
  durationMs: number;
}

interface Socket {
  cork?(): void;
  uncork?(): void;
  destroy?(): void;
}

/** pg's wire-protocol writer (pg/lib/connection.js; not in its public types). */
interface Connection {
  stream: Socket;
  parse(config: { text: string; name: string; types: unknown[] }): void;
  bind(config: { statement: string; portal: string; values: unknown[] }): void;
  describe(config: { type: "P"; name: string }): void;
  execute(config: { portal: string; rows: number }): void;
  sync(): void;
  sendCopyFail(message: string): void;
}

interface ResultBuilder extends pg.QueryResult {
  addFields(fields: unknown[]): void;
  parseRow(fields: unknown[]): unknown;
  addRow(row: unknown): void;
  addCommandComplete(msg: unknown): void;
}
const ResultClass = (pg as unknown as { Result: new (rowMode: undefined, types: unknown) => ResultBuilder }).Result;
/** node-postgres' own parameter serialisation (Date, Buffer, arrays, JSON, toPostgres()), exported as pg/lib/utils. */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const pgUtils = require("pg/lib/utils") as { prepareValue: (this: void, value: unknown) => unknown };

/** Row descriptions (pg's field list; [] for NoData) of the named statements a connection has described. */
const describedFields = new WeakMap<pg.ClientBase, Map<string, unknown[]>>();

/** The socket under a node-postgres client. */
export function socketOf(client: pg.ClientBase): Socket | undefined {
  return (client as unknown as { connection?: { stream?: Socket } }).connection?.stream;
}

/**
 * The executor: statements as extended-protocol messages (Parse — skipped for a named statement
 * this connection already has — Bind, Describe — skipped likewise, see below — Execute) followed
 * by ONE Sync, written corked as one network write. One Sync makes the batch one unit for the
 * server: at the first error it skips everything up to the Sync, and it answers the whole batch
 * with one flush (one read for us). A node-postgres Submittable: the client queues it like any query.
 *
 * Describe is sent only with a Parse: a named statement's row description is remembered per
 * connection the first time it comes back, and reused while the statement stays prepared there.
 * It cannot go stale silently: a prepared statement whose result type would change fails with
 * 0A000 ("cached plan must not change result type") before any row is sent, and the caller then
 * parses it afresh under a new name (lib/tenant-context/client.ts). Saves a RowDescription (or
 * NoData) per statement per request on the hot path (docs/benchmarks.md).
 */
class StatementBatch {
  readonly #results: ResultBuilder[];
  readonly #started = performance.now();
  #index = 0;
  #rowError: Error | undefined;
  #done = false;
  /** Per statement: the row description is expected from the server (Describe sent). */
  readonly #describes: boolean[];
  readonly #fields: Map<string, unknown[]>;
  /** A RowDescription came for statement #index. */
  #sawFields = false;

  constructor(
    private readonly client: pg.ClientBase,
    private readonly statements: readonly Statement[],
    private readonly prepared: Set<string>,
    private readonly resolve: (outcome: BatchOutcome) => void,
  ) {
    const types = (client as unknown as { _types?: unknown })._types;
    this.#results = statements.map(() => new ResultClass(undefined, types));
    let fields = describedFields.get(client);
    if (!fields) describedFields.set(client, (fields = new Map()));
    this.#fields = fields;
    this.#describes = statements.map((s, i) => {
      const known = s.name && prepared.has(s.name) ? fields.get(s.name) : undefined;
      if (known === undefined) return true;
      this.#results[i].addFields(known);
      return false;
    });
  }

  submit(connection: Connection): Error | null {
    let values: unknown[][];
    try {
      // Before anything is written: a value that cannot be serialised fails the batch cleanly.
      values = this.statements.map((s) => (s.values ?? []).map((v) => pgUtils.prepareValue(v)));
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
    connection.stream.cork?.();
    try {
      this.statements.forEach((s, i) => {
        if (!s.name || !this.prepared.has(s.name)) connection.parse({ text: s.text, name: s.name ?? "", types: [] });
        connection.bind({ statement: s.name ?? "", portal: "", values: values[i] });
        if (this.#describes[i]) connection.describe({ type: "P", name: "" });
        connection.execute({ portal: "", rows: 0 });
      });
      connection.sync();
    } finally {
      connection.stream.uncork?.();
    }
    return null;
  }

  handleRowDescription(msg: { fields: unknown[] }): void {
    this.#results[this.#index]?.addFields(msg.fields);
    this.#remember(msg.fields);
    this.#sawFields = true;
  }

  /** Remembers statement #index's row description (a fresh Describe replaces what was known). */
  #remember(fields: unknown[]): void {
    const name = this.statements[this.#index]?.name;
    if (name && this.#describes[this.#index]) this.#fields.set(name, fields);
  }

  #next(): void {
    this.#index++;
    this.#sawFields = false;
  }

  handleDataRow(msg: { fields: unknown[] }): void {
    if (this.#rowError) return;
    try {
      const result = this.#results[this.#index];
      result.addRow(result.parseRow(msg.fields));
    } catch (err) {
      this.#rowError = err as Error;
    }
  }

  handleCommandComplete(msg: unknown): void {
    this.#results[this.#index]?.addCommandComplete(msg);
    if (!this.#sawFields) this.#remember([]); // Describe answered NoData
    this.#next();
  }

  handleEmptyQuery(): void {
    this.#next();
  }

  handlePortalSuspended(): void {}

  handleCopyInResponse(connection: Connection): void {
    connection.sendCopyFail("COPY FROM STDIN is not supported in a tenant scope");
  }

  handleCopyData(): void {}

  /** A server error (the rest of the batch was skipped) or a dead connection. */
  handleError(err: Error): void {
    this.#finish(err);
  }

  handleReadyForQuery(): void {
    if (this.#rowError) return this.#finish(this.#rowError);
    for (const s of this.statements) if (s.name) this.prepared.add(s.name);
    this.#finish(undefined);
  }

  #finish(error: Error | undefined): void {
    if (this.#done) return;
    this.#done = true;
    this.resolve({
      results: this.#results.slice(0, this.#index),
      error,
      status: this.client.getTransactionStatus(),
      durationMs: performance.now() - this.#started,
    });
  }
}

/**
 * Runs `statements` as one batch (one write, one Sync); resolves, never rejects, when it has
 * answered. `prepared` is the set of named statements this connection already has (keep one per
 * connection); after a failed batch it may be out of date, so a connection whose batch failed must
 * not be used again with named statements.
 */
export function runBatch(
  client: pg.ClientBase,
  statements: readonly Statement[],
  prepared: Set<string> = new Set(),
): Promise<BatchOutcome> {
  return new Promise((resolve) => {
    client.query(new StatementBatch(client, statements, prepared, resolve) as unknown as pg.Submittable);
  });
}
