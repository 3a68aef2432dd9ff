/**
 * The local stacks' PostgreSQL logs slow statements with the tenant tag, and says where: a region
 * cluster created before that setting (the old LOCAL_REGION_POSTGRES_SETTINGS, log_min_duration_statement
 * -1) gets SLOW_LOG_SETTINGS by a reload on the next start — same postmaster, no restart — and a
 * further start changes nothing. `tenancy slow --log-file <the log the status names>` then answers
 * per tenant. Runs startRegionServices itself (PostgreSQL and Redis) on free ports in a temp dir.
 */
import { existsSync, rmSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalStackConfig } from "../../lib/stack-config/local";
import { startPostgres } from "../../lib/local/postgres-server";
import { settingsToChange, UnreloadableSettingError } from "../../lib/local/postgres-settings";
import { ensureServiceDirectory, freePort, serviceDirectory } from "../../lib/local/processes";
import { regionServicesStatus, startRegionServices, stopRegionServices, type RegionServices } from "../../lib/local/region-services";
import { migrate } from "../../lib/schema/migrate";
import { SLOW_LOG_SETTINGS } from "../../lib/observability/slow-log";
import { REPO_ROOT } from "../../lib/pulumi/env";
import { createTenantPool } from "../../lib/tenant-context/client";
import { createTenant } from "../../lib/tenant/registry";
import { connect } from "../../lib/db/client";
import { tenancy } from "../support/cli";

const STACK = "obs-local-test";
const root = serviceDirectory("obs-region");
let config: LocalStackConfig;
let adminUrl: string;

beforeAll(async () => {
  config = LocalStackConfig.parse({
    kind: "local",
    region: "eu",
    postgres: { port: await freePort(), database: "alphapulse" },
    pgbouncer: { port: await freePort() },
    redis: { port: await freePort() },
    dataDir: root,
  });
  adminUrl = `postgres://postgres@127.0.0.1:${config.postgres.port}/postgres`;
}, 60_000);

afterAll(async () => {
  if (config) await stopRegionServices(REPO_ROOT, STACK, config, { removeData: true });
  rmSync(root, { recursive: true, force: true });
});

async function show(): Promise<{ prefix: string; min: string; started: string }> {
  const c = await connect(adminUrl);
  try {
    const { rows } = await c.query(
      `SELECT current_setting('log_line_prefix') AS prefix, current_setting('log_min_duration_statement') AS min, pg_postmaster_start_time()::text AS started`,
    );
    return rows[0];
  } finally {
    await c.end();
  }
}

describe("local region logging", () => {
  let first: RegionServices;

  it("a cluster created with the old settings gets SLOW_LOG_SETTINGS by a reload, without a restart", async () => {
    const pgData = path.join(root, "postgres", "data");
    ensureServiceDirectory(path.dirname(pgData));
    await startPostgres({
      dataDir: pgData,
      port: config.postgres.port,
      settings: { max_connections: 200, shared_buffers: "128MB", log_min_duration_statement: -1 },
    });
    const before = await show();
    expect(before.min).toBe("-1");

    first = await startRegionServices(REPO_ROOT, STACK, config);
    const postgres = first.services.find((s) => s.name === "postgres")!;
    expect(postgres).toMatchObject({
      state: "running",
      detail: "reloaded: log_line_prefix, log_min_duration_statement",
      log: path.join(root, "postgres", "postgres.log"),
    });
    expect(await show()).toEqual({ prefix: SLOW_LOG_SETTINGS.log_line_prefix, min: "200ms", started: before.started });
  }, 60_000);

  it("a second start changes nothing", async () => {
    const before = await show();
    const again = await startRegionServices(REPO_ROOT, STACK, config);
    expect(again.services.find((s) => s.name === "postgres")).toEqual({
      name: "postgres",
      port: config.postgres.port,
      state: "running",
      dir: path.join(root, "postgres"),
      log: path.join(root, "postgres", "postgres.log"),
    });
    expect(await show()).toEqual(before);
  }, 60_000);

  it("the status names the log, and tenancy slow --log-file reads it per tenant", async () => {
    const status = await regionServicesStatus(REPO_ROOT, STACK, config);
    const log = status.find((s) => s.name === "postgres")?.log;
    expect(log).toBe(path.join(root, "postgres", "postgres.log"));
    expect(existsSync(log!)).toBe(true);

    const dbUrl = `postgres://postgres@127.0.0.1:${config.postgres.port}/alphapulse`;
    const c = await connect(adminUrl);
    await c.query("CREATE DATABASE alphapulse");
    await c.end();
    const admin = await connect(dbUrl);
    const pool = createTenantPool({ connectionString: dbUrl.replace("postgres@", "app_user@"), max: 2 });
    try {
      await migrate(admin, { region: "eu", tenantContext: "setting" });
      const acme = await createTenant(admin, { slug: "acme-capital", tier: "pro", region: "eu" });
      await pool.tenantQuery({ tenantId: acme.id, tier: "pro" }, "SELECT pg_sleep(0.3)");
      const deadline = Date.now() + 10_000;
      let run = await tenancy("slow", "--since", "10m", "--log-file", log!, "--json", "--database-url", dbUrl);
      while (run.code === 0 && !run.json.tenants.length && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        run = await tenancy("slow", "--since", "10m", "--log-file", log!, "--json", "--database-url", dbUrl);
      }
      expect(run.code).toBe(0);
      expect(run.json.tenants).toEqual([
        expect.objectContaining({
          tenant: "acme-capital",
          count: 1,
          topStatements: [expect.objectContaining({ statement: "SELECT pg_sleep(?)" })],
        }),
      ]);
    } finally {
      await pool.end();
      await admin.end();
    }
  }, 120_000);
});

describe("settingsToChange", () => {
  const current = [
    { name: "log_line_prefix", setting: "%m [%p] ", context: "sighup" },
    { name: "log_min_duration_statement", setting: "200", context: "superuser" },
    { name: "shared_buffers", setting: "16384", context: "postmaster" },
  ];
  it.each([
    [{ log_min_duration_statement: 200 }, []],
    [{ log_min_duration_statement: 100 }, ["log_min_duration_statement"]],
    [{ log_line_prefix: "%m [%p] " }, []],
    [SLOW_LOG_SETTINGS, ["log_line_prefix"]],
  ] as [Record<string, string | number>, string[]][])("%j → %j", (wanted, changes) => {
    expect(settingsToChange(current, wanted)).toEqual(changes);
  });

  it("refuses a setting that needs a restart, and an unknown one", () => {
    expect(() => settingsToChange(current, { shared_buffers: 1 })).toThrow(UnreloadableSettingError);
    expect(() => settingsToChange(current, { log_nothing: 1 })).toThrow('unknown setting "log_nothing"');
  });
});
