/**
 * The tenant-context client for Node services (ADR-001's "database middleware"): the only way a
 * service reaches tenant data. `withTenant(pool, claims, fn)` runs `fn` inside one transaction that
 * `tenancy.enter_tenant()` bound to the tenant:
 *
 *   BEGIN
 *   SELECT <tripwire>, set_config('statement_timeout', <tier>, true), set_config('lock_timeout', …),
 *          tenancy.enter_tenant($1)            -- tenant (transaction-local), write gate, routing
 *   <fn's queries>                             -- each preceded by the tier timeouts again
 *   COMMIT                                     -- on any error: ROLLBACK, and the connection is destroyed
 *
 * Round trips. node-postgres does not pipeline by default, so statements that go together are sent
 * by a small executor (StatementBatch, a node-postgres Submittable): extended-protocol messages for
 * each statement and ONE Sync, corked into one network write. BEGIN and the prelude go out with
 * fn's first query, so a one-query `withTenant` costs two round trips (the COMMIT cannot leave
 * before fn returns). `tenantQuery()` costs one, and sends two statements, not four:
 *
 *   SELECT <tripwire>, <timeouts>, tenancy.enter_tenant($1)
 *   <the query>
 *   Sync                                       -- commits; on any error: rolled back
 *
 * Without BEGIN, the statements before a Sync are one implicit transaction: PostgreSQL commits it
 * at the Sync, or rolls it back if a statement failed, so the prelude's transaction-local settings
 * and its gate last exactly as long as the query. (Measured: BEGIN and COMMIT as statements of the
 * batch cost 0.04-0.05x of a point lookup; docs/benchmarks.md.) Two statements behave differently
 * outside an explicit transaction block, and tenantQuery refuses them: CALL and DO run non-atomic
 * there, so a procedure or DO block could COMMIT in the middle and go on without the tenant's
 * transaction. (Inside withTenant's BEGIN such a COMMIT fails, so there they are allowed.)
 * With one Sync the batch is one unit for the server: at the first error it skips everything up to
 * the Sync, so a statement never runs after a failed prelude, and nothing commits after a failed
 * statement (the connection is then rolled back and destroyed). The client's own statements are
 * named prepared statements, parsed once per connection.
 *
 * What cannot happen (test/pgbouncer/pool-leaks.test.ts proves each against naive node-postgres):
 *  - a query without a tenant context: the pool exposes no query(), connect() or client; a scope
 *    refuses queries after its transaction ended, or after fn itself ended it (every result's
 *    transaction status is checked, and fn's queries are sent one at a time, so none can run after);
 *  - a swallowed error: once a statement failed the scope refuses further queries, and withTenant
 *    rejects with that error even if fn caught it and returned normally (and never commits);
 *  - a tenant set once per connection (connect hook): the context is set per transaction, by
 *    enter_tenant, and nothing here sets a session-level value;
 *  - a connection released inside an open transaction: it is released only after its transaction
 *    committed (COMMIT, or tenantQuery's Sync) with a status of idle ('I'), otherwise it is destroyed;
 *  - a transaction-local value reverting to a session-level one: nothing runs after the commit, and a
 *    session-level tenant planted on a connection by anything else trips the prelude and destroys it.
 *
 * Noisy neighbours: the tier's statement_timeout and lock_timeout are set transaction-locally before
 * enter_tenant (whose gate wait they bound) and again before every query of fn, so a query of fn that
 * ran `SET statement_timeout = 0` does not lift the next one; a single statement cannot lift its own
 * (PostgreSQL arms the timer when the statement starts). PgBouncer's query_timeout is the ceiling
 * for everything else. Each tenant may hold at most `maxConcurrentTransactions` of this instance's
 * connections, so one tenant's burst waits for its own slots instead of taking the whole pool.
 *
 * Prepared statements: `{ prepare: true }` on a query runs it as a named statement of the
 * connection (parsed once, then PostgreSQL's plan cache). Meant for hot single-row paths: under RLS
 * a statement planned for every execution also plans the policy every time (docs/benchmarks.md, RLS
 * overhead: prepared statements run at 1.00–1.04× the floor on reads, planned ones at 1.06–1.17×).
 * Safe across tenants on one connection: the policy reads the tenant when the statement runs, not
 * when it is planned, and a statement planned under another tenant's search_path (a dedicated
 * schema) is re-planned by PostgreSQL. At most `maxPreparedStatements` per connection; beyond that
 * a statement runs unprepared. After a migration changes a table under a prepared `SELECT *`, its
 * next run fails with 0A000 ("cached plan must not change result type") before it ran: tenantQuery
 * sends it once more, parsed afresh; inside withTenant the transaction fails (fn's caller retries).
 * Either way the pool's plan generation moves on, so no connection serves the stale plan again.
 *
 * Session scoping is deliberately not offered: a session-level tenant skips enter_tenant's write
 * gate and routing (both transaction-scoped), survives into the next request unless reset, and is
 * unsafe behind transaction pooling. docs/pgbouncer.md has the reasoning.
 */
