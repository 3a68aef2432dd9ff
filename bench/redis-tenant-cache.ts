/**
 * What per-tenant Redis users cost the application (issue 5): one GET per request through
 * `withTenantCache` in each connection mode, against a single shared user (`~tenant:*`, the setup
 * without per-tenant ACLs), interleaved per iteration in one run, with an A/A′ control.
 *
 *  - shared user / shared user′: one connection as the shared user (A/A′: two identical connections)
 *  - shared user, a connection per tenant: the shared user over one connection per tenant (control:
 *    separates the cost of more sockets from the cost of per-tenant users)
 *  - tenant user, direct: a raw connection as the tenant's user (no wrapper)
 *  - connection per tenant: withTenantCache, warm connections (one per tenant)
 *  - auth per request: withTenantCache, shared pool; AUTH pipelined with the GET, log-out after
 *  - connection per request: open, AUTH, GET, close (what no pooling costs)
 *
 * Sequential latency (one request at a time, tenants rotating) and concurrent throughput
 * (`--concurrency` requests in flight, random tenants).
 *
 *   npx tsx bench/redis-tenant-cache.ts [--quick] [--json] [--markdown]
 */
import type Redis from "ioredis";
import { openRedis } from "../lib/redis/client";
import { tenantKey } from "../lib/redis/keys";
import { createTenantCachePool, withTenantCache } from "../lib/redis/tenant-cache";
import { sha256Hex } from "../lib/redis/tenant-users";
import { benchServer, benchTenantId, fmt, fmtRatio, interleaved, markdownTable, msSince, nowNs } from "./redis-common";
import { median, prng, spread } from "./stats";
import { entryPoint, headerComment, runMain, type ParsedValues } from "../cli/runner";

interface Config {
  tenants: number;
  reps: number;
  iterations: number;
  concurrency: number;
  concurrentRequests: number;
}
const PRESETS: Record<"quick" | "full", Config> = {
  quick: { tenants: 20, reps: 3, iterations: 600, concurrency: 16, concurrentRequests: 2000 },
  full: { tenants: 50, reps: 5, iterations: 3000, concurrency: 16, concurrentRequests: 10_000 },
};

const OPTIONS = {
  quick: { type: "boolean", default: false },
  markdown: { type: "boolean", default: false },
} as const;

