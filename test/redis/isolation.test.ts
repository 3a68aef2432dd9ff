/**
 * Tenant isolation on a real redis-server: the attack suite (test/redis/attacks.ts) finds nothing
 * against the rendered ACL user, and finds the hole in each deliberately broken rule set.
 */
import net from "node:net";
import { beforeAll, describe, expect, it } from "vitest";
import { DENIED_COMMANDS, renderTenantAcl, tenantChannelRules, tenantKeyRules } from "../../lib/redis/acl";
import { keyspaceChannelPrefix, quotaKeys, tenantKey, tenantUserName } from "../../lib/redis/keys";
import { defaultUserFlags, defaultUserIsOn, grantTenantCache, RedisDefaultUserOnError, sha256Hex } from "../../lib/redis/tenant-users";
import { runAttackSuite, type SuiteResult } from "./attacks";
import { errorOf, TENANT_A, TENANT_B, TENANT_C, useRedisServer } from "./harness";

const redis = useRedisServer();
const LIMITS = { maxBytes: 1_000_000, maxKeys: 1000 };
const PASSWORD = "broken-variant-password-0123456789";

/** Deliberately broken permission sets for tenant A, each with the attacks it must let through. */
function brokenVariants(): Record<string, { rules: string[]; mustFind: string[] }> {
  const real = renderTenantAcl(TENANT_A).rules;
  const keys = tenantKeyRules(TENANT_A);
  const channels = tenantChannelRules(TENANT_A);
  const commands = real.filter((r) => !keys.includes(r) && !channels.includes(r) && r !== "on");
  const q = quotaKeys(TENANT_A);
  return {
    "all keys (~*)": {
      rules: ["on", "~*", ...channels, ...commands],
      mustFind: [
        "read-other-key",
        "write-other-key",
        "delete-other-key",
        "rename-into-other",
        "lua-undeclared-other-key",
        "raise-own-limit",
        "touch-other-quota",
      ],
    },
    "tenant segment not terminated (~tenant:{0b5e8f3c*)": {
      rules: [
        "on",
        `~tenant:{${TENANT_A.slice(0, 8)}*`,
        `~${q.used}`,
        `~${q.sizes}`,
        `~${q.expiry}`,
        `%R~${q.limit}`,
        ...channels,
        ...commands,
      ],
      mustFind: ["read-other-key", "write-other-key", "delete-other-key", "rename-into-other", "lua-undeclared-other-key"],
    },
    "categories without the keyless removals": {
      rules: real.filter((r) => !DENIED_COMMANDS.some(([c]) => r === `-${c}`)),
      mustFind: [
        "scan",
        "randomkey",
        "dbsize",
        "select-other-db",
        "copy-to-other-db",
        "move-to-other-db",
        "pubsub-channels",
        "pubsub-numsub",
        "client-tracking-bcast",
        "function-load",
        "function-flush",
        "function-delete",
      ],
    },
    "+@all -@dangerous": {
      rules: ["on", ...keys, ...channels, "+@all", "-@dangerous"],
      mustFind: [
        "scan",
        "randomkey",
        "dbsize",
        "memory-stats",
        "function-flush",
        "script-flush",
        "pubsub-channels",
        "client-tracking-bcast",
        "select-other-db",
      ],
    },
    allchannels: {
      rules: ["on", ...keys, "allchannels", ...commands],
      mustFind: [
        "subscribe-other-channel",
        "psubscribe-everything",
        "psubscribe-tenants",
        "keyspace-other",
        "keyevent",
        "publish-other-channel",
        "spublish-other-channel",
        "ssubscribe-other-channel",
      ],
    },
    "keyevent channels granted": {
      rules: [...real, "&__keyevent@0__:*"],
      mustFind: ["keyevent"],
    },
    "quota limit writable (~quota:{a}:*)": {
      rules: ["on", ...keys.filter((r) => !r.startsWith("%R~")), `~quota:{${TENANT_A}}:*`, ...channels, ...commands],
      mustFind: ["raise-own-limit"],
    },
    "no command restrictions (+@all)": {
      rules: ["on", ...keys, ...channels, "+@all"],
      // Key patterns still hold here: scripts and SORT ... GET are checked against them (Redis 7).
      mustFind: ["keys", "info", "client-list", "acl-list", "config-get", "slowlog", "flushall", "shutdown", "acl-setuser", "monitor"],
    },
    "superuser-like (~* &* +@all)": {
      rules: ["on", "~*", "&*", "+@all"],
      mustFind: ["read-other-key", "sort-get-other", "eval-undeclared-other-key", "flushall", "monitor", "debug", "config-set"],
    },
  };
}

