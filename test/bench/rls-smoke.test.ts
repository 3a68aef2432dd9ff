/**
 * A seconds-long smoke run of the RLS benchmark harness on the test cluster: a tiny data set, every
 * variant, a few shapes, both protocols and the plan-cache unit. It checks what the harness
 * asserts (role posture, same rows as the floor, same plans), with negative controls showing each
 * check can fail. Latencies are never asserted.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROLES } from "../../lib/schema/roles";
import { qualified } from "../../lib/db/sql";
import { ResultChecker } from "../../bench/rls/compare";
import { buildDataset, type Dataset } from "../../bench/rls/dataset";
import { MODES, mode } from "../../bench/rls/modes";
import { assertPosture } from "../../bench/rls/posture";
import { buildUnits, Runner } from "../../bench/rls/runner";
import { shape } from "../../bench/rls/shapes";
import { createTestDatabase, type TestDatabase } from "../support/postgres";

describe("RLS benchmark harness (smoke)", () => {
  let db: TestDatabase;
  let admin: pg.Client;
  let app: pg.Client;
  let dataset: Dataset;

  beforeAll(async () => {
    db = await createTestDatabase("rlsbench");
    admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    dataset = await buildDataset(admin, { tenants: 3, trades: 900, modes: MODES, sampleIds: 20 });
    app = new pg.Client({ connectionString: db.urlAs(ROLES.app) });
    await app.connect();
  });

  afterAll(async () => {
    await app?.end();
    await admin?.end();
    await db?.drop();
  });

  it("seeds skewed tenants and equal copies", async () => {
    expect(dataset.tenants.map((t) => t.trades)).toEqual([...dataset.tenants.map((t) => t.trades)].sort((x, y) => y - x));
    expect(dataset.largest.trades).toBeGreaterThan(dataset.tenants[2].trades);
    const counts = await admin.query(
      `SELECT (SELECT count(*) FROM bench_floor.trades)::int AS a, (SELECT count(*) FROM bench_rls.trades)::int AS b,
              (SELECT count(*) FROM bench_rls_function.trades)::int AS e,
              (SELECT count(*) FROM bench_single_000.trades)::int + (SELECT count(*) FROM bench_single_001.trades)::int
                + (SELECT count(*) FROM bench_single_002.trades)::int AS d`,
    );
    expect(counts.rows[0]).toEqual({ a: 900, b: 900, e: 900, d: 900 });
  });

  it("accepts app_user and refuses a superuser (negative control)", async () => {
    await expect(assertPosture(app, MODES, dataset)).resolves.toMatchObject({
      role: ROLES.app,
      superuser: false,
      bypassrls: false,
      rowSecurity: "on",
    });
    await expect(assertPosture(admin, MODES, dataset)).rejects.toThrow(/superuser/);
  });

  it("refuses when an RLS copy is not forced (negative control)", async () => {
    const table = qualified(mode("b").schema, "positions");
    await admin.query(`ALTER TABLE ${table} NO FORCE ROW LEVEL SECURITY`);
    try {
      await expect(assertPosture(app, MODES, dataset)).rejects.toThrow(/not forced/);
    } finally {
      await admin.query(`ALTER TABLE ${table} FORCE ROW LEVEL SECURITY`);
    }
  });

  it("runs every variant with the floor's rows, in both protocols and the plan-cache unit", async () => {
    const checker = new ResultChecker();
    const runner = new Runner(app, dataset, checker);
    const shapes = ["point", "positions_trades", "insert_trade", "update_position", "trap_date", "largest_plan_cache"].map(shape);
    for (const [i, unit] of buildUnits(shapes, MODES, ["extended", "prepared"]).entries()) {
      await runner.warm(unit, 1, i);
      const rep = await runner.run(unit, 6, 100 + i, unit.shape.key);
      expect(rep.query).toHaveLength(unit.variants.length);
      for (const s of rep.query) expect(s.n).toBeGreaterThanOrEqual(6);
    }
    expect(checker.count).toBe(0);
    expect(checker.compared).toBeGreaterThan(100);
  });

  it("explains floor and RLS with the same plan over the composite primary key", async () => {
    const runner = new Runner(app, dataset, new ResultChecker());
    const [unit] = buildUnits([shape("point")], MODES, ["extended"]);
    const plan = await runner.explain(unit, dataset.largest, 1);
    expect(plan.summaries.a.indexes).toEqual(["trades_pkey"]);
    expect(plan.comparisons.b).toMatchObject({ samePlan: true });
    expect(plan.summaries.b.initPlans).toBeGreaterThanOrEqual(1);
    expect(plan.text.b).toContain("trades_pkey");
  });

  it("detects a variant whose rows differ from the floor's (negative control)", async () => {
    const tenant = dataset.tenants[1];
    const id = tenant.tradeIds[0];
    await admin.query(`UPDATE ${qualified(mode("b").schema, "trades")} SET fee = fee + 1 WHERE tenant_id = $1 AND id = $2`, [
      tenant.id,
      id,
    ]);
    try {
      const checker = new ResultChecker();
      const runner = new Runner(app, { ...dataset, tenants: [{ ...tenant, tradeIds: [id] }] }, checker);
      const [unit] = buildUnits([shape("point")], MODES, ["extended"]);
      const rep = await runner.run(unit, 6, 1, "tampered");
      // Every execution of b, and nothing else, differs from the floor.
      expect(checker.count).toBe(rep.query[unit.variants.findIndex((v) => v.key === "b")].n);
      expect(checker.mismatches.every((m) => m.variant === "b" && m.tenant === tenant.slug)).toBe(true);
    } finally {
      await admin.query(`UPDATE ${qualified(mode("b").schema, "trades")} SET fee = fee - 1 WHERE tenant_id = $1 AND id = $2`, [
        tenant.id,
        id,
      ]);
    }
  });
});
