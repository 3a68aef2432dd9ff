/**
 * What the cache quota costs and how precise it is (issue 5), on a throwaway redis-server:
 *
 *  1. write cost: a quota-checked write (FCALL tenancy_set) against a plain SET by the same tenant
 *     user, interleaved per iteration, with an A/A′ control (two identical plain-SET variants);
 *     sequential round trips, and pipelined batches.
 *  2. precision: accounted bytes per key against the server's used_memory growth per key, by value
 *     size, with and without TTL.
 *  3. isolation under a burst: B's write+read latency while A is idle, while A bursts into its quota
 *     (refused writes), and while A bursts raw SETs with no quota (the noisy neighbour).
 *  4. audit cost: time to audit a tenant of N keys, and the longest single blocking call.
 *
 *   npx tsx bench/redis-quota.ts [--quick] [--json] [--markdown]
 *
 * Timing never fails the run. Exit 2 on bad flags.
 */
import { fork } from "node:child_process";
import path from "node:path";
import type Redis from "ioredis";
import { quotaKeys, tenantKey } from "../lib/redis/keys";
import { auditTenantCache, purgeTenantCache, quotaSet, readTenantUsage } from "../lib/redis/quota";
import { benchServer, benchTenantId, fmt, fmtRatio, interleaved, markdownTable, msSince, nowNs, type BenchServer } from "./redis-common";
import { median, spread, summarize } from "./stats";
import { entryPoint, headerComment, runMain, type ParsedValues } from "../cli/runner";

const A = benchTenantId(0xa);
const B = benchTenantId(0xb);

interface Config {
  reps: number;
  iterations: number;
  pipelineBatches: number;
  precisionKeys: number;
  /** How long B measures in each phase, ms. */
  burstMs: number;
  auditSizes: number[];
}
const PRESETS: Record<"quick" | "full", Config> = {
  quick: { reps: 3, iterations: 1500, pipelineBatches: 60, precisionKeys: 5000, burstMs: 1500, auditSizes: [10_000] },
  full: { reps: 5, iterations: 5000, pipelineBatches: 200, precisionKeys: 20_000, burstMs: 3000, auditSizes: [10_000, 100_000] },
};

const VALUE = "v".repeat(100);
const KEYSPACE = 1000;

async function writeCost(bench: BenchServer, cfg: Config) {
  const a = await bench.tenant(A);
  const conn = await a.connect();
  const key = (variant: string, i: number) => tenantKey(A, variant, String(i % KEYSPACE));
  const variants = {
    set: (i: number) => conn.set(key("set", i), VALUE),
    "set′": (i: number) => conn.set(key("set2", i), VALUE),
    "quota set": (i: number) => quotaSet(conn, A, key("quota", i), VALUE),
    "set px": (i: number) => conn.set(key("setpx", i), VALUE, "PX", 600_000),
    "quota set ttl": (i: number) => quotaSet(conn, A, key("quotattl", i), VALUE, 600_000),
  };
  type V = keyof typeof variants;
  const names = Object.keys(variants) as V[];
  // Warm-up fills every key space (steady state: overwrites).
  await interleaved(variants, KEYSPACE);
  const perRep: Record<V, number>[] = [];
  for (let r = 0; r < cfg.reps; r++) {
    const samples = await interleaved(variants, cfg.iterations, r + 1);
    perRep.push(Object.fromEntries(names.map((n) => [n, median(samples[n])])) as Record<V, number>);
  }
  const pipelinedPerRep: Record<V, number>[] = [];
  for (let r = 0; r < cfg.reps; r++) {
    const times = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<V, number[]>;
    for (let b = 0; b < cfg.pipelineBatches; b++) {
      for (let j = 0; j < names.length; j++) {
        const name = names[(b + j) % names.length];
        const start = nowNs();
        await Promise.all(Array.from({ length: 100 }, (_, i) => variants[name](b * 100 + i)));
        times[name].push(msSince(start) / 100);
      }
    }
    pipelinedPerRep.push(Object.fromEntries(names.map((n) => [n, median(times[n])])) as Record<V, number>);
  }
  const row = (n: V, reps: Record<V, number>[], base: V) => ({
    variant: n,
    p50Ms: median(reps.map((r) => r[n])),
    ratio: spread(reps.map((r) => r[n] / r[base])),
  });
  return {
    sequential: names.map((n) => row(n, perRep, n.endsWith("ttl") || n === "set px" ? "set px" : "set")),
    pipelined: names.map((n) => row(n, pipelinedPerRep, n.endsWith("ttl") || n === "set px" ? "set px" : "set")),
  };
}

