/**
 * From raw per-repetition summaries to the numbers the issue asks for, per shape and protocol:
 * p50/p95 and throughput per variant, candidate/floor ratios with their spread across
 * repetitions, the goal verdict, and the plans. Pure; renders text, Markdown and JSON.
 */
import Table from "cli-table3";
import type { PlanReport, UnitResult } from "./runner";
import { floorKey } from "./runner";
import { median, ratioSpread, throughput, type Spread } from "../stats";

export const GOAL = { p50: 1.03, p95: 1.1, planCache: 1.2 } as const;
/** Issue 21: strict (s) may cost at most this much more than today's design (b), on p50 against the floor, for every prepared hot shape. */
export const STRICT_GOAL = { p50Over: 0.03 } as const;

export interface VariantStats {
  key: string;
  /** Medians across repetitions of each repetition's statistic (ms). */
  p50: number;
  p95: number;
  txP50: number;
  /** Transactions per second if the variant ran alone (whole transaction time). */
  tps: number;
  n: number;
}

export interface RatioStats {
  p50: Spread;
  p95: Spread;
}

export interface UnitReport {
  shape: string;
  title: string;
  kind: "hot" | "trap";
  protocol: string;
  /** The floor variant's key ("a", or "a fresh" in a plan-cache unit) and the candidate the goal applies to. */
  floor: string;
  candidate: string;
  variants: VariantStats[];
  /** "b/a", "a2/a", "c/a", "d/a", "e/a", "b/e"; in a plan-cache unit "b generic/b fresh" etc. */
  ratios: Record<string, RatioStats>;
  /** The same ratios over whole transactions (BEGIN, enter_tenant, query, COMMIT), p50 only. */
  txRatios: Record<string, Spread>;
  /** The ratio the goal applies to, and the verdict. */
  goal: { ratio: string; p50Limit: number; p95Limit?: number; met: boolean };
  /** s/a − b/a on p50 (medians across repetitions of the per-repetition ratios), when both ran; the goal applies to prepared hot shapes. */
  strict?: { over: number; limit: number; met: boolean; applies: boolean };
  /** |a′/a − 1| p50 (the noise floor of this unit), when the control ran. */
  control?: number;
  plans: PlanReport[];
  planChoices?: Record<string, { generic: number; custom: number }>;
}

export interface Report {
  meta: Record<string, unknown>;
  units: UnitReport[];
  mismatches: number;
  compared: number;
}

/** The ratios reported for a unit: [name, candidate key, floor key]. */
export function ratioPairs(result: UnitResult): [string, string, string][] {
  const keys = result.unit.variants.map((v) => v.key);
  const has = (k: string) => keys.includes(k);
  if (result.unit.shape.planCache) {
    const pairs: [string, string, string][] = [];
    for (const m of ["a", "b", "c", "e", "f", "s"])
      if (has(`${m} generic`) && has(`${m} fresh`)) pairs.push([`${m} generic/fresh`, `${m} generic`, `${m} fresh`]);
    if (has("b generic") && has("a fresh")) pairs.push(["b generic/a fresh", "b generic", "a fresh"]);
    return pairs;
  }
  const pairs: [string, string, string][] = [];
  for (const m of ["b", "a2", "c", "d", "e", "f", "s"]) if (has(m) && has("a")) pairs.push([`${m}/a`, m, "a"]);
  if (has("b") && has("e")) pairs.push(["b/e", "b", "e"]);
  if (has("s") && has("b")) pairs.push(["s/b", "s", "b"]);
  return pairs;
}

