/**
 * Per-tenant query metrics in the Prometheus exposition format (prom-client), fed by the
 * tenant-context client: query count by outcome, latency histogram, rows, errors by SQLSTATE class.
 *
 * Label cardinality is bounded: `tenant` takes at most `maxTenants` distinct values per process
 * (default 1,000, the ADR's long-term tenant count); later tenants are counted under "other" and
 * the overflow is itself a metric. `tier` has 3 values, `outcome` 2, `error_class` at most the
 * SQLSTATE classes (2 characters). Series per process ≤ maxTenants × (2 + histogram buckets + 1).
 */
import { Counter, Histogram, Registry } from "prom-client";

export interface QueryObservation {
  tenantId: string;
  tier: string;
  durationMs: number;
  rows?: number;
  /** SQLSTATE of a failed query (e.g. "57014" for a statement timeout). */
  errorCode?: string;
}

export interface TenantMetrics {
  registry: Registry;
  /** A closure (no `this`): pass it as `observer.onQuery` as is. */
  observe(this: void, observation: QueryObservation): void;
  /** The exposition text, for a /metrics endpoint. */
  metrics(): Promise<string>;
}

export const OVERFLOW_TENANT = "other";

export function createTenantMetrics(options: { registry?: Registry; maxTenants?: number; prefix?: string } = {}): TenantMetrics {
  const registry = options.registry ?? new Registry();
  const maxTenants = options.maxTenants ?? 1000;
  const prefix = options.prefix ?? "alphapulse_tenant_";
  const seen = new Set<string>();

  const queries = new Counter({
    name: `${prefix}queries_total`,
    help: "Tenant-scoped queries, by outcome",
    labelNames: ["tenant", "tier", "outcome"],
    registers: [registry],
  });
  const duration = new Histogram({
    name: `${prefix}query_duration_seconds`,
    help: "Latency of tenant-scoped queries",
    labelNames: ["tenant", "tier"],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const rows = new Counter({
    name: `${prefix}rows_total`,
    help: "Rows returned or affected",
    labelNames: ["tenant", "tier"],
    registers: [registry],
  });
  const errors = new Counter({
    name: `${prefix}errors_total`,
    help: "Failed tenant-scoped queries by SQLSTATE class (57 = canceled, e.g. statement timeout)",
    labelNames: ["tenant", "tier", "error_class"],
    registers: [registry],
  });
  const overflow = new Counter({
    name: `${prefix}label_overflow_total`,
    help: `Observations counted under tenant="${OVERFLOW_TENANT}" because the tenant label limit was reached`,
    registers: [registry],
  });

  const tenantLabel = (tenantId: string): string => {
    if (seen.has(tenantId)) return tenantId;
    if (seen.size < maxTenants) {
      seen.add(tenantId);
      return tenantId;
    }
    overflow.inc();
    return OVERFLOW_TENANT;
  };

  return {
    registry,
    observe({ tenantId, tier, durationMs, rows: rowCount, errorCode }) {
      const labels = { tenant: tenantLabel(tenantId), tier };
      queries.inc({ ...labels, outcome: errorCode ? "error" : "ok" });
      duration.observe(labels, durationMs / 1000);
      if (rowCount) rows.inc(labels, rowCount);
      if (errorCode) errors.inc({ ...labels, error_class: errorCode.slice(0, 2) });
    },
    metrics: () => registry.metrics(),
  };
}