async function precision(bench: BenchServer, cfg: Config) {
  const rows: { valueBytes: number; ttl: boolean; actualPerKey: number; accountedPerKey: number; ratio: number }[] = [];
  const q = quotaKeys(A);
  for (const valueBytes of [10, 100, 1000, 10_000]) {
    for (const ttl of [false, true]) {
      await purgeTenantCache(bench.admin, A);
      await bench.admin.call("HSET", q.limit, "bytes", 1e12, "keys", 1e9);
      await new Promise((r) => setTimeout(r, 100));
      const before = await bench.usedMemory();
      const value = "v".repeat(valueBytes);
      for (let i = 0; i < cfg.precisionKeys; i += 500) {
        const p = bench.admin.pipeline();
        for (let j = i; j < Math.min(i + 500, cfg.precisionKeys); j++) {
          p.call(
            "FCALL",
            "tenancy_set",
            4,
            q.used,
            q.sizes,
            q.expiry,
            tenantKey(A, "p", String(j).padStart(7, "0")),
            value,
            ttl ? 600_000 : 0,
          );
        }
        await p.exec();
      }
      const actualPerKey = ((await bench.usedMemory()) - before) / cfg.precisionKeys;
      const accountedPerKey = (await readTenantUsage(bench.admin, A)).bytes / cfg.precisionKeys;
      rows.push({ valueBytes, ttl, actualPerKey, accountedPerKey, ratio: accountedPerKey / actualPerKey });
    }
  }
  await purgeTenantCache(bench.admin, A);
  return rows;
}

/** B's set+get latency samples while `load` runs. */
async function bLatency(
  b: Redis,
  durationMs: number,
  load: () => { started: Promise<void>; stop: () => Promise<{ attempted: number; refused: number }> },
) {
  const running = load();
  await running.started;
  await new Promise((r) => setTimeout(r, 300)); // A's connections up and writing
  const samples: number[] = [];
  let failures = 0;
  const until = Date.now() + durationMs;
  for (let i = 0; Date.now() < until; i++) {
    const start = nowNs();
    try {
      await quotaSet(b, B, tenantKey(B, "steady", String(i % 100)), VALUE);
      await b.get(tenantKey(B, "steady", String(i % 100)));
    } catch {
      failures++;
    }
    samples.push(msSince(start));
  }
  const aStats = await running.stop();
  const latency = summarize(samples);
  return {
    p50: latency.p50,
    p99: latency.p99,
    failures,
    ops: samples.length,
    ...aStats,
    aPerSecond: aStats.attempted / ((durationMs + 300) / 1000),
  };
}

/** A's load in a child process (bench/redis-load.ts), so it does not share the measuring event loop. */
function aLoad(url: string, user: string, password: string, mode: "quota" | "raw" | "helper", ratePerSecond: number, connections = 4) {
  return () => {
    const child = fork(path.join(__dirname, "redis-load.ts"), [url, user, password, A, mode, String(ratePerSecond), String(connections)], {
      execArgv: ["--import", "tsx"],
    });
    const started = new Promise<void>((resolve) => child.once("message", () => resolve()));
    const result = new Promise<{ attempted: number; refused: number }>((resolve, reject) => {
      child.on("message", (m) => typeof m === "object" && resolve(m as { attempted: number; refused: number }));
      child.once("exit", (code) => reject(new Error(`load process exited with ${code}`)));
    });
    return {
      started,
      stop: async () => {
        child.send("stop");
        return result;
      },
    };
  };
}

