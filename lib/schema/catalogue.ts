/**
 * The tenant-table catalogue: the one source of truth for every table that holds tenant data.
 * Migrations, RLS policies, the isolation audit, graduation, export/import and the benchmarks all
 * read it. Adding a tenant table, column or index is one edit here; `tenancy migrate` (and the
 * Pulumi stacks) apply it to the shared schema and to every dedicated tenant schema.
 *
 * Every tenant table gets, without listing them here:
 *   tenant_id uuid NOT NULL REFERENCES tenancy.tenants(id), id uuid DEFAULT gen_random_uuid(),
 *   created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (tenant_id, id),
 *   an index (tenant_id, created_at), RLS enabled and forced, the tenant policies, and grants.
 * Ids are random uuids, not sequences: a shared sequence would tell each tenant how busy the others are.
 * Foreign keys between tenant tables always include tenant_id, so a row can never point at another
 * tenant's row. Status-like columns are text with CHECK constraints rather than enums: enum equality
 * is not leakproof, so under RLS it could not be pushed into an index condition.
 */
import { createHash } from "node:crypto";
import { unsafeSql, type TrustedSql } from "../db/sql";

export interface Column {
  name: string;
  /** SQL type, a trusted fragment written here (e.g. `unsafeSql("numeric(20,8)")`). */
  type: TrustedSql;
  nullable?: boolean;
  /** SQL default expression, a trusted fragment. */
  default?: TrustedSql;
  /** CHECK expression over this row, a trusted fragment. */
  check?: TrustedSql;
}

export interface ForeignKey {
  /** Columns in this table, without tenant_id (it is always prepended). */
  columns: string[];
  /** Referenced tenant table; its key is (tenant_id, id). */
  references: string;
  onDelete: "cascade" | "restrict" | "set null";
}

export interface Index {
  /** Columns after tenant_id, which always leads. */
  columns: string[];
  unique?: boolean;
}

export interface TenantTable {
  name: string;
  description: string;
  columns: Column[];
  foreignKeys?: ForeignKey[];
  indexes?: Index[];
  /** Column used for time-range queries and retention; defaults to created_at. */
  timeColumn?: string;
}

// The common column types; every type, default and check below is SQL text written here.
const uuid = unsafeSql("uuid");
const text = unsafeSql("text");
const timestamptz = unsafeSql("timestamptz");
const integer = unsafeSql("integer");
const money = unsafeSql("numeric(20,8)");

/** Columns every tenant table has, before its own. */
export const STANDARD_COLUMNS: Column[] = [
  { name: "tenant_id", type: uuid },
  { name: "id", type: uuid, default: unsafeSql("gen_random_uuid()") },
  { name: "created_at", type: timestamptz, default: unsafeSql("now()") },
];

