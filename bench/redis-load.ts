/**
 * A noisy tenant in its own process (so its event loop does not slow the measuring one): writes
 * 1 kB values over several connections, batches of 50 in flight, until told to stop; reports how
 * many writes it attempted and how many were refused. Forked by bench/redis-quota.ts.
 *
 * argv: <redis url> <user> <password> <tenant id> <mode: quota|raw|helper> <writes per second, 0 = unlimited> <connections>
 * Its end (the exit code, after the last message has gone) is the runner's (cli/runner.ts).
 */
import type Redis from "ioredis";
import { openRedis } from "../lib/redis/client";
import { tenantKey } from "../lib/redis/keys";
import { quotaSet } from "../lib/redis/quota";
import { createTenantCachePool, withTenantCache } from "../lib/redis/tenant-cache";
import { positionals } from "../cli/args";
import { entryPoint, runMain } from "../cli/runner";

const ARGS = ["url", "user", "password", "tenantId", "mode", "rate", "connections"] as const;

async function main({
  url,
  user,
  password,
  tenantId,
  mode,
  rate: rateArg,
  connections: connArg,
}: Record<(typeof ARGS)[number], string>): Promise<void> {
  const rate = Number(rateArg);
  const connections = Number(connArg);
  const value = "x".repeat(1000);
  const conns: Redis[] = await Promise.all(Array.from({ length: connections }, () => openRedis(url, { username: user, password })));
  const pool = createTenantCachePool({ url, credentials: () => ({ username: user, password }), quotaBackoffMs: 50 });
  const write = (c: Redis, i: number): Promise<unknown> => {
    if (mode === "raw") return c.set(tenantKey(tenantId, "raw", String(i % 2000)), value);
    if (mode === "helper") return withTenantCache(pool, tenantId, (cache) => cache.set(["burst", String(i % 100_000)], value));
    return quotaSet(c, tenantId, tenantKey(tenantId, "burst", String(i % 100_000)), value);
  };
  let stopped = false;
  let attempted = 0;
  let refused = 0;
  process.on("message", (m) => {
    if (m === "stop") stopped = true;
  });
  const batchInterval = rate > 0 ? (50 * connections * 1000) / rate : 0;
  process.send!("started");
  await Promise.all(
    conns.map(async (c, n) => {
      let i = n * 1e7;
      while (!stopped) {
        const started = Date.now();
        const batch = Array.from({ length: 50 }, () => write(c, i++).catch(() => refused++));
        attempted += batch.length;
        await Promise.all(batch);
        const wait = batchInterval - (Date.now() - started);
        // Always yield to I/O, so the stop message is seen even when writes are refused locally.
        await new Promise((r) => (wait > 0 ? setTimeout(r, wait) : setImmediate(r)));
      }
    }),
  );
  await new Promise((sent) => process.send!({ attempted, refused }, undefined, undefined, sent));
  await pool.close();
  for (const c of conns) c.disconnect();
  process.disconnect();
}

runMain(
  entryPoint({
    program: "bench/redis-load",
    usage: `usage: redis-load.ts ${ARGS.map((a) => `<${a}>`).join(" ")} (forked by bench/redis-quota.ts)`,
    options: {},
    allowPositionals: true,
    run: ({ positionals: args }) => main(positionals({ args }, ARGS)),
  }),
);
