/**
 * What the Redis benchmarks share: a throwaway redis-server, granted tenants, formatting, and the
 * interleaved runner (one run, variants alternating per iteration with the order rotated, so
 * background noise on the shared 2 vCPUs hits every variant alike — separate runs per variant
 * swung by 3x on this machine, see /work/shared/notes/performance.md). Statistics: bench/stats.ts.
 */
import { prng } from "./stats";
import type Redis from "ioredis";
import { startRedis, type RedisServer } from "../lib/local/redis-server";
import { openRedis } from "../lib/redis/client";
import { grantPoolUser, grantTenantCache } from "../lib/redis/tenant-users";

export const nowNs = (): bigint => process.hrtime.bigint();
export const msSince = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e6;

export const fmt = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");
export const fmtRatio = (r: { median: number; min: number; max: number }): string => `${fmt(r.median)} (${fmt(r.min)}–${fmt(r.max)})`;

/**
 * Runs `iterations` rounds; in each, every variant once, in a freshly shuffled order (a fixed
 * rotation made the variant after an expensive one pay for it: the A/A′ control was 0.56).
 * Returns per-variant latencies in ms.
 */
export async function interleaved<V extends string>(
  variants: Record<V, (i: number) => Promise<unknown>>,
  iterations: number,
  seed = 1,
): Promise<Record<V, number[]>> {
  const names = Object.keys(variants) as V[];
  const random = prng(seed);
  const samples = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<V, number[]>;
  for (let i = 0; i < iterations; i++) {
    const order = [...names];
    for (let j = order.length - 1; j > 0; j--) {
      const k = Math.floor(random() * (j + 1));
      [order[j], order[k]] = [order[k], order[j]];
    }
    for (const name of order) {
      const start = nowNs();
      await variants[name](i);
      samples[name].push(msSince(start));
    }
  }
  return samples;
}

/** A markdown table. */
export function markdownTable(head: string[], rows: (string | number)[][]): string {
  return [`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

export interface BenchServer {
  server: RedisServer;
  admin: Redis;
  url: string;
  /** Grants a tenant (fresh password) and returns a connection as it. */
  tenant(tenantId: string, limits?: { maxBytes: number; maxKeys: number }): Promise<{ password: string; connect: () => Promise<Redis> }>;
  poolUser(user: string, password: string): Promise<void>;
  usedMemory(): Promise<number>;
  close(): Promise<void>;
}

export async function benchServer(settings: Record<string, string | number> = {}): Promise<BenchServer> {
  const server = await startRedis({ settings });
  const admin = await openRedis(server.adminUrl);
  const url = `redis://127.0.0.1:${server.port}`;
  const opened: Redis[] = [admin];
  return {
    server,
    admin,
    url,
    async tenant(tenantId, limits = { maxBytes: 1e12, maxKeys: 1e9 }) {
      const g = await grantTenantCache(admin, tenantId, { limits, rotatePassword: true });
      const password = g.password!;
      return {
        password,
        connect: async () => {
          const r = await openRedis(url, { username: g.user, password });
          opened.push(r);
          return r;
        },
      };
    },
    poolUser: (user, password) => grantPoolUser(admin, user, password),
    async usedMemory() {
      return Number(/used_memory:(\d+)/.exec((await admin.call("INFO", "memory")) as string)![1]);
    },
    async close() {
      for (const r of opened) r.disconnect();
      await server.stop({ removeDir: true });
    },
  };
}

/** Deterministic tenant ids for the benchmarks. */
export function benchTenantId(n: number): string {
  const hex = n.toString(16).padStart(12, "0");
  return `b0000000-0000-4000-8000-${hex}`;
}