/** Ordered so that referenced tables come first. */
export const TENANT_TABLES: readonly TenantTable[] = [
  {
    name: "portfolio_allocations",
    description: "Target and actual weight of each asset in a tenant's portfolio.",
    columns: [
      { name: "portfolio", type: text, default: unsafeSql("'main'") },
      { name: "symbol", type: text },
      {
        name: "asset_class",
        type: text,
        check: unsafeSql("asset_class IN ('equity', 'crypto', 'fx', 'commodity', 'fixed_income', 'cash')"),
      },
      { name: "target_weight", type: unsafeSql("numeric(9,6)"), check: unsafeSql("target_weight BETWEEN 0 AND 1") },
      {
        name: "actual_weight",
        type: unsafeSql("numeric(9,6)"),
        default: unsafeSql("0"),
        check: unsafeSql("actual_weight BETWEEN 0 AND 1"),
      },
      { name: "updated_at", type: timestamptz, default: unsafeSql("now()") },
    ],
    indexes: [{ columns: ["portfolio", "symbol"], unique: true }],
  },
  {
    name: "positions",
    description: "Open and closed positions per symbol.",
    columns: [
      { name: "symbol", type: text },
      { name: "quantity", type: money },
      { name: "average_price", type: money, check: unsafeSql("average_price >= 0") },
      { name: "status", type: text, default: unsafeSql("'open'"), check: unsafeSql("status IN ('open', 'closed')") },
      { name: "opened_at", type: timestamptz, default: unsafeSql("now()") },
      { name: "closed_at", type: timestamptz, nullable: true },
    ],
    indexes: [{ columns: ["symbol", "status"] }],
  },
  {
    name: "trades",
    description: "Executed trades; the largest table.",
    columns: [
      { name: "position_id", type: uuid, nullable: true },
      { name: "symbol", type: text },
      { name: "side", type: text, check: unsafeSql("side IN ('buy', 'sell')") },
      { name: "quantity", type: money, check: unsafeSql("quantity > 0") },
      { name: "price", type: money, check: unsafeSql("price >= 0") },
      { name: "fee", type: money, default: unsafeSql("0"), check: unsafeSql("fee >= 0") },
      { name: "venue", type: text, default: unsafeSql("'internal'") },
      { name: "client_order_id", type: text, nullable: true },
      { name: "executed_at", type: timestamptz, default: unsafeSql("now()") },
    ],
    foreignKeys: [{ columns: ["position_id"], references: "positions", onDelete: "set null" }],
    // (position_id, executed_at), not (position_id): "a position's trades in a window" reads only the
    // window (migration 0007 replaced the old index; docs/benchmarks.md, positions ⋈ trades).
    indexes: [
      { columns: ["executed_at"] },
      { columns: ["symbol", "executed_at"] },
      { columns: ["position_id", "executed_at"] },
      { columns: ["client_order_id"], unique: true },
    ],
    timeColumn: "executed_at",
  },
  {
    name: "portfolio_history",
    description: "Portfolio value snapshots over time.",
    columns: [
      { name: "portfolio", type: text, default: unsafeSql("'main'") },
      { name: "as_of", type: timestamptz },
      { name: "total_value", type: money },
      { name: "cash", type: money },
      { name: "realized_pnl", type: money, default: unsafeSql("0") },
      { name: "unrealized_pnl", type: money, default: unsafeSql("0") },
    ],
    indexes: [{ columns: ["portfolio", "as_of"], unique: true }],
    timeColumn: "as_of",
  },
  {
    name: "risk_metrics",
    description: "Risk figures computed per allocation (VaR, volatility, drawdown, beta).",
    columns: [
      { name: "allocation_id", type: uuid },
      { name: "metric", type: text, check: unsafeSql("metric IN ('var_95', 'var_99', 'volatility', 'max_drawdown', 'beta', 'sharpe')") },
      { name: "value", type: unsafeSql("numeric(20,10)") },
      { name: "window_days", type: integer, default: unsafeSql("30"), check: unsafeSql("window_days > 0") },
      { name: "computed_at", type: timestamptz, default: unsafeSql("now()") },
    ],
    foreignKeys: [{ columns: ["allocation_id"], references: "portfolio_allocations", onDelete: "cascade" }],
    indexes: [{ columns: ["allocation_id", "metric", "computed_at"] }, { columns: ["computed_at"] }],
    timeColumn: "computed_at",
  },
];

/** Every column of a table, standard ones first. */
export function allColumns(table: TenantTable): Column[] {
  return [...STANDARD_COLUMNS, ...table.columns];
}

export function tenantTable(name: string): TenantTable {
  const table = TENANT_TABLES.find((t) => t.name === name);
  if (!table) throw new Error(`"${name}" is not a tenant table; known: ${TENANT_TABLES.map((t) => t.name).join(", ")}`);
  return table;
}

/** Tables in an order that deletes can follow (referencing tables first). */
export function tablesInDeleteOrder(tables: readonly TenantTable[] = TENANT_TABLES): TenantTable[] {
  return [...tables].reverse();
}

/** A stable hash of the catalogue: changes exactly when the rendered schema would change. */
export function catalogueFingerprint(tables: readonly TenantTable[] = TENANT_TABLES): string {
  return createHash("sha256").update(JSON.stringify(tables)).digest("hex").slice(0, 16);
}

/** Global market data: not tenant data, readable by the app, no tenant_id. */
export const MARKET_DATA_SCHEMA = "market_data";
