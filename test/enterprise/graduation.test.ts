import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type pg from "pg";
import { TENANT_TABLES } from "../../lib/schema/catalogue";
import { tenantGateKey } from "../../lib/db/locks";
import { demoteTenant, FAILPOINTS, graduateTenant, openMove, type Failpoint } from "../../lib/enterprise/graduation";
import { MIGRATIONS } from "../../lib/schema/migrations";
import { SHARED_SCHEMA } from "../../lib/schema/planner";
import { dedicatedSchemaName, type Tenant } from "../../lib/tenant/model";
import { ensureTenantLoginRole, provisionDedicatedSchema, tenantLoginRoleExists } from "../../lib/enterprise/dedicated";
import { syncTenantRows, verifyCopy } from "../../lib/enterprise/tenant-rows";
import { eraseTenant, findTenant, requireTenant, withRole } from "../../lib/tenant/registry";
import { waitFor } from "../../lib/local/processes";
import {
  backendPid,
  checksums,
  EMPTY,
  migratedDatabase,
  ROLES,
  seededTenant,
  tenantTransaction,
  waitUntilWaitingForLock,
  whereRowsAre,
  type EnterpriseDb,
} from "./helpers";

let env: EnterpriseDb;
let mover: pg.Client;
let app: pg.Client;
let other: Tenant;
let otherBefore: Record<string, string>;

beforeAll(async () => {
  env = await migratedDatabase();
  mover = await env.connect(ROLES.migrator);
  app = await env.connect(ROLES.app);
  other = await seededTenant(env.admin, "bystander", 150, "pro");
  otherBefore = await checksums(env.admin, other.id, SHARED_SCHEMA);
});

afterAll(async () => {
  // The bystander in the shared schema is never touched by anyone's move.
  expect(await checksums(env.admin, other.id, SHARED_SCHEMA)).toEqual(otherBefore);
  await env.close();
});

