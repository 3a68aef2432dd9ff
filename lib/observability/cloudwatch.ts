/**
 * Per-tenant observability on AWS, as pure functions: the CloudWatch metric filters, Logs Insights
 * queries, dashboard body and alarm queries that components/aws/tenant-observability.ts declares.
 *
 * Input: the cluster's log group, which receives PostgreSQL 15's jsonlog from both nodes
 * (lib/platform/postgres-config.ts loggingSettings, lib/platform/cloud-init.ts). Every event of a tenant
 * transaction carries `application_name = tenant:<log tag>` (enter_tenant(), lib/schema/current.sql): the
 * tag is the tenant dimension. Tags are opaque; `tenancy tenant list --json` (logTag) or
 * `tenancy slow`/`tenancy top` map them to tenants.
 *
 * What comes from where:
 *  - counts per tag (slow statements, statement timeouts): metric filters, `Tag` dimension;
 *  - durations per tag and the statements themselves: Logs Insights (the duration is inside the
 *    jsonlog `message`, which a JSON metric filter cannot take a number from);
 *  - cluster totals without a dimension, so the cluster-wide alarm keeps working if CloudWatch
 *    disables the per-tag filters (it may, past 1,000 distinct dimension values within an hour).
 */
import { TENANT_TAG_PREFIX } from "./tenant-tag";

/** The jsonlog fields read here (PostgreSQL 15 `log_destination = jsonlog`). */
export const JSONLOG_FIELDS = {
  app: "application_name",
  message: "message",
  severity: "error_severity",
  sqlstate: "state_code",
} as const;

/** A statement slower than log_min_duration_statement: `duration: 1234.5 ms  statement: ...`. */
export const SLOW_MESSAGE_PREFIX = "duration:";
/** The error of a statement cut by statement_timeout (SQLSTATE 57014, which a cancel request shares). */
export const STATEMENT_TIMEOUT_MESSAGE = "canceling statement due to statement timeout";
export const TAG_DIMENSION = "Tag";

/** One condition of a JSON metric filter: the field equals a value, or starts with a prefix. */
export type JsonCondition = { field: string; equals: string } | { field: string; startsWith: string };

const tagged: JsonCondition = { field: JSONLOG_FIELDS.app, startsWith: TENANT_TAG_PREFIX };
const slow: JsonCondition = { field: JSONLOG_FIELDS.message, startsWith: SLOW_MESSAGE_PREFIX };
const timedOut: JsonCondition = { field: JSONLOG_FIELDS.message, equals: STATEMENT_TIMEOUT_MESSAGE };

export interface LogMetric {
  /** Suffix of the resource and filter names. */
  key: string;
  metricName: string;
  description: string;
  conditions: readonly JsonCondition[];
  /** Dimension `Tag` = the event's application_name (`tenant:<log tag>`); otherwise no dimension and a default of 0. */
  perTag: boolean;
}

/** The metric filters on the cluster's log group. */
export const LOG_METRICS: readonly LogMetric[] = [
  {
    key: "tenant-slow-statements",
    metricName: "TenantSlowStatements",
    description: "Slow statements (over log_min_duration_statement) of tenant transactions, per tenant tag",
    conditions: [tagged, slow],
    perTag: true,
  },
  {
    key: "slow-statements",
    metricName: "SlowStatements",
    description: "Slow statements of the cluster, tagged or not",
    conditions: [slow],
    perTag: false,
  },
  {
    key: "tenant-statement-timeouts",
    metricName: "TenantStatementTimeouts",
    description: "Statements of tenant transactions cut by their tier's statement_timeout, per tenant tag",
    conditions: [tagged, timedOut],
    perTag: true,
  },
  {
    key: "statement-timeouts",
    metricName: "StatementTimeouts",
    description: "Statements of the cluster cut by statement_timeout",
    conditions: [timedOut],
    perTag: false,
  },
];

export class CloudWatchRenderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CloudWatchRenderError";
  }
}

