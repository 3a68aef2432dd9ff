/**
 * The cross-tenant attack suite: everything tenant A's Redis user might try against tenant B or the
 * server. Each attack returns a finding when it SUCCEEDS. test/redis/isolation.test.ts runs it
 * against the real renderer (no findings) and against deliberately broken rule sets (each must be
 * caught), so every attack is shown able to fail.
 *
 * Destructive server-wide commands are not executed: they are checked with ACL DRYRUN, the server's
 * own permission check for that user and those arguments.
 */
import type Redis from "ioredis";
import { quotaKeys, tenantKey } from "../../lib/redis/keys";
import type { TestRedis } from "./harness";

export interface Finding {
  attack: string;
  detail: string;
}

export interface AttackTarget {
  redis: TestRedis;
  user: string;
  password: string;
  /** The attacker's tenant. */
  attacker: string;
  /** The victim's tenant. */
  victim: string;
}

export const PROBE_LIBRARY = `#!lua name=attack_probe
redis.register_function('probe_get', function(keys, args) return redis.call('GET', args[1]) end)`;

/** Server-wide commands checked with ACL DRYRUN (executing them would damage the shared server). */
export const DRYRUN_ATTACKS: ReadonlyArray<readonly [id: string, args: string[]]> = [
  ["flushall", ["FLUSHALL"]],
  ["flushdb", ["FLUSHDB"]],
  ["shutdown", ["SHUTDOWN", "NOSAVE"]],
  ["debug", ["DEBUG", "SLEEP", "0"]],
  ["config-set", ["CONFIG", "SET", "maxmemory", "1"]],
  ["monitor", ["MONITOR"]],
  ["function-flush", ["FUNCTION", "FLUSH"]],
  ["function-load", ["FUNCTION", "LOAD", "#!lua name=x\nredis.register_function('x', function() return 1 end)"]],
  ["function-delete", ["FUNCTION", "DELETE", "alphapulse_tenancy"]],
  ["script-flush", ["SCRIPT", "FLUSH"]],
  ["swapdb", ["SWAPDB", "0", "1"]],
  ["client-kill", ["CLIENT", "KILL", "ID", "1"]],
  ["client-pause", ["CLIENT", "PAUSE", "1000"]],
  ["acl-setuser", ["ACL", "SETUSER", "anyone", "on", "+@all", "~*"]],
  ["replicaof", ["REPLICAOF", "127.0.0.1", "1"]],
  ["bgsave", ["BGSAVE"]],
  ["module-load", ["MODULE", "LOAD", "/tmp/x.so"]],
];

type Attack = [id: string, run: () => Promise<string | undefined>];

export interface SuiteResult {
  /** Every attack id run, in order. */
  attempted: string[];
  /** The attacks that succeeded. */
  findings: Finding[];
}