async function main(flags: ParsedValues<typeof OPTIONS>): Promise<number> {
  const cfg = PRESETS[flags.quick ? "quick" : "full"];
  const bench = await benchServer();
  const pools: { close(): Promise<void> }[] = [];
  try {
    const tenants = Array.from({ length: cfg.tenants }, (_, i) => benchTenantId(i + 1));
    const passwords = new Map<string, string>();
    const direct = new Map<string, Redis>();
    for (const id of tenants) {
      const t = await bench.tenant(id);
      passwords.set(id, t.password);
      direct.set(id, await t.connect());
      await bench.admin.set(tenantKey(id, "quote"), "q".repeat(100));
    }
    const credentials = (id: string) => ({ username: `tenant_${id}`, password: passwords.get(id)! });
    const SHARED_PASSWORD = "shared-user-password-0123456789";
    await bench.admin.call(
      "ACL",
      "SETUSER",
      "cache_shared",
      "reset",
      "on",
      `#${sha256Hex(SHARED_PASSWORD)}`,
      "~tenant:*",
      "-@all",
      "+get",
      "+set",
    );
    const shared = await openRedis(bench.url, { username: "cache_shared", password: SHARED_PASSWORD });
    const shared2 = await openRedis(bench.url, { username: "cache_shared", password: SHARED_PASSWORD });
    // Control: the shared user over as many connections as there are tenants (separates "more sockets" from "ACL user").
    const sharedPerTenant = new Map<string, Redis>();
    for (const id of tenants) sharedPerTenant.set(id, await openRedis(bench.url, { username: "cache_shared", password: SHARED_PASSWORD }));
    await bench.poolUser("cache_pool", "pool-password-0123456789abcdef");
    const perTenant = createTenantCachePool({ url: bench.url, credentials, maxTenantConnections: cfg.tenants });
    const authPool = createTenantCachePool({
      url: bench.url.replace("//", "//cache_pool:pool-password-0123456789abcdef@"),
      credentials,
      mode: "auth-per-request",
      poolSize: cfg.concurrency,
    });
    pools.push(perTenant, authPool);

    const tenantOf = (i: number) => tenants[i % tenants.length];
    const check = (v: string | null) => {
      if (v?.length !== 100) throw new Error(`unexpected value ${v}`);
    };
    const variants = {
      "shared user": async (i: number) => check(await shared.get(tenantKey(tenantOf(i), "quote"))),
      "shared user′": async (i: number) => check(await shared2.get(tenantKey(tenantOf(i), "quote"))),
      "shared user, a connection per tenant": async (i: number) =>
        check(await sharedPerTenant.get(tenantOf(i))!.get(tenantKey(tenantOf(i), "quote"))),
      "tenant user, direct": async (i: number) => check(await direct.get(tenantOf(i))!.get(tenantKey(tenantOf(i), "quote"))),
      "connection per tenant": async (i: number) => check(await withTenantCache(perTenant, tenantOf(i), (c) => c.get("quote"))),
      "auth per request": async (i: number) => check(await withTenantCache(authPool, tenantOf(i), (c) => c.get("quote"))),
      "connection per request": async (i: number) => {
        const c = await openRedis(bench.url, { username: `tenant_${tenantOf(i)}`, password: passwords.get(tenantOf(i))! });
        try {
          check(await c.get(tenantKey(tenantOf(i), "quote")));
        } finally {
          c.disconnect();
        }
      },
    };
    type V = keyof typeof variants;
    const names = Object.keys(variants) as V[];
    process.stderr.write("warm-up…\n");
    await interleaved(variants, cfg.tenants * 2);

    process.stderr.write("sequential latency…\n");
    const seq: Record<V, number>[] = [];
    for (let r = 0; r < cfg.reps; r++) {
      const samples = await interleaved(variants, cfg.iterations, r + 1);
      seq.push(Object.fromEntries(names.map((n) => [n, median(samples[n])])) as Record<V, number>);
    }

    process.stderr.write("concurrent throughput…\n");
    // Interleaved in small blocks (every variant once per block, shuffled), time summed per variant.
    const concurrentNames = names.filter((n) => n !== "connection per request");
    const blockRequests = cfg.concurrency * 8;
    const thr: Record<string, number>[] = [];
    for (let r = 0; r < cfg.reps; r++) {
      const elapsed = Object.fromEntries(concurrentNames.map((n) => [n, 0])) as Record<string, number>;
      const random = prng(100 + r);
      for (let b = 0; b < Math.ceil(cfg.concurrentRequests / blockRequests); b++) {
        const order = [...concurrentNames].sort(() => random() - 0.5);
        for (const name of order) {
          let next = 0;
          const start = nowNs();
          await Promise.all(
            Array.from({ length: cfg.concurrency }, async () => {
              while (next < blockRequests) await variants[name](Math.floor(random() * 1e6) + next++);
            }),
          );
          elapsed[name] += msSince(start);
        }
      }
      const total = Math.ceil(cfg.concurrentRequests / blockRequests) * blockRequests;
      thr.push(Object.fromEntries(concurrentNames.map((n) => [n, total / (elapsed[n] / 1000)])));
    }

    const report = {
      config: cfg,
      sequential: names.map((n) => ({
        variant: n,
        p50Ms: median(seq.map((s) => s[n])),
        ratio: spread(seq.map((s) => s[n] / s["shared user"])),
      })),
      throughput: concurrentNames.map((n) => ({
        variant: n,
        opsPerSecond: median(thr.map((t) => t[n])),
        ratio: spread(thr.map((t) => t[n] / t["shared user"])),
      })),
    };
    shared.disconnect();
    shared2.disconnect();
    for (const c of [...sharedPerTenant.values(), ...direct.values()]) c.disconnect();
    if (flags.json) {
      process.stdout.write(JSON.stringify(report, null, 2) + "\n");
      return 0;
    }
    process.stdout.write(
      [
        `${cfg.tenants} tenants, ${cfg.reps} repetitions; one GET of a 100 B value per request; ratios vs the shared user (median and range of per-repetition ratios).`,
        "",
        markdownTable(
          ["variant", "sequential p50 ms", "latency ratio", `throughput at ${cfg.concurrency} in flight (req/s)`, "throughput ratio"],
          report.sequential.map((s) => {
            const t = report.throughput.find((x) => x.variant === s.variant);
            return [s.variant, fmt(s.p50Ms, 3), fmtRatio(s.ratio), t ? fmt(t.opsPerSecond, 0) : "—", t ? fmtRatio(t.ratio) : "—"];
          }),
        ),
      ].join("\n") + "\n",
    );
    return 0;
  } finally {
    for (const p of pools) await p.close();
    await bench.close();
  }
}

runMain(
  entryPoint({
    program: "bench/redis-tenant-cache",
    usage: "usage: npx tsx bench/redis-tenant-cache.ts [--quick] [--json] [--markdown]",
    help: () => headerComment(__filename),
    options: OPTIONS,
    run: ({ values }) => main(values),
  }),
);