describe("graduation and demotion", () => {
  it("round trip shared → dedicated → shared keeps every row, with equal checksums, in exactly one place", async () => {
    const t = await seededTenant(env.admin, "round-trip", 300);
    const before = await checksums(env.admin, t.id, SHARED_SCHEMA);

    const up = await graduateTenant(mover, t.slug);
    expect(up.verification.map((v) => v.ok)).toEqual(TENANT_TABLES.map(() => true));
    expect(up.verification.every((v) => v.sourceChecksum === v.targetChecksum)).toBe(true);
    expect(up.rowsMoved).toBe(Object.values(before).reduce((n, c) => n + Number(c.split(":")[0]), 0));
    expect(up.writesHeldMs).toBeGreaterThanOrEqual(0);
    let where = await whereRowsAre(env.admin, t.id);
    expect(where).toEqual({ placement: "dedicated", routed: before, shared: EMPTY, dedicated: before });

    const down = await demoteTenant(mover, t.slug);
    expect(down.verification.every((v) => v.ok)).toBe(true);
    where = await whereRowsAre(env.admin, t.id);
    expect(where.placement).toBe("shared");
    expect(where.shared).toEqual(before);
    expect(where.dedicated.trades).toBe("absent");

    // A second run finds nothing to do.
    expect((await demoteTenant(mover, t.slug)).alreadyThere).toBe(true);
  });

  it("refuses below the enterprise tier, and a demotion while a graduation is open", async () => {
    const t = await seededTenant(env.admin, "pro-tenant", 10, "pro");
    await expect(graduateTenant(mover, t.slug)).rejects.toThrow(/enterprise/);
    const e = await seededTenant(env.admin, "half-moved", 10);
    await expect(
      graduateTenant(mover, e.slug, {
        failpoint: (p) => {
          if (p === "after-prefill") throw new Error("crash");
        },
      }),
    ).rejects.toThrow("crash");
    await expect(demoteTenant(mover, e.slug)).rejects.toThrow(/graduation of half-moved is in progress \(step target_ready\)/);
    await graduateTenant(mover, e.slug);
    expect(await openMove(env.admin, e.id)).toBeUndefined();
  });

  it("carries over writes made after the prefill (insert, update, delete) through the cutover", async () => {
    const t = await seededTenant(env.admin, "busy", 100);
    let inserted = "";
    await graduateTenant(mover, t.slug, {
      failpoint: async (p) => {
        if (p !== "after-prefill") return;
        await tenantTransaction(app, t.id, async (c) => {
          inserted = (
            await c.query(`INSERT INTO trades (tenant_id, symbol, side, quantity, price) VALUES ($1, 'NEW', 'buy', 1, 2) RETURNING id`, [
              t.id,
            ])
          ).rows[0].id;
          await c.query(`UPDATE positions SET quantity = 42 WHERE symbol = 'AAPL'`);
          await c.query(`DELETE FROM risk_metrics WHERE metric = 'beta'`);
          // Deleting a position sets trades.position_id to NULL in the source: the copy must follow.
          await c.query(`DELETE FROM positions WHERE symbol = 'MSFT'`);
        });
      },
    });
    const dedicated = dedicatedSchemaName(t.id);
    const { rows } = await env.admin.query(
      `SELECT (SELECT count(*) FROM ${dedicated}.trades WHERE id = $1)::int AS inserted,
              (SELECT quantity FROM ${dedicated}.positions WHERE symbol = 'AAPL')::int AS quantity,
              (SELECT count(*) FROM ${dedicated}.risk_metrics WHERE metric = 'beta')::int AS beta,
              (SELECT count(*) FROM ${dedicated}.positions WHERE symbol = 'MSFT')::int AS msft,
              (SELECT count(*) FROM ${dedicated}.trades WHERE symbol = 'MSFT' AND position_id IS NOT NULL)::int AS msft_linked`,
      [inserted],
    );
    expect(rows[0]).toEqual({ inserted: 1, quantity: 42, beta: 0, msft: 0, msft_linked: 0 });
    const where = await whereRowsAre(env.admin, t.id);
    expect(where.shared).toEqual(EMPTY);
  });

  it("survives two rows swapping a unique key after the prefill (the keyed update would collide; the target is rewritten)", async () => {
    const t = await seededTenant(env.admin, "swapper", 40);
    const before = await checksums(env.admin, t.id, SHARED_SCHEMA);
    const messages: string[] = [];
    await graduateTenant(mover, t.slug, {
      onProgress: (p) => messages.push(p.message),
      failpoint: async (p) => {
        if (p !== "after-prefill") return;
        await tenantTransaction(app, t.id, async (c) => {
          const { rows } = await c.query(`SELECT id, client_order_id FROM trades ORDER BY id LIMIT 2`);
          await c.query(`UPDATE trades SET client_order_id = 'swap-tmp' WHERE id = $1`, [rows[0].id]);
          await c.query(`UPDATE trades SET client_order_id = $2 WHERE id = $1`, [rows[1].id, rows[0].client_order_id]);
          await c.query(`UPDATE trades SET client_order_id = $2 WHERE id = $1`, [rows[0].id, rows[1].client_order_id]);
        });
      },
    });
    const where = await whereRowsAre(env.admin, t.id);
    expect(where.shared).toEqual(EMPTY);
    expect(where.dedicated.trades).not.toEqual(before.trades); // the swap is there
    expect(where.dedicated.positions).toEqual(before.positions);
    expect(messages.some((m) => m.startsWith("a unique key moved between rows"))).toBe(true);
  });

  it("holds only the moving tenant's writes: other tenants commit while its gate is held", async () => {
    const t = await seededTenant(env.admin, "gated", 50);
    const appOther = await env.connect(ROLES.app);
    const appMoving = await env.connect(ROLES.app);
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let reachedGate!: () => void;
    const atGate = new Promise<void>((r) => (reachedGate = r));
    const move = graduateTenant(mover, t.slug, {
      failpoint: async (p) => {
        if (p !== "cutover-gate-held") return;
        reachedGate();
        await released;
      },
    });
    await atGate;

    // Another tenant's transaction completes while the gate is held (were it held too, this would
    // wait until release() below, which never comes first: the test would fail at its timeout).
    await tenantTransaction(appOther, other.id, (c) =>
      c.query(`INSERT INTO trades (tenant_id, symbol, side, quantity, price) VALUES ($1, 'OTHER', 'buy', 1, 1)`, [other.id]),
    );
    otherBefore = await checksums(env.admin, other.id, SHARED_SCHEMA);

    // The moving tenant's transaction waits at the gate (negative control: the gate does hold it).
    let movingDone = false;
    const moving = tenantTransaction(appMoving, t.id, async (c) => {
      const schema = (await c.query(`SELECT (current_schemas(false))[1] AS s`)).rows[0].s;
      await c.query(`INSERT INTO trades (tenant_id, symbol, side, quantity, price) VALUES ($1, 'LATE', 'buy', 1, 1)`, [t.id]);
      return schema;
    }).then((s) => {
      movingDone = true;
      return s;
    });
    const waitingAtGate = async () => {
      const { rows } = await env.admin.query(
        `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND mode = 'ShareLock'
           AND (classid::bigint << 32 | objid::bigint) = hashtextextended($1, 0)`,
        [tenantGateKey(t.id)],
      );
      return rows[0].n as number;
    };
    await waitFor("the moving tenant's transaction to wait at its gate", async () => (await waitingAtGate()) === 1);
    expect(movingDone).toBe(false);

    release();
    const result = await move;
    // Released after the flip, it is routed to the new schema and its row is there, once.
    expect(await moving).toBe(dedicatedSchemaName(t.id));
    const { rows: late } = await env.admin.query(
      `SELECT count(*)::int AS n FROM ${dedicatedSchemaName(t.id)}.trades WHERE symbol = 'LATE'`,
    );
    expect(late[0].n).toBe(1);
    expect(result.writesHeldMs).toBeGreaterThan(0); // reported; its size is for bench/, not a test
  });

  it("never holds other tenants during the prefill, though it bulk-loads without indexes and keys", async () => {
    const t = await seededTenant(env.admin, "bulk-load", 200);
    const appOther = await env.connect(ROLES.app);
    const appOtherPid = await backendPid(appOther);
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let reached!: () => void;
    const inPrefill = new Promise<void>((r) => (reached = r));
    const messages: string[] = [];
    const move = graduateTenant(mover, t.slug, {
      onProgress: (p) => messages.push(p.message),
      failpoint: async (p) => {
        if (p !== "during-prefill") return;
        reached();
        await released;
      },
    });
    await inPrefill;
    // Completes while the prefill is held at its failpoint (released only below).
    await tenantTransaction(appOther, other.id, (c) =>
      c.query(`INSERT INTO trades (tenant_id, symbol, side, quantity, price) VALUES ($1, 'DURING', 'buy', 1, 1)`, [other.id]),
    );
    otherBefore = await checksums(env.admin, other.id, SHARED_SCHEMA);
    release();
    await move;
    expect(messages.some((m) => m.includes("(bulk)"))).toBe(true);

    // Negative control: dropping a dedicated table's foreign key to the registry (what the bulk load
    // must not do) locks the registry, and every tenant's enter_tenant() waits.
    const u = await seededTenant(env.admin, "bulk-control", 5);
    const { schema } = await provisionDedicatedSchema(env.admin, u);
    const ddl = await env.connect();
    await ddl.query("BEGIN");
    await ddl.query(`ALTER TABLE ${schema}.trades DROP CONSTRAINT trades_tenant_fkey`);
    let done = false;
    const blocked = tenantTransaction(appOther, other.id, (c) => c.query(`SELECT 1`)).then(() => (done = true));
    await waitUntilWaitingForLock(env.admin, appOtherPid, "enter_tenant() behind the DDL");
    expect(done).toBe(false);
    await ddl.query("ROLLBACK");
    await blocked;
    await env.admin.query(`DROP SCHEMA ${schema} CASCADE`);
  });

  it("a REPEATABLE READ transaction released after the flip fails to serialize instead of writing to the old schema", async () => {
    const t = await seededTenant(env.admin, "rr-tenant", 20);
    const rr = await env.connect(ROLES.app);
    const rrPid = await backendPid(rr);
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let reachedGate!: () => void;
    const atGate = new Promise<void>((r) => (reachedGate = r));
    const move = graduateTenant(mover, t.slug, {
      failpoint: async (p) => {
        if (p === "cutover-before-commit") {
          reachedGate();
          await released;
        }
      },
    });
    await atGate;
    const attempt = tenantTransaction(
      rr,
      t.id,
      (c) => c.query(`INSERT INTO trades (tenant_id, symbol, side, quantity, price) VALUES ($1, 'RR', 'buy', 1, 1)`, [t.id]),
      "REPEATABLE READ",
    ).then(
      () => undefined,
      (err: { code?: string }) => err.code,
    );
    await waitUntilWaitingForLock(env.admin, rrPid, "the REPEATABLE READ transaction at the gate");
    release();
    await move;
    expect(await attempt).toBe("40001");
    const where = await whereRowsAre(env.admin, t.id);
    expect(where.shared).toEqual(EMPTY);

    // Negative control: migration 0004's enter_tenant (no row lock) routes such a transaction to the
    // schema its snapshot saw — the old one — where its write would be removed with the source rows.
    const old = MIGRATIONS.find((m) => m.version === "0004")!.sql;
    const oldFunction = old
      .slice(old.indexOf("CREATE OR REPLACE FUNCTION"), old.lastIndexOf("END $$;") + "END $$;".length)
      .replace('"tenancy".enter_tenant(', '"tenancy".enter_tenant_0004(')
      // Since 0009 the tenant roles take the gate only through take_tenant_gate() (no lock function of their own).
      .replace(/PERFORM pg_advisory_xact_lock_shared\([^;]*\);/, "PERFORM tenancy.take_tenant_gate();");
    await env.admin.query(
      `SET ROLE ${ROLES.owner}; ${oldFunction}; GRANT EXECUTE ON FUNCTION tenancy.enter_tenant_0004(uuid) TO ${ROLES.app}; RESET ROLE`,
    );
    let reachedDemoteGate!: () => void;
    const atDemoteGate = new Promise<void>((r) => (reachedDemoteGate = r));
    let releaseDemote!: () => void;
    const demoteReleased = new Promise<void>((r) => (releaseDemote = r));
    let rrDone!: () => void;
    const rrFinished = new Promise<void>((r) => (rrDone = r));
    const demote = demoteTenant(mover, t.slug, {
      failpoint: async (p) => {
        if (p === "cutover-before-commit") {
          reachedDemoteGate();
          await demoteReleased;
        }
        // Dropping the dedicated schema waits for transactions that read the registry.
        if (p === "during-removal") await rrFinished;
      },
    });
    await atDemoteGate;
    await rr.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
    const routed = rr.query(`SELECT tenancy.enter_tenant_0004($1) AS schema`, [t.id]);
    await waitUntilWaitingForLock(env.admin, rrPid, "0004's enter_tenant() at the gate");
    releaseDemote();
    expect((await routed).rows[0].schema).toBe(dedicatedSchemaName(t.id)); // stale: the tenant is shared now
    await rr.query("ROLLBACK");
    rrDone();
    await demote;
    expect((await requireTenant(env.admin, t.id)).placement).toBe("shared");
  });
});