import { createHash } from "node:crypto";
import pg from "pg";
import { z } from "zod";
import type { QueryResult, Queryable } from "../db/client";
import { runBatch, socketOf, type BatchOutcome, type Statement } from "../db/batch";
import { TenantId } from "../tenant/model";
import { Tier, TIER_LIMITS, type TierLimits } from "../tenant/tiers";
import { ContextKey, createProofMinter, DEFAULT_PROOF_TTL_SECONDS, MAX_PROOF_TTL_SECONDS } from "./proof";

export const TenantClaims = z.object({
  /** The tenant's uuid (lower-cased). */
  tenantId: TenantId,
  tier: Tier,
});
export type TenantClaims = z.output<typeof TenantClaims>;
export type TenantClaimsInput = z.input<typeof TenantClaims>;

export class TenantContextError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TenantContextError";
  }
}

/** The claims were not a valid tenant id and tier; nothing was sent to the database. */
export class InvalidTenantClaimsError extends TenantContextError {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(`invalid tenant claims: ${field}: ${message}`);
    this.name = "InvalidTenantClaimsError";
  }
}

/** The scope was used in a way that could run a query outside the tenant's transaction. */
export class TenantScopeError extends TenantContextError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TenantScopeError";
  }
}

/** One statement of a tenant (what lib/observability/metrics.ts `observe()` takes). */
export interface TenantQueryObservation {
  tenantId: string;
  tier: Tier;
  durationMs: number;
  rows?: number;
  /** SQLSTATE of a failed statement, e.g. "57014" for a statement timeout. */
  errorCode?: string;
}

export interface TenantTransactionObservation {
  tenantId: string;
  tier: Tier;
  /** From the first statement sent to COMMIT/ROLLBACK done. */
  durationMs: number;
  /** Statements of fn (not counting the client's own: BEGIN, the prelude, COMMIT). */
  statements: number;
  outcome: "commit" | "rollback";
  errorCode?: string;
}

/**
 * Hook point for per-tenant observability (issue 10): called synchronously, exceptions ignored.
 * Pass `createTenantMetrics().observe` as `onQuery`.
 */
export interface TenantPoolObserver {
  onQuery?(observation: TenantQueryObservation): void;
  onTransaction?(observation: TenantTransactionObservation): void;
  /** A pooled connection failed outside a request (PostgreSQL or PgBouncer restarted). */
  onConnectionError?(error: Error): void;
}

/** Per-statement options of a tenant query. */
export interface TenantQueryOptions {
  /** Run as a named prepared statement of the connection (see the module comment). @default false */
  prepare?: boolean;
}

/** node-postgres pool options, minus those that would set session state outside a tenant transaction. */
export type TenantPoolOptions = Omit<
  pg.PoolConfig,
  "pipeline" | "onConnect" | "statement_timeout" | "lock_timeout" | "idle_in_transaction_session_timeout" | "options"
> & {
  /** Per-tier limits; TIER_LIMITS by default (tests pass shorter timeouts). */
  limits?: Readonly<Record<Tier, Pick<TierLimits, "statementTimeoutMs" | "maxConcurrentTransactions">>>;
  observer?: TenantPoolObserver;
  /** How long a failing connection may take to answer ROLLBACK before it is closed regardless. @default 2000 */
  rollbackTimeoutMs?: number;
  /** Statements run with `{ prepare: true }` that one connection keeps prepared; later ones run unprepared. @default 100 */
  maxPreparedStatements?: number;
  /**
   * The region's context key (ADR-005): when given, every tenant transaction is entered with a proof
   * minted from the claims (`tenancy.enter_verified_tenant`), which strict databases require. From the
   * stack's secret, never from code. Without it the raw `tenancy.enter_tenant(uuid)` is called, which
   * only a database still in the "setting" mode accepts.
   */
  contextKey?: ContextKey;
  /** Lifetime of a minted proof. @default 60 */
  proofTtlSeconds?: number;
};

