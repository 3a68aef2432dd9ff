/**
 * The RLS overhead benchmark (issue 9): what tenant filtering by row-level security costs against
 * the same query with an explicit `tenant_id = $n` and no RLS, measured side by side, interleaved
 * per transaction, on physically identical copies, with an A/A′ control. See bench/rls/*.ts and the
 * RLS section of docs/benchmarks.md.
 *
 *   npm run bench -- --quick            smoke run, well under two minutes
 *   npm run bench                       full run: 60 tenants, 1M trades, 3 repetitions
 *   npm run bench -- --json             machine-readable: per shape, p50 per variant and b/a
 *   npm run bench -- --markdown         the docs table
 *   npm run bench -- --design-sql f.sql measure a candidate design change (run as the owner after migrate)
 *   npm run bench -- --save out.json    also write the --json document to a file
 *
 * Starts its own PostgreSQL unless DATABASE_URL (a superuser URL) is given; either way it creates a
 * fresh database and drops it afterwards (--keep keeps it, and the cluster, for inspection).
 * Exit code: 0, 1 when a variant's rows differed from the floor's or the role posture was wrong,
 * 2 on bad flags. Timing never fails the run: the verdicts are in the report.
 */
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import pg from "pg";
import { startPostgres, type PostgresServer } from "../lib/local/postgres-server";
import { ROLES } from "../lib/schema/roles";
import { ident } from "../lib/db/sql";
import { ResultChecker } from "./rls/compare";
import { buildDataset } from "./rls/dataset";
import { MODES } from "./rls/modes";
import { assertPosture } from "./rls/posture";
import { clusterSettings, estimateBytes } from "./rls/cluster";
import { toJson, renderMarkdown, renderText, unitReport, type Report } from "./rls/report";
import { buildUnits, Runner, type UnitResult } from "./rls/runner";
import { PROTOCOLS, shape, SHAPES, type Protocol } from "./rls/shapes";

import { UsageError } from "../cli/output";
import { entryPoint, headerComment, runMain, type ParsedValues } from "../cli/runner";

export interface BenchConfig {
  tenants: number;
  trades: number;
  reps: number;
  iterations: number;
  warmup: number;
  shapes: string[];
  protocols: Protocol[];
  modes: string[];
  seed: number;
}

export const PRESETS: Record<"quick" | "full", Omit<BenchConfig, "shapes" | "protocols" | "modes" | "seed">> = {
  quick: { tenants: 50, trades: 100_000, reps: 3, iterations: 24, warmup: 6 },
  full: { tenants: 60, trades: 1_000_000, reps: 3, iterations: 240, warmup: 24 },
};

const positiveInt = (flag: string, value: string | undefined, fallback: number): number => {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`must be a positive integer, got "${value}"`, flag);
  return n;
};

const list = <T extends string>(flag: string, value: string | undefined, known: readonly T[]): T[] => {
  if (value === undefined) return [...known];
  const items = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const item of items) if (!known.includes(item as T)) throw new UsageError(`unknown "${item}"; known: ${known.join(", ")}`, flag);
  return items as T[];
};