async function burstIsolation(bench: BenchServer, cfg: Config) {
  const a = await bench.tenant(A, { maxBytes: 2_000_000, maxKeys: 1e9 });
  const bt = await bench.tenant(B, { maxBytes: 1e9, maxKeys: 1e9 });
  const aConn = await a.connect();
  const b = await bt.connect();
  const value = "x".repeat(1000);
  // A starts full: its quota writes in the phases below are refusals.
  for (let i = 0; ; i++) {
    try {
      await quotaSet(aConn, A, tenantKey(A, "fill", String(i)), value);
    } catch {
      break;
    }
  }
  const load = (mode: "quota" | "raw" | "helper", rate: number) => aLoad(bench.url, `tenant_${A}`, a.password, mode, rate);
  const phases = {
    idle: () => ({ started: Promise.resolve(), stop: () => Promise.resolve({ attempted: 0, refused: 0 }) }),
    "A: 5k writes/s into its full quota": load("quota", 5000),
    "A: 5k raw SETs/s (no quota)": load("raw", 5000),
    "A: saturating, into its full quota": load("quota", 0),
    "A: saturating, raw SETs (no quota)": load("raw", 0),
    "A: saturating, through withTenantCache (50 ms back-off)": load("helper", 0),
  };
  type P = keyof typeof phases;
  const results: Record<
    P,
    { p50: number[]; p99: number[]; aPerSecond: number[]; failures: number; ops: number; refused: number; attempted: number }
  > = Object.fromEntries(
    Object.keys(phases).map((p) => [p, { p50: [], p99: [], aPerSecond: [], failures: 0, ops: 0, refused: 0, attempted: 0 }]),
  ) as never;
  for (let r = 0; r < cfg.reps; r++) {
    for (const phase of Object.keys(phases) as P[]) {
      const res = await bLatency(b, cfg.burstMs, phases[phase]);
      results[phase].p50.push(res.p50);
      results[phase].p99.push(res.p99);
      results[phase].aPerSecond.push(res.aPerSecond);
      results[phase].failures += res.failures;
      results[phase].ops += res.ops;
      results[phase].attempted += res.attempted;
      results[phase].refused += res.refused;
    }
  }
  await purgeTenantCache(bench.admin, A);
  await purgeTenantCache(bench.admin, B);
  const idleP50 = median(results.idle.p50);
  const idleP99 = median(results.idle.p99);
  return (Object.keys(phases) as P[]).map((phase) => ({
    phase,
    bP50Ms: median(results[phase].p50),
    bP99Ms: median(results[phase].p99),
    p50VsIdle: median(results[phase].p50) / idleP50,
    p99VsIdle: median(results[phase].p99) / idleP99,
    bOps: results[phase].ops,
    bFailures: results[phase].failures,
    aWritesPerSecond: median(results[phase].aPerSecond),
    aRefusedShare: results[phase].attempted > 0 ? results[phase].refused / results[phase].attempted : 0,
  }));
}

async function auditCost(bench: BenchServer, cfg: Config) {
  const rows: { keys: number; auditMs: number; perThousandKeysMs: number; recountMs: number; reconcileBatchMs: number }[] = [];
  const q = quotaKeys(A);
  for (const n of cfg.auditSizes) {
    await purgeTenantCache(bench.admin, A);
    await bench.admin.call("HSET", q.limit, "bytes", 1e12, "keys", 1e9);
    for (let i = 0; i < n; i += 1000) {
      const p = bench.admin.pipeline();
      for (let j = i; j < Math.min(i + 1000, n); j++)
        p.call("FCALL", "tenancy_set", 4, q.used, q.sizes, q.expiry, tenantKey(A, "a", String(j)), VALUE, 0);
      await p.exec();
    }
    const audit = await auditTenantCache(bench.admin, A);
    let start = nowNs();
    await bench.admin.call("FCALL", "tenancy_recount", 3, q.used, q.sizes, q.expiry);
    const recountMs = msSince(start);
    const batch = Array.from({ length: 500 }, (_, j) => tenantKey(A, "a", String(j)));
    start = nowNs();
    await bench.admin.call("FCALL", "tenancy_reconcile", 3 + batch.length, q.used, q.sizes, q.expiry, ...batch);
    rows.push({
      keys: n,
      auditMs: audit.durationMs,
      perThousandKeysMs: (audit.durationMs / n) * 1000,
      recountMs,
      reconcileBatchMs: msSince(start),
    });
  }
  await purgeTenantCache(bench.admin, A);
  return rows;
}