/** What fn gets: a Queryable bound to one tenant's transaction. */
export interface TenantScope extends Queryable {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  query<R = any>(text: string, params?: unknown[], options?: TenantQueryOptions): Promise<QueryResult<R>>;
  readonly tenantId: string;
  readonly tier: Tier;
  /** The schema enter_tenant routed this transaction to ("shared" or "tenant_<hex>"); set by the first query. */
  readonly schema: string | undefined;
}

// The client's own statements are named prepared statements, parsed once per connection. Safe
// because PgBouncer runs in session mode (a client keeps its server connection; DISCARD ALL runs
// only when the client disconnects, and then this connection is gone too) and fn cannot DEALLOCATE
// them (refused below). fn's statements stay unnamed (planned for their own parameters) unless fn
// asks for { prepare: true }.
const BEGIN: Statement = { text: "BEGIN", name: "tenancy_begin" };
const COMMIT: Statement = { text: "COMMIT", name: "tenancy_commit" };
const ROLLBACK: Statement = { text: "ROLLBACK", name: "tenancy_rollback" };
// Evaluated left to right: the session-level leftover is read before enter_tenant sets the
// transaction-local value, and lock_timeout is in force before enter_tenant waits at the gate.
const prelude = (tenantId: string, timeoutMs: number): Statement => ({
  text:
    "SELECT current_setting('app.current_tenant_id', true) AS inherited, set_config('statement_timeout', $2, true) AS statement_timeout, " +
    "set_config('lock_timeout', $2, true) AS lock_timeout, tenancy.enter_tenant($1::uuid) AS schema",
  values: [tenantId, String(timeoutMs)],
  name: "tenancy_prelude",
});
// The strict form (ADR-005): the same prelude, the tenant proven by a proof minted from the claims.
const verifiedPrelude = (proof: string, timeoutMs: number): Statement => ({
  text:
    "SELECT current_setting('app.current_tenant_id', true) AS inherited, set_config('statement_timeout', $2, true) AS statement_timeout, " +
    "set_config('lock_timeout', $2, true) AS lock_timeout, tenancy.enter_verified_tenant($1::text) AS schema",
  values: [proof, String(timeoutMs)],
  name: "tenancy_prelude_verified",
});
const rearm = (timeoutMs: number): Statement => ({
  text: "SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $1, true)",
  values: [String(timeoutMs)],
  name: "tenancy_rearm",
});

const PREPARED_PREFIX = "tenancy_q_";

/**
 * fn's statement as the batch sends it: named (prepared) when asked and the connection has room.
 * The name is the text's hash and the pool's plan generation, so after a stale plan (below) every
 * connection parses the statement afresh under a new name.
 */
function userStatement(
  text: string,
  params: unknown[] | undefined,
  options: TenantQueryOptions | undefined,
  lease: Lease,
  generation: number,
  names: StatementNames,
): Statement {
  if (!options?.prepare) return { text, values: params };
  const name = `${PREPARED_PREFIX}${generation}_${names.hashOf(text)}`;
  return lease.mayPrepare(name) ? { text, values: params, name } : { text, values: params };
}

/**
 * The hash part of prepared statements' names, remembered per text: a hot statement is hashed once
 * per pool, not once per request. Bounded: a pool that sees more texts than this starts over.
 */
class StatementNames {
  static readonly MAX = 1024;
  readonly #hashes = new Map<string, string>();

