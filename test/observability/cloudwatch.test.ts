/**
 * The CloudWatch renderers (lib/observability/cloudwatch.ts), table-driven, and the logging
 * fragment the AWS nodes run with. Whether the patterns and queries select what PostgreSQL really
 * writes is checked against a real server in slow-cli.test.ts.
 */
import { describe, expect, it } from "vitest";
import {
  CloudWatchRenderError,
  dashboardName,
  INSIGHTS_QUERIES,
  LOG_METRICS,
  matchesJsonFilter,
  metricTransformation,
  perTagQuery,
  renderJsonFilterPattern,
  renderTenantDashboard,
  SLOW_MESSAGE_PATTERN,
  tenantMetricNamespace,
  type JsonCondition,
} from "../../lib/observability/cloudwatch";
import { SLOW_LOG_SETTINGS } from "../../lib/observability/slow-log";
import { loggingSettings } from "../../lib/platform/postgres-config";

describe("renderJsonFilterPattern", () => {
  it.each([
    [[{ field: "message", equals: "x y" }], '{ ($.message = "x y") }'],
    [[{ field: "application_name", startsWith: "tenant:" }], '{ ($.application_name = "tenant:*") }'],
    [
      [
        { field: "application_name", startsWith: "tenant:" },
        { field: "state_code", equals: "57014" },
      ],
      '{ ($.application_name = "tenant:*") && ($.state_code = "57014") }',
    ],
  ] as [JsonCondition[], string][])("%j → %s", (conditions, pattern) => {
    expect(renderJsonFilterPattern(conditions)).toBe(pattern);
  });

  it.each([
    [[], "a filter pattern needs at least one condition"],
    [[{ field: "Message", equals: "x" }], 'filter field "Message" must match'],
    [[{ field: "message", equals: 'say "hi"' }], "must be non-empty, without"],
    [[{ field: "message", startsWith: "a*" }], "must be non-empty, without"],
    [[{ field: "message", equals: "" }], "must be non-empty, without"],
  ] as [JsonCondition[], string][])("refuses %j", (conditions, message) => {
    expect(() => renderJsonFilterPattern(conditions)).toThrow(CloudWatchRenderError);
    expect(() => renderJsonFilterPattern(conditions)).toThrow(message);
  });
});

describe("matchesJsonFilter", () => {
  const tenantSlow = LOG_METRICS.find((m) => m.key === "tenant-slow-statements")!.conditions;
  it.each([
    [{ application_name: "tenant:ab12", message: "duration: 250.1 ms  statement: select 1" }, true],
    [{ application_name: "psql", message: "duration: 250.1 ms  statement: select 1" }, false],
    [{ message: "duration: 250.1 ms  statement: select 1" }, false],
    [{ application_name: "tenant:ab12", message: "canceling statement due to statement timeout" }, false],
    [{ application_name: "tenant:ab12", message: 17 }, false],
  ])("tenant slow statements: %j → %s", (record, expected) => {
    expect(matchesJsonFilter(tenantSlow, record)).toBe(expected);
  });
});

describe("metrics", () => {
  it("per-tag metrics take the Tag dimension from application_name; totals have none and default to 0", () => {
    expect(LOG_METRICS.map((m) => [m.metricName, metricTransformation(m, "NS")])).toEqual([
      [
        "TenantSlowStatements",
        { name: "TenantSlowStatements", namespace: "NS", value: "1", unit: "Count", dimensions: { Tag: "$.application_name" } },
      ],
      ["SlowStatements", { name: "SlowStatements", namespace: "NS", value: "1", unit: "Count", defaultValue: "0" }],
      [
        "TenantStatementTimeouts",
        { name: "TenantStatementTimeouts", namespace: "NS", value: "1", unit: "Count", dimensions: { Tag: "$.application_name" } },
      ],
      ["StatementTimeouts", { name: "StatementTimeouts", namespace: "NS", value: "1", unit: "Count", defaultValue: "0" }],
    ]);
  });

  it("one namespace per cluster", () => {
    expect(tenantMetricNamespace("eu-prod-postgres")).toBe("AlphaPulse/TenantQueries/eu-prod-postgres");
    expect(() => tenantMetricNamespace("eu/prod")).toThrow('cluster name "eu/prod" must match');
  });

  it("per-tag Metrics Insights queries", () => {
    expect(perTagQuery("AlphaPulse/TenantQueries/c", "TenantSlowStatements", 10)).toBe(
      'SELECT SUM(TenantSlowStatements) FROM SCHEMA("AlphaPulse/TenantQueries/c", Tag) GROUP BY Tag ORDER BY SUM() DESC LIMIT 10',
    );
    for (const bad of [0, 501, 1.5]) expect(() => perTagQuery("n", "m", bad)).toThrow(`limit must be 1..500, got ${bad}`);
  });
});

