/**
 * The RLS benchmark's pure parts: statistics, the interleaving schedule, result and plan
 * comparison, SQL rendering per variant, and the report's verdicts. No timing is asserted here.
 */
import { describe, expect, it } from "vitest";
import { TENANT_TABLES } from "../../lib/schema/catalogue";
import { emptySchemaState, planSchema } from "../../lib/schema/planner";
import { clusterSettings } from "../../bench/rls/cluster";
import { comparePlans, digestRows, ResultChecker, summarizePlan, type PlanNode } from "../../bench/rls/compare";
import { isTableCreation, rlsAdjustments, singleTenantDdl } from "../../bench/rls/dataset";
import { benchSchemas, mode, MODES } from "../../bench/rls/modes";
import { GOAL, ratioPairs, STRICT_GOAL, unitReport } from "../../bench/rls/report";
import { buildUnits, type UnitResult } from "../../bench/rls/runner";
import { interleave, tenantRounds, variantOrders, wholeBlocks } from "../../bench/rls/schedule";
import { renderShape, shape, SHAPES } from "../../bench/rls/shapes";
import {
  median,
  percentile,
  prng,
  ratioSpread,
  shuffle,
  spread,
  summarize,
  throughput,
  zipfSizes,
  type LatencySummary,
} from "../../bench/stats";