  hashOf(text: string): string {
    let hash = this.#hashes.get(text);
    if (hash === undefined) {
      if (this.#hashes.size >= StatementNames.MAX) this.#hashes.clear();
      hash = createHash("sha256").update(text).digest("hex").slice(0, 32);
      this.#hashes.set(text, hash);
    }
    return hash;
  }
}

/**
 * A prepared statement whose table changed under it (a migration): it failed before it ran.
 * Matched on the message as well as the SQLSTATE because PostgreSQL gives this error only the
 * broad 0A000 (feature_not_supported) and no other field to tell it apart (plancache.c).
 */
const isStalePlan = (err: unknown) =>
  sqlState(err) === "0A000" && /cached plan must not change result type/.test((err as Error).message ?? "");

/**
 * The statement from its first word on: whitespace, comments (block comments nest, as PostgreSQL
 * reads them) and opening parentheses skipped.
 */
function fromFirstWord(text: string): string {
  let i = 0;
  while (i < text.length) {
    if (/[\s(]/.test(text[i])) i++;
    else if (text.startsWith("--", i)) {
      const end = text.indexOf("\n", i);
      i = end < 0 ? text.length : end + 1;
    } else if (text.startsWith("/*", i)) {
      let depth = 0;
      do {
        if (text.startsWith("/*", i)) {
          depth++;
          i += 2;
        } else if (text.startsWith("*/", i)) {
          depth--;
          i += 2;
        } else i++;
      } while (depth > 0 && i < text.length);
    } else break;
  }
  return text.slice(i);
}

/**
 * Statements fn must not send: they end or split the tenant transaction, or drop the client's
 * prepared statements. (The transaction status check is the guarantee; this only fails earlier.)
 */
const TRANSACTION_CONTROL = /^(begin|start|commit|end|rollback|abort|savepoint|release|prepare\s+transaction|deallocate|discard)\b/i;

/**
 * Statements that run non-atomic outside an explicit transaction block (tenantQuery's), where a
 * procedure or DO block may COMMIT midway. No status check could see that afterwards: this is the guarantee.
 */
const NON_ATOMIC = /^(call|do)\b/i;

const sqlState = (err: unknown) => (typeof (err as { code?: unknown })?.code === "string" ? (err as { code: string }).code : undefined);

/** Validates claims (zod) into a canonical tenant id and tier, naming the bad field. */
export function parseTenantClaims(claims: unknown): TenantClaims {
  const parsed = TenantClaims.safeParse(claims);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidTenantClaimsError(issue.message, issue.path.map(String).join(".") || "claims");
  }
  return parsed.data;
}

/** A FIFO counting semaphore per tenant: at most `max` concurrent holders. */
class TenantSlots {
  #slots = new Map<string, { active: number; waiting: (() => void)[] }>();

  async acquire(tenantId: string, max: number): Promise<() => void> {
    let slot = this.#slots.get(tenantId);
    if (!slot) this.#slots.set(tenantId, (slot = { active: 0, waiting: [] }));
    if (slot.active >= max) await new Promise<void>((resolve) => slot.waiting.push(resolve));
    else slot.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = slot.waiting.shift();
      if (next)
        next(); // the slot passes to the next waiter without being freed
      else if (--slot.active === 0) this.#slots.delete(tenantId);
    };
  }

