/**
 * `alphapulse:aws:TenantAlarms` — the CloudWatch pieces that belong to ONE tenant, declared by its
 * tenant stack next to the region's own (components/aws/tenant-observability.ts, which keeps the
 * per-tag metric filters, the saved queries, the dashboard and the "any tenant" alarms):
 *
 *   <name>-slow-statements      alarm on this tenant's slow statements in 5 minutes
 *   <name>-statement-timeouts   alarm on this tenant's statements cut by its tier's timeout
 *
 * The alarms select the tenant by its log tag (`Tag = tenant:<log tag>`, the registry's opaque tag,
 * components/db Tenant.logTag) on the region's per-tag metrics. An Enterprise tenant also gets its own
 * two metric filters (`<name>-slow-statements-filter`, `<name>-statement-timeouts-filter`, in its own
 * namespace without a dimension) and its alarms read those: they keep counting when CloudWatch stops
 * the per-tag filters past 1,000 tag values an hour. Only Enterprise, because a log group takes at most
 * 100 metric filters (the region uses 4): per-tenant filters for every tenant would stop at ~48.
 *
 * Rendering (patterns, metric transformations) is lib/observability/cloudwatch.ts's. Nothing here is
 * stateful: all of it can be replaced freely, and goes with the tenant stack.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import {
  JSONLOG_FIELDS,
  renderJsonFilterPattern,
  SLOW_MESSAGE_PREFIX,
  STATEMENT_TIMEOUT_MESSAGE,
  TAG_DIMENSION,
  type JsonCondition,
} from "../../lib/observability/cloudwatch";
import { TENANT_TAG_PREFIX } from "../../lib/observability/tenant-tag";
import { DEFAULT_TENANT_ALARMS } from "./tenant-observability";

export interface TenantAlarmsArgs {
  /** Plain slug, for descriptions. */
  slug: string;
  /** The tenant's registry id (names its own metric namespace). */
  tenantId: pulumi.Input<string>;
  /** The tenant's log tag (components/db Tenant.logTag). */
  logTag: pulumi.Input<string>;
  /** The region's per-tag metric namespace (TenantObservability.metricNamespace). */
  metricNamespace: pulumi.Input<string>;
  /** The cluster's log group. Used only with `ownFilters`. */
  logGroupName: pulumi.Input<string>;
  /** The region's alarm topic. */
  alarmTopicArn: pulumi.Input<string>;
  /** Declare the tenant's own metric filters (Enterprise). @default false */
  ownFilters?: boolean;
  /** Thresholds per 5 minutes. @default DEFAULT_TENANT_ALARMS' per-tenant values (60 slow statements, 10 timeouts) */
  thresholds?: { slowStatements: number; statementTimeouts: number };
}

/** The two tenant metrics: what they count and their alarm's name suffix. */
export const TENANT_ALARM_METRICS = [
  {
    key: "slow-statements",
    perTagMetric: "TenantSlowStatements",
    ownMetric: "SlowStatements",
    message: { startsWith: SLOW_MESSAGE_PREFIX },
  },
  {
    key: "statement-timeouts",
    perTagMetric: "TenantStatementTimeouts",
    ownMetric: "StatementTimeouts",
    message: { equals: STATEMENT_TIMEOUT_MESSAGE },
  },
] as const;

export class TenantAlarms extends pulumi.ComponentResource {
  constructor(name: string, args: TenantAlarmsArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("alphapulse:aws:TenantAlarms", name, {}, opts);
    const thresholds = args.thresholds ?? {
      slowStatements: DEFAULT_TENANT_ALARMS.tenantSlowStatements,
      statementTimeouts: DEFAULT_TENANT_ALARMS.tenantStatementTimeouts,
    };
    for (const [key, value] of Object.entries(thresholds)) {
      if (!Number.isFinite(value) || value < 0)
        throw new Error(`TenantAlarms ${name}: thresholds.${key} must be a number ≥ 0, got ${value}`);
    }
    const parent = { parent: this };
    const tag = pulumi.output(args.logTag).apply((t) => `${TENANT_TAG_PREFIX}${t}`);
    const ownNamespace = pulumi.output(args.tenantId).apply(tenantOwnNamespace);

    for (const metric of TENANT_ALARM_METRICS) {
      const threshold = metric.key === "slow-statements" ? thresholds.slowStatements : thresholds.statementTimeouts;
      const source = args.ownFilters
        ? { namespace: ownNamespace, metricName: metric.ownMetric }
        : { namespace: args.metricNamespace, metricName: metric.perTagMetric, dimensions: { [TAG_DIMENSION]: tag } };
      if (args.ownFilters) {
        new aws.cloudwatch.LogMetricFilter(
          `${name}-${metric.key}-filter`,
          {
            logGroupName: args.logGroupName,
            pattern: tag.apply((t) => tenantFilterPattern(t, metric.message)),
            metricTransformation: { name: metric.ownMetric, namespace: ownNamespace, value: "1", unit: "Count", defaultValue: "0" },
          },
          parent,
        );
      }
      new aws.cloudwatch.MetricAlarm(
        `${name}-${metric.key}`,
        {
          alarmDescription: `Tenant ${args.slug}: ${metric.key.replace("-", " ")} over ${threshold} in 5 minutes`,
          ...source,
          statistic: "Sum",
          period: 300,
          evaluationPeriods: 1,
          threshold,
          comparisonOperator: "GreaterThanThreshold",
          treatMissingData: "notBreaching",
          alarmActions: [args.alarmTopicArn],
          okActions: [args.alarmTopicArn],
        },
        parent,
      );
    }
    this.registerOutputs({});
  }
}

/** `AlphaPulse/Tenant/<tenant id>`: the namespace of an Enterprise tenant's own metrics. */
export function tenantOwnNamespace(tenantId: string): string {
  return `AlphaPulse/Tenant/${tenantId}`;
}

/** The JSON filter pattern of one tenant's events: its tag, and the message condition. */
export function tenantFilterPattern(tag: string, message: { startsWith: string } | { equals: string }): string {
  const conditions: JsonCondition[] = [
    { field: JSONLOG_FIELDS.app, equals: tag },
    { field: JSONLOG_FIELDS.message, ...message },
  ];
  return renderJsonFilterPattern(conditions);
}
