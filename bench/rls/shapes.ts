/**
 * The query shapes a trading platform runs, written once and rendered per variant: the same text
 * for every variant except the tenant predicate (present for the floor and c, absent under RLS) and
 * the table's schema. Table names are checked against the catalogue (lib/schema/catalogue.ts).
 *
 * Shapes of kind "hot" carry the goal (p50 b/a ≤ 1.03, p95 ≤ 1.10). Shapes of kind "trap" are the
 * known ways to lose it, measured so that the docs can show what they cost:
 *   - a non-leakproof operator (numeric `>`): under RLS it must run after the policy's qual;
 *   - a text filter: texteq is leakproof (an enum's `=` is not, which is why the catalogue uses
 *     text + CHECK instead of enums);
 *   - timestamptz compared with a date: `timestamptz >= date` is not leakproof, so under RLS it
 *     cannot be an index condition and the whole tenant is read instead of the window.
 */
import { randomUUID } from "node:crypto";
import { tenantTable } from "../../lib/schema/catalogue";
import { qualified } from "../../lib/db/sql";

export type Protocol = "extended" | "prepared";
export const PROTOCOLS: readonly Protocol[] = ["extended", "prepared"];

/** What the harness knows about a tenant, read from the seeded data. */
export interface Fixture {
  index: number;
  id: string;
  slug: string;
  trades: number;
  tradeIds: string[];
  positions: { id: string; symbol: string }[];
  symbols: string[];
}

export interface ParamContext {
  tenant: Fixture;
  random: () => number;
  /** Newest executed_at / computed_at of the seeded data: windows are placed relative to it. */
  anchor: Date;
  /** A run-unique counter for generated keys. */
  sequence: number;
}

export interface SqlContext {
  /** A catalogue table, qualified with the variant's schema. */
  t(table: string): string;
  /** `alias.tenant_id = $n AND ` when the variant carries the predicate, else "". */
  where(alias: string): string;
  /** `a.tenant_id = b.tenant_id AND ` when the tables have tenant_id (the foreign keys include it), else "". */
  join(a: string, b: string): string;
  /** `tenant_id, ` for an INSERT column list when the table has the column, else "". */
  tenantColumn(): string;
  /** `$n, ` for an INSERT value list when the table has the column, else "". */
  tenantValue(): string;
}

export interface Shape {
  key: string;
  title: string;
  kind: "hot" | "trap";
  /** Which tenants the shape runs for: all of them in rounds, or the largest alone. */
  tenants: "all" | "largest";
  write?: boolean;
  /** Number of $n parameters of the shape itself; the tenant's, when used, is $(arity + 1). */
  arity: number;
  sql(q: SqlContext): string;
  params(p: ParamContext): unknown[];
  /**
   * Instead of comparing protocols, compare a cached generic plan with a fresh (custom) plan, both
   * prepared, for the largest tenant. Goal: generic/fresh ≤ 1.2.
   */
  planCache?: boolean;
}

export interface RenderTarget {
  schema: string;
  /** The table has tenant_id (false for the single-tenant reference). */
  tenantColumn: boolean;
  explicitTenant: boolean;
}

export interface RenderedQuery {
  text: string;
  /** The tenant id is passed as the last parameter. */
  usesTenant: boolean;
}

export function renderShape(shape: Shape, target: RenderTarget): RenderedQuery {
  let usesTenant = false;
  const n = `$${shape.arity + 1}`;
  const q: SqlContext = {
    t: (table) => qualified(target.schema, tenantTable(table).name),
    where: (alias) => {
      if (!target.explicitTenant || !target.tenantColumn) return "";
      usesTenant = true;
      return `${alias}.tenant_id = ${n} AND `;
    },
    join: (a, b) => (target.tenantColumn ? `${a}.tenant_id = ${b}.tenant_id AND ` : ""),
    tenantColumn: () => (target.tenantColumn ? "tenant_id, " : ""),
    tenantValue: () => {
      if (!target.tenantColumn) return "";
      usesTenant = true;
      return `${n}, `;
    },
  };
  const text = shape.sql(q).replace(/\s+/g, " ").trim();
  return { text, usesTenant };
}

