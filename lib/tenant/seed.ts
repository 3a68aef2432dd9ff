/**
 * Realistic demo/test/benchmark data, generated inside PostgreSQL (generate_series) so a million
 * trades take seconds, not a million round trips. Runs as the maintenance role with an explicit
 * tenant filter, into the schema the tenant's placement names. Deterministic for a given seed.
 */
import { type Queryable } from "../db/client";
import { ROLES } from "../schema/roles";
import { qualified } from "../db/sql";
import type { Tenant } from "./model";
import { listTenants, tenantSchema, withRole } from "./registry";

export const SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "JPM", "BTC-USD", "ETH-USD", "EUR-USD", "XAU-USD"];

export interface SeedCounts {
  trades: number;
}

export interface SeedResult {
  tenant: string;
  rows: Record<string, number>;
}

/** Derived sizes of the other tables for a given number of trades. */
export function seedSizes(trades: number) {
  return {
    portfolio_allocations: SYMBOLS.length,
    positions: SYMBOLS.length,
    trades,
    portfolio_history: Math.max(1, Math.ceil(trades / 20)),
    risk_metrics: SYMBOLS.length * 6 * Math.max(1, Math.ceil(trades / 2000)),
  };
}

export async function seedTenant(
  client: Queryable,
  tenant: Pick<Tenant, "id" | "slug" | "placement">,
  counts: SeedCounts,
  seed = 0.42,
): Promise<SeedResult> {
  const sizes = seedSizes(counts.trades);
  const s = tenantSchema(tenant);
  const t = (name: string) => qualified(s, name);
  return withRole(client, ROLES.maintenance, async (tx) => {
    await tx.query(`SELECT setseed($1)`, [seed]);
    const p = [tenant.id, SYMBOLS];
    await tx.query(
      `INSERT INTO ${t("portfolio_allocations")} (tenant_id, symbol, asset_class, target_weight, actual_weight)
       SELECT $1, sym, CASE WHEN sym LIKE '%-USD' AND sym NOT LIKE 'EUR%' AND sym NOT LIKE 'XAU%' THEN 'crypto'
                            WHEN sym = 'EUR-USD' THEN 'fx' WHEN sym = 'XAU-USD' THEN 'commodity' ELSE 'equity' END,
              round((1.0 / cardinality($2::text[]))::numeric, 6), round((random() / cardinality($2::text[]))::numeric, 6)
         FROM unnest($2::text[]) AS sym
       ON CONFLICT (tenant_id, portfolio, symbol) DO NOTHING`,
      p,
    );
    await tx.query(
      `INSERT INTO ${t("positions")} (tenant_id, symbol, quantity, average_price, status, opened_at)
       SELECT $1, sym, round((random() * 1000)::numeric, 4), round((10 + random() * 990)::numeric, 4),
              CASE WHEN random() < 0.8 THEN 'open' ELSE 'closed' END, now() - random() * interval '365 days'
         FROM unnest($2::text[]) AS sym`,
      p,
    );
    await tx.query(
      `WITH pos AS (SELECT array_agg(id ORDER BY symbol) AS ids, array_agg(symbol ORDER BY symbol) AS symbols, count(*)::int AS n
                      FROM ${t("positions")} WHERE tenant_id = $1)
       INSERT INTO ${t("trades")} (tenant_id, position_id, symbol, side, quantity, price, fee, venue, client_order_id, executed_at, created_at)
       SELECT $1, pos.ids[1 + g % pos.n], pos.symbols[1 + g % pos.n], CASE WHEN random() < 0.5 THEN 'buy' ELSE 'sell' END,
              round((0.01 + random() * 100)::numeric, 4), round((10 + random() * 990)::numeric, 4), round((random() * 5)::numeric, 4),
              (ARRAY['internal', 'nasdaq', 'nyse', 'lse', 'binance'])[1 + floor(random() * 5)::int],
              'co-' || md5($1::text || (existing.n + g)::text), ts, ts
         FROM pos,
              -- numbering continues after the tenant's existing trades, so seeding again never reuses a client_order_id
              (SELECT count(*) AS n FROM ${t("trades")} WHERE tenant_id = $1) AS existing,
              (SELECT g, now() - random() * interval '365 days' AS ts FROM generate_series(1, $2::int) AS g) AS gen`,
      [tenant.id, sizes.trades],
    );
    await tx.query(
      `INSERT INTO ${t("portfolio_history")} (tenant_id, as_of, total_value, cash, realized_pnl, unrealized_pnl)
       SELECT $1, date_trunc('hour', now()) - g * interval '1 hour', round((1e6 + random() * 1e5)::numeric, 2), round((random() * 1e5)::numeric, 2),
              round(((random() - 0.5) * 1e4)::numeric, 2), round(((random() - 0.5) * 1e4)::numeric, 2)
         FROM generate_series(0, $2::int - 1) AS g
       ON CONFLICT (tenant_id, portfolio, as_of) DO NOTHING`,
      [tenant.id, sizes.portfolio_history],
    );
    await tx.query(
      `INSERT INTO ${t("risk_metrics")} (tenant_id, allocation_id, metric, value, window_days, computed_at)
       SELECT $1, a.id, m, round((random() * 0.2)::numeric, 10), 30, now() - g * interval '1 day'
         FROM ${t("portfolio_allocations")} a
         CROSS JOIN unnest(ARRAY['var_95', 'var_99', 'volatility', 'max_drawdown', 'beta', 'sharpe']) AS m
         CROSS JOIN generate_series(0, $2::int - 1) AS g
        WHERE a.tenant_id = $1`,
      [tenant.id, sizes.risk_metrics / (SYMBOLS.length * 6)],
    );
    return { tenant: tenant.slug, rows: sizes };
  });
}

/** Seeds every tenant of the registry with `rowsPerTenant` trades (and proportional other tables). */
export async function seedAllTenants(
  client: Queryable,
  rowsPerTenant: number,
  onProgress: (message: string) => void = () => {},
): Promise<SeedResult[]> {
  const results: SeedResult[] = [];
  const tenants = await listTenants(client);
  for (const [i, tenant] of tenants.entries()) {
    results.push(await seedTenant(client, tenant, { trades: rowsPerTenant }, 0.42 / (i + 1)));
    onProgress(`seeded ${tenant.slug} (${i + 1}/${tenants.length})`);
  }
  return results;
}