  /** Tenants holding or waiting for slots (for tests and metrics). */
  snapshot(): Record<string, { active: number; waiting: number }> {
    return Object.fromEntries([...this.#slots].map(([id, s]) => [id, { active: s.active, waiting: s.waiting.length }]));
  }
}

/**
 * A pool of connections that can only be used for one tenant at a time. Create one per process
 * (per database URL); its size is the app pool of lib/pgbouncer/pool-budget.ts.
 */
export class TenantPool {
  readonly #pool: pg.Pool;
  readonly #limits: NonNullable<TenantPoolOptions["limits"]>;
  readonly #observer: TenantPoolObserver;
  readonly #rollbackTimeoutMs: number;
  readonly #maxPreparedStatements: number;
  readonly #broken = new WeakSet<pg.ClientBase>();
  readonly #prepared = new WeakMap<pg.ClientBase, Set<string>>();
  readonly #slots = new TenantSlots();
  readonly #mintProof: ((tenantId: string, options: { ttlSeconds: number }) => string) | undefined;
  readonly #proofTtlSeconds: number;
  readonly #statementNames = new StatementNames();
  /** Bumped when a prepared statement's plan went stale: new statement names on every connection. */
  #planGeneration = 0;

  constructor(options: TenantPoolOptions) {
    const { limits, observer, rollbackTimeoutMs, maxPreparedStatements, contextKey, proofTtlSeconds, ...poolOptions } = options;
    for (const key of ["pipeline", "onConnect", "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout", "options"]) {
      if (key in poolOptions)
        throw new TenantContextError(`TenantPool option "${key}" is not allowed: it would set session state outside a tenant transaction`);
    }
    this.#limits = limits ?? TIER_LIMITS;
    this.#observer = observer ?? {};
    this.#rollbackTimeoutMs = rollbackTimeoutMs ?? 2000;
    this.#maxPreparedStatements = maxPreparedStatements ?? 100;
    if (contextKey !== undefined) {
      const parsed = ContextKey.safeParse(contextKey);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new TenantContextError(`TenantPool option "contextKey.${issue.path.map(String).join(".")}": ${issue.message}`);
      }
      this.#mintProof = createProofMinter(parsed.data);
    }
    this.#proofTtlSeconds = proofTtlSeconds ?? DEFAULT_PROOF_TTL_SECONDS;
    if (!Number.isInteger(this.#proofTtlSeconds) || this.#proofTtlSeconds < 1 || this.#proofTtlSeconds > MAX_PROOF_TTL_SECONDS)
      throw new TenantContextError(
        `TenantPool option "proofTtlSeconds" must be an integer from 1 to ${MAX_PROOF_TTL_SECONDS}, got ${proofTtlSeconds}`,
      );
    if (!Number.isInteger(this.#maxPreparedStatements) || this.#maxPreparedStatements < 0)
      throw new TenantContextError(
        `TenantPool option "maxPreparedStatements" must be a non-negative integer, got ${maxPreparedStatements}`,
      );
    // Not node-postgres' pipeline mode: it refuses custom Submittables, and StatementBatch does the
    // pipelining (one write, one Sync) itself.
    this.#pool = new pg.Pool({ ...poolOptions });
    // Without these, a connection that fails (PgBouncer or PostgreSQL restarting) emits an
    // unhandled 'error' event and takes the process down.
    this.#pool.on("error", (err) => this.#notify(() => this.#observer.onConnectionError?.(err)));
    this.#pool.on("connect", (client) => {
      client.on("error", (err) => {
        this.#broken.add(client);
        this.#notify(() => this.#observer.onConnectionError?.(err));
      });
    });
  }

  /** Runs `fn` in one transaction bound to the tenant in `claims`; see the module comment. */
  async withTenant<T>(claims: TenantClaimsInput, fn: (scope: TenantScope) => Promise<T>): Promise<T> {
    const { tenantId, tier } = parseTenantClaims(claims);
    const scope = new Scope(
      {
        lease: () => this.#lease(tenantId, tier),
        observeQuery: (o) => this.#notify(() => this.#observer.onQuery?.(o)),
        observeTransaction: (o) => this.#notify(() => this.#observer.onTransaction?.(o)),
        tainted: (lease) => this.#tainted(lease),
        planGeneration: () => this.#planGeneration,
        stalePlan: (generation) => this.#stalePlan(generation),
        prelude: () => this.#prelude(tenantId, this.#limits[tier].statementTimeoutMs),
        statementNames: this.#statementNames,
      },
      tenantId,
      tier,
      this.#limits[tier].statementTimeoutMs,
    );
    let result: T;
    try {
      result = await fn(scope);
    } catch (err) {
      await scope.finish(err instanceof Error ? err : new TenantContextError(String(err)));
      throw err;
    }
    await scope.finish(undefined);
    return result;
  }

  /**
   * One statement for one tenant in one round trip: the prelude and the statement go out in a
   * single write and run as one implicit transaction (see the module comment). The request path
   * for single-query endpoints. CALL and DO are refused here; run them inside withTenant.
   */
  tenantQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(
    claims: TenantClaimsInput,
    text: string,
    params?: unknown[],
    options?: TenantQueryOptions,
  ): Promise<pg.QueryResult<R>> {
    return this.#tenantQuery<R>(claims, text, params, options, true);
  }

  async #tenantQuery<R extends pg.QueryResultRow>(
    claims: TenantClaimsInput,
    text: string,
    params: unknown[] | undefined,
    options: TenantQueryOptions | undefined,
    mayRetry: boolean,
  ): Promise<pg.QueryResult<R>> {
    const { tenantId, tier } = parseTenantClaims(claims);
    checkAtomic(checkStatement(text, params));
    const timeoutMs = this.#limits[tier].statementTimeoutMs;
    const lease = await this.#lease(tenantId, tier);
    const generation = this.#planGeneration;
    const statement = userStatement(text, params, options, lease, generation, this.#statementNames);
    const batch = await lease.run([this.#prelude(tenantId, timeoutMs), statement]);
    const [enter, query] = batch.results;
    const error =
      batch.error ??
      (batch.status !== "I" ? new TenantScopeError(`the tenant transaction did not end cleanly (status ${batch.status})`) : undefined);
    this.#notify(() =>
      this.#observer.onQuery?.({
        tenantId,
        tier,
        durationMs: batch.durationMs,
        rows: query?.rowCount ?? undefined,
        errorCode: query ? undefined : sqlState(error),
      }),
    );
    this.#notify(() =>
      this.#observer.onTransaction?.({
        tenantId,
        tier,
        durationMs: batch.durationMs,
        statements: 1,
        outcome: error ? "rollback" : "commit",
        errorCode: sqlState(error),
      }),
    );
    if (error) {
      await lease.discard(error);
      if (statement.name && isStalePlan(error)) {
        this.#stalePlan(generation);
        // It failed before it ran and the batch rolled back: safe to send once more, freshly parsed.
        if (mayRetry) return this.#tenantQuery<R>(claims, text, params, options, false);
      }
      throw error;
    }
    if (inheritedTenant(enter)) this.#tainted(lease);
    else lease.release();
    return query as pg.QueryResult<R>;
  }

  /** The statement that enters the tenant: with a proof minted now when the pool has a key (ADR-005). */
  #prelude(tenantId: string, timeoutMs: number): Statement {
    if (!this.#mintProof) return prelude(tenantId, timeoutMs);
    return verifiedPrelude(this.#mintProof(tenantId, { ttlSeconds: this.#proofTtlSeconds }), timeoutMs);
  }

  /** A prepared statement of `generation` went stale: the next ones get new names. */
  #stalePlan(generation: number): void {
    if (this.#planGeneration === generation) this.#planGeneration++;
  }

  /** Pool counters (node-postgres) and the tenants holding or waiting for slots. */
  stats() {
    return { total: this.#pool.totalCount, idle: this.#pool.idleCount, waiting: this.#pool.waitingCount, tenants: this.#slots.snapshot() };
  }

  async end(): Promise<void> {
    await this.#pool.end();
  }

  /** A connection for one tenant transaction: a tenant slot, then an idle, unbroken connection. Never leaves this module. */
  async #lease(tenantId: string, tier: Tier): Promise<Lease> {
    const freeSlot = await this.#slots.acquire(tenantId, this.#limits[tier].maxConcurrentTransactions);
    try {
      for (let attempt = 0; ; attempt++) {
        const client = await this.#pool.connect();
        if (!this.#broken.has(client) && client.getTransactionStatus() === "I") {
          let prepared = this.#prepared.get(client);
          if (!prepared) this.#prepared.set(client, (prepared = new Set()));
          return new Lease(client, prepared, freeSlot, this.#rollbackTimeoutMs, this.#maxPreparedStatements);
        }
        // Not idle (or failed earlier): never hand it out. Destroy it and take another.
        client.release(new TenantContextError("discarding a pooled connection that is not idle"));
        if (attempt >= 3) throw new TenantContextError("no idle connection after 4 attempts");
      }
    } catch (err) {
      freeSlot();
      throw err;
    }
  }

  /**
   * The connection carried a session-level tenant from earlier use (something outside this client
   * set one). The request that found it was not affected — enter_tenant's transaction-local value
   * takes precedence — but the connection is destroyed, and the observer told.
   */
  #tainted(lease: Lease): void {
    const error = new TenantScopeError(
      "a pooled connection carried a session-level tenant setting from earlier use; it has been destroyed",
    );
    lease.destroy(error);
    this.#notify(() => this.#observer.onConnectionError?.(error));
  }

  #notify(call: () => void): void {
    try {
      call();
    } catch {
      // An observer must never break a request.
    }
  }
}

