/**
 * Graduation and demotion of a large tenant (issue 6): rows per second, how long the tenant's
 * writes were held (the cutover: gate, sync of what changed since the prefill, verification, flip),
 * and what writers saw meanwhile. While the move runs, two writers insert a trade every 20 ms
 * through enter_tenant(), as services do: one for the moving tenant, one for another tenant.
 * Their worst latencies show who waited (the moving tenant, at most about the hold) and who did
 * not (the other tenant).
 *
 * Starts its own cluster. Seeds with lib/tenant/seed.ts (1M trades ≈ 1.09M rows across the 5 tables).
 *
 *   npx tsx bench/graduation.ts                  1,000,000 trades
 *   npx tsx bench/graduation.ts --trades 100000 --json
 */
import path from "node:path";
import { rmSync } from "node:fs";
import pg from "pg";
import { demoteTenant, graduateTenant, type MoveResult } from "../lib/enterprise/graduation";
import { startPostgres, THROWAWAY_SETTINGS } from "../lib/local/postgres-server";
import { serviceDirectory } from "../lib/local/processes";
import { migrate } from "../lib/schema/migrate";
import { ROLES } from "../lib/schema/roles";
import { schemaCapacitySettings } from "../lib/enterprise/schema-capacity";
import { seedTenant } from "../lib/tenant/seed";
import { createTenant } from "../lib/tenant/registry";
import { parseInteger } from "../cli/args";
import { entryPoint, headerComment, runMain } from "../cli/runner";

const log = (m: string) => process.stderr.write(m + "\n");

interface WriterStats {
  writes: number;
  failures: number;
  maxMs: number;
  p50Ms: number;
  p99Ms: number;
}

/** Inserts a trade for `tenantId` every `everyMs` until stopped, timing each transaction. */
function startWriter(url: string, tenantId: string, everyMs = 20) {
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => {});
  const latencies: number[] = [];
  let failures = 0;
  let stop = false;
  const done = (async () => {
    await client.connect();
    while (!stop) {
      const started = performance.now();
      try {
        await client.query("BEGIN");
        await client.query(`SELECT tenancy.enter_tenant($1)`, [tenantId]);
        await client.query(`INSERT INTO trades (tenant_id, symbol, side, quantity, price) VALUES ($1, 'BENCH', 'buy', 1, 1)`, [tenantId]);
        await client.query("COMMIT");
        latencies.push(performance.now() - started);
      } catch {
        failures++;
        await client.query("ROLLBACK").catch(() => {});
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
    await client.end();
  })();
  return {
    async stop(): Promise<WriterStats> {
      stop = true;
      await done;
      const sorted = [...latencies].sort((a, b) => a - b);
      const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
      return { writes: latencies.length, failures, maxMs: sorted[sorted.length - 1] ?? 0, p50Ms: at(0.5), p99Ms: at(0.99) };
    },
  };
}

async function measured(name: string, url: string, movingId: string, otherId: string, fn: () => Promise<MoveResult>) {
  const moving = startWriter(url, movingId);
  const other = startWriter(url, otherId);
  await new Promise((r) => setTimeout(r, 300));
  const result = await fn();
  await new Promise((r) => setTimeout(r, 300));
  const stats = { moving: await moving.stop(), other: await other.stop() };
  log(
    `${name}: ${result.rowsMoved} rows in ${result.durationMs} ms (${result.rowsPerSecond} rows/s), writes held ${Math.round(result.writesHeldMs)} ms`,
  );
  log(`  steps: ${result.steps.map((s) => `${s.step} ${s.ms} ms`).join(", ")}`);
  log(
    `  moving tenant's writer: max ${stats.moving.maxMs.toFixed(0)} ms, p99 ${stats.moving.p99Ms.toFixed(1)} ms, ${stats.moving.writes} writes, ${stats.moving.failures} failed`,
  );
  log(
    `  other tenant's writer:  max ${stats.other.maxMs.toFixed(0)} ms, p99 ${stats.other.p99Ms.toFixed(1)} ms, ${stats.other.writes} writes, ${stats.other.failures} failed`,
  );
  return { name, result: { ...result, verification: undefined }, writers: stats };
}

async function main({ trades, json }: { trades: number; json: boolean }) {
  const root = serviceDirectory("alphapulse-bench-graduation");
  const server = await startPostgres({
    dataDir: path.join(root, "data"),
    settings: {
      ...THROWAWAY_SETTINGS,
      max_connections: 100,
      shared_buffers: "512MB",
      max_wal_size: "4GB",
      ...schemaCapacitySettings({ memoryMiB: 16_384, maxConnections: 100 }),
    },
  });
  try {
    const admin = new pg.Client({ connectionString: server.adminUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE bench`);
    await admin.end();
    const client = new pg.Client({ connectionString: server.urlFor("bench") });
    await client.connect();
    await migrate(client, { region: "eu", tenantContext: "setting" });
    const big = await createTenant(client, { slug: "big-enterprise", tier: "enterprise", region: "eu" });
    const other = await createTenant(client, { slug: "neighbour", tier: "pro", region: "eu" });
    log(`seeding ${trades} trades`);
    const seeded = Date.now();
    const seed = await seedTenant(client, big, { trades });
    await seedTenant(client, other, { trades: 1000 });
    await client.query("VACUUM ANALYZE");
    log(`seeded in ${Date.now() - seeded} ms: ${JSON.stringify(seed.rows)}`);

    const appUrl = new URL(server.urlFor("bench"));
    appUrl.username = ROLES.app;
    const runs = [
      await measured("graduate", appUrl.toString(), big.id, other.id, () => graduateTenant(client, big.slug)),
      await measured("demote", appUrl.toString(), big.id, other.id, () => demoteTenant(client, big.slug)),
    ];
    await client.end();
    if (json) process.stdout.write(JSON.stringify({ trades, seed: seed.rows, runs }, null, 2) + "\n");
    else {
      process.stdout.write(
        [
          `${trades} trades (${Object.values(seed.rows).reduce((a, b) => a + b, 0)} rows seeded), writers insert every 20 ms during the move`,
          "",
          "| move | rows | total s | rows/s | writes held ms | steps ms | moving tenant's writes: max / p99 ms | other tenant's writes: max / p99 ms |",
          "| --- | --- | --- | --- | --- | --- | --- | --- |",
          ...runs.map(
            (r) =>
              `| ${r.name} | ${r.result.rowsMoved} | ${(r.result.durationMs / 1000).toFixed(1)} | ${r.result.rowsPerSecond} | ${Math.round(r.result.writesHeldMs)} | ${r.result.steps.map((s) => `${s.step} ${s.ms}`).join(", ")} | ${r.writers.moving.maxMs.toFixed(0)} / ${r.writers.moving.p99Ms.toFixed(0)} | ${r.writers.other.maxMs.toFixed(0)} / ${r.writers.other.p99Ms.toFixed(0)} |`,
          ),
          "",
        ].join("\n"),
      );
    }
  } finally {
    await server.stop({ mode: "immediate" });
    rmSync(root, { recursive: true, force: true });
  }
}

runMain(
  entryPoint({
    program: "bench/graduation",
    usage: "usage: npx tsx bench/graduation.ts [--trades 1000000] [--json]",
    help: () => headerComment(__filename),
    options: { trades: { type: "string", default: "1000000" } },
    async run({ values }) {
      await main({ trades: parseInteger(values.trades, "--trades", 1, 100_000_000), json: values.json });
    },
  }),
);