describe("removing a dedicated schema", () => {
  it("does not stall other tenants behind a long transaction (the registry lock is only tried, 200 ms at a time)", async () => {
    const t = await seededTenant(env.admin, "leaving", 20);
    await graduateTenant(mover, t.slug);
    const long = await env.connect(ROLES.app);
    const fresh = await env.connect(ROLES.app);
    const [freshPid, moverPid] = [await backendPid(fresh), await backendPid(mover)];
    // A long transaction of another tenant: it read the registry in enter_tenant() and stays open.
    await long.query("BEGIN");
    await long.query(`SELECT tenancy.enter_tenant($1)`, [other.id]);
    const demotion = demoteTenant(mover, t.slug);
    // The removal is trying the registry lock behind the long transaction...
    await waitUntilWaitingForLock(env.admin, moverPid, "the schema removal");
    // ...and a new transaction of another tenant still completes before the long one ends (a removal
    // that queued every tenant behind it would hold this until the COMMIT below: a timeout).
    await tenantTransaction(fresh, other.id, (c) => c.query(`SELECT count(*) FROM trades`));
    await long.query("COMMIT");
    expect((await demotion).to).toBe(SHARED_SCHEMA);
    expect((await whereRowsAre(env.admin, t.id)).dedicated.trades).toBe("absent");

    // Negative control: a plain DROP SCHEMA waiting behind the same long transaction holds every new tenant transaction.
    const u = await seededTenant(env.admin, "leaving-too", 5);
    await graduateTenant(mover, u.slug);
    await long.query("BEGIN");
    await long.query(`SELECT tenancy.enter_tenant($1)`, [other.id]);
    const dropper = await env.connect();
    const dropperPid = await backendPid(dropper);
    const drop = dropper.query(`DROP SCHEMA ${dedicatedSchemaName(u.id)} CASCADE`);
    await waitUntilWaitingForLock(env.admin, dropperPid, "the plain DROP SCHEMA");
    let done = false;
    const stalled = tenantTransaction(fresh, other.id, (c) => c.query(`SELECT 1`)).then(() => (done = true));
    await waitUntilWaitingForLock(env.admin, freshPid, "a new tenant transaction behind the DROP");
    expect(done).toBe(false);
    await long.query("ROLLBACK");
    await drop;
    await stalled;
    // (u's rows are gone with the schema: it is only the control.)
    await env.admin.query(`DELETE FROM tenancy.tenants WHERE id = $1`, [u.id]);
  });
});