/** @internal One checked-out connection and the tenant slot that goes with it. */
class Lease {
  #done = false;
  constructor(
    readonly client: pg.PoolClient,
    /** Names of the client's statements this connection has prepared. */
    private readonly prepared: Set<string>,
    private readonly freeSlot: () => void,
    private readonly rollbackTimeoutMs: number,
    private readonly maxPreparedStatements: number,
  ) {}

  run(statements: readonly Statement[]): Promise<BatchOutcome> {
    return runBatch(this.client, statements, this.prepared);
  }

  /** True when fn's statement `name` is prepared on this connection already, or there is room for it. */
  mayPrepare(name: string): boolean {
    if (this.prepared.has(name)) return true;
    let count = 0;
    for (const n of this.prepared) if (n.startsWith(PREPARED_PREFIX)) count++;
    return count < this.maxPreparedStatements;
  }

  /** Back to the pool: only from idle, after COMMIT. */
  release(): void {
    if (this.#done) return;
    this.#done = true;
    this.client.release();
    this.freeSlot();
  }

  /** Closed instead of reused (the transaction already ended). */
  destroy(reason: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.client.release(reason);
    this.freeSlot();
  }

  /**
   * ROLLBACK (bounded: a connection that does not answer is closed), then destroy the connection:
   * it is never reused. ROLLBACK outside a transaction is only a warning, so it is always sent;
   * on a dead connection it fails at once.
   */
  async discard(reason: Error): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    try {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), this.rollbackTimeoutMs)));
      const outcome = await Promise.race([this.run([ROLLBACK]), timedOut]);
      clearTimeout(timer);
      if (outcome === "timeout") socketOf(this.client)?.destroy?.();
    } finally {
      this.client.release(reason);
      this.freeSlot();
    }
  }
}