describe("tenant ACL user on a real redis-server", () => {
  let real: SuiteResult;
  const broken: Record<string, SuiteResult> = {};

  beforeAll(async () => {
    const grant = await grantTenantCache(redis.admin, TENANT_A, { limits: LIMITS, password: PASSWORD });
    await grantTenantCache(redis.admin, TENANT_B, { limits: LIMITS });
    real = await runAttackSuite({ redis, user: grant.user, password: PASSWORD, attacker: TENANT_A, victim: TENANT_B });
    for (const [name, variant] of Object.entries(brokenVariants())) {
      const user = `broken_${Object.keys(broken).length}`;
      await redis.admin.call("ACL", "SETUSER", user, "reset", ...variant.rules, `#${sha256Hex(PASSWORD)}`);
      broken[name] = await runAttackSuite({ redis, user, password: PASSWORD, attacker: TENANT_A, victim: TENANT_B });
      await redis.admin.call("ACL", "DELUSER", user);
    }
  }, 120_000);

  it("lets no attack through for the rendered user", () => {
    expect(real.findings).toEqual([]);
    expect(real.attempted.length).toBeGreaterThan(40);
  });

  it.each(Object.entries(brokenVariants()))("negative control — %s — is caught", (name, variant) => {
    const found = broken[name].findings.map((f) => f.attack);
    expect(found.length).toBeGreaterThan(0);
    expect(found).toEqual(expect.arrayContaining(variant.mustFind));
  });

  it("has no attack that no broken variant can trigger (every test can fail)", () => {
    const triggered = new Set(Object.values(broken).flatMap((r) => r.findings.map((f) => f.attack)));
    expect(real.attempted.filter((a) => !triggered.has(a))).toEqual([]);
  });
});

describe("what the tenant can still do", () => {
  it("reads, writes and deletes its own keys, and receives its own keyspace notifications", async () => {
    const grant = await grantTenantCache(redis.admin, TENANT_A, { limits: LIMITS, password: PASSWORD, rotatePassword: true });
    const a = await redis.connect(grant.user, PASSWORD);
    const sub = await redis.connect(grant.user, PASSWORD);
    const events: string[] = [];
    sub.on("pmessage", (_pattern: string, channel: string, message: string) => events.push(`${channel} ${message}`));
    await sub.psubscribe(`${keyspaceChannelPrefix(TENANT_A)}*`);
    await a.set(tenantKey(TENANT_A, "own"), "1");
    expect(await a.get(tenantKey(TENANT_A, "own"))).toBe("1");
    expect(await a.del(tenantKey(TENANT_A, "own"))).toBe(1);
    await expect.poll(() => events).toEqual([`${keyspaceChannelPrefix(TENANT_A)}own set`, `${keyspaceChannelPrefix(TENANT_A)}own del`]);
    // B's keyspace events are not delivered on A's pattern.
    await redis.admin.set(tenantKey(TENANT_B, "other"), "1");
    await new Promise((r) => setTimeout(r, 100));
    expect(events).toHaveLength(2);
  });
});

