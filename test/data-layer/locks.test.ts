/**
 * lib/db/locks.ts on a real PostgreSQL: the keys meet the SQL side's, a bounded wait fails with
 * 55P03 and leaves the caller's lock_timeout as it was, shared and exclusive modes, and a session
 * lock outlives its transaction until released — also when the work under it throws.
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, withTransaction } from "../../lib/db/client";
import {
  isLockTimeout,
  lockForTransaction,
  lockSession,
  MIGRATE_LOCK,
  tenantGateKey,
  tenantMoveKey,
  withSessionLock,
} from "../../lib/db/locks";
import { MIGRATIONS } from "../../lib/schema/migrations";
import { createTestDatabase, type TestDatabase } from "../support/postgres";

let db: TestDatabase;
let holder: pg.Client;
let waiter: pg.Client;
let watcher: pg.Client;

beforeAll(async () => {
  db = await createTestDatabase("locks");
  [holder, waiter, watcher] = [await connect(db.url), await connect(db.url), await connect(db.url)];
});

afterAll(async () => {
  for (const c of [holder, waiter, watcher]) await c?.end().catch(() => {});
  await db?.drop();
});

/** Advisory locks on `key` granted to anyone, as pg_locks shows them. */
async function granted(key: string): Promise<number> {
  const { rows } = await watcher.query(
    `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND granted AND (classid::bigint << 32 | objid::bigint) = hashtextextended($1, 0)`,
    [key],
  );
  return rows[0].n;
}

describe("lock keys", () => {
  it("the tenant gate key hashes to the lock enter_tenant() takes in SQL", async () => {
    const tenant = "6f1d2c3b-4a59-4e7d-8c1b-2a3f4e5d6c7b";
    const { rows } = await watcher.query(
      `SELECT hashtextextended($1, 0) = hashtextextended('tenancy:tenant:' || $2::uuid::text, 0) AS same`,
      [tenantGateKey(tenant), tenant],
    );
    expect(rows[0].same).toBe(true);
    // The SQL side's expression: the latest enter_tenant() takes the gate through tenancy.take_tenant_gate()
    // (0009; the verifier of 0012 too), and the latest take_tenant_gate() locks this key.
    const latest = (fn: RegExp) => [...MIGRATIONS].reverse().find((m) => fn.test(m.sql));
    expect(latest(/FUNCTION \S+\.enter_tenant\(tenant uuid\)/)?.sql).toContain(`PERFORM tenancy.take_tenant_gate();`);
    expect(latest(/FUNCTION \S+\.take_tenant_gate\(\)/)?.sql).toContain(
      `pg_catalog.pg_advisory_xact_lock_shared(pg_catalog.hashtextextended('tenancy:tenant:' || tenant::text, 0))`,
    );
  });

  it("names each lock apart", () => {
    const id = "6f1d2c3b-4a59-4e7d-8c1b-2a3f4e5d6c7b";
    expect(new Set([MIGRATE_LOCK, tenantGateKey(id), tenantMoveKey(id)]).size).toBe(3);
  });
});

describe("transaction-scoped locks", () => {
  it("a bounded wait fails with 55P03 and the caller's lock_timeout is back afterwards; free, it is taken", async () => {
    const key = "test:xact-bounded";
    await holder.query("BEGIN");
    await lockForTransaction(holder, key);
    try {
      await waiter.query("BEGIN");
      await waiter.query("SET LOCAL lock_timeout = '7s'");
      await waiter.query("SAVEPOINT before_lock");
      const err = await lockForTransaction(waiter, key, { timeoutMs: 50 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isLockTimeout(err)).toBe(true);
      await waiter.query("ROLLBACK TO SAVEPOINT before_lock");
      expect((await waiter.query("SHOW lock_timeout")).rows[0].lock_timeout).toBe("7s");
      await waiter.query("ROLLBACK");
    } finally {
      await holder.query("ROLLBACK");
    }
    // Negative control: with nobody holding it, the same request is granted, and the setting is restored.
    await withTransaction(waiter, async (tx) => {
      await tx.query("SET LOCAL lock_timeout = '7s'");
      await lockForTransaction(tx, key, { timeoutMs: 50 });
      expect(await granted(key)).toBe(1);
      expect((await tx.query("SHOW lock_timeout")).rows[0].lock_timeout).toBe("7s");
    });
    expect(await granted(key)).toBe(0);
  });

  it("shared holders coexist; an exclusive request waits for them", async () => {
    const key = "test:xact-shared";
    await holder.query("BEGIN");
    await lockForTransaction(holder, key, { shared: true });
    try {
      await withTransaction(waiter, async (tx) => {
        await lockForTransaction(tx, key, { shared: true, timeoutMs: 50 });
        expect(await granted(key)).toBe(2);
      });
      const exclusive = await withTransaction(waiter, (tx) => lockForTransaction(tx, key, { timeoutMs: 50 })).then(
        () => "granted",
        (e: unknown) => (isLockTimeout(e) ? "timed out" : e),
      );
      expect(exclusive).toBe("timed out");
    } finally {
      await holder.query("ROLLBACK");
    }
  });
});

describe("session-scoped locks", () => {
  it("a bounded lock outlives its transaction until released; meanwhile another session times out", async () => {
    const key = "test:session-bounded";
    const release = await lockSession(holder, key, { timeoutMs: 50 });
    expect((await holder.query("SELECT 1 AS still")).rows[0].still).toBe(1);
    expect(await granted(key)).toBe(1);
    const err = await lockSession(waiter, key, { timeoutMs: 50 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isLockTimeout(err)).toBe(true);
    await release();
    expect(await granted(key)).toBe(0);
    // Negative control: free, the same bounded request is granted.
    const again = await lockSession(waiter, key, { timeoutMs: 50 });
    expect(await granted(key)).toBe(1);
    await again();
  });

  it("withSessionLock releases the lock when the work throws", async () => {
    const key = "test:session-throws";
    await expect(
      withSessionLock(holder, key, async () => {
        expect(await granted(key)).toBe(1);
        throw new Error("work failed");
      }),
    ).rejects.toThrow("work failed");
    expect(await granted(key)).toBe(0);
  });
});