describe("offboarding a dedicated tenant", () => {
  it("removes rows, schema, login role and registry entry, without stalling other tenants behind a long transaction", async () => {
    const t = await seededTenant(env.admin, "offboarded", 20);
    await graduateTenant(mover, t.slug);
    await ensureTenantLoginRole(env.admin, await requireTenant(env.admin, t.id));
    const long = await env.connect(ROLES.app);
    const fresh = await env.connect(ROLES.app);
    const watcher = await env.connect();
    const adminPid = await backendPid(env.admin);
    await long.query("BEGIN");
    await long.query(`SELECT tenancy.enter_tenant($1)`, [other.id]);
    const offboarding = eraseTenant(env.admin, t.slug); // dropping a login role needs a role administrator
    await waitUntilWaitingForLock(watcher, adminPid, "the offboarding's schema removal");
    // Completes before the long transaction ends: the removal does not queue tenants behind it.
    await tenantTransaction(fresh, other.id, (c) => c.query(`SELECT count(*) FROM trades`));
    await long.query("COMMIT");
    const result = await offboarding;
    expect(result.deleted.find((d) => d.table === "trades")?.rows).toBe(20);
    expect(result.droppedSchema).toBe(dedicatedSchemaName(t.id));
    expect(await tenantLoginRoleExists(env.admin, t)).toBe(false);
    expect(await findTenant(env.admin, t.id)).toBeUndefined();
    const { rows } = await env.admin.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [dedicatedSchemaName(t.id)]);
    expect(rows).toHaveLength(0);
  });
});

