/**
 * Advisory locks, and the keys of every one this system takes, in one place.
 *
 * A key is a string that says what it serialises ("tenancy:migrate"); PostgreSQL hashes it to the
 * bigint lock id with `hashtextextended(key, 0)`, the same expression the SQL side uses, so a lock
 * taken here and one taken in a migration's function meet when their strings are equal.
 *
 * Two scopes:
 *  - transaction (`lockForTransaction`): inside an open transaction, released by its COMMIT or
 *    ROLLBACK — nothing to forget;
 *  - session (`lockSession` / `withSessionLock`): held across transactions until released, and
 *    released by the server when the session ends however it ends (a killed process holds nothing).
 *
 * The wait bound is PostgreSQL's `lock_timeout`, set transaction-locally around the one lock
 * request: past it the request fails with SQLSTATE 55P03 (lock_not_available), see
 * `isLockTimeout`. Not a loop of `pg_try_advisory_lock`: a waiting request joins the lock's queue,
 * and later requests queue behind it. The tenant write gate depends on that — an exclusive request
 * waiting at the gate holds the tenant's new (shared) transactions back, so the running ones drain
 * — whereas a try loop never queues and would starve behind a tenant that always has a transaction
 * open.
 */
import { withTransaction, type Queryable } from "./client";

// --- the keys -------------------------------------------------------------------------------------

/**
 * Every schema change holds it, so two never interleave: `migrate` for its whole run (session,
 * lib/schema/migrate.ts) and dedicated schema provisioning for its transaction (lib/enterprise/dedicated.ts).
 */
export const MIGRATE_LOCK = "tenancy:migrate";

/**
 * A tenant's write gate. `tenancy.enter_tenant()` takes it SHARED for every tenant transaction, in
 * SQL, as `hashtextextended('tenancy:tenant:' || tenant::text, 0)` (lib/schema/migrations.ts; frozen
 * text, so this string must stay equal to it); a move's cutover and an import take it EXCLUSIVE to
 * hold that one tenant's writes.
 */
export function tenantGateKey(tenantId: string): string {
  return `tenancy:tenant:${tenantId}`;
}

/** One mover (graduate or demote) per tenant at a time; session-level for the whole move (lib/enterprise/graduation.ts). */
export function tenantMoveKey(tenantId: string): string {
  return `tenancy:move:${tenantId}`;
}

// --- taking them ----------------------------------------------------------------------------------

export interface LockWait {
  /** Longest wait for the lock in milliseconds; past it the request fails with 55P03. @default no bound */
  timeoutMs?: number;
}

/** True for the error a bounded lock request fails with when the wait bound passes (lock_not_available). */
export function isLockTimeout(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === "55P03";
}

/**
 * Takes `key` for the rest of the open transaction: exclusive, or shared with `shared: true`.
 * With a bound, `lock_timeout` is set for this one request and put back to its previous value
 * after it, so the rest of the transaction keeps the caller's own setting.
 */
export async function lockForTransaction(tx: Queryable, key: string, options: LockWait & { shared?: boolean } = {}): Promise<void> {
  const lock = options.shared ? "pg_advisory_xact_lock_shared" : "pg_advisory_xact_lock";
  if (options.timeoutMs === undefined) {
    await tx.query(`SELECT ${lock}(hashtextextended($1, 0))`, [key]);
    return;
  }
  // OFFSET 0 keeps the subquery from being flattened: the previous value is read before it is replaced.
  const { rows } = await tx.query<{ previous: string }>(
    `SELECT p.previous, set_config('lock_timeout', $1, true) FROM (SELECT current_setting('lock_timeout') AS previous OFFSET 0) p`,
    [String(lockTimeout(options.timeoutMs))],
  );
  await tx.query(`SELECT ${lock}(hashtextextended($1, 0))`, [key]);
  await tx.query(`SELECT set_config('lock_timeout', $1, true)`, [rows[0].previous]);
}

/**
 * Takes `key` for the session (exclusive) and returns the function that releases it. With a bound
 * the request runs in a transaction of its own (the bound is transaction-local; the lock outlives
 * the transaction), so call it outside any transaction.
 */
export async function lockSession(client: Queryable, key: string, wait: LockWait = {}): Promise<() => Promise<void>> {
  if (wait.timeoutMs === undefined) {
    await client.query(`SELECT pg_advisory_lock(hashtextextended($1, 0))`, [key]);
  } else {
    const timeout = lockTimeout(wait.timeoutMs);
    await withTransaction(client, async (tx) => {
      await tx.query(`SET LOCAL lock_timeout = ${timeout}`);
      await tx.query(`SELECT pg_advisory_lock(hashtextextended($1, 0))`, [key]);
    });
  }
  return async () => {
    await client.query(`SELECT pg_advisory_unlock(hashtextextended($1, 0))`, [key]);
  };
}

/** Holds `key` for the session while `fn` runs and releases it after, however `fn` ends. */
export async function withSessionLock<T>(client: Queryable, key: string, fn: () => Promise<T>, wait: LockWait = {}): Promise<T> {
  const release = await lockSession(client, key, wait);
  try {
    return await fn();
  } finally {
    await release();
  }
}

/** lock_timeout in whole milliseconds; 0 would mean "no bound", so the smallest bound is 1 ms. */
function lockTimeout(ms: number): number {
  return Math.max(1, Math.floor(ms));
}