export function unitReport(result: UnitResult): UnitReport {
  const { unit, reps } = result;
  const index = (key: string) => unit.variants.findIndex((v) => v.key === key);
  const variants: VariantStats[] = unit.variants.map((v, i) => ({
    key: v.key,
    p50: median(reps.map((r) => r.query[i].p50)),
    p95: median(reps.map((r) => r.query[i].p95)),
    txP50: median(reps.map((r) => r.tx[i].p50)),
    tps: median(reps.map((r) => throughput(r.tx[i]))),
    n: reps.reduce((s, r) => s + r.query[i].n, 0),
  }));
  const ratios: Record<string, RatioStats> = {};
  const txRatios: Record<string, Spread> = {};
  for (const [name, c, f] of ratioPairs(result)) {
    const pairs = reps.map((r) => ({ candidate: r.query[index(c)], floor: r.query[index(f)] }));
    ratios[name] = { p50: ratioSpread(pairs, "p50"), p95: ratioSpread(pairs, "p95") };
    txRatios[name] = ratioSpread(
      reps.map((r) => ({ candidate: r.tx[index(c)], floor: r.tx[index(f)] })),
      "p50",
    );
  }
  const goalRatio = unit.shape.planCache ? "b generic/fresh" : "b/a";
  const g = ratios[goalRatio];
  const goal = unit.shape.planCache
    ? { ratio: goalRatio, p50Limit: GOAL.planCache, met: g ? g.p50.median <= GOAL.planCache : false }
    : { ratio: goalRatio, p50Limit: GOAL.p50, p95Limit: GOAL.p95, met: g ? g.p50.median <= GOAL.p50 && g.p95.median <= GOAL.p95 : false };
  const strictOver = ratios["s/a"] && ratios["b/a"] ? ratios["s/a"].p50.median - ratios["b/a"].p50.median : undefined;
  const strict =
    strictOver === undefined
      ? undefined
      : {
          over: strictOver,
          limit: STRICT_GOAL.p50Over,
          met: strictOver <= STRICT_GOAL.p50Over,
          applies: unit.shape.kind === "hot" && unit.protocol === "prepared" && !unit.shape.planCache,
        };
  return {
    shape: unit.shape.key,
    title: unit.shape.title,
    kind: unit.shape.kind,
    protocol: unit.shape.planCache ? "prepared (plan cache)" : unit.protocol,
    floor: floorKey(unit),
    candidate: unit.shape.planCache ? "b generic" : "b",
    variants,
    ratios,
    txRatios,
    goal,
    strict,
    control: ratios["a2/a"] ? Math.abs(ratios["a2/a"].p50.median - 1) : undefined,
    plans: result.plans,
    planChoices: result.planChoices,
  };
}

// --- rendering -------------------------------------------------------------------------------------

const f2 = (x: number) => x.toFixed(2);
const f3 = (x: number) => x.toFixed(3);
const ms = (x: number) => (x < 1 ? x.toFixed(3) : x < 10 ? x.toFixed(2) : x.toFixed(1));
export const spreadText = (s: Spread) => `${f2(s.median)} (${f2(s.min)}–${f2(s.max)})`;

/** The plan note for a unit: indexes the floor and b use, and whether their plans/buffers match. */
export function planNote(u: UnitReport): string {
  const notes: string[] = [];
  for (const p of u.plans) {
    const floor = p.summaries[u.floor];
    const cmp = p.comparisons[u.candidate];
    if (!floor || !cmp) continue;
    const idx = [...new Set(floor.indexes)].join(", ") || "no index";
    const buffers = cmp.sameBuffers ? "same buffers" : `buffers ${cmp.floor.buffers} vs ${cmp.candidate.buffers}`;
    const same = `${cmp.samePlan ? "same plan" : "another plan"}, ${buffers}`;
    notes.push(`${p.tenant}: ${idx}; ${same}`);
  }
  return notes.join(" · ");
}

