/**
 * `alphapulse:aws:TenantObservability` — "which tenant is hurting the cluster right now, with which
 * queries" for one regional PostgreSQL cluster (issue 10), on the log group the cluster already has
 * (PostgresCluster.logGroupName: the nodes ship PostgreSQL's jsonlog to it; nothing new is logged).
 *
 * - Metric filters: slow statements and statement timeouts per tenant tag (dimension `Tag` =
 *   application_name, `tenant:<log tag>`), and the same two as cluster totals without a dimension.
 * - Logs Insights query definitions: slow statements, their durations and texts, timeouts and
 *   errors per tenant tag; one tenant's statements; slow statements outside tenant transactions.
 * - A dashboard: the above next to the cluster's connections and replication lag.
 * - Alarms: any one tenant's slow statements or timeouts over a threshold (Metrics Insights alarms
 *   with one contributor per tag: the contributors in ALARM are the tags), and a cluster-wide timeout
 *   spike on the total (unaffected if CloudWatch disables the per-tag filters, see docs/observability.md).
 *
 * Everything rendered (patterns, queries, dashboard body) comes from the pure functions of
 * lib/observability/cloudwatch.ts. No stateful resources: all of it can be replaced freely.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import {
  dashboardName,
  INSIGHTS_QUERIES,
  LOG_METRICS,
  metricTransformation,
  perTagQuery,
  renderJsonFilterPattern,
  renderTenantDashboard,
  tenantMetricNamespace,
} from "../../lib/observability/cloudwatch";
import { METRICS_NAMESPACE } from "./postgres-cluster";

export interface TenantObservabilityAlarms {
  /** Slow statements of one tenant tag in 5 minutes. */
  tenantSlowStatements: number;
  /** Statement timeouts of one tenant tag in 5 minutes. */
  tenantStatementTimeouts: number;
  /** Statement timeouts of the whole cluster in 5 minutes. */
  statementTimeouts: number;
}

export const DEFAULT_TENANT_ALARMS: TenantObservabilityAlarms = {
  tenantSlowStatements: 60,
  tenantStatementTimeouts: 10,
  statementTimeouts: 30,
};

export interface TenantObservabilityArgs {
  /** AWS region of the dashboard's widgets (plain: rendered into the dashboard body). */
  region: string;
  /** The PostgresCluster's name (plain): the metric namespace and its health metrics' `Cluster` dimension. */
  clusterName: string;
  /** The cluster's log group (PostgresCluster.logGroupName), receiving jsonlog from both nodes. */
  logGroupName: pulumi.Input<string>;
  /** SNS topic for the alarms. */
  alarmTopicArn: pulumi.Input<string>;
  /** Thresholds per 5 minutes. @default DEFAULT_TENANT_ALARMS (60 slow statements or 10 timeouts of one tenant, 30 timeouts overall) */
  alarms?: TenantObservabilityAlarms;
}

export class TenantObservability extends pulumi.ComponentResource {
  /** Namespace of the per-tag and total metrics (`AlphaPulse/TenantQueries/<cluster>`). */
  readonly metricNamespace: string;
  readonly dashboardName: pulumi.Output<string>;

  constructor(name: string, args: TenantObservabilityArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("alphapulse:aws:TenantObservability", name, {}, opts);
    const alarms = args.alarms ?? DEFAULT_TENANT_ALARMS;
    for (const [key, value] of Object.entries(alarms)) {
      if (!Number.isFinite(value) || value < 0)
        throw new Error(`TenantObservability ${name}: alarms.${key} must be a number ≥ 0, got ${value}`);
    }
    const namespace = tenantMetricNamespace(args.clusterName);
    const parent = { parent: this };

    for (const metric of LOG_METRICS) {
      new aws.cloudwatch.LogMetricFilter(
        `${name}-${metric.key}`,
        {
          name: `${name}-${metric.key}`,
          logGroupName: args.logGroupName,
          pattern: renderJsonFilterPattern(metric.conditions),
          metricTransformation: metricTransformation(metric, namespace),
        },
        parent,
      );
    }

    for (const q of INSIGHTS_QUERIES) {
      new aws.cloudwatch.QueryDefinition(
        `${name}-${q.key}`,
        { name: `AlphaPulse/${args.clusterName}/${q.title}`, logGroupNames: [args.logGroupName], queryString: q.query },
        parent,
      );
    }

    const dashboard = new aws.cloudwatch.Dashboard(
      `${name}-dashboard`,
      {
        dashboardName: dashboardName(name),
        dashboardBody: pulumi.output(args.logGroupName).apply((logGroupName) =>
          JSON.stringify(
            renderTenantDashboard({
              region: args.region,
              cluster: args.clusterName,
              logGroupName,
              namespace,
              healthNamespace: METRICS_NAMESPACE,
            }),
          ),
        ),
      },
      parent,
    );

    const notify = { alarmActions: [args.alarmTopicArn], okActions: [args.alarmTopicArn] };
    // One contributor per tenant tag: the contributors in ALARM are the tags over the threshold.
    const perTag = (suffix: string, description: string, metricName: string, threshold: number) =>
      new aws.cloudwatch.MetricAlarm(
        `${name}-${suffix}`,
        {
          alarmDescription: description,
          metricQueries: [{ id: "q1", expression: perTagQuery(namespace, metricName, 100), period: 300, returnData: true }],
          evaluationPeriods: 1,
          threshold,
          comparisonOperator: "GreaterThanThreshold",
          // No data for a tag means it had no slow statement or timeout.
          treatMissingData: "notBreaching",
          ...notify,
        },
        parent,
      );
    perTag(
      "tenant-slow-statements",
      `One tenant's slow statements over ${alarms.tenantSlowStatements} in 5 minutes on ${args.clusterName}: see the dashboard ${dashboardName(name)}`,
      "TenantSlowStatements",
      alarms.tenantSlowStatements,
    );
    perTag(
      "tenant-statement-timeouts",
      `One tenant's statements cut by its tier timeout over ${alarms.tenantStatementTimeouts} in 5 minutes on ${args.clusterName}`,
      "TenantStatementTimeouts",
      alarms.tenantStatementTimeouts,
    );
    new aws.cloudwatch.MetricAlarm(
      `${name}-statement-timeouts`,
      {
        alarmDescription: `Statement timeouts on ${args.clusterName} over ${alarms.statementTimeouts} in 5 minutes`,
        namespace,
        metricName: "StatementTimeouts",
        statistic: "Sum",
        period: 300,
        evaluationPeriods: 1,
        threshold: alarms.statementTimeouts,
        comparisonOperator: "GreaterThanThreshold",
        treatMissingData: "notBreaching",
        ...notify,
      },
      parent,
    );

    this.metricNamespace = namespace;
    this.dashboardName = dashboard.dashboardName;
    this.registerOutputs({ metricNamespace: this.metricNamespace, dashboardName: this.dashboardName });
  }
}