const DAY = 86_400_000;
const pick = <T>(items: readonly T[], random: () => number): T => items[Math.floor(random() * items.length)];
/** A window of `days` ending somewhere in the last 30 days before the anchor. */
const window = (p: ParamContext, days: number): [Date, Date] => {
  const end = new Date(p.anchor.getTime() - Math.floor(p.random() * 30 * DAY));
  return [new Date(end.getTime() - days * DAY), end];
};

const summarySql = (q: SqlContext) => `
  SELECT t.symbol, count(*) AS trades,
         sum(CASE WHEN t.side = 'buy' THEN t.quantity ELSE -t.quantity END) AS net_quantity,
         sum(t.quantity * t.price) AS notional, sum(t.fee) AS fees
    FROM ${q.t("trades")} t
   WHERE ${q.where("t")}t.executed_at >= $1 AND t.executed_at < $2
   GROUP BY t.symbol ORDER BY t.symbol`;

export const SHAPES: readonly Shape[] = [
  {
    key: "point",
    title: "point lookup of a trade by id",
    kind: "hot",
    tenants: "all",
    arity: 1,
    sql: (q) => `SELECT t.id, t.symbol, t.side, t.quantity, t.price, t.fee, t.venue, t.executed_at
                   FROM ${q.t("trades")} t WHERE ${q.where("t")}t.id = $1`,
    params: (p) => [pick(p.tenant.tradeIds, p.random)],
  },
  {
    key: "recent",
    title: "recent trades: newest 50 in a 7-day window",
    kind: "hot",
    tenants: "all",
    arity: 2,
    sql: (q) => `SELECT t.id, t.symbol, t.side, t.quantity, t.price, t.executed_at
                   FROM ${q.t("trades")} t
                  WHERE ${q.where("t")}t.executed_at >= $1 AND t.executed_at < $2
                  ORDER BY t.executed_at DESC LIMIT 50`,
    params: (p) => window(p, 7),
  },
  {
    key: "positions_trades",
    title: "open positions ⋈ their trades of a 7-day window",
    kind: "hot",
    tenants: "all",
    arity: 2,
    sql: (q) => `SELECT p.id, p.symbol, p.quantity AS position, count(*) AS trades, sum(t.quantity * t.price) AS notional
                   FROM ${q.t("positions")} p JOIN ${q.t("trades")} t ON ${q.join("t", "p")}t.position_id = p.id
                  WHERE ${q.where("p")}p.status = 'open' AND t.executed_at >= $1 AND t.executed_at < $2
                  GROUP BY p.id, p.symbol, p.quantity ORDER BY p.symbol, p.id`,
    params: (p) => window(p, 7),
  },
  {
    key: "summary",
    title: "portfolio summary: 30-day aggregate per symbol",
    kind: "hot",
    tenants: "all",
    arity: 2,
    sql: summarySql,
    params: (p) => window(p, 30),
  },
  {
    key: "risk_allocations",
    title: "risk metrics ⋈ allocations, last 7 days",
    kind: "hot",
    tenants: "all",
    arity: 1,
    sql: (q) => `SELECT a.symbol, a.target_weight, a.actual_weight, r.metric, avg(r.value) AS value, max(r.computed_at) AS as_of
                   FROM ${q.t("portfolio_allocations")} a
                   JOIN ${q.t("risk_metrics")} r ON ${q.join("r", "a")}r.allocation_id = a.id
                  WHERE ${q.where("a")}a.portfolio = 'main' AND r.computed_at >= $1
                  GROUP BY a.id, a.symbol, a.target_weight, a.actual_weight, r.metric ORDER BY a.symbol, r.metric`,
    params: (p) => [new Date(p.anchor.getTime() - 7 * DAY)],
  },
  {
    key: "insert_trade",
    title: "insert a trade",
    kind: "hot",
    tenants: "all",
    write: true,
    arity: 9,
    sql: (q) => `INSERT INTO ${q.t("trades")}
                   (${q.tenantColumn()}id, position_id, symbol, side, quantity, price, fee, venue, client_order_id, executed_at, created_at)
                 VALUES (${q.tenantValue()}$1, $2, $3, $4, $5, $6, $7, 'bench', $8, $9, $9)
                 RETURNING id, symbol, side, quantity, price`,
    params: (p) => {
      const position = pick(p.tenant.positions, p.random);
      return [
        randomUUID(),
        position.id,
        position.symbol,
        p.random() < 0.5 ? "buy" : "sell",
        (0.01 + p.random() * 100).toFixed(4),
        (10 + p.random() * 990).toFixed(4),
        (p.random() * 5).toFixed(4),
        `bench-${p.sequence}`,
        new Date(p.anchor.getTime() - Math.floor(p.random() * DAY)),
      ];
    },
  },
  {
    key: "update_position",
    title: "update a position",
    kind: "hot",
    tenants: "all",
    write: true,
    arity: 3,
    sql: (q) => `UPDATE ${q.t("positions")} p SET quantity = p.quantity + $2, average_price = $3
                  WHERE ${q.where("p")}p.id = $1 RETURNING p.id, p.quantity, p.average_price`,
    params: (p) => [pick(p.tenant.positions, p.random).id, ((p.random() - 0.5) * 10).toFixed(4), (10 + p.random() * 990).toFixed(4)],
  },
  {
    key: "largest_summary",
    title: "portfolio summary of the largest tenant",
    kind: "hot",
    tenants: "largest",
    arity: 2,
    sql: summarySql,
    params: (p) => window(p, 30),
  },
  {
    key: "trap_numeric",
    title: "trap: numeric price filter (not leakproof)",
    kind: "trap",
    tenants: "all",
    arity: 3,
    sql: (q) => `SELECT t.id, t.price, t.executed_at FROM ${q.t("trades")} t
                  WHERE ${q.where("t")}t.symbol = $1 AND t.executed_at >= $2 AND t.price > $3
                  ORDER BY t.executed_at DESC LIMIT 50`,
    params: (p) => [pick(p.tenant.symbols, p.random), window(p, 30)[0], (500 + p.random() * 400).toFixed(2)],
  },
  {
    key: "trap_side_text",
    title: "trap: side filter (text + CHECK, leakproof)",
    kind: "trap",
    tenants: "all",
    arity: 3,
    sql: (q) => `SELECT t.id, t.side, t.quantity, t.executed_at FROM ${q.t("trades")} t
                  WHERE ${q.where("t")}t.symbol = $1 AND t.side = $2 AND t.executed_at >= $3
                  ORDER BY t.executed_at DESC LIMIT 50`,
    params: (p) => [pick(p.tenant.symbols, p.random), p.random() < 0.5 ? "buy" : "sell", window(p, 30)[0]],
  },
  {
    key: "trap_date",
    title: "trap: timestamptz >= date (not leakproof): 7-day aggregate",
    kind: "trap",
    tenants: "all",
    arity: 1,
    sql: (q) => `SELECT t.symbol, count(*) AS trades, sum(t.quantity * t.price) AS notional
                   FROM ${q.t("trades")} t WHERE ${q.where("t")}t.executed_at >= $1::date
                  GROUP BY t.symbol ORDER BY t.symbol`,
    params: (p) => [new Date(p.anchor.getTime() - 7 * DAY).toISOString().slice(0, 10)],
  },
  {
    key: "largest_plan_cache",
    title: "trap: largest tenant, cached generic plan vs fresh plan (summary)",
    kind: "trap",
    tenants: "largest",
    arity: 2,
    planCache: true,
    sql: summarySql,
    params: (p) => window(p, 30),
  },
];

export function shape(key: string): Shape {
  const s = SHAPES.find((x) => x.key === key);
  if (!s) throw new Error(`unknown shape "${key}"; known: ${SHAPES.map((x) => x.key).join(", ")}`);
  return s;
}