function unitRows(u: UnitReport, keys: string[]): string[] {
  const v = (k: string) => u.variants.find((x) => x.key === k);
  const b = u.ratios[u.goal.ratio];
  return [
    u.shape,
    u.protocol,
    ...keys.map((k) => (v(k) ? ms(v(k)!.p50) : "")),
    b ? spreadText(b.p50) : "",
    b ? spreadText(b.p95) : "",
    u.ratios["a2/a"] ? f3(u.ratios["a2/a"].p50.median) : "",
    u.ratios["c/a"] ? f3(u.ratios["c/a"].p50.median) : "",
    u.ratios["e/a"] ? f3(u.ratios["e/a"].p50.median) : "",
    u.ratios["f/a"] ? f3(u.ratios["f/a"].p50.median) : "",
    u.ratios["d/a"] ? f3(u.ratios["d/a"].p50.median) : "",
    u.kind === "hot" || u.goal.ratio !== "b/a" ? (u.goal.met ? "met" : "MISSED") : "(trap)",
    u.ratios["s/a"] ? f3(u.ratios["s/a"].p50.median) : "",
    u.ratios["s/a"] ? f3(u.ratios["s/a"].p95.median) : "",
    strictVerdict(u),
  ];
}

/** s/a − b/a and, where issue 21's goal applies (prepared hot shapes), the verdict. */
function strictVerdict(u: UnitReport): string {
  if (!u.strict) return "";
  const over = `${u.strict.over >= 0 ? "+" : ""}${f3(u.strict.over)}`;
  return u.strict.applies ? `${over} ${u.strict.met ? "met" : "MISSED"}` : over;
}

const MODE_KEYS = ["a", "a2", "b", "c", "d", "e", "f", "s"];

export function renderText(report: Report): string {
  const head = [
    "shape",
    "protocol",
    ...MODE_KEYS.map((k) => `${k} p50 ms`),
    "b/a p50",
    "b/a p95",
    "a′/a",
    "c/a",
    "e/a",
    "f/a",
    "d/a",
    "goal",
    "s/a p50",
    "s/a p95",
    `s/a − b/a (≤ ${STRICT_GOAL.p50Over})`,
  ];
  const t = new Table({ head, style: { head: [], border: [] } });
  for (const u of report.units.filter((x) => !x.protocol.startsWith("prepared ("))) t.push(unitRows(u, MODE_KEYS));
  const out = [t.toString()];
  for (const u of report.units.filter((x) => x.protocol.startsWith("prepared ("))) {
    const p = new Table({
      head: ["plan cache: largest tenant", "p50 ms", "p95 ms", "ratio p50", "ratio p95"],
      style: { head: [], border: [] },
    });
    for (const v of u.variants) p.push([v.key, ms(v.p50), ms(v.p95), "", ""]);
    for (const [name, r] of Object.entries(u.ratios)) p.push([name, "", "", spreadText(r.p50), spreadText(r.p95)]);
    out.push(p.toString(), `goal ${u.goal.ratio} ≤ ${u.goal.p50Limit}: ${u.goal.met ? "met" : "MISSED"}`);
  }
  const tp = new Table({
    head: ["shape", "protocol", ...MODE_KEYS.map((k) => `${k} tx/s`), "plans (floor indexes; b vs a)"],
    style: { head: [], border: [] },
  });
  for (const u of report.units) {
    tp.push([
      u.shape,
      u.protocol,
      ...MODE_KEYS.map((k) => (u.variants.find((x) => x.key === k) ? Math.round(u.variants.find((x) => x.key === k)!.tps) : "")),
      planNote(u),
    ]);
  }
  out.push(tp.toString());
  out.push(`results compared with the floor: ${report.compared}, mismatches: ${report.mismatches}`);
  return out.join("\n");
}