describe("verification is what makes a copy true", () => {
  it("the copy run as the owner under FORCE RLS, bound to another tenant, 'succeeds' with 0 rows; verification names what is missing", async () => {
    const t = await seededTenant(env.admin, "verify-me", 30);
    const { schema } = await provisionDedicatedSchema(env.admin, t);
    const written = await withRole(env.admin, ROLES.owner, async (tx) => {
      await tx.query(`SELECT set_config('app.current_tenant_id', $1, true)`, [other.id]);
      return syncTenantRows(tx, SHARED_SCHEMA, schema, TENANT_TABLES, t.id);
    });
    expect(Object.values(written).every((n) => n === 0)).toBe(true); // no error, nothing copied
    const bad = await withRole(env.admin, ROLES.maintenance, (tx) => verifyCopy(tx, SHARED_SCHEMA, schema, TENANT_TABLES, t.id));
    expect(bad.find((v) => v.table === "trades")).toMatchObject({ ok: false, sourceRows: 30, targetRows: 0 });
    expect(bad.find((v) => v.table === "trades")!.missingInTarget).toHaveLength(10);

    // The same copy as the maintenance role verifies.
    await withRole(env.admin, ROLES.maintenance, (tx) => syncTenantRows(tx, SHARED_SCHEMA, schema, TENANT_TABLES, t.id));
    const good = await withRole(env.admin, ROLES.maintenance, (tx) => verifyCopy(tx, SHARED_SCHEMA, schema, TENANT_TABLES, t.id));
    expect(good.every((v) => v.ok)).toBe(true);
    await env.admin.query(`DROP SCHEMA ${schema} CASCADE`);
  });
});

