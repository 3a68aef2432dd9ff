/**
 * Load through PgBouncer (issue 4): 50 concurrent tenants, one worker each, for a fixed time,
 * through PgBouncer and direct to PostgreSQL at equal client counts (one TenantPool of 50
 * connections per path), the two paths alternated round by round (never one long run each: see
 * ../shared/notes/performance.md). Every worker checks every row it receives against its tenant.
 *
 * A worker's requests cycle through: a point lookup (tenantQuery), the latest 10 trades
 * (tenantQuery), and a two-statement withTenant (open positions, then 30-day volume per symbol).
 *
 *   npm run bench:pgbouncer -- --quick     2 rounds × 2 paths × 5 s (about a minute with setup)
 *   npm run bench:pgbouncer                3 rounds × 2 paths × 15 s
 *   flags: --seconds n, --rounds n, --json, --markdown
 * Exit code 1 when any worker saw a row of another tenant.
 */
import pg from "pg";
import { TenantPool } from "../lib/tenant-context/client";
import type { Tenant } from "../lib/tenant/model";
import { positiveIntFlag, startBenchStack } from "./pgbouncer-common";
import { median, prng, summarize } from "./stats";
import { entryPoint, headerComment, runMain, type ParsedValues } from "../cli/runner";

const TENANTS = 50;
const PATHS = ["pgbouncer", "direct"] as const;
type Path = (typeof PATHS)[number];

interface Args {
  seconds: number;
  rounds: number;
  trades: number;
  json: boolean;
  markdown: boolean;
}

const OPTIONS = {
  quick: { type: "boolean", default: false },
  markdown: { type: "boolean", default: false },
  seconds: { type: "string" },
  rounds: { type: "string" },
} as const;

function parse(values: ParsedValues<typeof OPTIONS>): Args {
  return {
    seconds: positiveIntFlag("seconds", values.seconds, values.quick ? 5 : 15),
    rounds: positiveIntFlag("rounds", values.rounds, values.quick ? 2 : 3),
    trades: values.quick ? 500 : 2_000,
    json: values.json,
    markdown: values.markdown,
  };
}

interface Phase {
  path: Path;
  round: number;
  requests: number;
  errors: number;
  foreign: number;
  rows: number;
  seconds: number;
  latenciesMs: number[];
  /** CPU time of this (load-generating) process, user + system, in ms. */
  clientCpuMs: number;
}

type Row = { tenant_id: string };

interface PathSummary {
  requests: number;
  throughput: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  /** CPU of the load generator per request: the same on both paths means the client is not what differs. */
  clientCpuUsPerRequest: number;
  rows: number;
  foreign: number;
}

async function request(pool: TenantPool, tenant: Tenant, ids: string[], n: number, random: () => number): Promise<Row[]> {
  const claims = { tenantId: tenant.id, tier: tenant.tier };
  switch (n % 3) {
    case 0:
      return (
        await pool.tenantQuery<Row>(claims, "SELECT tenant_id, symbol, price FROM trades WHERE id = $1", [
          ids[Math.floor(random() * ids.length)],
        ])
      ).rows;
    case 1:
      return (
        await pool.tenantQuery<Row>(claims, "SELECT tenant_id, symbol, price, executed_at FROM trades ORDER BY executed_at DESC LIMIT 10")
      ).rows;
    default:
      return pool.withTenant(claims, async (tx) => {
        const open = await tx.query<Row>("SELECT tenant_id, symbol, quantity FROM positions WHERE status = 'open'");
        const volume = await tx.query<Row>(
          "SELECT tenant_id, symbol, sum(quantity * price) AS volume FROM trades WHERE executed_at >= now() - interval '30 days' GROUP BY tenant_id, symbol",
        );
        return [...open.rows, ...volume.rows];
      });
  }
}

async function phase(
  pool: TenantPool,
  path: Path,
  round: number,
  tenants: Tenant[],
  ids: Map<string, string[]>,
  seconds: number,
): Promise<Phase> {
  const result: Phase = { path, round, requests: 0, errors: 0, foreign: 0, rows: 0, seconds, latenciesMs: [], clientCpuMs: 0 };
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  const cpu = process.cpuUsage();
  await Promise.all(
    tenants.map(async (tenant, w) => {
      const random = prng(round * 1000 + w);
      for (let n = w; performance.now() < deadline; n++) {
        const t0 = performance.now();
        try {
          const rows = await request(pool, tenant, ids.get(tenant.id)!, n, random);
          result.latenciesMs.push(performance.now() - t0);
          result.requests++;
          result.rows += rows.length;
          result.foreign += rows.filter((r) => r.tenant_id !== tenant.id).length;
        } catch {
          result.errors++;
        }
      }
    }),
  );
  result.seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  result.clientCpuMs = (used.user + used.system) / 1000;
  return result;
}