const OPTIONS = {
  quick: { type: "boolean", default: false },
  markdown: { type: "boolean", default: false },
} as const;

async function main(flags: ParsedValues<typeof OPTIONS>): Promise<number> {
  const cfg = PRESETS[flags.quick ? "quick" : "full"];
  const progress = (m: string) => process.stderr.write(`${m}\n`);
  const bench = await benchServer();
  try {
    progress("write cost…");
    const cost = await writeCost(bench, cfg);
    progress("precision…");
    const prec = await precision(bench, cfg);
    progress("burst isolation…");
    const burst = await burstIsolation(bench, cfg);
    progress("audit cost…");
    const audit = await auditCost(bench, cfg);
    const report = {
      redis: ((await bench.admin.call("INFO", "server")) as string).match(/redis_version:(\S+)/)?.[1],
      config: cfg,
      cost,
      precision: prec,
      burst,
      audit,
    };
    if (flags.json) {
      process.stdout.write(JSON.stringify(report, null, 2) + "\n");
      return 0;
    }
    const md = [
      `Redis ${report.redis}, ${cfg.reps} repetitions, value 100 B, tenant user over loopback.`,
      "",
      "Write cost (median latency per write; ratio vs plain SET (SET PX for TTL variants), median and range of per-repetition ratios):",
      "",
      markdownTable(
        ["variant", "sequential p50 ms", "sequential ratio", "pipelined ms/op", "pipelined ratio"],
        cost.sequential.map((s, i) => [
          s.variant,
          fmt(s.p50Ms, 3),
          fmtRatio(s.ratio),
          fmt(cost.pipelined[i].p50Ms, 4),
          fmtRatio(cost.pipelined[i].ratio),
        ]),
      ),
      "",
      `Precision (${cfg.precisionKeys} keys of 56-byte names; accounted bytes vs used_memory growth):`,
      "",
      markdownTable(
        ["value bytes", "TTL", "used_memory / key", "accounted / key", "accounted / actual"],
        prec.map((p) => [p.valueBytes, p.ttl ? "yes" : "no", fmt(p.actualPerKey, 1), fmt(p.accountedPerKey, 1), fmt(p.ratio, 3)]),
      ),
      "",
      `B's quota-checked write + read while A, in another process, writes 1 kB values over 4 connections (batches of 50 in flight; A is already at its 2 MB quota, so its quota writes are refusals; B measures ${cfg.burstMs} ms per phase; medians over repetitions):`,
      "",
      markdownTable(
        ["phase", "B p50 ms", "B p99 ms", "p50 vs idle", "p99 vs idle", "B ops (failed)", "A writes/s attempted", "A refused"],
        burst.map((b) => [
          b.phase,
          fmt(b.bP50Ms, 3),
          fmt(b.bP99Ms, 3),
          fmt(b.p50VsIdle),
          fmt(b.p99VsIdle),
          `${b.bOps} (${b.bFailures})`,
          fmt(b.aWritesPerSecond, 0),
          `${fmt(100 * b.aRefusedShare, 0)}%`,
        ]),
      ),
      "",
      "Audit cost (admin connection; the server is blocked only during one call at a time):",
      "",
      markdownTable(
        ["tenant keys", "audit ms", "ms per 1k keys", "recount call ms", "reconcile call (500 keys) ms"],
        audit.map((a) => [a.keys, fmt(a.auditMs, 0), fmt(a.perThousandKeysMs, 1), fmt(a.recountMs, 1), fmt(a.reconcileBatchMs, 1)]),
      ),
    ].join("\n");
    process.stdout.write(md + "\n");
    return 0;
  } finally {
    await bench.close();
  }
}

runMain(
  entryPoint({
    program: "bench/redis-quota",
    usage: "usage: npx tsx bench/redis-quota.ts [--quick] [--json] [--markdown]",
    help: () => headerComment(__filename),
    options: OPTIONS,
    run: ({ values }) => main(values),
  }),
);