describe("crash at every step, then run the command again", () => {
  /** Kills the mover's connection (the server rolls back whatever it had open) and stops the run. */
  function crashAt(point: Failpoint, pid: number) {
    return async (p: Failpoint) => {
      if (p !== point) return;
      await env.admin.query(`SELECT pg_terminate_backend($1)`, [pid]);
      throw new Error(`crashed at ${point}`);
    };
  }

  for (const direction of ["graduate", "demote"] as const) {
    for (const point of FAILPOINTS) {
      it(`${direction}: killed at ${point}, re-run ends with every row exactly once in exactly one place`, async () => {
        const slug = `${direction === "graduate" ? "g" : "d"}-${point}`.slice(0, 40);
        const t = await seededTenant(env.admin, slug, 60);
        if (direction === "demote") await graduateTenant(mover, t.slug);
        const before = await checksums(env.admin, t.id, direction === "graduate" ? SHARED_SCHEMA : dedicatedSchemaName(t.id));
        const run = direction === "graduate" ? graduateTenant : demoteTenant;

        const victim = await env.connect(ROLES.migrator);
        const pid = (await victim.query(`SELECT pg_backend_pid() AS pid`)).rows[0].pid;
        await expect(run(victim, t.slug, { failpoint: crashAt(point, pid) })).rejects.toThrow();

        // In between, what the tenant's requests see is complete: every row once, in the placement's schema.
        const between = await whereRowsAre(env.admin, t.id);
        expect(between.routed).toEqual(before);

        const again = await run(mover, t.slug);
        expect(again.alreadyThere).toBe(false);
        expect(again.resumed).toBe(true);
        const after = await whereRowsAre(env.admin, t.id);
        if (direction === "graduate") {
          expect(after).toEqual({ placement: "dedicated", routed: before, shared: EMPTY, dedicated: before });
        } else {
          expect(after.placement).toBe("shared");
          expect(after.shared).toEqual(before);
          expect(after.dedicated.trades).toBe("absent");
        }
        expect(await openMove(env.admin, t.id)).toBeUndefined();
      });
    }
  }
});