describe("statistics", () => {
  it.each([
    [[5], 0.5, 5],
    [[1, 2, 3, 4], 0.5, 2.5],
    [[1, 2, 3, 4, 5], 0.5, 3],
    [[1, 2, 3, 4, 5], 0, 1],
    [[1, 2, 3, 4, 5], 1, 5],
    [Array.from({ length: 101 }, (_, i) => i), 0.95, 95],
    [[10, 20], 0.95, 19.5],
  ])("percentile(%j, %s) = %s", (sample, p, expected) => {
    expect(percentile(sample, p)).toBeCloseTo(expected, 10);
  });

  it("refuses an empty sample and a rank outside [0, 1]", () => {
    expect(() => percentile([], 0.5)).toThrow(/empty/);
    expect(() => percentile([1], 1.5)).toThrow(/rank/);
  });

  it("summarises unsorted samples", () => {
    const s = summarize([3, 1, 2, 10]);
    expect(s).toMatchObject({ n: 4, p50: 2.5, mean: 4, total: 16 });
    expect(s.p95).toBeCloseTo(8.95, 10);
    expect(s.p99).toBeCloseTo(9.79, 10);
    expect(throughput(s)).toBeCloseTo(250, 10); // 4 executions in 16 ms
  });

  it("takes ratios per repetition, then their median and range", () => {
    const sum = (p50: number, p95 = p50): LatencySummary => ({ n: 1, p50, p95, p99: p95, mean: p50, total: p50 });
    const reps = [
      { candidate: sum(1.1), floor: sum(1.0) },
      { candidate: sum(2.0), floor: sum(2.0) },
      { candidate: sum(3.3), floor: sum(3.0) },
    ];
    const r = ratioSpread(reps, "p50");
    expect(r.median).toBeCloseTo(1.1, 10);
    expect(r.min).toBeCloseTo(1.0, 10);
    expect(r.max).toBeCloseTo(1.1, 10);
    expect(spread([3, 1, 2])).toMatchObject({ median: 2, min: 1, max: 3 });
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it("is repeatable: the same seed gives the same stream, shuffles are permutations", () => {
    const a = prng(7);
    const b = prng(7);
    const xs = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    const items = [1, 2, 3, 4, 5, 6, 7, 8];
    expect(shuffle(items, prng(1)).sort()).toEqual(items);
  });

  it.each([
    [1_000_000, 60, 1],
    [100_000, 50, 1],
    [1000, 10, 0.5],
    [500, 5, 2],
  ])("zipfSizes(%s, %s, %s): exact total, largest first, skewed", (total, tenants, exponent) => {
    const sizes = zipfSizes(total, tenants, exponent, 10);
    expect(sizes).toHaveLength(tenants);
    expect(sizes.reduce((s, x) => s + x, 0)).toBe(total);
    for (let i = 1; i < sizes.length; i++) expect(sizes[i]).toBeLessThanOrEqual(sizes[i - 1]);
    expect(Math.min(...sizes)).toBeGreaterThanOrEqual(10);
    expect(sizes[0]).toBeGreaterThan(sizes[sizes.length - 1] * 2);
  });

  it("zipfSizes refuses impossible inputs", () => {
    expect(() => zipfSizes(10, 0)).toThrow(/positive/);
    expect(() => zipfSizes(50, 10, 1, 10)).toThrow(/cannot/);
  });
});

describe("interleaving schedule", () => {
  it("is a Latin square per block: each variant once per iteration and once per position", () => {
    const k = 6;
    const orders = variantOrders(k, 4 * k, prng(3));
    for (const order of orders) expect([...order].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    for (let block = 0; block < 4; block++) {
      for (let position = 0; position < k; position++) {
        const seen = orders.slice(block * k, (block + 1) * k).map((o) => o[position]);
        expect(new Set(seen).size).toBe(k);
      }
    }
  });

  it("uses every tenant equally often (counts differ by at most one)", () => {
    const picks = tenantRounds(7, 100, prng(5));
    const counts = Array.from({ length: 7 }, (_, t) => picks.filter((p) => p === t).length);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    expect(interleave(3, 9, 2, prng(1))).toHaveLength(9);
  });

  it("rounds iterations up to whole blocks", () => {
    expect(wholeBlocks(10, 6)).toBe(12);
    expect(wholeBlocks(12, 6)).toBe(12);
    expect(wholeBlocks(1, 8)).toBe(8);
  });
});

describe("result and plan comparison", () => {
  it("digests rows canonically: key order and Date objects do not matter, row order does", () => {
    const d = new Date("2026-01-02T03:04:05.678Z");
    expect(digestRows([{ a: 1, b: d }])).toBe(digestRows([{ b: "2026-01-02T03:04:05.678Z", a: 1 }]));
    expect(digestRows([{ a: 1 }, { a: 2 }])).not.toBe(digestRows([{ a: 2 }, { a: 1 }]));
  });

  it("counts mismatches against the floor", () => {
    const c = new ResultChecker();
    expect(c.check({ unit: "u", variant: "b", tenant: "t", iteration: 0, floor: "x", candidate: "x" })).toBe(true);
    expect(c.check({ unit: "u", variant: "b", tenant: "t", iteration: 1, floor: "x", candidate: "y" })).toBe(false);
    expect(c).toMatchObject({ compared: 2, count: 1 });
    expect(c.mismatches[0]).toMatchObject({ iteration: 1, candidate: "y" });
  });

  const scan = (index: string, hit: number, extra: PlanNode[] = []): PlanNode => ({
    "Node Type": "Index Scan",
    "Index Name": index,
    "Relation Name": "trades",
    "Shared Hit Blocks": hit,
    "Actual Rows": 1,
    Plans: extra,
  });
  const initPlan: PlanNode = {
    "Node Type": "Result",
    "Parent Relationship": "InitPlan",
    "Subplan Name": "InitPlan 1 (returns $0)",
    "Shared Hit Blocks": 2,
  };

  it("leaves the policy's InitPlan out of the plan and its buffers", () => {
    const s = summarizePlan(scan("trades_pkey", 7, [initPlan]));
    expect(s).toMatchObject({
      nodes: ["Index Scan using trades_pkey"],
      indexes: ["trades_pkey"],
      initPlans: 1,
      buffers: 5,
      initPlanBuffers: 2,
      rows: 1,
    });
  });

  it("sees through the Result node that compares two tables' InitPlans in an RLS join", () => {
    const join = (): PlanNode => ({
      "Node Type": "Hash Join",
      "Shared Hit Blocks": 9,
      Plans: [scan("trades_pkey", 5), scan("positions_pkey", 4)],
    });
    const rls: PlanNode = {
      "Node Type": "Result",
      "One-Time Filter": "($1 = $0)",
      "Shared Hit Blocks": 13,
      Plans: [initPlan, { ...initPlan, "Subplan Name": "InitPlan 2 (returns $1)" }, join()],
    };
    const c = comparePlans(join(), rls);
    expect(c).toMatchObject({ samePlan: true, sameBuffers: true });
    expect(c.candidate).toMatchObject({ initPlans: 2, initPlanBuffers: 4, buffers: 9 });
  });

  it("finds the same plan and buffers, and a different index", () => {
    const same = comparePlans(scan("trades_pkey", 5), scan("trades_pkey", 7, [initPlan]));
    expect(same).toMatchObject({ samePlan: true, sameBuffers: true });
    const other = comparePlans(scan("trades_pkey", 5), scan("trades_tenant_created_idx", 9));
    expect(other).toMatchObject({ samePlan: false, sameBuffers: false });
  });
});

describe("shapes rendered per variant", () => {
  const target = (key: "a" | "b" | "c" | "d" | "e") => {
    const m = mode(key);
    return {
      schema: m.layout === "single" ? "bench_single_000" : m.schema,
      tenantColumn: m.layout === "shared",
      explicitTenant: m.explicitTenant,
    };
  };

  it("the floor carries the tenant predicate as the last parameter, RLS does not", () => {
    const point = shape("point");
    expect(renderShape(point, target("a"))).toEqual({
      text: `SELECT t.id, t.symbol, t.side, t.quantity, t.price, t.fee, t.venue, t.executed_at FROM "bench_floor"."trades" t WHERE t.tenant_id = $2 AND t.id = $1`,
      usesTenant: true,
    });
    expect(renderShape(point, target("b"))).toEqual({
      text: `SELECT t.id, t.symbol, t.side, t.quantity, t.price, t.fee, t.venue, t.executed_at FROM "bench_rls"."trades" t WHERE t.id = $1`,
      usesTenant: false,
    });
    expect(renderShape(point, target("d")).text).toContain(`FROM "bench_single_000"."trades" t WHERE t.id = $1`);
  });

  it("joins on tenant_id (the foreign keys include it) except in the single-tenant reference", () => {
    const join = shape("positions_trades");
    expect(renderShape(join, target("b")).text).toContain("ON t.tenant_id = p.tenant_id AND t.position_id = p.id");
    expect(renderShape(join, target("d")).text).toContain("ON t.position_id = p.id");
    expect(renderShape(join, target("d")).text).not.toContain("tenant_id");
  });

  it("inserts supply tenant_id under RLS too (WITH CHECK verifies it), never in the reference", () => {
    const insert = shape("insert_trade");
    expect(renderShape(insert, target("b"))).toMatchObject({ usesTenant: true });
    expect(renderShape(insert, target("b")).text).toContain("(tenant_id, id, position_id");
    expect(renderShape(insert, target("d"))).toMatchObject({ usesTenant: false });
  });

  it("every shape uses exactly $1..$n for every variant (no gap, no stray parameter)", () => {
    for (const s of SHAPES) {
      for (const key of ["a", "b", "c", "d", "e"] as const) {
        const r = renderShape(s, target(key));
        const used = new Set([...r.text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])));
        const n = s.arity + (r.usesTenant ? 1 : 0);
        expect(
          [...used].sort((x, y) => x - y),
          `${s.key}/${key}`,
        ).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      }
    }
  });

  it("refuses a table that is not in the catalogue", () => {
    const bogus = { ...shape("point"), sql: () => `SELECT 1 FROM ${"x"}`, key: "bogus" };
    expect(() => renderShape({ ...bogus, sql: (q) => `SELECT * FROM ${q.t("orders")}` }, target("a"))).toThrow(/not a tenant table/);
  });
});

describe("copies", () => {
  it("creates the tables first, then everything else after loading", () => {
    const plan = planSchema("bench_x", emptySchemaState());
    const first = plan.filter(isTableCreation);
    expect(first.filter((s) => s.startsWith("CREATE TABLE"))).toHaveLength(TENANT_TABLES.length);
    expect(first.some((s) => /INDEX|POLICY|ROW LEVEL SECURITY|FOREIGN KEY/.test(s))).toBe(false);
    expect(plan.filter((s) => !isTableCreation(s)).some((s) => s.includes("CREATE POLICY"))).toBe(true);
  });

  it("renders the single-tenant reference from the catalogue without tenant_id", () => {
    const ddl = singleTenantDdl("bench_single_001");
    const all = [...ddl.create, ...ddl.finish].join("\n");
    expect(all).not.toContain("tenant_id");
    expect(ddl.create.filter((s) => s.startsWith("CREATE TABLE"))).toHaveLength(TENANT_TABLES.length);
    expect(all).toContain(`CREATE INDEX "trades_executed_at_idx" ON "bench_single_001"."trades" ("executed_at")`);
    expect(all).toContain(`FOREIGN KEY ("position_id") REFERENCES "bench_single_001"."positions" (id) ON DELETE SET NULL`);
    expect(all).toContain(`CREATE UNIQUE INDEX "trades_client_order_id_key"`);
  });

  it("turns RLS off on the floor copies and swaps the isolation policy on the variant copy", () => {
    expect(rlsAdjustments(mode("a"))).toContain(`ALTER TABLE "bench_floor"."trades" DISABLE ROW LEVEL SECURITY`);
    const variant = rlsAdjustments(mode("e"));
    expect(variant).toContain(`DROP POLICY tenant_isolation ON "bench_rls_function"."trades"`);
    expect(variant.find((s) => s.startsWith("CREATE POLICY"))).toContain("USING (tenant_id = (SELECT tenancy.current_tenant_id()))");
    expect(rlsAdjustments(mode("b")).every((s) => s.includes("autovacuum_enabled = false"))).toBe(true);
    expect(benchSchemas(MODES, 2)).toEqual([
      "bench_floor",
      "bench_floor2",
      "bench_rls",
      "bench_rls_pred",
      "bench_single_000",
      "bench_single_001",
      "bench_rls_function",
      "bench_rls_raw",
      "bench_rls_strict",
    ]);
  });

  it("sizes shared_buffers for the data set, within bounds", () => {
    const gib = 2 ** 30;
    expect(clusterSettings(1 * gib, 24 * gib).shared_buffers).toBe("1280MB");
    expect(clusterSettings(1, 24 * gib).shared_buffers).toBe("256MB");
    expect(clusterSettings(100 * gib, 10 * gib).shared_buffers).toBe("4096MB");
    expect(clusterSettings(gib)).toMatchObject({ jit: "off" });
  });
});

describe("report", () => {
  const sum = (p50: number, p95: number): LatencySummary => ({ n: 10, p50, p95, p99: p95, mean: p50, total: p50 * 10 });
  const result = (b: [number, number][], a: [number, number][]): UnitResult => {
    const [unit] = buildUnits(
      [shape("point")],
      MODES.filter((m) => ["a", "b"].includes(m.key)),
      ["extended"],
    );
    return { unit, plans: [], reps: a.map((x, i) => ({ query: [sum(...x), sum(...b[i])], tx: [sum(...x), sum(...b[i])] })) };
  };

  it("meets the goal at p50 ≤ 1.03 and p95 ≤ 1.10 (medians over repetitions)", () => {
    const r = unitReport(
      result(
        [
          [1.02, 1.09],
          [1.03, 1.1],
          [2, 2],
        ],
        [
          [1, 1],
          [1, 1],
          [1, 1],
        ],
      ),
    );
    expect(r.goal).toMatchObject({ ratio: "b/a", met: true, p50Limit: GOAL.p50, p95Limit: GOAL.p95 });
    expect(r.ratios["b/a"].p50.max).toBe(2);
  });

  it("misses the goal when the p95 ratio is above 1.10", () => {
    const r = unitReport(result([[1.0, 1.2]], [[1, 1]]));
    expect(r.goal.met).toBe(false);
  });

  it("judges strict (s) against today's design (b): s/a − b/a ≤ 0.03 on p50, applied to prepared hot shapes", () => {
    const strictResult = (s: number, protocol: "extended" | "prepared"): UnitResult => {
      const [unit] = buildUnits(
        [shape("point")],
        MODES.filter((m) => ["a", "b", "s"].includes(m.key)),
        [protocol],
      );
      return { unit, plans: [], reps: [{ query: [sum(1, 1), sum(1.01, 1.05), sum(s, 1.1)], tx: [sum(1, 1), sum(1, 1), sum(1, 1)] }] };
    };
    expect(unitReport(strictResult(1.035, "prepared")).strict).toMatchObject({ limit: STRICT_GOAL.p50Over, met: true, applies: true });
    expect(unitReport(strictResult(1.05, "prepared")).strict).toMatchObject({ met: false, applies: true });
    expect(unitReport(strictResult(1.05, "extended")).strict).toMatchObject({ met: false, applies: false });
    expect(unitReport(result([[1, 1]], [[1, 1]])).strict).toBeUndefined();
  });

  it("builds one plan-cache unit (generic vs fresh per mode) and the ratios it reports", () => {
    const units = buildUnits([shape("largest_plan_cache"), shape("point")], MODES, ["extended", "prepared"]);
    expect(units).toHaveLength(3);
    expect(units[0].variants.map((v) => v.key)).toEqual([
      "a generic",
      "a fresh",
      "b generic",
      "b fresh",
      "c generic",
      "c fresh",
      "e generic",
      "e fresh",
      "f generic",
      "f fresh",
      "s generic",
      "s fresh",
    ]);
    expect(ratioPairs({ unit: units[0], reps: [], plans: [] }).map((p) => p[0])).toEqual([
      "a generic/fresh",
      "b generic/fresh",
      "c generic/fresh",
      "e generic/fresh",
      "f generic/fresh",
      "s generic/fresh",
      "b generic/a fresh",
    ]);
    expect(ratioPairs({ unit: units[1], reps: [], plans: [] }).map((p) => p[0])).toEqual([
      "b/a",
      "a2/a",
      "c/a",
      "d/a",
      "e/a",
      "f/a",
      "s/a",
      "b/e",
      "s/b",
    ]);
  });
});