describe("keyless commands", () => {
  /** Reviewed: none of these observes or changes another tenant's data. Redis upgrades that add a keyless command fail here until reviewed. */
  const REVIEWED_KEYLESS = [
    "asking",
    "auth",
    "client|caching",
    "client|getname",
    "client|getredir",
    "client|help",
    "client|id",
    "client|info",
    "client|reply",
    "client|setname",
    "client|trackinginfo",
    "command|count",
    "command|docs",
    "command|getkeys",
    "command|getkeysandflags",
    "command|help",
    "command|info",
    "command|list",
    "discard",
    "echo",
    "exec",
    "hello",
    "lolwut",
    "multi",
    "ping",
    "publish",
    "punsubscribe",
    "quit",
    "readonly",
    "readwrite",
    "reset",
    "subscribe",
    "time",
    "unsubscribe",
    "unwatch",
    "wait",
  ];

  async function allowedKeyless(user: string): Promise<string[]> {
    const all = (await redis.admin.call("COMMAND")) as unknown[][];
    const keyless: { name: string; arity: number }[] = [];
    const walk = (c: unknown[]) => {
      const [name, arity, flags, , , , , , keySpecs, subcommands] = c as [string, number, string[], ...unknown[]];
      if (Array.isArray(subcommands) && subcommands.length > 0) for (const s of subcommands as unknown[][]) walk(s);
      else if ((keySpecs as unknown[]).length === 0 && !flags.includes("movablekeys")) keyless.push({ name, arity });
    };
    for (const c of all) walk(c);
    const allowed: string[] = [];
    for (const { name, arity } of keyless) {
      const words = name.split("|");
      // Channel arguments are the tenant's own, so pub/sub commands are judged on the command alone.
      const fill = Array<string>(Math.max(Math.abs(arity), words.length) - words.length).fill(tenantKey(TENANT_A, "x"));
      const reply = await redis.admin.call("ACL", "DRYRUN", user, ...words, ...fill).catch((e: Error) => e.message);
      if (reply === "OK") allowed.push(name);
    }
    return allowed.sort();
  }

  it("allows exactly the reviewed keyless commands", async () => {
    const grant = await grantTenantCache(redis.admin, TENANT_A, { limits: LIMITS });
    expect(await allowedKeyless(grant.user)).toEqual(REVIEWED_KEYLESS);
  });

  it("negative control: without the explicit removals the census finds SCAN, DBSIZE, FUNCTION, PUBSUB, CLIENT TRACKING", async () => {
    const rules = renderTenantAcl(TENANT_A).rules.filter((r) => !DENIED_COMMANDS.some(([c]) => r === `-${c}`));
    await redis.admin.call("ACL", "SETUSER", "census_control", "reset", ...rules, "nopass");
    const extra = (await allowedKeyless("census_control")).filter((c) => !REVIEWED_KEYLESS.includes(c));
    await redis.admin.call("ACL", "DELUSER", "census_control");
    expect(extra).toEqual(
      expect.arrayContaining([
        "scan",
        "dbsize",
        "randomkey",
        "function|load",
        "function|flush",
        "pubsub|channels",
        "client|tracking",
        "select",
      ]),
    );
  });
});

