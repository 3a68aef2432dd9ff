/**
 * PgBouncer restart and PostgreSQL restart under load, on a cluster of this test's own (the shared
 * test cluster is not restarted under other test files). Workers run tenant queries in a loop for
 * several tenants; every row of every result is checked. Clients see errors, reconnect, and no
 * client ever receives another tenant's row. And: without an 'error' listener on a checked-out
 * connection (naive pg.Pool), a PgBouncer restart kills the process (negative control); the
 * tenant-context client survives it.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres, THROWAWAY_SETTINGS, type PostgresServer } from "../../lib/local/postgres-server";
import { TenantPool, tenantQuery, withTenant } from "../../lib/tenant-context/client";
import type { Tenant } from "../../lib/tenant/model";
import { bouncerFor, foreignRows, sleep, tenantDatabase, type Bouncer, type TenantDatabase } from "./helpers";

let server: PostgresServer;
let db: TenantDatabase;
let bouncer: Bouncer;

beforeAll(async () => {
  server = await startPostgres({ settings: THROWAWAY_SETTINGS });
  const name = "restarts";
  const admin = new pg.Client({ connectionString: server.adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  db = await tenantDatabase({
    tiers: ["starter", "pro", "enterprise", "pro"],
    database: { name, url: server.urlFor(name), urlAs: () => "", drop: async () => {} },
  });
  bouncer = await bouncerFor(db, { settings: { serverLoginRetry: 0.5 } });
});

afterAll(async () => {
  await bouncer?.stop({ removeDir: true });
  await server?.stop({ removeData: true, mode: "immediate" });
});

interface LoadStats {
  ok: number;
  errors: number;
  foreign: number;
  /** Successful results with no rows (every tenant has rows: an empty result would mean a lost context). */
  empty: number;
  okAfter: number;
  messages: Set<string>;
}

/** `workers` loops of tenant queries; after 0.5 s `disrupt` runs, then 1.5 s more of load (successes counted as okAfter). */
async function underLoad(
  pool: TenantPool,
  tenants: Tenant[],
  workers: number,
  disrupt: (stats: LoadStats) => Promise<void>,
): Promise<LoadStats> {
  const stats: LoadStats = { ok: 0, errors: 0, foreign: 0, empty: 0, okAfter: 0, messages: new Set() };
  let running = true;
  let after = false;
  const loops = Array.from({ length: workers }, async (_, w) => {
    const tenant = tenants[w % tenants.length];
    const claims = { tenantId: tenant.id, tier: tenant.tier };
    for (let i = 0; running; i++) {
      try {
        const rows =
          i % 2 === 0
            ? (await tenantQuery(pool, claims, "SELECT tenant_id FROM trades WHERE symbol = ANY($1)", [["AAPL", "MSFT", "BTC-USD"]])).rows
            : await withTenant(pool, claims, async (tx) => {
                const a = await tx.query("SELECT tenant_id FROM trades ORDER BY executed_at DESC LIMIT 5");
                const b = await tx.query("SELECT tenant_id FROM positions");
                return [...a.rows, ...b.rows];
              });
        stats.foreign += foreignRows(rows, tenant.id);
        if (rows.length === 0) stats.empty++;
        stats.ok++;
        if (after) stats.okAfter++;
      } catch (err) {
        stats.errors++;
        stats.messages.add((err as Error).message.slice(0, 80));
        await sleep(20);
      }
    }
  });
  await sleep(500);
  await disrupt(stats);
  after = true;
  await sleep(1500);
  running = false;
  await Promise.all(loops);
  return stats;
}

describe("restarts under load", () => {
  it("PgBouncer restart: clients see errors, reconnect, and never get another tenant's row", async () => {
    const pool = new TenantPool({ connectionString: bouncer.appUrl, max: 8, connectionTimeoutMillis: 2000 });
    try {
      const stats = await underLoad(pool, db.tenants, 8, async (s) => {
        expect(s.ok).toBeGreaterThan(0);
        await bouncer.stop();
        await sleep(300);
        await bouncer.start();
      });
      expect(stats.errors).toBeGreaterThan(0);
      expect(stats.okAfter).toBeGreaterThan(0);
      expect(stats.foreign).toBe(0);
      expect(stats.empty).toBe(0);
    } finally {
      await pool.end();
    }
  });

  it("PostgreSQL restart behind PgBouncer: clients see errors, reconnect, and never get another tenant's row", async () => {
    const pool = new TenantPool({ connectionString: bouncer.appUrl, max: 8, connectionTimeoutMillis: 2000 });
    try {
      const stats = await underLoad(pool, db.tenants, 8, async (s) => {
        expect(s.ok).toBeGreaterThan(0);
        await server.stop({ mode: "fast" });
        await sleep(300);
        await server.start();
      });
      expect(stats.errors).toBeGreaterThan(0);
      expect(stats.okAfter).toBeGreaterThan(0);
      expect(stats.foreign).toBe(0);
      expect(stats.empty).toBe(0);
    } finally {
      await pool.end();
    }
  });
});

describe("a connection that dies while checked out", () => {
  const fixture = path.join(__dirname, "fixtures", "hold-connection.ts");

  async function holdThroughRestart(mode: "naive" | "client"): Promise<{ code: number | null; output: string }> {
    const tenant = db.tenants[1];
    const child = spawn(process.execPath, ["-r", "tsx/cjs", fixture, mode, bouncer.appUrl, tenant.id, tenant.tier], {
      cwd: path.join(__dirname, "..", ".."),
    });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    while (!output.includes("holding")) {
      if (child.exitCode !== null) break;
      await sleep(50);
    }
    await bouncer.stop();
    await bouncer.start();
    return { code: await exited, output };
  }

  it("negative control: a naive checked-out client without an 'error' listener crashes the process", async () => {
    const { code, output } = await holdThroughRestart("naive");
    expect(output).toContain("holding");
    expect(code).not.toBe(0);
    expect(output).toMatch(/Unhandled 'error' event|Connection terminated unexpectedly/);
    expect(output).not.toContain("survived");
  });

  it("the tenant-context client fails that request cleanly and the process survives", async () => {
    const { code, output } = await holdThroughRestart("client");
    expect(output).toContain("holding");
    expect(output).toMatch(/failed cleanly: /);
    expect(output).toContain("survived");
    expect(code).toBe(0);
  });
});
