/**
 * TenantObservability under Pulumi's mocks: the exact metric filters, Logs Insights query
 * definitions, dashboard and alarms it declares on the cluster's existing log group.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_TENANT_ALARMS, TenantObservability, type TenantObservabilityArgs } from "../../components/aws/tenant-observability";
import { INSIGHTS_QUERIES, renderTenantDashboard } from "../../lib/observability/cloudwatch";
import { record, T, type Recorded } from "./harness";

const TOPIC = "arn:aws:sns:eu-central-1:111111111111:alarms";
const LOG_GROUP = "/alphapulse/eu-prod-postgres/postgresql";
const NS = "AlphaPulse/TenantQueries/eu-prod-postgres";
const args: TenantObservabilityArgs = {
  region: "eu-central-1",
  clusterName: "eu-prod-postgres",
  logGroupName: LOG_GROUP,
  alarmTopicArn: TOPIC,
};
const FILTER = "aws:cloudwatch/logMetricFilter:LogMetricFilter";
const QUERY = "aws:cloudwatch/queryDefinition:QueryDefinition";
const DASHBOARD = "aws:cloudwatch/dashboard:Dashboard";

let rec: Recorded;
let component: TenantObservability;
beforeAll(async () => {
  rec = await record((provider) => {
    component = new TenantObservability("obs", args, { providers: { aws: provider } });
  });
});

describe("TenantObservability", () => {
  it("declares only CloudWatch configuration, under the component, on the regional provider; no log group of its own", () => {
    const children = rec.all.filter((r) => r.type !== T.provider && r.type !== "alphapulse:aws:TenantObservability");
    expect([...new Set(children.map((r) => r.type))].sort()).toEqual([T.alarm, DASHBOARD, FILTER, QUERY].sort());
    expect(rec.ofType(T.logGroup)).toEqual([]);
    for (const r of children) {
      expect(r.parent).toMatch(/alphapulse:aws:TenantObservability::obs$/);
      expect(r.provider).toMatch(/::pulumi:providers:aws::test-aws$/);
    }
  });

  it("four metric filters on the cluster's log group: per tenant tag (dimension Tag) and cluster totals (default 0)", () => {
    expect(rec.names(FILTER)).toEqual([
      "obs-slow-statements",
      "obs-statement-timeouts",
      "obs-tenant-slow-statements",
      "obs-tenant-statement-timeouts",
    ]);
    expect(rec.get(FILTER, "obs-tenant-slow-statements").inputs).toEqual({
      name: "obs-tenant-slow-statements",
      logGroupName: LOG_GROUP,
      pattern: '{ ($.application_name = "tenant:*") && ($.message = "duration:*") }',
      metricTransformation: {
        name: "TenantSlowStatements",
        namespace: NS,
        value: "1",
        unit: "Count",
        dimensions: { Tag: "$.application_name" },
      },
    });
    expect(rec.get(FILTER, "obs-tenant-statement-timeouts").inputs).toEqual({
      name: "obs-tenant-statement-timeouts",
      logGroupName: LOG_GROUP,
      pattern: '{ ($.application_name = "tenant:*") && ($.message = "canceling statement due to statement timeout") }',
      metricTransformation: {
        name: "TenantStatementTimeouts",
        namespace: NS,
        value: "1",
        unit: "Count",
        dimensions: { Tag: "$.application_name" },
      },
    });
    expect(rec.get(FILTER, "obs-slow-statements").inputs).toEqual({
      name: "obs-slow-statements",
      logGroupName: LOG_GROUP,
      pattern: '{ ($.message = "duration:*") }',
      metricTransformation: { name: "SlowStatements", namespace: NS, value: "1", unit: "Count", defaultValue: "0" },
    });
    expect(rec.get(FILTER, "obs-statement-timeouts").inputs).toEqual({
      name: "obs-statement-timeouts",
      logGroupName: LOG_GROUP,
      pattern: '{ ($.message = "canceling statement due to statement timeout") }',
      metricTransformation: { name: "StatementTimeouts", namespace: NS, value: "1", unit: "Count", defaultValue: "0" },
    });
  });

  it("one Logs Insights query definition per saved query, on the cluster's log group, in the cluster's folder", () => {
    expect(rec.names(QUERY)).toEqual(INSIGHTS_QUERIES.map((q) => `obs-${q.key}`).sort());
    for (const q of INSIGHTS_QUERIES) {
      expect(rec.get(QUERY, `obs-${q.key}`).inputs).toEqual({
        name: `AlphaPulse/eu-prod-postgres/${q.title}`,
        logGroupNames: [LOG_GROUP],
        queryString: q.query,
      });
    }
  });

  it("the dashboard body is the pure renderer's, for this region, cluster and log group", () => {
    const d = rec.get(DASHBOARD, "obs-dashboard");
    expect(d.inputs.dashboardName).toBe("alphapulse-obs");
    expect(JSON.parse(String(d.inputs.dashboardBody))).toEqual(
      renderTenantDashboard({
        region: "eu-central-1",
        cluster: "eu-prod-postgres",
        logGroupName: LOG_GROUP,
        namespace: NS,
        healthNamespace: "AlphaPulse/Postgres",
      }),
    );
  });

  it("alarms: one tenant tag over its threshold (Metrics Insights, one contributor per tag) and a cluster-wide timeout spike", () => {
    expect(rec.names(T.alarm)).toEqual(["obs-statement-timeouts", "obs-tenant-slow-statements", "obs-tenant-statement-timeouts"]);
    const notify = { alarmActions: [TOPIC], okActions: [TOPIC] };
    expect(rec.get(T.alarm, "obs-tenant-slow-statements").inputs).toEqual({
      alarmDescription: "One tenant's slow statements over 60 in 5 minutes on eu-prod-postgres: see the dashboard alphapulse-obs",
      metricQueries: [
        {
          id: "q1",
          expression: `SELECT SUM(TenantSlowStatements) FROM SCHEMA("${NS}", Tag) GROUP BY Tag ORDER BY SUM() DESC LIMIT 100`,
          period: 300,
          returnData: true,
        },
      ],
      evaluationPeriods: 1,
      threshold: DEFAULT_TENANT_ALARMS.tenantSlowStatements,
      comparisonOperator: "GreaterThanThreshold",
      treatMissingData: "notBreaching",
      ...notify,
    });
    expect(rec.get(T.alarm, "obs-tenant-statement-timeouts").inputs).toMatchObject({
      metricQueries: [
        {
          id: "q1",
          expression: `SELECT SUM(TenantStatementTimeouts) FROM SCHEMA("${NS}", Tag) GROUP BY Tag ORDER BY SUM() DESC LIMIT 100`,
          period: 300,
          returnData: true,
        },
      ],
      threshold: 10,
      ...notify,
    });
    expect(rec.get(T.alarm, "obs-statement-timeouts").inputs).toEqual({
      alarmDescription: "Statement timeouts on eu-prod-postgres over 30 in 5 minutes",
      namespace: NS,
      metricName: "StatementTimeouts",
      statistic: "Sum",
      period: 300,
      evaluationPeriods: 1,
      threshold: 30,
      comparisonOperator: "GreaterThanThreshold",
      treatMissingData: "notBreaching",
      ...notify,
    });
  });

  it("exposes the metric namespace", () => {
    expect(component.metricNamespace).toBe(NS);
  });
});

describe("TenantObservability validation", () => {
  it.each([
    ["bad-cluster", { clusterName: "eu prod" }, 'cluster name "eu prod" must match'],
    [
      "bad-alarm",
      { alarms: { ...DEFAULT_TENANT_ALARMS, statementTimeouts: -1 } },
      "TenantObservability bad-alarm: alarms.statementTimeouts must be a number ≥ 0, got -1",
    ],
  ] as [string, Partial<TenantObservabilityArgs>, string][])("%s: refuses %j", (name, override, message) => {
    expect(() => new TenantObservability(name, { ...args, ...override })).toThrow(message);
  });
});