/** Sends RESP commands on a raw socket (RESP3 push messages included) and collects what comes back. */
async function rawSession(port: number, steps: (send: (...args: string[]) => void) => Promise<void>): Promise<string> {
  const socket = net.connect({ port, host: "127.0.0.1" });
  let received = "";
  socket.on("data", (d) => (received += d.toString("latin1")));
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  const send = (...args: string[]) =>
    socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`);
  await steps(send);
  await new Promise((r) => setTimeout(r, 200));
  socket.destroy();
  return received;
}

describe("measured leaks the rules close", () => {
  it("CLIENT TRACKING BCAST names other tenants' keys (allowed → leak; rendered user → refused)", async () => {
    const pause = () => new Promise((r) => setTimeout(r, 100));
    const victimKey = tenantKey(TENANT_B, "tracked-secret-name");
    const session = (user: string) =>
      rawSession(redis.server.port, async (send) => {
        send("HELLO", "3", "AUTH", user, PASSWORD);
        send("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", `tenant:{${TENANT_B}}:`);
        await pause();
        await redis.admin.set(victimKey, String(Date.now()));
        await pause();
      });
    const rules = renderTenantAcl(TENANT_A).rules.filter((r) => r !== "-client|tracking");
    await redis.admin.call("ACL", "SETUSER", "tracking_control", "reset", ...rules, `#${sha256Hex(PASSWORD)}`);
    const leaked = await session("tracking_control");
    await redis.admin.call("ACL", "DELUSER", "tracking_control");
    expect(leaked).toContain(victimKey);

    const grant = await grantTenantCache(redis.admin, TENANT_A, { limits: LIMITS, password: PASSWORD, rotatePassword: true });
    const refused = await session(grant.user);
    expect(refused).toContain("NOPERM");
    expect(refused).not.toContain(victimKey);
  });

  it("RESET falls back to the default user, which this server keeps off (negative control: default on)", async () => {
    const grant = await grantTenantCache(redis.admin, TENANT_A, { limits: LIMITS, password: PASSWORD, rotatePassword: true });
    await redis.admin.set(tenantKey(TENANT_B, "secret"), "b-secret");
    const a = await redis.connect(grant.user, PASSWORD);
    await a.call("RESET");
    expect(await errorOf(a.get(tenantKey(TENANT_B, "secret")))).toMatch(/NOAUTH/);

    await redis.admin.call("ACL", "SETUSER", "default", "on", "nopass", "~*", "&*", "+@all");
    try {
      const b = await redis.connect(grant.user, PASSWORD);
      await b.call("RESET");
      expect(await b.get(tenantKey(TENANT_B, "secret"))).toBe("b-secret");
    } finally {
      await redis.admin.call("ACL", "SETUSER", "default", "reset", "off", "resetchannels", "-@all");
    }
  });
});

describe("the default user: every way back to it (RESET, AUTH default, HELLO AUTH default)", () => {
  const ESCAPES: [string, (c: import("ioredis").default) => Promise<unknown>][] = [
    ["RESET", (c) => c.call("RESET")],
    ["AUTH default", (c) => c.call("AUTH", "default", "any-password")],
    ["HELLO 2 AUTH default", (c) => c.call("HELLO", "2", "AUTH", "default", "any-password")],
  ];

  it("grantTenantCache refuses a server whose default user is on and writes nothing; an existing tenant user escapes there (the negative control) but not once it is off", async () => {
    const grant = await grantTenantCache(redis.admin, TENANT_A, { limits: LIMITS, password: PASSWORD, rotatePassword: true });
    await redis.admin.set(tenantKey(TENANT_B, "secret"), "b-secret");
    const escaped = async () => {
      const out: string[] = [];
      for (const [name, escape] of ESCAPES) {
        const a = await redis.connect(grant.user, PASSWORD);
        await escape(a).catch(() => undefined);
        if ((await a.get(tenantKey(TENANT_B, "secret")).catch(() => undefined)) === "b-secret") out.push(name);
        a.disconnect();
      }
      return out;
    };
    expect(await escaped()).toEqual([]);

    await redis.admin.call("ACL", "SETUSER", "default", "on", "nopass", "~*", "&*", "+@all");
    try {
      expect(await escaped()).toEqual(ESCAPES.map(([name]) => name));
      const refused = await grantTenantCache(redis.admin, TENANT_C, { limits: LIMITS }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(RedisDefaultUserOnError);
      expect(await redis.admin.call("ACL", "GETUSER", tenantUserName(TENANT_C))).toBeNull();
      expect(await redis.admin.exists(...Object.values(quotaKeys(TENANT_C)))).toBe(0);
    } finally {
      await redis.admin.call("ACL", "SETUSER", "default", "reset", "off", "resetchannels", "-@all");
    }
    expect(await escaped()).toEqual([]);
  });

  it.each<[string, unknown, boolean]>([
    ["off", ["flags", ["off", "sanitize-payload"], "passwords", []], false],
    ["on, nopass", ["flags", ["on", "nopass", "sanitize-payload"], "passwords", []], true],
    ["on, with a password", ["flags", ["on", "sanitize-payload"], "passwords", ["x"]], true],
    ["absent", null, false],
  ])("defaultUserIsOn: %s", (_name, reply, on) => {
    expect(defaultUserIsOn(defaultUserFlags(reply))).toBe(on);
  });
});
