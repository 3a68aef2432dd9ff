/**
 * Slow statements per tenant, from the PostgreSQL server log. The server logs every statement
 * slower than log_min_duration_statement with a prefix that carries application_name (%a), which
 * enter_tenant() sets to `tenant:<log tag>`. See SLOW_LOG_SETTINGS.
 *
 * Two formats are read, line by line: the text log with SLOW_LOG_SETTINGS' prefix (local clusters,
 * and the `.log` file on the AWS nodes) and PostgreSQL 15's jsonlog (the `.json` file the AWS nodes
 * ship to CloudWatch, so an export of the log group can be summarised the same way).
 */
import { TENANT_TAG_PREFIX } from "./tenant-tag";

/** postgresql.conf settings that make the log answer "which tenant is slow, with which queries". */
export const SLOW_LOG_SETTINGS = {
  log_line_prefix: "%m [%p] app=%a ",
  log_min_duration_statement: 200,
} as const;

export interface SlowStatement {
  at: Date;
  tag: string;
  durationMs: number;
  statement: string;
}

// 2026-11-26 11:20:00.123 UTC [1234] app=tenant:ab12cd34ef56 LOG:  duration: 1234.567 ms  execute <unnamed>: SELECT ...
const LINE =
  /^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?) ?([A-Z]{2,5}|[+-]\d{2})? \[\d+\] app=(\S*) LOG:\s+duration: ([\d.]+) ms\s+(?:statement|execute [^:]*): (.*)$/;
// jsonlog: {"timestamp":"2026-11-26 11:20:00.123 UTC",...,"error_severity":"LOG","message":"duration: 1234.567 ms  execute <unnamed>: SELECT ...",...,"application_name":"tenant:ab12cd34ef56",...}
const JSON_TIMESTAMP = /^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?) ?([A-Z]{2,5}|[+-]\d{2})?$/;
const JSON_MESSAGE = /^duration: ([\d.]+) ms\s+(?:statement|execute [^:]*): ([\s\S]*)$/;

function timestamp(local: string, zone: string | undefined): Date {
  const offset = zone === "UTC" || zone === "GMT" || !zone ? "Z" : zone.startsWith("+") || zone.startsWith("-") ? `${zone}:00` : "Z";
  return new Date(local.replace(" ", "T") + offset);
}

/** Parses the slow-statement lines of a log, text or jsonlog (pure); other lines are skipped. */
export function parseSlowLog(text: string): SlowStatement[] {
  const out: SlowStatement[] = [];
  for (const line of text.split("\n")) {
    const parsed = line.startsWith("{") ? parseJsonLine(line) : parseTextLine(line);
    if (parsed) out.push(parsed);
  }
  return out;
}

function parseTextLine(line: string): SlowStatement | undefined {
  const m = LINE.exec(line);
  if (!m || !m[3].startsWith(TENANT_TAG_PREFIX)) return undefined;
  return { at: timestamp(m[1], m[2]), tag: m[3].slice(TENANT_TAG_PREFIX.length), durationMs: Number(m[4]), statement: m[5].trim() };
}

function parseJsonLine(line: string): SlowStatement | undefined {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const { application_name: app, message, error_severity: severity, timestamp: ts } = record;
  if (typeof app !== "string" || !app.startsWith(TENANT_TAG_PREFIX) || severity !== "LOG") return undefined;
  if (typeof message !== "string" || typeof ts !== "string") return undefined;
  const m = JSON_MESSAGE.exec(message);
  const t = JSON_TIMESTAMP.exec(ts);
  if (!m || !t) return undefined;
  return { at: timestamp(t[1], t[2]), tag: app.slice(TENANT_TAG_PREFIX.length), durationMs: Number(m[1]), statement: m[2].trim() };
}

export interface TenantSlowSummary {
  tenant: string;
  count: number;
  totalMs: number;
  maxMs: number;
  /** The tenant's slowest statements' texts with their count, most total time first (at most 5). */
  topStatements: { statement: string; count: number; totalMs: number }[];
}

/** Summarises slow statements per tenant since `since` (pure). */
export function summariseSlow(statements: SlowStatement[], since: Date, slugByTag: Map<string, string>): TenantSlowSummary[] {
  const byTenant = new Map<string, { summary: TenantSlowSummary; texts: Map<string, { count: number; totalMs: number }> }>();
  for (const s of statements) {
    if (s.at < since) continue;
    const tenant = slugByTag.get(s.tag) ?? `unknown tag ${s.tag}`;
    const entry = byTenant.get(tenant) ?? { summary: { tenant, count: 0, totalMs: 0, maxMs: 0, topStatements: [] }, texts: new Map() };
    entry.summary.count++;
    entry.summary.totalMs += s.durationMs;
    entry.summary.maxMs = Math.max(entry.summary.maxMs, s.durationMs);
    const text = normaliseStatement(s.statement);
    const t = entry.texts.get(text) ?? { count: 0, totalMs: 0 };
    t.count++;
    t.totalMs += s.durationMs;
    entry.texts.set(text, t);
    byTenant.set(tenant, entry);
  }
  return [...byTenant.values()]
    .map(({ summary, texts }) => ({
      ...summary,
      totalMs: round(summary.totalMs),
      topStatements: [...texts.entries()]
        .map(([statement, t]) => ({ statement, count: t.count, totalMs: round(t.totalMs) }))
        .sort((a, b) => b.totalMs - a.totalMs)
        .slice(0, 5),
    }))
    .sort((a, b) => b.totalMs - a.totalMs);
}

/** Replaces literals so statements group by shape and no tenant's values are printed next to another's. */
export function normaliseStatement(statement: string): string {
  return statement
    .replace(/'(?:[^']|'')*'/g, "?")
    .replace(/\b\d+(?:\.\d+)?\b/g, "?")
    .replace(/\s+/g, " ")
    .trim()
    .slice(0, 200);
}

const round = (n: number) => Math.round(n * 10) / 10;

/** Parses "15m", "2h", "30s", "1d" into milliseconds; throws on anything else. */
export function parseInterval(text: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(text.trim());
  if (!m) throw new Error(`"${text}" is not an interval like 30s, 15m, 2h or 1d`);
  return Number(m[1]) * { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "s" | "m" | "h" | "d"];
}
