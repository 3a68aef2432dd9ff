/**
 * `tenancy slow` end to end on a real PostgreSQL that logs the way the AWS nodes do
 * (lib/platform/postgres-config.ts loggingSettings: the collector, SLOW_LOG_SETTINGS' prefix, text and
 * jsonlog), with a low log_min_duration_statement. Tenant statements go through the tenant-context
 * client; the command, run in-process, must name each tenant by slug with its own statements.
 *
 * Negative controls: a session that never went through enter_tenant is logged but attributed to
 * no tenant; a session that invents a tag is shown as an unknown tag, not as a tenant.
 *
 * The jsonlog the server wrote is also what CloudWatch receives on AWS: the metric filters'
 * conditions and the Logs Insights parse pattern are checked against it here.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres, THROWAWAY_SETTINGS, type PostgresServer } from "../../lib/local/postgres-server";
import { migrate } from "../../lib/schema/migrate";
import { LOG_METRICS, matchesJsonFilter, SLOW_MESSAGE_PATTERN, STATEMENT_TIMEOUT_MESSAGE } from "../../lib/observability/cloudwatch";
import { loggingSettings } from "../../lib/platform/postgres-config";
import { createTenantPool, type TenantPool } from "../../lib/tenant-context/client";
import { createTenant } from "../../lib/tenant/registry";
import type { Tenant } from "../../lib/tenant/model";
import { TIER_LIMITS } from "../../lib/tenant/tiers";
import { connect } from "../../lib/db/client";
import { sqlstate } from "../data-layer/harness";
import { tenancy } from "../support/cli";

const THRESHOLD_MS = 100;
const STARTER_TIMEOUT_MS = 400;

let server: PostgresServer;
let url: string;
let admin: pg.Client;
let pool: TenantPool;
let alpha: Tenant, beta: Tenant;

beforeAll(async () => {
  const logging = Object.entries(loggingSettings({ logMinDurationStatementMs: THRESHOLD_MS })).map(([k, v]) => [
    k,
    typeof v === "boolean" ? (v ? "on" : "off") : v,
  ]);
  server = await startPostgres({ settings: { ...THROWAWAY_SETTINGS, ...Object.fromEntries(logging) } });
  const root = await connect(server.adminUrl);
  await root.query("CREATE DATABASE obs");
  await root.end();
  url = server.urlFor("obs");
  admin = await connect(url);
  await migrate(admin, { region: "eu", tenantContext: "setting" });
  alpha = await createTenant(admin, { slug: "alpha-fund", tier: "pro", region: "eu" });
  beta = await createTenant(admin, { slug: "beta-capital", tier: "starter", region: "eu" });
  pool = createTenantPool({
    connectionString: server.urlFor("obs").replace("postgres@", "app_user@"),
    max: 4,
    limits: { ...TIER_LIMITS, starter: { ...TIER_LIMITS.starter, statementTimeoutMs: STARTER_TIMEOUT_MS } },
  });

  // The workload: alpha twice 300 ms, beta once 150 ms and once cut by its tier timeout.
  await pool.tenantQuery({ tenantId: alpha.id, tier: "pro" }, "SELECT pg_sleep(0.3)");
  await pool.tenantQuery({ tenantId: alpha.id, tier: "pro" }, "SELECT pg_sleep(0.3)");
  await pool.tenantQuery({ tenantId: beta.id, tier: "starter" }, "SELECT pg_sleep(0.15)");
  expect(await sqlstate(() => pool.tenantQuery({ tenantId: beta.id, tier: "starter" }, "SELECT pg_sleep(2)"))).toBe("57014");
  // Negative controls: no enter_tenant at all; and a made-up tag.
  const untagged = await connect(url.replace("postgres@", "app_user@"));
  await untagged.query("SELECT pg_sleep(0.2), 'untagged' AS marker");
  await untagged.end();
  const forged = new pg.Client({ connectionString: url.replace("postgres@", "app_user@"), application_name: "tenant:forged000000" });
  await forged.connect();
  await forged.query("SELECT pg_sleep(0.25)");
  await forged.end();
}, 120_000);

afterAll(async () => {
  await pool?.end();
  await admin?.end();
  await server?.stop({ removeData: true, mode: "immediate" });
});

/** Runs `tenancy slow` until the log shows the whole workload (the collector writes asynchronously). */
async function slow(...extra: string[]) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const run = await tenancy("slow", "--since", "10m", "--json", "--database-url", url, ...extra);
    const total = (run.json?.tenants ?? []).reduce((n: number, t: { count: number }) => n + t.count, 0);
    if (run.code !== 0 || total >= 4 || Date.now() > deadline) return run;
    await new Promise((r) => setTimeout(r, 200));
  }
}

const jsonlogFile = () => {
  const dir = path.join(server.dataDir, "log");
  const files = readdirSync(dir).filter((f) => f.endsWith(".json"));
  expect(files).toHaveLength(1);
  return path.join(dir, files[0]);
};
const jsonlog = () =>
  readFileSync(jsonlogFile(), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);