/** Refuses what a tenant scope must not send; returns the statement from its first word on (fromFirstWord). */
function checkStatement(text: unknown, params: unknown): string {
  if (typeof text !== "string" || text.trim() === "") {
    throw new TenantScopeError("a tenant query takes SQL text and an array of parameters (no query objects, cursors or named statements)");
  }
  if (params !== undefined && !Array.isArray(params)) throw new TenantScopeError("query parameters must be an array");
  const body = fromFirstWord(text);
  if (TRANSACTION_CONTROL.test(body)) {
    throw new TenantScopeError(
      `transaction control (and DEALLOCATE, DISCARD) is the tenant client's job; refusing ${firstWordOf(body)} inside a tenant scope`,
    );
  }
  return body;
}

/** tenantQuery's statement (`body`: from its first word on) runs outside an explicit transaction block: refuses what could commit there midway. */
function checkAtomic(body: string): void {
  if (NON_ATOMIC.test(body)) {
    throw new TenantScopeError(
      `tenantQuery runs its statement without an explicit transaction block, where ${firstWordOf(body)} could commit midway; run it inside withTenant`,
    );
  }
}

const firstWordOf = (body: string) => JSON.stringify(body.split(/\s+/)[0]);

/** True when the prelude found a session-level tenant left on the connection (the value is never echoed: it is another tenant's id). */
function inheritedTenant(prelude: pg.QueryResult | undefined): boolean {
  const inherited = (prelude?.rows[0] as { inherited: string | null } | undefined)?.inherited;
  return inherited !== null && inherited !== undefined && inherited !== "";
}

interface ScopeContext {
  lease(): Promise<Lease>;
  observeQuery(o: TenantQueryObservation): void;
  observeTransaction(o: TenantTransactionObservation): void;
  tainted(lease: Lease): void;
  planGeneration(): number;
  stalePlan(generation: number): void;
  prelude(): Statement;
  statementNames: StatementNames;
}

class Scope implements TenantScope {
  #lease: Lease | undefined;
  #chain: Promise<unknown> = Promise.resolve();
  #state: "idle" | "open" | "ended" = "idle";
  #failure: Error | undefined;
  #statements = 0;
  #startedAt = 0;
  #lastDurationMs = 0;
  #tainted = false;
  schema: string | undefined;

  constructor(
    private readonly ctx: ScopeContext,
    readonly tenantId: string,
    readonly tier: Tier,
    private readonly timeoutMs: number,
  ) {}

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  query<R = any>(text: string, params?: unknown[], options?: TenantQueryOptions): Promise<QueryResult<R>> {
    // One at a time: a statement is sent only after the previous one answered 'T', so nothing can
    // be sent behind a statement that ended the transaction.
    const run = this.#chain.then(() => this.#run(text, params, options));
    this.#chain = run.catch(() => {});
    return run as Promise<QueryResult<R>>;
  }

