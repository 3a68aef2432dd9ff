/**
 * A redis-server on loopback for the tests, the benchmarks and the local stacks: no persistence of
 * data (`save ""`, `appendonly no`), an `admin` user with a generated password, and the `default`
 * user switched off — a connection that sends RESET (which no ACL rule can deny) falls back to
 * `default` and must land on a user that cannot authenticate or run anything.
 *
 * Users live in an ACL file in the server's directory (hashed passwords only). A start in a
 * directory that already has one keeps every user in it (tenant users created with `ACL SETUSER`
 * and saved with `ACL SAVE`) and rewrites only `default` (off) and `admin`: restarting a local
 * region's Redis must not revoke its tenants behind the stack's back (docs/data-safety.md). Keys
 * survive a restart only with persistence on (the local regions set `appendonly yes`,
 * LOCAL_REGION_REDIS_SETTINGS in lib/local/region-services.ts); throwaway servers persist nothing.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort, isListening, terminateServer, waitFor } from "./processes";

export const REDIS_ADMIN_USER = "admin";

export interface RedisServerOptions {
  /** Port on 127.0.0.1; a free one when omitted. */
  port?: number;
  /** Working directory (config, ACL file, log, pid); a fresh temporary one when omitted. */
  dir?: string;
  /** Password of the `admin` user; generated when omitted. */
  adminPassword?: string;
  /**
   * Extra redis.conf directives, e.g. `{ maxmemory: "64mb", "maxmemory-policy": "noeviction" }`.
   * @default { "notify-keyspace-events": "KA" } (keyspace channels only: `__keyevent@` channels
   * would name every tenant's keys; tenants are denied them anyway)
   */
  settings?: Record<string, string | number>;
  /** Run detached so the server outlives this process (local stacks); stop it with `stopRedisAt(dir)`. @default false */
  daemonize?: boolean;
  /** redis-server program; `REDIS_SERVER` or PATH otherwise. */
  program?: string;
}

export interface RedisServer {
  host: string;
  port: number;
  dir: string;
  adminUser: string;
  adminPassword: string;
  /** `redis://admin:<password>@127.0.0.1:<port>` */
  adminUrl: string;
  /** A URL for another user on this server. */
  urlFor(user: string, password: string): string;
  stop(options?: { removeDir?: boolean }): Promise<void>;
}

export function redisUrl(host: string, port: number, user?: string, password?: string): string {
  const auth = user === undefined ? "" : `${encodeURIComponent(user)}${password === undefined ? "" : `:${encodeURIComponent(password)}`}@`;
  return `redis://${auth}${host}:${port}`;
}

/** The redis.conf text (pure). Values are written as given; strings with spaces are quoted. */
export function renderRedisConfig(options: {
  port: number;
  dir: string;
  daemonize: boolean;
  settings?: Record<string, string | number>;
}): string {
  const quote = (v: string | number) => (typeof v === "number" ? String(v) : v === "" || /[\s"]/.test(v) ? JSON.stringify(v) : v);
  const conf: Record<string, string | number> = {
    bind: "127.0.0.1",
    port: options.port,
    "protected-mode": "yes",
    save: "",
    appendonly: "no",
    dir: options.dir,
    daemonize: options.daemonize ? "yes" : "no",
    pidfile: path.join(options.dir, "redis.pid"),
    logfile: path.join(options.dir, "redis.log"),
    aclfile: path.join(options.dir, "users.acl"),
    "notify-keyspace-events": "KA",
    ...options.settings,
  };
  return (
    Object.entries(conf)
      .map(([k, v]) => `${k} ${quote(v)}`)
      .join("\n") + "\n"
  );
}

/**
 * The ACL file: `default` off with no permissions, `admin` with everything (password hashed), then
 * every other user of `existing` (the file a previous run of the server saved) as it was. Pure.
 * Lines of `existing` that are not `user` lines are dropped (Redis writes none).
 */
export function renderAclFile(adminPassword: string, existing = ""): string {
  const hash = createHash("sha256").update(adminPassword).digest("hex");
  const kept = existing
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => {
      const m = /^user\s+(\S+)\s/.exec(line);
      return m !== null && m[1] !== "default" && m[1] !== REDIS_ADMIN_USER;
    });
  return [`user default off resetchannels -@all`, `user ${REDIS_ADMIN_USER} on #${hash} ~* &* +@all`, ...kept].join("\n") + "\n";
}

/** The user names of an ACL file (`renderAclFile` output or Redis' own `ACL SAVE`). Pure. */
export function aclFileUsers(text: string): string[] {
  return text.split("\n").flatMap((line) => /^user\s+(\S+)\s/.exec(line.trim())?.[1] ?? []);
}

function pidFromFile(dir: string): number | undefined {
  const file = path.join(dir, "redis.pid");
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, "utf8").trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Starts redis-server; resolves when it accepts connections. */
export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  const port = options.port ?? (await freePort());
  const dir = options.dir ?? mkdtempSync(path.join(os.tmpdir(), "alphapulse-redis-"));
  const daemonize = options.daemonize ?? false;
  const adminPassword = options.adminPassword ?? randomBytes(24).toString("base64url");
  const confPath = path.join(dir, "redis.conf");
  writeFileSync(confPath, renderRedisConfig({ port, dir, daemonize, settings: options.settings }), { mode: 0o600 });
  const aclPath = path.join(dir, "users.acl");
  const savedUsers = existsSync(aclPath) ? readFileSync(aclPath, "utf8") : "";
  writeFileSync(aclPath, renderAclFile(adminPassword, savedUsers), { mode: 0o600 });
  const program = options.program ?? process.env.REDIS_SERVER ?? "redis-server";

  let child: ChildProcess | undefined;
  let exited: string | undefined;
  child = spawn(program, [confPath], { stdio: "ignore", detached: daemonize });
  child.on("error", (err) => (exited = err.message));
  child.on("exit", (code, signal) => {
    if (!daemonize || code !== 0) exited = `redis-server exited (${signal ?? code}); see ${path.join(dir, "redis.log")}`;
  });
  if (daemonize) {
    child.unref();
    child = undefined;
  }
  await waitFor(`redis-server on port ${port}`, async () => {
    if (exited) throw new Error(exited);
    return isListening(port);
  });

  const host = "127.0.0.1";
  return {
    host,
    port,
    dir,
    adminUser: REDIS_ADMIN_USER,
    adminPassword,
    adminUrl: redisUrl(host, port, REDIS_ADMIN_USER, adminPassword),
    urlFor: (user, password) => redisUrl(host, port, user, password),
    async stop({ removeDir = false } = {}) {
      const pid = child?.pid ?? pidFromFile(dir);
      if (pid !== undefined) await terminateServer("redis-server", pid, port);
      if (removeDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Stops a daemonized server started with `startRedis({ dir, daemonize: true })`. */
export async function stopRedisAt(dir: string, options: { removeDir?: boolean } = {}): Promise<void> {
  const pid = pidFromFile(dir);
  const portLine = existsSync(path.join(dir, "redis.conf"))
    ? /^port (\d+)$/m.exec(readFileSync(path.join(dir, "redis.conf"), "utf8"))
    : null;
  if (pid !== undefined && portLine) await terminateServer("redis-server", pid, Number(portLine[1]));
  if (options.removeDir) rmSync(dir, { recursive: true, force: true });
}