/** The docs' tables: ratios only (absolute times on a shared 2-core machine mean nothing). */
export function renderMarkdown(report: Report): string {
  const lines: string[] = [];
  const head = [
    "shape",
    "protocol",
    "b/a p50 (range)",
    "b/a p95 (range)",
    "a′/a",
    "c/a",
    "e/a",
    "f/a",
    "b/e",
    "d/a",
    "tx b/a",
    "goal",
    "s/a p50 (range)",
    "s/a p95 (range)",
    `s/a − b/a (≤ ${STRICT_GOAL.p50Over} prepared hot)`,
  ];
  lines.push(`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`);
  for (const u of report.units.filter((x) => !x.protocol.startsWith("prepared ("))) {
    const r = (k: string) => (u.ratios[k] ? f2(u.ratios[k].p50.median) : "");
    const b = u.ratios["b/a"];
    lines.push(
      `| ${[
        `${u.shape}${u.kind === "trap" ? " (trap)" : ""}`,
        u.protocol,
        b ? spreadText(b.p50) : "",
        b ? spreadText(b.p95) : "",
        r("a2/a"),
        r("c/a"),
        r("e/a"),
        r("f/a"),
        r("b/e"),
        r("d/a"),
        u.txRatios["b/a"] ? f2(u.txRatios["b/a"].median) : "",
        u.kind === "hot" ? (u.goal.met ? "met" : "**missed**") : "—",
        u.ratios["s/a"] ? spreadText(u.ratios["s/a"].p50) : "",
        u.ratios["s/a"] ? spreadText(u.ratios["s/a"].p95) : "",
        strictVerdict(u).replace("MISSED", "**missed**"),
      ].join(" | ")} |`,
    );
  }
  for (const u of report.units.filter((x) => x.protocol.startsWith("prepared ("))) {
    lines.push("", `Largest tenant, prepared, cached generic plan vs fresh (custom) plan (goal b generic/fresh ≤ ${GOAL.planCache}):`, "");
    lines.push("| ratio | p50 (range) | p95 (range) |", "|---|---|---|");
    for (const [name, r] of Object.entries(u.ratios)) lines.push(`| ${name} | ${spreadText(r.p50)} | ${spreadText(r.p95)} |`);
  }
  lines.push(
    "",
    "Plans (EXPLAIN ANALYZE, BUFFERS; largest and median tenant) and, for prepared statements, how often PostgreSQL chose the generic plan:",
    "",
  );
  lines.push("| shape | protocol | floor's indexes; b vs a | generic/custom plans a · b |", "|---|---|---|---|");
  for (const u of report.units) {
    const choice = (k: string) => (u.planChoices?.[k] ? `${u.planChoices[k].generic}/${u.planChoices[k].custom}` : "");
    const choices = u.planChoices ? `${choice(u.floor)} · ${choice(u.candidate)}` : "";
    lines.push(`| ${u.shape} | ${u.protocol} | ${planNote(u)} | ${choices} |`);
  }
  return lines.join("\n");
}

/** The machine-readable form: per shape and protocol, the p50 of each variant and the ratio b/a. */
export function toJson(report: Report): unknown {
  return {
    meta: report.meta,
    results: { compared: report.compared, mismatches: report.mismatches },
    shapes: report.units.map((u) => ({
      shape: u.shape,
      kind: u.kind,
      protocol: u.protocol,
      p50: Object.fromEntries(u.variants.map((v) => [v.key, v.p50])),
      p95: Object.fromEntries(u.variants.map((v) => [v.key, v.p95])),
      tps: Object.fromEntries(u.variants.map((v) => [v.key, Math.round(v.tps)])),
      ratio_b_a: u.ratios["b/a"]?.p50.median ?? null,
      ratio_s_a: u.ratios["s/a"]?.p50.median ?? null,
      strict: u.strict ?? null,
      tx_ratio_b_a: u.txRatios["b/a"]?.median ?? null,
      ratios: Object.fromEntries(Object.entries(u.ratios).map(([k, r]) => [k, { p50: r.p50, p95: r.p95 }])),
      goal: u.goal,
      control: u.control ?? null,
      plans: u.plans.map((p) => ({
        tenant: p.tenant,
        indexes: Object.fromEntries(Object.entries(p.summaries).map(([k, s]) => [k, s.indexes])),
        samePlan: Object.fromEntries(Object.entries(p.comparisons).map(([k, c]) => [k, c.samePlan])),
        sameBuffers: Object.fromEntries(Object.entries(p.comparisons).map(([k, c]) => [k, c.sameBuffers])),
        buffers: Object.fromEntries(Object.entries(p.summaries).map(([k, s]) => [k, { main: s.buffers, initPlans: s.initPlanBuffers }])),
        text: p.text,
      })),
      planChoices: u.planChoices ?? null,
    })),
  };
}