function readDesignSql(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`, "--design-sql");
  }
}

const OPTIONS = {
  quick: { type: "boolean", default: false },
  markdown: { type: "boolean", default: false },
  keep: { type: "boolean", default: false },
  reps: { type: "string" },
  iterations: { type: "string" },
  warmup: { type: "string" },
  tenants: { type: "string" },
  trades: { type: "string" },
  shapes: { type: "string" },
  protocols: { type: "string" },
  modes: { type: "string" },
  seed: { type: "string" },
  "design-sql": { type: "string" },
  save: { type: "string" },
} as const;

async function run(values: ParsedValues<typeof OPTIONS>, argv: string[]): Promise<number> {
  const preset = PRESETS[values.quick ? "quick" : "full"];
  const config: BenchConfig = {
    tenants: positiveInt("--tenants", values.tenants, preset.tenants),
    trades: positiveInt("--trades", values.trades, preset.trades),
    reps: positiveInt("--reps", values.reps, preset.reps),
    iterations: positiveInt("--iterations", values.iterations, preset.iterations),
    warmup: positiveInt("--warmup", values.warmup, preset.warmup),
    shapes: list(
      "--shapes",
      values.shapes,
      SHAPES.map((s) => s.key),
    ),
    protocols: list("--protocols", values.protocols, PROTOCOLS),
    modes: list(
      "--modes",
      values.modes,
      MODES.map((m) => m.key),
    ),
    seed: positiveInt("--seed", values.seed, 42),
  };
  if (!config.modes.includes("a")) throw new UsageError("the floor (a) is required", "--modes");
  if (config.trades < config.tenants * 100) throw new UsageError(`at least 100 per tenant (${config.tenants * 100})`, "--trades");
  const designSql = values["design-sql"] === undefined ? undefined : readDesignSql(values["design-sql"]);
  const progress = (m: string) => process.stderr.write(`[bench] ${m}\n`);
  const modes = MODES.filter((m) => config.modes.includes(m.key));
  const shapes = config.shapes.map(shape);
  const started = new Date();
  const loadBefore = os.loadavg();

  let server: PostgresServer | undefined;
  let adminUrl = process.env.DATABASE_URL;
  const sharedCopies = modes.filter((m) => m.layout === "shared").length;
  if (!adminUrl) {
    progress("starting PostgreSQL");
    server = await startPostgres({ settings: clusterSettings(estimateBytes(config.trades, sharedCopies)) });
    adminUrl = server.adminUrl;
  }
  const dbName = `rls_bench_${randomBytes(4).toString("hex")}`;
  const urlFor = (user?: string) => {
    const u = new URL(adminUrl);
    u.pathname = `/${dbName}`;
    if (user) {
      u.username = user;
      u.password = "";
    }
    return u.toString();
  };
  const bootstrap = new pg.Client({ connectionString: adminUrl });
  await bootstrap.connect();
  await bootstrap.query(`CREATE DATABASE ${ident(dbName)}`);
  const admin = new pg.Client({ connectionString: urlFor() });
  let app: pg.Client | undefined;
  try {
    await admin.connect();
    const dataset = await buildDataset(admin, { tenants: config.tenants, trades: config.trades, modes, designSql, onProgress: progress });
    const { rows: server_ } = await admin.query(
      `SELECT version() AS version, current_setting('shared_buffers') AS shared_buffers, current_setting('fsync') AS fsync,
              current_setting('synchronous_commit') AS synchronous_commit, current_setting('jit') AS jit,
              current_setting('random_page_cost') AS random_page_cost, current_setting('work_mem') AS work_mem`,
    );

    // The benchmark role: app_user itself on our own cluster; on DATABASE_URL, SET ROLE app_user
    // (the same privileges and RLS; asserted below either way).
    app = new pg.Client({ connectionString: server ? urlFor(ROLES.app) : urlFor() });
    await app.connect();
    if (!server) await app.query(`SET ROLE ${ident(ROLES.app)}`);
    const posture = await assertPosture(app, modes, dataset);

    const checker = new ResultChecker();
    const runner = new Runner(app, dataset, checker);
    const units = buildUnits(shapes, modes, config.protocols);
    const results: UnitResult[] = units.map((unit) => ({ unit, reps: [], plans: [] }));
    for (const [u, unit] of units.entries()) {
      progress(`warm-up ${unit.shape.key}/${unit.protocol}`);
      await runner.warm(unit, config.warmup, config.seed + 1000 + u);
    }
    for (let rep = 0; rep < config.reps; rep++) {
      for (const [u, unit] of units.entries()) {
        const label = `${unit.shape.key}/${unit.protocol}`;
        progress(`rep ${rep + 1}/${config.reps} ${label}`);
        results[u].reps.push(await runner.run(unit, config.iterations, config.seed * 7919 + rep * 101 + u, label));
      }
    }
    progress("plans");
    const median = dataset.tenants[Math.floor(dataset.tenants.length / 2)];
    for (const [u, unit] of units.entries()) {
      if (unit.protocol === "prepared") results[u].planChoices = await runner.planChoices(unit);
      if (unit.protocol === "extended" || unit.shape.planCache) {
        const tenants = unit.shape.tenants === "largest" ? [dataset.largest] : [dataset.largest, median];
        for (const t of tenants) results[u].plans.push(await runner.explain(unit, t, config.seed + u));
      }
    }

    const report: Report = {
      meta: {
        command: `npm run bench --${argv.length ? " " + argv.join(" ") : ""}`,
        date: started.toISOString(),
        durationSeconds: Math.round((Date.now() - started.getTime()) / 1000),
        config,
        designSql: values["design-sql"] ?? null,
        server: server_[0],
        cluster: server ? "own (started by the benchmark)" : "DATABASE_URL",
        machine: {
          cpu: os.cpus()[0]?.model,
          cores: os.cpus().length,
          memoryGiB: Math.round(os.totalmem() / 2 ** 30),
          loadBefore,
          loadAfter: os.loadavg(),
        },
        dataset: {
          tenants: dataset.tenants.length,
          trades: config.trades,
          largest: { slug: dataset.largest.slug, trades: dataset.largest.trades },
          smallest: dataset.tenants[dataset.tenants.length - 1].trades,
          bytes: dataset.bytes,
          prewarmed: dataset.prewarmed,
        },
        posture,
        modes: Object.fromEntries(modes.map((m) => [m.key, m.description])),
      },
      units: results.map(unitReport),
      mismatches: checker.count,
      compared: checker.compared,
    };
    if (values.save) writeFileSync(values.save, JSON.stringify(toJson(report), null, 2) + "\n");
    if (values.json) process.stdout.write(JSON.stringify(toJson(report), null, 2) + "\n");
    else if (values.markdown) process.stdout.write(renderMarkdown(report) + "\n");
    else process.stdout.write(renderText(report) + "\n");
    if (checker.count) {
      process.stderr.write(
        `[bench] ${checker.count} result(s) differed from the floor's:\n${JSON.stringify(checker.mismatches, null, 2)}\n`,
      );
      return 1;
    }
    return 0;
  } finally {
    await app?.end().catch(() => {});
    await admin.end().catch(() => {});
    if (!values.keep) await bootstrap.query(`DROP DATABASE IF EXISTS ${ident(dbName)} WITH (FORCE)`).catch(() => {});
    await bootstrap.end().catch(() => {});
    if (server && !values.keep) await server.stop({ removeData: true });
    else if (server) progress(`kept: ${urlFor()} (data ${server.dataDir})`);
  }
}

/** `main(argv)`: the benchmark's exit code, never exiting (parsing, --help, errors: cli/runner.ts). */
export const main = entryPoint({
  program: "bench",
  usage:
    "usage: npm run bench -- [--quick] [--json | --markdown] [--reps n] [--tenants n] [--trades n] [--shapes a,b] [--modes a,b] [--design-sql f.sql] [--save out.json] [--keep]",
  help: () => headerComment(__filename),
  options: OPTIONS,
  run: ({ values, argv }) => run(values, argv),
});

if (require.main === module) runMain(main);
