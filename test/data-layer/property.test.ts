/**
 * Property: whatever sequence of operations random tenants run as app_user (through enter_tenant(),
 * as the services do), no tenant ever sees, changes, deletes, plants or moves another tenant's row,
 * and the database ends up exactly as a per-tenant model says. Seeded and bounded in time; the same
 * property run against a broken schema (permissive-only tenant policy) must find a counterexample.
 */
import fc from "fast-check";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROLES } from "../../lib/schema/roles";
import { createTenant } from "../../lib/tenant/registry";
import type { Tenant } from "../../lib/tenant/model";
import { BREAKAGES } from "./attacks";
import { migratedDatabase, sqlstate, type MigratedDatabase } from "./harness";

const TENANTS = 3;
const SEED = 20261126;

type Op =
  | { kind: "insert"; by: number; price: number }
  | { kind: "select"; by: number }
  | { kind: "readById"; by: number; target: number }
  | { kind: "update"; by: number; target: number; price: number }
  | { kind: "delete"; by: number; target: number }
  | { kind: "insertFor"; by: number; other: number }
  | { kind: "move"; by: number; target: number; other: number };

const tenantIndex = fc.integer({ min: 0, max: TENANTS - 1 });
const target = fc.nat({ max: 1000 });
const price = fc.integer({ min: 1, max: 100_000 });
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("insert" as const), by: tenantIndex, price }),
  fc.record({ kind: fc.constant("select" as const), by: tenantIndex }),
  fc.record({ kind: fc.constant("readById" as const), by: tenantIndex, target }),
  fc.record({ kind: fc.constant("update" as const), by: tenantIndex, target, price }),
  fc.record({ kind: fc.constant("delete" as const), by: tenantIndex, target }),
  fc.record({ kind: fc.constant("insertFor" as const), by: tenantIndex, other: tenantIndex }),
  fc.record({ kind: fc.constant("move" as const), by: tenantIndex, target, other: tenantIndex }),
);

interface World {
  m: MigratedDatabase;
  tenants: Tenant[];
  sessions: pg.Client[];
}

async function world(breakIt?: (m: MigratedDatabase) => Promise<unknown>): Promise<World> {
  const m = await migratedDatabase("prop");
  const tenants: Tenant[] = [];
  for (let i = 0; i < TENANTS; i++) tenants.push(await createTenant(m.admin, { slug: `prop-tenant-${i}`, tier: "starter", region: "eu" }));
  if (breakIt) await breakIt(m);
  const sessions: pg.Client[] = [];
  for (let i = 0; i < TENANTS; i++) sessions.push(await m.connectAs(ROLES.app));
  return { m, tenants, sessions };
}

/** One transaction as tenant `i`, the way the services run: BEGIN, enter_tenant, work, COMMIT (ROLLBACK on error). */
async function asTenant<T>(w: World, i: number, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = w.sessions[i];
  await c.query("BEGIN");
  try {
    await c.query("SELECT tenancy.enter_tenant($1)", [w.tenants[i].id]);
    const result = await fn(c);
    await c.query("COMMIT");
    return result;
  } catch (err) {
    await c.query("ROLLBACK");
    throw err;
  }
}