async function main(args: Args): Promise<number> {
  const log = (m: string) => process.stderr.write(`${m}\n`);
  log(`starting PostgreSQL + PgBouncer, seeding ${TENANTS} tenants…`);
  const stack = await startBenchStack({ tenants: TENANTS, trades: args.trades, log });
  const pools: Record<Path, TenantPool> = {
    pgbouncer: new TenantPool({ connectionString: stack.bouncerAppUrl, max: TENANTS }),
    direct: new TenantPool({ connectionString: stack.directAppUrl, max: TENANTS }),
  };
  try {
    const admin = new pg.Client({ connectionString: stack.directFloorUrl });
    await admin.connect();
    const ids = new Map<string, string[]>();
    for (const t of stack.tenants)
      ids.set(
        t.id,
        (await admin.query("SELECT id FROM shared.trades WHERE tenant_id = $1 ORDER BY id LIMIT 200", [t.id])).rows.map((r) => r.id),
      );
    await admin.end();

    for (const path of PATHS) await phase(pools[path], path, -1, stack.tenants, ids, 1); // warm-up: open all connections
    const phases: Phase[] = [];
    for (let round = 0; round < args.rounds; round++) {
      for (const path of round % 2 === 0 ? PATHS : [...PATHS].reverse()) {
        const p = await phase(pools[path], path, round, stack.tenants, ids, args.seconds);
        phases.push(p);
        log(
          `round ${round + 1}/${args.rounds} ${path}: ${(p.requests / p.seconds).toFixed(0)} req/s, ${p.errors} errors, ${p.foreign} foreign rows`,
        );
      }
    }

    const byPath = Object.fromEntries(
      PATHS.map((path) => {
        const ps = phases.filter((p) => p.path === path);
        const lat = summarize(ps.flatMap((p) => p.latenciesMs));
        return [
          path,
          {
            requests: ps.reduce((s, p) => s + p.requests, 0),
            throughput: ps.reduce((s, p) => s + p.requests, 0) / ps.reduce((s, p) => s + p.seconds, 0),
            p50Ms: lat.p50,
            p99Ms: lat.p99,
            errors: ps.reduce((s, p) => s + p.errors, 0),
            clientCpuUsPerRequest: (ps.reduce((s, p) => s + p.clientCpuMs, 0) * 1000) / ps.reduce((s, p) => s + p.requests, 0),
            rows: ps.reduce((s, p) => s + p.rows, 0),
            foreign: ps.reduce((s, p) => s + p.foreign, 0),
          },
        ];
      }),
    ) as Record<Path, PathSummary>;
    const ratios = Array.from({ length: args.rounds }, (_, r) => {
      const [b, d] = PATHS.map((path) => phases.find((p) => p.round === r && p.path === path)!);
      return { throughput: b.requests / b.seconds / (d.requests / d.seconds), p50: median(b.latenciesMs) / median(d.latenciesMs) };
    });
    const summary = {
      tenants: TENANTS,
      clientsPerPath: TENANTS,
      seconds: args.seconds,
      rounds: args.rounds,
      paths: byPath,
      ratio: {
        throughput: median(ratios.map((r) => r.throughput)),
        throughputRange: [Math.min(...ratios.map((r) => r.throughput)), Math.max(...ratios.map((r) => r.throughput))],
        p50: median(ratios.map((r) => r.p50)),
        p50Range: [Math.min(...ratios.map((r) => r.p50)), Math.max(...ratios.map((r) => r.p50))],
      },
      crossTenantRows: byPath.pgbouncer.foreign + byPath.direct.foreign,
    };

    const f = (n: number, d = 1) => n.toFixed(d);
    if (args.json) process.stdout.write(JSON.stringify(summary, null, 2) + "\n");
    else if (args.markdown) {
      process.stdout.write(
        [
          "| path | requests | req/s | p50 ms | p99 ms | errors | client CPU µs/request | rows checked | cross-tenant rows |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
          ...PATHS.map(
            (p) =>
              `| ${p} | ${byPath[p].requests} | ${f(byPath[p].throughput, 0)} | ${f(byPath[p].p50Ms, 2)} | ${f(byPath[p].p99Ms, 2)} | ${byPath[p].errors} | ${f(byPath[p].clientCpuUsPerRequest, 0)} | ${byPath[p].rows} | ${byPath[p].foreign} |`,
          ),
          `| PgBouncer / direct | | ${f(summary.ratio.throughput, 2)} (${f(summary.ratio.throughputRange[0], 2)}–${f(summary.ratio.throughputRange[1], 2)}) | ${f(summary.ratio.p50, 2)} (${f(summary.ratio.p50Range[0], 2)}–${f(summary.ratio.p50Range[1], 2)}) | | | | | |`,
        ].join("\n") + "\n",
      );
    } else {
      process.stdout.write(
        [
          `${TENANTS} tenants, ${TENANTS} clients per path, ${args.rounds} rounds × ${args.seconds} s per path, alternated`,
          "path        requests    req/s   p50 ms   p99 ms  errors  client µs/req  cross-tenant rows",
          ...PATHS.map(
            (p) =>
              `${p.padEnd(10)} ${String(byPath[p].requests).padStart(9)} ${f(byPath[p].throughput, 0).padStart(8)} ${f(byPath[p].p50Ms, 2).padStart(8)} ${f(byPath[p].p99Ms, 2).padStart(8)} ${String(byPath[p].errors).padStart(7)} ${f(byPath[p].clientCpuUsPerRequest, 0).padStart(13)} ${String(byPath[p].foreign).padStart(18)}`,
          ),
          `PgBouncer / direct: throughput ${f(summary.ratio.throughput, 2)} [${f(summary.ratio.throughputRange[0], 2)}–${f(summary.ratio.throughputRange[1], 2)}], p50 latency ${f(summary.ratio.p50, 2)} [${f(summary.ratio.p50Range[0], 2)}–${f(summary.ratio.p50Range[1], 2)}] (median of per-round ratios)`,
          `cross-tenant rows seen: ${summary.crossTenantRows} (rows checked: ${byPath.pgbouncer.rows + byPath.direct.rows})`,
        ].join("\n") + "\n",
      );
    }
    return summary.crossTenantRows === 0 ? 0 : 1;
  } finally {
    await Promise.all(Object.values(pools).map((p) => p.end().catch(() => {})));
    await stack.stop();
  }
}

runMain(
  entryPoint({
    program: "bench/pgbouncer-load",
    usage: "usage: npm run bench:pgbouncer -- [--quick] [--seconds n] [--rounds n] [--json] [--markdown]",
    help: () => headerComment(__filename),
    options: OPTIONS,
    run: ({ values }) => main(parse(values)),
  }),
);