  async #run(text: string, params: unknown[] | undefined, options: TenantQueryOptions | undefined): Promise<pg.QueryResult> {
    if (this.#state === "ended")
      throw new TenantScopeError(
        "the tenant scope has ended: a query after withTenant() returned would run outside the tenant's transaction",
      );
    if (this.#failure)
      throw new TenantScopeError("the tenant transaction has already failed; no further queries run in it", { cause: this.#failure });
    try {
      checkStatement(text, params);
    } catch (err) {
      this.#failure = err as Error;
      throw err;
    }
    const first = this.#state === "idle";
    if (first) {
      try {
        this.#lease = await this.ctx.lease();
      } catch (err) {
        this.#failure = err as Error;
        throw err;
      }
      this.#state = "open";
      this.#startedAt = performance.now();
    }
    const generation = this.ctx.planGeneration();
    const statement = userStatement(text, params, options, this.#lease!, generation, this.ctx.statementNames);
    const statements = first ? [BEGIN, this.ctx.prelude(), statement] : [rearm(this.timeoutMs), statement];
    const batch = await this.#lease!.run(statements);
    const query = batch.results.length === statements.length ? batch.results[statements.length - 1] : undefined;
    this.#statements++;
    this.#lastDurationMs = performance.now() - this.#startedAt;
    const error =
      batch.error ??
      (batch.status !== "T"
        ? new TenantScopeError(`the statement left the tenant transaction (status ${batch.status}); refusing to continue outside it`)
        : undefined);
    this.ctx.observeQuery({
      tenantId: this.tenantId,
      tier: this.tier,
      durationMs: batch.durationMs,
      rows: query?.rowCount ?? undefined,
      errorCode: batch.error ? sqlState(batch.error) : undefined,
    });
    if (error) {
      // Inside a transaction there is no retry; the statement's next use gets a fresh name.
      if (statement.name && isStalePlan(error)) this.ctx.stalePlan(generation);
      this.#failure = error;
      throw error;
    }
    if (first) {
      this.schema = (batch.results[1].rows[0] as { schema: string }).schema;
      this.#tainted = inheritedTenant(batch.results[1]);
    }
    return query!;
  }

  /** Ends the scope: COMMIT when everything succeeded, else ROLLBACK and destroy the connection. */
  async finish(fnError: Error | undefined): Promise<void> {
    await this.#chain; // statements fn fired without awaiting still belong to this transaction
    const wasOpen = this.#state === "open";
    this.#state = "ended";
    const lease = this.#lease;
    if (!lease) return; // fn sent nothing: no connection was taken
    let error = fnError ?? this.#failure;
    if (!error) {
      const commit = await lease.run([COMMIT]);
      error =
        commit.error ?? (commit.status !== "I" ? new TenantScopeError(`COMMIT left the connection in status ${commit.status}`) : undefined);
    }
    this.ctx.observeTransaction({
      tenantId: this.tenantId,
      tier: this.tier,
      durationMs: wasOpen ? performance.now() - this.#startedAt : this.#lastDurationMs,
      statements: this.#statements,
      outcome: error ? "rollback" : "commit",
      errorCode: sqlState(error),
    });
    if (error) {
      await lease.discard(error);
      // fn returned normally but a statement failed (fn swallowed it), or COMMIT failed: the request fails.
      if (!fnError) throw error;
      return;
    }
    if (this.#tainted) this.ctx.tainted(lease);
    else lease.release();
  }
}

/** `pool.withTenant(claims, fn)`. */
export function withTenant<T>(pool: TenantPool, claims: TenantClaimsInput, fn: (scope: TenantScope) => Promise<T>): Promise<T> {
  return pool.withTenant(claims, fn);
}

/** `pool.tenantQuery(claims, text, params, options)`: one statement, one round trip. */
export function tenantQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(
  pool: TenantPool,
  claims: TenantClaimsInput,
  text: string,
  params?: unknown[],
  options?: TenantQueryOptions,
): Promise<pg.QueryResult<R>> {
  return pool.tenantQuery<R>(claims, text, params, options);
}

export function createTenantPool(options: TenantPoolOptions): TenantPool {
  return new TenantPool(options);
}