const FIELD = /^[a-z_][a-z0-9_]*$/;
/** Literal text in a filter pattern: no quote, backslash or wildcard (they would change its meaning). */
const LITERAL = /^[^"\\*]*$/;

function conditionText(c: JsonCondition): string {
  if (!FIELD.test(c.field)) throw new CloudWatchRenderError(`filter field "${c.field}" must match ${FIELD}`);
  const value = "equals" in c ? c.equals : c.startsWith;
  if (!LITERAL.test(value) || value === "") throw new CloudWatchRenderError(`filter value "${value}" must be non-empty, without " \\ or *`);
  return `($.${c.field} = "${value}${"equals" in c ? "" : "*"}")`;
}

/** A CloudWatch Logs JSON filter pattern: every condition must hold. */
export function renderJsonFilterPattern(conditions: readonly JsonCondition[]): string {
  if (!conditions.length) throw new CloudWatchRenderError("a filter pattern needs at least one condition");
  return `{ ${conditions.map(conditionText).join(" && ")} }`;
}

/**
 * What the pattern above selects, for one parsed jsonlog record (the documented semantics of `=`
 * on a string, with `*` as a trailing wildcard). Tests run it over the events a real PostgreSQL wrote.
 */
export function matchesJsonFilter(conditions: readonly JsonCondition[], record: Record<string, unknown>): boolean {
  return conditions.every((c) => {
    const value = record[c.field];
    if (typeof value !== "string") return false;
    return "equals" in c ? value === c.equals : value.startsWith(c.startsWith);
  });
}

const CLUSTER_NAME = /^[A-Za-z0-9_-]{1,200}$/;

/** The custom-metric namespace of one cluster's tenant metrics (a metric filter cannot add a constant dimension). */
export function tenantMetricNamespace(cluster: string): string {
  if (!CLUSTER_NAME.test(cluster)) throw new CloudWatchRenderError(`cluster name "${cluster}" must match ${CLUSTER_NAME}`);
  return `AlphaPulse/TenantQueries/${cluster}`;
}

/** The metric transformation of a log metric (aws.cloudwatch.LogMetricFilter `metricTransformation`). */
export function metricTransformation(metric: LogMetric, namespace: string) {
  return {
    name: metric.metricName,
    namespace,
    value: "1",
    unit: "Count",
    // CloudWatch refuses a default value together with dimensions.
    ...(metric.perTag ? { dimensions: { [TAG_DIMENSION]: `$.${JSONLOG_FIELDS.app}` } } : { defaultValue: "0" }),
  };
}

/**
 * A Metrics Insights query: one time series per tenant tag, the `limit` largest first. As an alarm
 * query each series is a contributor, so the alarm names the tag that crossed the threshold.
 */
export function perTagQuery(namespace: string, metricName: string, limit: number): string {
  if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new CloudWatchRenderError(`limit must be 1..500, got ${limit}`);
  return `SELECT SUM(${metricName}) FROM SCHEMA("${namespace}", ${TAG_DIMENSION}) GROUP BY ${TAG_DIMENSION} ORDER BY SUM() DESC LIMIT ${limit}`;
}

/**
 * The slow-statement message as Logs Insights parses it (also a JavaScript regex: tests run it over
 * real jsonlog messages). `statement:` for simple queries, `execute <name>:` for extended protocol.
 */
export const SLOW_MESSAGE_PATTERN = "^duration: (?<duration_ms>[0-9.]+) ms +(?<phase>statement|execute[^:]*): (?<statement>.*)";

export interface InsightsQuery {
  key: string;
  title: string;
  query: string;
}

const isTagged = `${JSONLOG_FIELDS.app} like /^${TENANT_TAG_PREFIX}/`;
const isSlow = `${JSONLOG_FIELDS.message} like /^duration: [0-9.]+ ms +(statement|execute)/`;
const parseSlow = `parse ${JSONLOG_FIELDS.message} /${SLOW_MESSAGE_PATTERN}/`;

/** Placeholder in the one-tenant query: the operator replaces it with the tag (`tenancy tenant show <slug> --json` .logTag). */
export const TAG_PLACEHOLDER = "REPLACE_WITH_LOG_TAG";

/** The saved Logs Insights queries, per tenant tag. Field names are jsonlog's. */
export const INSIGHTS_QUERIES: readonly InsightsQuery[] = [
  {
    key: "slow-by-tenant",
    title: "Slow statements by tenant tag",
    query: [
      `filter ${isTagged} and ${isSlow}`,
      parseSlow,
      `stats count(*) as slow_statements, sum(duration_ms) as total_ms, max(duration_ms) as max_ms by ${JSONLOG_FIELDS.app}`,
      "sort total_ms desc",
      "limit 25",
    ].join("\n| "),
  },
  {
    key: "slow-statements-by-tenant",
    title: "Slowest statements by tenant tag",
    query: [
      `filter ${isTagged} and ${isSlow}`,
      parseSlow,
      `stats count(*) as calls, sum(duration_ms) as total_ms, max(duration_ms) as max_ms by ${JSONLOG_FIELDS.app}, statement`,
      "sort total_ms desc",
      "limit 50",
    ].join("\n| "),
  },
  {
    key: "one-tenant",
    title: `Statements of one tenant (replace ${TAG_PLACEHOLDER})`,
    query: [
      `fields @timestamp, ${JSONLOG_FIELDS.severity}, ${JSONLOG_FIELDS.sqlstate}, ${JSONLOG_FIELDS.message}`,
      `filter ${JSONLOG_FIELDS.app} = "${TENANT_TAG_PREFIX}${TAG_PLACEHOLDER}"`,
      "sort @timestamp desc",
      "limit 200",
    ].join("\n| "),
  },
  {
    key: "timeouts-by-tenant",
    title: "Statement timeouts by tenant tag",
    query: [
      `filter ${isTagged} and ${JSONLOG_FIELDS.message} = "${STATEMENT_TIMEOUT_MESSAGE}"`,
      `stats count(*) as timeouts by ${JSONLOG_FIELDS.app}, bin(5m)`,
      "sort timeouts desc",
      "limit 50",
    ].join("\n| "),
  },
  {
    key: "errors-by-tenant",
    title: "Errors by tenant tag and SQLSTATE",
    query: [
      `filter ${isTagged} and ${JSONLOG_FIELDS.severity} in ["ERROR", "FATAL", "PANIC"]`,
      `stats count(*) as errors by ${JSONLOG_FIELDS.app}, ${JSONLOG_FIELDS.sqlstate}`,
      "sort errors desc",
      "limit 50",
    ].join("\n| "),
  },
  {
    key: "untagged-slow",
    title: "Slow statements outside tenant transactions",
    query: [
      `filter ${isSlow} and not (${isTagged})`,
      parseSlow,
      `stats count(*) as slow_statements, sum(duration_ms) as total_ms by ${JSONLOG_FIELDS.app}, statement`,
      "sort total_ms desc",
      "limit 25",
    ].join("\n| "),
  },
];

export interface DashboardParams {
  region: string;
  /** The PostgresCluster's name: the `Cluster` dimension of its health metrics. */
  cluster: string;
  logGroupName: string;
  /** tenantMetricNamespace(cluster). */
  namespace: string;
  /** Namespace of the nodes' health metrics (components/aws/postgres-cluster.ts METRICS_NAMESPACE). */
  healthNamespace: string;
  /** Period of the metric widgets, seconds: per minute, for "right now". @default 60 */
  periodSeconds?: number;
}

type Widget = { type: "metric" | "log"; x: number; y: number; width: number; height: number; properties: Record<string, unknown> };

/**
 * The regional dashboard "which tenant is hurting the cluster": per-tag slow statements and
 * timeouts (Metrics Insights), their durations and statements (Logs Insights), and the cluster's
 * connections and replication lag (the nodes' health metrics).
 */
export function renderTenantDashboard(p: DashboardParams): { start: string; widgets: Widget[] } {
  const period = p.periodSeconds ?? 60;
  const metricsInsights = (title: string, metricName: string): Record<string, unknown> => ({
    title,
    region: p.region,
    view: "timeSeries",
    stacked: false,
    period,
    metrics: [[{ expression: perTagQuery(p.namespace, metricName, 10), id: "q1", label: "", period }]],
  });
  const plain = (title: string, stat: string, metrics: string[][]): Record<string, unknown> => ({
    title,
    region: p.region,
    view: "timeSeries",
    stat,
    period: 60,
    metrics,
  });
  const health = (metric: string, role: "primary" | "replica") => [p.healthNamespace, metric, "Cluster", p.cluster, "Role", role];
  const logs = (title: string, key: string): Record<string, unknown> => {
    const q = INSIGHTS_QUERIES.find((x) => x.key === key);
    if (!q) throw new CloudWatchRenderError(`no Logs Insights query "${key}"`);
    return { title, region: p.region, view: "table", query: `SOURCE '${p.logGroupName}' | ${q.query}` };
  };
  const rows: [Widget["type"], Record<string, unknown>][][] = [
    [
      ["metric", metricsInsights("Slow statements by tenant tag (top 10)", "TenantSlowStatements")],
      ["log", logs("Slow statement time by tenant tag", "slow-by-tenant")],
    ],
    [
      ["metric", metricsInsights("Statement timeouts by tenant tag (top 10)", "TenantStatementTimeouts")],
      [
        "metric",
        plain("Statement timeouts and slow statements, whole cluster", "Sum", [
          [p.namespace, "StatementTimeouts"],
          [p.namespace, "SlowStatements"],
        ]),
      ],
    ],
    [
      ["metric", plain("Connections used (% of max_connections), primary", "Maximum", [health("ConnectionsUsedPercent", "primary")])],
      ["metric", plain("Replication lag (s), replica", "Maximum", [health("ReplicationLagSeconds", "replica")])],
    ],
    [
      ["log", logs("Slowest statements by tenant tag", "slow-statements-by-tenant")],
      ["log", logs("Errors by tenant tag and SQLSTATE", "errors-by-tenant")],
    ],
  ];
  const widgets: Widget[] = rows.flatMap((row, y) =>
    row.map(([type, properties], x) => ({ type, x: x * 12, y: y * 6, width: 12, height: 6, properties })),
  );
  // Opens on the last hour: the question is "right now".
  return { start: "-PT1H", widgets };
}

/** Dashboard names: letters, digits, `-` and `_`. */
export function dashboardName(name: string): string {
  const out = `alphapulse-${name}`;
  if (!/^[A-Za-z0-9_-]{1,255}$/.test(out)) throw new CloudWatchRenderError(`dashboard name "${out}" must be 1-255 of A-Za-z0-9_-`);
  return out;
}