describe("tenancy slow on a cluster logging with SLOW_LOG_SETTINGS", () => {
  it("summarises slow statements under each tenant's slug, from the server's own log (pg_read_file)", async () => {
    const run = await slow();
    expect(run.code).toBe(0);
    expect(run.json.tenants.map((t: { tenant: string; count: number }) => [t.tenant, t.count])).toEqual([
      ["alpha-fund", 2],
      ["unknown tag forged000000", 1],
      ["beta-capital", 1],
    ]);
    const [a, , b] = run.json.tenants;
    expect(a.topStatements).toEqual([{ statement: "SELECT pg_sleep(?)", count: 2, totalMs: a.totalMs }]);
    expect(a.totalMs).toBeGreaterThanOrEqual(600);
    expect(b.maxMs).toBeGreaterThanOrEqual(150);
    expect(b.maxMs).toBeLessThan(STARTER_TIMEOUT_MS); // the cut statement never completed, so it is not a slow statement
  });

  it("negative control: the untagged session was logged as slow, and no tenant got it", async () => {
    const text = readFileSync(jsonlogFile().replace(/\.json$/, ".log"), "utf8");
    const untaggedLine = text.split("\n").find((l) => l.includes("'untagged' AS marker") && l.includes("duration:"));
    // %a of a session without application_name prints "[unknown]".
    expect(untaggedLine).toMatch(/\] app=\[unknown\] LOG: {2}duration: \d+\.\d+ ms {2}statement: SELECT pg_sleep\(0\.2\)/);
    const run = await slow();
    for (const t of run.json.tenants) expect(JSON.stringify(t.topStatements)).not.toContain("untagged");
  });

  it("reads the jsonlog file (a CloudWatch export) to the same summary", async () => {
    const [fromServer, fromFile] = [await slow(), await slow("--log-file", jsonlogFile())];
    expect(fromFile.code).toBe(0);
    expect(fromFile.json.tenants).toEqual(fromServer.json.tenants);
  });

  it("prints a table by default and refuses bad input with exit 2 naming the flag", async () => {
    const human = await tenancy("slow", "--since", "10m", "--database-url", url);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/alpha-fund\s*│\s*2/);
    const badSince = await tenancy("slow", "--since", "15x", "--database-url", url);
    expect([badSince.code, badSince.stderr]).toEqual([2, expect.stringContaining("--since")]);
    const badFile = await tenancy("slow", "--since", "1h", "--log-file", "/nonexistent/postgresql.log", "--database-url", url);
    expect([badFile.code, badFile.stderr]).toEqual([2, expect.stringContaining("--log-file")]);
  });
});

describe("the jsonlog CloudWatch receives", () => {
  const count = (key: string) => {
    const metric = LOG_METRICS.find((m) => m.key === key)!;
    const byTag = new Map<string, number>();
    for (const r of jsonlog().filter((x) => matchesJsonFilter(metric.conditions, x))) {
      const tag = typeof r.application_name === "string" ? r.application_name : "";
      byTag.set(tag, (byTag.get(tag) ?? 0) + 1);
    }
    return Object.fromEntries(byTag);
  };

  it("per-tag slow statements: the Tag dimension values are exactly the tenant transactions' application_name", () => {
    expect(count("tenant-slow-statements")).toEqual({
      [`tenant:${alpha.logTag}`]: 2,
      [`tenant:${beta.logTag}`]: 1,
      "tenant:forged000000": 1,
    });
  });

  it("the cluster total also counts the untagged statement", () => {
    const total = count("slow-statements");
    expect(Object.values(total).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(5);
    expect(jsonlog().some((r) => matchesJsonFilter(LOG_METRICS[1].conditions, r) && String(r.message).includes("'untagged'"))).toBe(true);
  });

  it("statement timeouts per tag: beta's one, with SQLSTATE 57014", () => {
    expect(count("tenant-statement-timeouts")).toEqual({ [`tenant:${beta.logTag}`]: 1 });
    expect(count("statement-timeouts")).toEqual({ [`tenant:${beta.logTag}`]: 1 });
    const timeout = jsonlog().find((r) => r.message === STATEMENT_TIMEOUT_MESSAGE);
    expect(timeout).toMatchObject({ error_severity: "ERROR", state_code: "57014", application_name: `tenant:${beta.logTag}` });
  });

  it("the Logs Insights parse pattern reads every tenant slow statement's duration", () => {
    const tenantSlow = LOG_METRICS[0].conditions;
    const parsed = jsonlog()
      .filter((r) => matchesJsonFilter(tenantSlow, r))
      .map((r) => new RegExp(SLOW_MESSAGE_PATTERN).exec(String(r.message))?.groups);
    expect(parsed).toHaveLength(4);
    for (const g of parsed) {
      expect(Number(g?.duration_ms)).toBeGreaterThanOrEqual(THRESHOLD_MS);
      expect(g?.statement).toMatch(/^SELECT pg_sleep\(/);
    }
  });
});