/** Runs every attack; reports the ones that succeeded. */
export async function runAttackSuite(target: AttackTarget): Promise<SuiteResult> {
  const { redis, user, password, attacker, victim } = target;
  const { admin } = redis;
  const secret = tenantKey(victim, "secret");
  const deletable = tenantKey(victim, "deletable");
  const victimChannel = tenantKey(victim, "news");
  const own = (name: string) => tenantKey(attacker, name);

  // Victim state, reset before every run (the broken variants do change it).
  await admin.set(secret, "b-secret");
  await admin.set(deletable, "b-data");
  await admin.del(tenantKey(victim, "stolen"), tenantKey(victim, "written"));
  await admin.del(own("list"), own("tmp"));
  await admin.rpush(own("list"), "1");
  await admin.set(own("tmp"), "a-data");
  await admin.call("FUNCTION", "LOAD", "REPLACE", PROBE_LIBRARY);
  const victimSubscriber = await redis.connect(redis.server.adminUser, redis.server.adminPassword);
  await victimSubscriber.subscribe(victimChannel);

  const connections: Redis[] = [];
  const connect = async () => {
    const c = await redis.connect(user, password);
    connections.push(c);
    return c;
  };
  const allowed = async (fn: (c: Redis) => Promise<unknown>): Promise<unknown> => {
    const c = await connect();
    try {
      return { value: await fn(c) };
    } catch {
      return undefined;
    }
  };
  const succeeds = async (fn: (c: Redis) => Promise<unknown>, detail: (value: unknown) => string | undefined = () => "allowed") => {
    const r = (await allowed(fn)) as { value: unknown } | undefined;
    return r === undefined ? undefined : detail(r.value);
  };
  const returnsSecret = (v: unknown) => (JSON.stringify(v)?.includes("b-secret") ? `read ${JSON.stringify(v)}` : undefined);

  const attacks: Attack[] = [
    ["read-other-key", () => succeeds((c) => c.get(secret), returnsSecret)],
    ["write-other-key", () => succeeds((c) => c.set(tenantKey(victim, "written"), "x"))],
    [
      "delete-other-key",
      () =>
        succeeds(
          (c) => c.del(deletable),
          (n) => (n === 1 ? "deleted" : undefined),
        ),
    ],
    ["rename-into-other", () => succeeds((c) => c.rename(own("tmp"), tenantKey(victim, "stolen")))],
    ["sort-get-other", () => succeeds((c) => c.call("SORT", own("list"), "BY", "nosort", "GET", `tenant:{${victim}}:*`))],
    ["lua-undeclared-other-key", () => succeeds((c) => c.call("FCALL", "probe_get", 0, secret), returnsSecret)],
    ["eval-undeclared-other-key", () => succeeds((c) => c.call("EVAL", "return redis.call('GET', ARGV[1])", 0, secret), returnsSecret)],
    ["raise-own-limit", () => succeeds((c) => c.call("HSET", quotaKeys(attacker).limit, "bytes", 1e15))],
    ["touch-other-quota", () => succeeds((c) => c.call("SET", quotaKeys(victim).used, 0))],
    ["select-other-db", () => succeeds((c) => c.call("SELECT", 1))],
    ["copy-to-other-db", () => succeeds((c) => c.call("COPY", own("tmp"), own("tmp"), "DB", 1, "REPLACE"))],
    ["move-to-other-db", () => succeeds((c) => c.call("MOVE", own("list"), 1))],
    [
      "scan",
      () =>
        succeeds(
          (c) => c.call("SCAN", 0, "COUNT", 1000),
          (v) => `listed ${JSON.stringify(v).slice(0, 120)}`,
        ),
    ],
    ["keys", () => succeeds((c) => c.call("KEYS", "*"))],
    ["randomkey", () => succeeds((c) => c.call("RANDOMKEY"))],
    [
      "dbsize",
      () =>
        succeeds(
          (c) => c.call("DBSIZE"),
          (n) => `counted ${String(n)} keys`,
        ),
    ],
    ["info", () => succeeds((c) => c.call("INFO", "keyspace"))],
    ["memory-stats", () => succeeds((c) => c.call("MEMORY", "STATS"))],
    ["subscribe-other-channel", () => succeeds((c) => c.subscribe(victimChannel))],
    ["psubscribe-everything", () => succeeds((c) => c.psubscribe("*"))],
    ["psubscribe-tenants", () => succeeds((c) => c.psubscribe("tenant:*"))],
    ["keyspace-other", () => succeeds((c) => c.psubscribe(`__keyspace@0__:tenant:{${victim}}:*`))],
    ["keyevent", () => succeeds((c) => c.subscribe("__keyevent@0__:set"))],
    ["publish-other-channel", () => succeeds((c) => c.publish(victimChannel, "x"))],
    ["spublish-other-channel", () => succeeds((c) => c.call("SPUBLISH", victimChannel, "x"))],
    ["ssubscribe-other-channel", () => succeeds((c) => c.call("SSUBSCRIBE", victimChannel))],
    [
      "pubsub-channels",
      () =>
        succeeds(
          (c) => c.call("PUBSUB", "CHANNELS"),
          (v) => `listed ${JSON.stringify(v)}`,
        ),
    ],
    ["pubsub-numsub", () => succeeds((c) => c.call("PUBSUB", "NUMSUB", victimChannel))],
    ["client-tracking-bcast", () => succeeds((c) => c.call("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", `tenant:{${victim}}:`))],
    ["client-list", () => succeeds((c) => c.call("CLIENT", "LIST"))],
    ["acl-list", () => succeeds((c) => c.call("ACL", "LIST"))],
    ["config-get", () => succeeds((c) => c.call("CONFIG", "GET", "*"))],
    ["slowlog", () => succeeds((c) => c.call("SLOWLOG", "GET"))],
    ...DRYRUN_ATTACKS.map(([id, args]): Attack => [
      id,
      async () => {
        const reply = await admin.call("ACL", "DRYRUN", user, ...args).catch((e: Error) => e.message);
        return reply === "OK" ? "allowed (ACL DRYRUN)" : undefined;
      },
    ]),
  ];

  const findings: Finding[] = [];
  try {
    for (const [attack, run] of attacks) {
      const detail = await run();
      if (detail !== undefined) findings.push({ attack, detail });
    }
  } finally {
    for (const c of connections) c.disconnect();
    victimSubscriber.disconnect();
  }
  return { attempted: attacks.map(([id]) => id), findings };
}