/** Runs `ops`, checking each against the model; throws on the first cross-tenant effect. */
async function runOps(w: World, ops: Op[]): Promise<void> {
  await w.m.admin.query("DELETE FROM shared.trades");
  const owner = new Map<string, number>(); // trade id → tenant index
  const pick = (n: number, by?: number) => {
    const ids = [...owner.keys()].filter((id) => by === undefined || owner.get(id) === by);
    return ids.length ? ids[n % ids.length] : undefined;
  };
  const insert = (c: pg.Client, tenantId: string, p: number) =>
    c.query(`INSERT INTO trades (tenant_id, symbol, side, quantity, price) VALUES ($1, 'AAPL', 'buy', 1, $2) RETURNING id`, [tenantId, p]);

  for (const o of ops) {
    const me = w.tenants[o.by].id;
    switch (o.kind) {
      case "insert": {
        const { rows } = await asTenant(w, o.by, (c) => insert(c, me, o.price));
        owner.set(rows[0].id, o.by);
        break;
      }
      case "select": {
        const { rows } = await asTenant(w, o.by, (c) => c.query(`SELECT id, tenant_id FROM trades`));
        const foreign = rows.filter((r) => r.tenant_id !== me);
        if (foreign.length) throw new Error(`tenant ${o.by} saw ${foreign.length} row(s) of other tenants`);
        const expected = [...owner]
          .filter(([, t]) => t === o.by)
          .map(([id]) => id)
          .sort();
        expect(rows.map((r) => r.id).sort()).toEqual(expected);
        break;
      }
      case "readById": {
        const id = pick(o.target);
        if (!id) break;
        const { rows } = await asTenant(w, o.by, (c) => c.query(`SELECT id FROM trades WHERE id = $1`, [id]));
        if (rows.length !== (owner.get(id) === o.by ? 1 : 0))
          throw new Error(`tenant ${o.by} read trade of tenant ${owner.get(id)}: ${rows.length} row(s)`);
        break;
      }
      case "update": {
        const id = pick(o.target);
        if (!id) break;
        const { rowCount } = await asTenant(w, o.by, (c) => c.query(`UPDATE trades SET price = $2 WHERE id = $1`, [id, o.price]));
        if (rowCount !== (owner.get(id) === o.by ? 1 : 0))
          throw new Error(`tenant ${o.by} updated ${rowCount} row(s) of tenant ${owner.get(id)}`);
        break;
      }
      case "delete": {
        const id = pick(o.target);
        if (!id) break;
        const { rowCount } = await asTenant(w, o.by, (c) => c.query(`DELETE FROM trades WHERE id = $1`, [id]));
        if (rowCount !== (owner.get(id) === o.by ? 1 : 0))
          throw new Error(`tenant ${o.by} deleted ${rowCount} row(s) of tenant ${owner.get(id)}`);
        if (rowCount) owner.delete(id);
        break;
      }
      case "insertFor": {
        const other = w.tenants[o.other].id;
        const result = await asTenant(w, o.by, (c) => insert(c, other, 1)).catch((err: { code?: string }) => err);
        if (o.other === o.by) owner.set((result as pg.QueryResult).rows[0].id, o.by);
        else if (!(result instanceof Error)) throw new Error(`tenant ${o.by} planted a row in tenant ${o.other}`);
        break;
      }
      case "move": {
        const id = pick(o.target, o.by);
        if (!id || o.other === o.by) break;
        const code = await sqlstate(() =>
          asTenant(w, o.by, (c) => c.query(`UPDATE trades SET tenant_id = $2 WHERE id = $1`, [id, w.tenants[o.other].id])),
        );
        if (code === undefined) throw new Error(`tenant ${o.by} moved a row to tenant ${o.other}`);
        break;
      }
    }
  }
  // Ground truth, read as superuser: exactly the model.
  const { rows } = await w.m.admin.query(`SELECT id, tenant_id FROM shared.trades`);
  const byId = new Map(w.tenants.map((t, i) => [t.id, i]));
  expect(new Map(rows.map((r) => [r.id, byId.get(r.tenant_id)]))).toEqual(owner);
}

const property = (w: World) => fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), (ops) => runOps(w, ops));

describe("random operations by random tenants", () => {
  let real: World;
  let broken: World;
  beforeAll(async () => {
    real = await world();
    broken = await world((m) => BREAKAGES.permissiveOnly.apply(m));
  });
  afterAll(async () => {
    await real?.m.close();
    await broken?.m.close();
  });

  it("never show, change, plant or move another tenant's row (real schema)", async () => {
    await fc.assert(property(real), { seed: SEED, numRuns: 100, interruptAfterTimeLimit: 30_000 });
  });

  it("negative control: the same property finds a leak under a permissive-only tenant policy", async () => {
    const result = await fc.check(property(broken), { seed: SEED, numRuns: 100, interruptAfterTimeLimit: 30_000 });
    expect(result.failed).toBe(true);
    expect(String(result.errorInstance)).toMatch(/saw|read trade|updated|deleted|planted|moved|expected/);
  });
});
