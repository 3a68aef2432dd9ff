import { describe, expect, it } from "vitest";
import { summariseActivity, type SessionActivity } from "../../lib/observability/activity";
import { createTenantMetrics } from "../../lib/observability/metrics";
import { normaliseStatement, parseInterval, parseSlowLog, summariseSlow } from "../../lib/observability/slow-log";

const LOG = `2026-11-26 11:21:21.035 UTC [25031] app=[unknown] LOG:  duration: 0.234 ms  statement: SELECT 1
2026-11-26 11:21:21.045 UTC [25032] app=tenant:abc123 LOG:  duration: 300.5 ms  statement: select * from trades where price > 12.5 and symbol = 'AAPL'
2026-11-26 11:21:21.047 UTC [25032] app=tenant:abc123 LOG:  duration: 0.322 ms  parse <unnamed>: select pg_sleep($1)
2026-11-26 11:21:21.057 UTC [25032] app=tenant:abc123 LOG:  duration: 1000.25 ms  execute <unnamed>: select pg_sleep($1)
2026-11-26 11:21:22.000 UTC [25033] app=tenant:def456 LOG:  duration: 250 ms  statement: select * from trades where price > 99 and symbol = 'MSFT'
2026-11-26 11:21:22.001 UTC [25033] app=tenant:def456 DETAIL:  parameters: $1 = '1'
2026-11-26 11:21:22.002 UTC [25033] app=tenant:def456 ERROR:  canceling statement due to statement timeout`;

describe("slow log", () => {
  it("parses only tenant-tagged duration lines of statements and executes", () => {
    expect(parseSlowLog(LOG)).toEqual([
      {
        at: new Date("2026-11-26T11:21:21.045Z"),
        tag: "abc123",
        durationMs: 300.5,
        statement: "select * from trades where price > 12.5 and symbol = 'AAPL'",
      },
      { at: new Date("2026-11-26T11:21:21.057Z"), tag: "abc123", durationMs: 1000.25, statement: "select pg_sleep($1)" },
      {
        at: new Date("2026-11-26T11:21:22.000Z"),
        tag: "def456",
        durationMs: 250,
        statement: "select * from trades where price > 99 and symbol = 'MSFT'",
      },
    ]);
  });

  it("summarises per tenant, most total time first, statements grouped by shape", () => {
    const summary = summariseSlow(parseSlowLog(LOG), new Date("2026-11-26T11:00:00Z"), new Map([["abc123", "acme"]]));
    expect(summary.map((s) => [s.tenant, s.count, s.totalMs, s.maxMs])).toEqual([
      ["acme", 2, 1300.8, 1000.25],
      ["unknown tag def456", 1, 250, 250],
    ]);
    expect(summary[0].topStatements[0]).toEqual({ statement: "select pg_sleep($?)", count: 1, totalMs: 1000.3 });
  });

  it("drops statements before --since", () => {
    expect(summariseSlow(parseSlowLog(LOG), new Date("2026-11-26T11:21:21.500Z"), new Map())).toHaveLength(1);
  });

  it.each([
    ["select * from t where a = 'x''y' and b > 12.5", "select * from t where a = ? and b > ?"],
    ["SELECT  1\n  FROM   t", "SELECT ? FROM t"],
  ])("normalises %j", (input, expected) => expect(normaliseStatement(input)).toBe(expected));

  it.each([
    ["30s", 30_000],
    ["15m", 900_000],
    ["2h", 7_200_000],
    ["1d", 86_400_000],
  ])("parses interval %s", (text, ms) => expect(parseInterval(text)).toBe(ms));

  it.each(["", "15", "m", "-1m", "1w", "1.5h"])("refuses interval %j", (text) =>
    expect(() => parseInterval(text)).toThrow(/not an interval/),
  );
});

describe("activity summary", () => {
  const session = (over: Partial<SessionActivity>): SessionActivity => ({
    pid: 1,
    tag: null,
    state: "idle",
    waitEventType: null,
    waitEvent: null,
    runningSeconds: 0,
    query: null,
    ...over,
  });
  it("groups tagged sessions per tenant and ranks the busiest first", () => {
    const tags = new Map([
      ["a1", { slug: "alpha", tier: "pro" }],
      ["b2", { slug: "beta", tier: "starter" }],
    ]);
    const rows = summariseActivity(
      [
        session({ tag: "a1", state: "idle in transaction" }),
        session({ tag: "b2", state: "active", runningSeconds: 4, query: "select heavy" }),
        session({ tag: "b2", state: "active", runningSeconds: 9, query: "select heavier", waitEventType: "Lock", waitEvent: "advisory" }),
        session({ tag: null, state: "active" }),
      ],
      tags,
    );
    expect(rows).toEqual([
      { tenant: "beta", tier: "starter", sessions: 2, active: 2, waiting: 1, longestRunningSeconds: 9, longestQuery: "select heavier" },
      { tenant: "alpha", tier: "pro", sessions: 1, active: 0, waiting: 0, longestRunningSeconds: 0, longestQuery: null },
    ]);
  });
});

describe("tenant metrics", () => {
  it("exposes per-tenant counters and histograms in the Prometheus format", async () => {
    const m = createTenantMetrics();
    m.observe({ tenantId: "t1", tier: "pro", durationMs: 3, rows: 2 });
    m.observe({ tenantId: "t1", tier: "pro", durationMs: 2000, errorCode: "57014" });
    const text = await m.metrics();
    expect(text).toContain('alphapulse_tenant_queries_total{tenant="t1",tier="pro",outcome="ok"} 1');
    expect(text).toContain('alphapulse_tenant_queries_total{tenant="t1",tier="pro",outcome="error"} 1');
    expect(text).toContain('alphapulse_tenant_errors_total{tenant="t1",tier="pro",error_class="57"} 1');
    expect(text).toContain('alphapulse_tenant_rows_total{tenant="t1",tier="pro"} 2');
    expect(text).toContain('alphapulse_tenant_query_duration_seconds_count{tenant="t1",tier="pro"} 2');
  });

  it("bounds the tenant label: tenants past the limit are counted as other", async () => {
    const m = createTenantMetrics({ maxTenants: 2 });
    for (const t of ["a", "b", "c", "d"]) m.observe({ tenantId: t, tier: "starter", durationMs: 1 });
    const text = await m.metrics();
    expect(text).toContain('tenant="a"');
    expect(text).toContain('tenant="b"');
    expect(text).not.toContain('tenant="c"');
    expect(text).toContain('alphapulse_tenant_queries_total{tenant="other",tier="starter",outcome="ok"} 2');
    expect(text).toContain("alphapulse_tenant_label_overflow_total 2");
  });
});