describe("Logs Insights queries", () => {
  it("have unique keys and titles, and read only jsonlog fields", () => {
    expect(new Set(INSIGHTS_QUERIES.map((q) => q.key)).size).toBe(INSIGHTS_QUERIES.length);
    expect(new Set(INSIGHTS_QUERIES.map((q) => q.title)).size).toBe(INSIGHTS_QUERIES.length);
    expect(INSIGHTS_QUERIES.find((q) => q.key === "slow-by-tenant")?.query).toBe(
      [
        "filter application_name like /^tenant:/ and message like /^duration: [0-9.]+ ms +(statement|execute)/",
        `| parse message /${SLOW_MESSAGE_PATTERN}/`,
        "| stats count(*) as slow_statements, sum(duration_ms) as total_ms, max(duration_ms) as max_ms by application_name",
        "| sort total_ms desc",
        "| limit 25",
      ].join("\n"),
    );
  });

  it.each([
    [
      "duration: 1234.567 ms  statement: SELECT pg_sleep(1)",
      { duration_ms: "1234.567", phase: "statement", statement: "SELECT pg_sleep(1)" },
    ],
    ["duration: 0.5 ms  execute <unnamed>: SELECT $1", { duration_ms: "0.5", phase: "execute <unnamed>", statement: "SELECT $1" }],
    ["duration: 12 ms  execute S_1: COMMIT", { duration_ms: "12", phase: "execute S_1", statement: "COMMIT" }],
  ])("the parse pattern reads %j", (message, groups) => {
    expect({ ...new RegExp(SLOW_MESSAGE_PATTERN).exec(message)?.groups }).toEqual(groups);
  });
});

describe("renderTenantDashboard", () => {
  const body = renderTenantDashboard({
    region: "us-east-1",
    cluster: "us-prod-postgres",
    logGroupName: "/alphapulse/us-prod-postgres/postgresql",
    namespace: "AlphaPulse/TenantQueries/us-prod-postgres",
    healthNamespace: "AlphaPulse/Postgres",
  });

  it("lays out eight widgets on a 24-column grid, all in the stack's region, over the last hour", () => {
    expect(body.start).toBe("-PT1H");
    expect(body.widgets.map((w) => [w.type, w.x, w.y, w.width, w.height, w.properties.title])).toEqual([
      ["metric", 0, 0, 12, 6, "Slow statements by tenant tag (top 10)"],
      ["log", 12, 0, 12, 6, "Slow statement time by tenant tag"],
      ["metric", 0, 6, 12, 6, "Statement timeouts by tenant tag (top 10)"],
      ["metric", 12, 6, 12, 6, "Statement timeouts and slow statements, whole cluster"],
      ["metric", 0, 12, 12, 6, "Connections used (% of max_connections), primary"],
      ["metric", 12, 12, 12, 6, "Replication lag (s), replica"],
      ["log", 0, 18, 12, 6, "Slowest statements by tenant tag"],
      ["log", 12, 18, 12, 6, "Errors by tenant tag and SQLSTATE"],
    ]);
    expect(new Set(body.widgets.map((w) => w.properties.region))).toEqual(new Set(["us-east-1"]));
  });

  it("per-tag widgets are Metrics Insights queries; log widgets run the saved queries on the cluster's log group", () => {
    expect(body.widgets[0].properties.metrics).toEqual([
      [
        {
          expression:
            'SELECT SUM(TenantSlowStatements) FROM SCHEMA("AlphaPulse/TenantQueries/us-prod-postgres", Tag) GROUP BY Tag ORDER BY SUM() DESC LIMIT 10',
          id: "q1",
          label: "",
          period: 60,
        },
      ],
    ]);
    expect(body.widgets[1].properties.query).toBe(
      `SOURCE '/alphapulse/us-prod-postgres/postgresql' | ${INSIGHTS_QUERIES.find((q) => q.key === "slow-by-tenant")!.query}`,
    );
    expect(body.widgets[4].properties.metrics).toEqual([
      ["AlphaPulse/Postgres", "ConnectionsUsedPercent", "Cluster", "us-prod-postgres", "Role", "primary"],
    ]);
    expect(body.widgets[5].properties.metrics).toEqual([
      ["AlphaPulse/Postgres", "ReplicationLagSeconds", "Cluster", "us-prod-postgres", "Role", "replica"],
    ]);
  });

  it("dashboard names", () => {
    expect(dashboardName("eu-prod-tenants")).toBe("alphapulse-eu-prod-tenants");
    expect(() => dashboardName("eu prod")).toThrow('dashboard name "alphapulse-eu prod" must be 1-255 of A-Za-z0-9_-');
  });
});

describe("loggingSettings (the AWS nodes)", () => {
  it("takes the slow-statement settings from SLOW_LOG_SETTINGS and writes text and jsonlog", () => {
    const s = loggingSettings();
    expect(s.log_line_prefix).toBe(SLOW_LOG_SETTINGS.log_line_prefix);
    expect(s.log_min_duration_statement).toBe(SLOW_LOG_SETTINGS.log_min_duration_statement);
    expect(s).toMatchObject({ logging_collector: true, log_destination: "stderr,jsonlog", log_filename: "postgresql-%Y-%m-%d.log" });
  });

  it("still takes explicit values", () => {
    expect(loggingSettings({ logMinDurationStatementMs: 50, logLinePrefix: "%m " })).toMatchObject({
      log_min_duration_statement: 50,
      log_line_prefix: "%m ",
    });
  });
});
