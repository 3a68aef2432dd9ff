/**
 * How `migrate` grows with dedicated schemas (issue 6): 10, 100 and 1,000 tenant schemas plus the
 * shared one, (a) with nothing to do and (b) with one new column in the catalogue (an extended
 * catalogue passed as `tables`, as a release that adds a column would). Goals: 1,000 schemas with
 * nothing to do < 10 s, with one new column < 60 s (schema-per-tenant frameworks report 12 minutes
 * for ~900 schemas with nothing to do).
 *
 * Starts its own cluster, sized by lib/enterprise/schema-capacity.ts for the largest count (max_connections
 * 100, a recorded 64 GiB machine → cap 3,226, max_locks_per_transaction derived from it), and
 * provisions the schemas through the real path (provisionDedicatedSchema, cap enforced).
 *
 *   npx tsx bench/dedicated-migrate.ts                 10, 100, 1000
 *   npx tsx bench/dedicated-migrate.ts --counts 10,100 --reps 3 --json
 */
import path from "node:path";
import { rmSync } from "node:fs";
import pg from "pg";
import { TENANT_TABLES, type TenantTable } from "../lib/schema/catalogue";
import { unsafeSql } from "../lib/db/sql";
import { provisionDedicatedSchema } from "../lib/enterprise/dedicated";
import { startPostgres, THROWAWAY_SETTINGS } from "../lib/local/postgres-server";
import { serviceDirectory } from "../lib/local/processes";
import { migrate } from "../lib/schema/migrate";
import { schemaCapacitySettings } from "../lib/enterprise/schema-capacity";
import { createTenant } from "../lib/tenant/registry";
import { median } from "./stats";
import { parseInteger } from "../cli/args";
import { entryPoint, headerComment, runMain } from "../cli/runner";

const log = (m: string) => process.stderr.write(m + "\n");

/** The catalogue plus one nullable column on trades: what a release adding a column looks like. */
const EXTENDED: TenantTable[] = TENANT_TABLES.map((t) =>
  t.name === "trades" ? { ...t, columns: [...t.columns, { name: "bench_note", type: unsafeSql("text"), nullable: true }] } : t,
);

async function main({ counts, reps, json }: { counts: number[]; reps: number; json: boolean }) {
  const capacity = schemaCapacitySettings({ memoryMiB: 65_536, maxConnections: 100 });
  const root = serviceDirectory("alphapulse-bench-migrate");
  const server = await startPostgres({
    dataDir: path.join(root, "data"),
    settings: { ...THROWAWAY_SETTINGS, max_connections: 100, ...capacity },
  });
  const results: {
    schemas: number;
    provisionMsPerSchema: number;
    nothingToDoMs: number;
    nothingToDoRuns: number[];
    newColumnMs: number;
    statements: number;
  }[] = [];
  try {
    for (const n of counts) {
      const db = `bench_${n}`;
      const admin = new pg.Client({ connectionString: server.adminUrl });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${db}`);
      await admin.end();
      const client = new pg.Client({ connectionString: server.urlFor(db) });
      await client.connect();
      await migrate(client, { region: "eu" });

      log(`[${n}] provisioning ${n} dedicated schemas`);
      const provisionStarted = Date.now();
      for (let i = 0; i < n; i++) {
        const tenant = await createTenant(client, { slug: `tenant-${String(i).padStart(5, "0")}`, tier: "enterprise", region: "eu" });
        await provisionDedicatedSchema(client, tenant);
        if ((i + 1) % 100 === 0) log(`[${n}] ${i + 1} provisioned`);
      }
      const provisionMsPerSchema = (Date.now() - provisionStarted) / n;

      const runs: number[] = [];
      for (let r = 0; r < reps; r++) {
        const started = performance.now();
        const report = await migrate(client);
        runs.push(performance.now() - started);
        if (!report.unchanged) throw new Error(`migrate changed something on a migrated database: ${JSON.stringify(report).slice(0, 300)}`);
        if (report.schemasChecked !== n + 1) throw new Error(`checked ${report.schemasChecked} schemas, expected ${n + 1}`);
      }
      log(`[${n}] nothing to do: ${runs.map((r) => r.toFixed(0)).join(", ")} ms`);

      const started = performance.now();
      const report = await migrate(client, { tables: EXTENDED });
      const newColumnMs = performance.now() - started;
      const statements = report.catalogue.reduce((k, c) => k + c.statements.length, 0);
      if (report.catalogue.length !== n + 1)
        throw new Error(`the new column reached ${report.catalogue.length} schemas, expected ${n + 1}`);
      log(`[${n}] one new column: ${newColumnMs.toFixed(0)} ms (${statements} statements)`);
      results.push({ schemas: n, provisionMsPerSchema, nothingToDoMs: median(runs), nothingToDoRuns: runs, newColumnMs, statements });
      await client.end();
      const drop = new pg.Client({ connectionString: server.adminUrl });
      await drop.connect();
      await drop.query(`DROP DATABASE ${db} WITH (FORCE)`);
      await drop.end();
    }
  } finally {
    await server.stop({ mode: "immediate" });
    rmSync(root, { recursive: true, force: true });
  }
  if (json) {
    process.stdout.write(JSON.stringify({ settings: capacity, results }, null, 2) + "\n");
    return;
  }
  const rows = results.map(
    (r) =>
      `| ${r.schemas} + shared | ${r.provisionMsPerSchema.toFixed(1)} | ${r.nothingToDoMs.toFixed(0)} (${r.nothingToDoRuns.map((x) => x.toFixed(0)).join(", ")}) | ${r.newColumnMs.toFixed(0)} | ${r.statements} |`,
  );
  process.stdout.write(
    [
      `max_connections 100, max_locks_per_transaction ${capacity.max_locks_per_transaction} (derived), ${reps} nothing-to-do runs each`,
      "",
      "| dedicated schemas | provision ms/schema | migrate, nothing to do: median ms (runs) | migrate, one new column ms | statements |",
      "| --- | --- | --- | --- | --- |",
      ...rows,
      "",
    ].join("\n"),
  );
}

runMain(
  entryPoint({
    program: "bench/dedicated-migrate",
    usage: "usage: npx tsx bench/dedicated-migrate.ts [--counts 10,100,1000] [--reps 3] [--json]",
    help: () => headerComment(__filename),
    options: { counts: { type: "string", default: "10,100,1000" }, reps: { type: "string", default: "3" } },
    async run({ values }) {
      const counts = values.counts.split(",").map((n) => parseInteger(n.trim(), "--counts", 1, 100_000));
      await main({ counts, reps: parseInteger(values.reps, "--reps", 1, 1000), json: values.json });
    },
  }),
);
