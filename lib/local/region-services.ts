/**
 * The long-lived servers of one local stack ("region"): its own PostgreSQL cluster, Redis and
 * PgBouncer, on the loopback ports of the stack's config, with their data under
 * `.pulumi-local/<stack>/`. Starting is idempotent: a server already running from that directory is
 * left alone; a port held by anything else is an error that names it.
 *
 * PostgreSQL and Redis come first (`startRegionServices`, before `pulumi up`); PgBouncer after it
 * (`startRegionPgbouncer`), because its auth file carries the SCRAM verifiers of the login roles
 * that the stack's DatabaseSchema creates.
 *
 * A stack with `transport: executor` also gets its database executor (lib/local/executor-server.ts),
 * started with PostgreSQL and Redis: the stack's providers call it during `pulumi up`.
 *
 * They outlive the process that starts them (pg_ctl, daemonized redis-server, a detached executor),
 * so `npm run local` can exit and the developer keeps a running region; `stopRegionServices` ends them.
 */
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { withConnection } from "../db/client";
import type { LocalStackConfig } from "../stack-config/local";
import { SLOW_LOG_SETTINGS } from "../observability/slow-log";
import { postgresBinDir, postgresLogFile, startPostgres } from "./postgres-server";
import { ensureReloadableSettings } from "./postgres-settings";
import { ensurePrivateDirectory, ensureServiceDirectory, isListening, runServerProgram, runsAsRoot } from "./processes";
import { startRedis, stopRedisAt, REDIS_ADMIN_USER, redisUrl } from "./redis-server";
import { PGBOUNCER_AUTH_FILE, PGBOUNCER_PID, startPgbouncer, stopPgbouncerAt, writePgbouncerFiles } from "./pgbouncer-server";
import { authFileUsers, reconcileAuthEntries, type AuthEntriesPlan, type LoginRoleState } from "../pgbouncer/auth";
import { localPgbouncerConfig, renderPgbouncerIni } from "../pgbouncer/config";
import { ROLES } from "../schema/roles";
import { executorProcessStatus, localExecutorFunctionName, startExecutorProcess, stopExecutorAt } from "./executor-server";
import { CONTEXT_KEY_FILE_ENV } from "../tenant-context/key-file";

/**
 * postgresql.conf settings of a local region: durable (these clusters keep their data), small, and
 * logging slow statements with the tenant tag (SLOW_LOG_SETTINGS), so `tenancy slow --log-file
 * <the postgres service's log>` answers per tenant. The logging settings are also brought about on
 * a cluster created before them, by a reload (no restart).
 */
export const LOCAL_REGION_POSTGRES_SETTINGS: Record<string, string | number> = {
  max_connections: 200,
  shared_buffers: "128MB",
  ...SLOW_LOG_SETTINGS,
};

/**
 * redis.conf settings of a local region: its keys are tenant data (docs/data-safety.md), so they
 * survive a restart (append-only file, fsync every second); tenant users survive in the ACL file
 * (lib/local/redis-server.ts).
 */
export const LOCAL_REGION_REDIS_SETTINGS: Record<string, string | number> = {
  appendonly: "yes",
  appendfsync: "everysec",
};

export type ServiceState = "started" | "running" | "stopped";

export interface ServiceStatus {
  name: "postgres" | "redis" | "pgbouncer" | "executor";
  port: number;
  state: ServiceState;
  /** Where its data, config and log live. */
  dir?: string;
  /** Its log file (PostgreSQL: what `tenancy slow --log-file` reads). */
  log?: string;
  detail?: string;
}

export interface RegionServices {
  stack: string;
  region: string;
  dataDir: string;
  services: ServiceStatus[];
  /** Superuser URL of the region's cluster (trust on loopback). */
  postgresAdminUrl: string;
  /** Redis admin URL (carries the generated password; local use only). */
  redisAdminUrl: string;
}

/**
 * Where a stack's servers keep their data: `dataDir` from the stack config, else
 * `<repo>/.pulumi-local/<stack>`. PostgreSQL runs as the `postgres` user when we are root, and that
 * user must be able to reach the directory; when a parent directory shuts it out (a checkout under
 * /root), the data goes to `/var/tmp/alphapulse-local/<hash of the checkout>/<stack>` instead.
 */
/** Where the data goes when the checkout shuts out the `postgres` user (see regionDataDir). */
const FALLBACK_DATA_ROOT = path.join("/var/tmp", "alphapulse-local");

export function regionDataDir(repoRoot: string, stack: string, config: Pick<LocalStackConfig, "dataDir">): string {
  if (config.dataDir) return path.resolve(repoRoot, config.dataDir);
  const preferred = path.join(repoRoot, ".pulumi-local", stack);
  if (!runsAsRoot || postgresCanReach(repoRoot)) return preferred;
  const hash = createHash("sha256").update(repoRoot).digest("hex").slice(0, 8);
  return path.join(FALLBACK_DATA_ROOT, hash, stack);
}

/**
 * A data directory under FALLBACK_DATA_ROOT that an earlier version created 0700 (with its parents):
 * made traversable again, so `postgres` reaches its cluster inside. The secrets inside keep their own
 * modes (the redis directory 0700, files 0600).
 */
function repairFallbackDataDir(dataDir: string): void {
  if (!runsAsRoot || !dataDir.startsWith(FALLBACK_DATA_ROOT + path.sep)) return;
  const parts = path.relative(FALLBACK_DATA_ROOT, dataDir).split(path.sep);
  for (let i = 1; i <= parts.length; i++) chmodSync(path.join(FALLBACK_DATA_ROOT, ...parts.slice(0, i)), 0o755);
}

function postgresCanReach(dir: string): boolean {
  return spawnSync("runuser", ["-u", "postgres", "--", "test", "-x", dir], { stdio: "ignore" }).status === 0;
}

async function postgresDataDirectoryOnPort(port: number): Promise<string | undefined> {
  try {
    return await withConnection(
      { host: "127.0.0.1", port, user: "postgres", database: "postgres", connectionTimeoutMillis: 3000 },
      async (client) => (await client.query("SHOW data_directory")).rows[0].data_directory as string,
    );
  } catch {
    return undefined;
  }
}

function pidAlive(file: string): boolean {
  if (!existsSync(file)) return false;
  const pid = Number(readFileSync(file, "utf8").split("\n")[0].trim());
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The Redis admin password of a region: generated once, kept next to the server's files (0600). */
function redisAdminPassword(dir: string): string {
  const file = path.join(dir, "admin-password");
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  const password = randomBytes(24).toString("base64url");
  writeFileSync(file, password + "\n", { mode: 0o600 });
  return password;
}

/** Where a local region's executor keeps offboarding exports (`transport: executor`; lib/tenant-stacks/offboarding.ts). */
export function regionExportDir(dataDir: string): string {
  return path.join(dataDir, "exports");
}

/** Where a local region's services find their tenant-context key (lib/tenant-context/key-file.ts). */
export function contextKeyFile(dataDir: string): string {
  return path.join(dataDir, "context-key.json");
}

/**
 * What a shell needs to point `tenancy` at a local region: the operator URLs of its PostgreSQL
 * (superuser over loopback, trust) and Redis (the admin user; its password is read from the
 * region's data directory, so REDIS_URL is absent until the region has been started once), and
 * the path of the services' tenant-context key file (absent until `npm run local` wrote it).
 */
export function regionEnvironment(repoRoot: string, stack: string, config: LocalStackConfig): Record<string, string> {
  const env: Record<string, string> = {
    DATABASE_URL: `postgres://postgres@127.0.0.1:${config.postgres.port}/${config.postgres.database}`,
  };
  const password = existingRedisAdminPassword(repoRoot, stack, config);
  if (password !== undefined) env.REDIS_URL = redisUrl("127.0.0.1", config.redis.port, REDIS_ADMIN_USER, password);
  // The services' key (0600), written by `npm run local` after each up: its path, never its content.
  const keyFile = contextKeyFile(regionDataDir(repoRoot, stack, config));
  if (existsSync(keyFile)) env[CONTEXT_KEY_FILE_ENV] = keyFile;
  return env;
}

/** The region's Redis admin password if it was generated already (see `regionRedisAdminPassword`). */
function existingRedisAdminPassword(repoRoot: string, stack: string, config: LocalStackConfig): string | undefined {
  const file = path.join(regionDataDir(repoRoot, stack, config), "redis", "admin-password");
  return existsSync(file) ? readFileSync(file, "utf8").trim() : undefined;
}

/**
 * The Redis admin password of a local region, generated once by whichever comes first — the region's
 * services (`startRegionServices`) or its platform stack's program — and kept in the region's data
 * directory (0600), where the other finds it. The local platform stack exports it as a secret output
 * (lib/platform/contract.ts): readers get the value, never where it is kept on this machine.
 */
export function regionRedisAdminPassword(repoRoot: string, stack: string, config: LocalStackConfig): string {
  const dir = ensurePrivateDirectory(path.join(regionDataDir(repoRoot, stack, config), "redis"));
  return redisAdminPassword(dir);
}

/** `export NAME='value'` lines for a POSIX shell (values single-quoted). */
export function shellExports(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([name, value]) => `export ${name}='${value.replace(/'/g, `'\\''`)}'`)
    .join("\n");
}

export interface StartOptions {
  onProgress?: (message: string) => void;
}

/** Starts whatever of the region's servers is not running yet; resolves when all accept connections. */
export async function startRegionServices(
  repoRoot: string,
  stack: string,
  config: LocalStackConfig,
  options: StartOptions = {},
): Promise<RegionServices> {
  const progress = options.onProgress ?? (() => {});
  const dataDir = regionDataDir(repoRoot, stack, config);
  mkdirSync(dataDir, { recursive: true });
  repairFallbackDataDir(dataDir);
  const services: ServiceStatus[] = [];

  // PostgreSQL: one cluster per region.
  const pgDir = path.join(dataDir, "postgres");
  const pgData = path.join(pgDir, "data");
  const pgPort = config.postgres.port;
  const running = await postgresDataDirectoryOnPort(pgPort);
  const pgLog = postgresLogFile(pgData);
  if (running !== undefined && path.resolve(running) === path.resolve(pgData)) {
    services.push({ name: "postgres", port: pgPort, state: "running", dir: pgDir, log: pgLog });
  } else if (running !== undefined || (await isListening(pgPort))) {
    throw new Error(
      `${stack}: port ${pgPort} (postgres.port) is taken by another server${running ? ` (data directory ${running})` : ""}; stop it or change the port in stacks/Pulumi.${stack}.yaml`,
    );
  } else {
    const configured = existsSync(path.join(pgData, "postgresql.conf"))
      ? /^port = (\d+)$/m.exec(readFileSync(path.join(pgData, "postgresql.conf"), "utf8"))
      : null;
    if (configured && Number(configured[1]) !== pgPort) {
      throw new Error(
        `${stack}: the cluster in ${pgData} was created for port ${configured[1]}, the stack now says ${pgPort}; reset the region (npm run local -- reset) or restore the port`,
      );
    }
    progress(`${stack}: starting PostgreSQL on 127.0.0.1:${pgPort} (${pgData})`);
    ensureServiceDirectory(pgDir); // the server writes its log here as the postgres user
    await startPostgres({ dataDir: pgData, port: pgPort, settings: LOCAL_REGION_POSTGRES_SETTINGS });
    services.push({ name: "postgres", port: pgPort, state: "started", dir: pgDir, log: pgLog });
  }
  // A cluster created before the slow-statement logging gets it by a reload; a second run changes nothing.
  const reloaded = await ensureReloadableSettings(`postgres://postgres@127.0.0.1:${pgPort}/postgres`, SLOW_LOG_SETTINGS);
  if (reloaded.length) {
    progress(`${stack}: PostgreSQL settings ${reloaded.join(", ")} applied by a reload`);
    services[0].detail = `reloaded: ${reloaded.join(", ")}`;
  }

  // Redis: a daemonized server with its files (config, ACL users, pid, log) in its own directory.
  const redisDir = ensurePrivateDirectory(path.join(dataDir, "redis"));
  const redisPassword = redisAdminPassword(redisDir);
  const redisPort = config.redis.port;
  if (pidAlive(path.join(redisDir, "redis.pid")) && (await isListening(redisPort))) {
    services.push({ name: "redis", port: redisPort, state: "running", dir: redisDir });
  } else if (await isListening(redisPort)) {
    throw new Error(
      `${stack}: port ${redisPort} (redis.port) is taken by another server; stop it or change the port in stacks/Pulumi.${stack}.yaml`,
    );
  } else {
    progress(`${stack}: starting Redis on 127.0.0.1:${redisPort}`);
    await startRedis({
      port: redisPort,
      dir: redisDir,
      daemonize: true,
      adminPassword: redisPassword,
      settings: LOCAL_REGION_REDIS_SETTINGS,
    });
    services.push({ name: "redis", port: redisPort, state: "started", dir: redisDir });
  }

  // The database executor, for a stack that reaches PostgreSQL through it (ADR-004).
  if (config.transport === "executor") {
    const executor = await startExecutorProcess(repoRoot, path.join(dataDir, "executor"), {
      functionName: localExecutorFunctionName(stack),
      port: config.executor!.port,
      postgresPort: pgPort,
      exportDir: regionExportDir(dataDir),
    }).catch((err: Error) => {
      throw new Error(`${stack}: ${err.message}`);
    });
    if (executor.state === "started") progress(`${stack}: started the database executor on 127.0.0.1:${executor.port}`);
    services.push({ name: "executor", port: executor.port, state: executor.state, dir: executor.dir, log: executor.log });
  }

  // PgBouncer: after `pulumi up` (startRegionPgbouncer); reported as it is now.
  services.push(await pgbouncerStatus(dataDir, config));

  return {
    stack,
    region: config.region,
    dataDir,
    services,
    postgresAdminUrl: `postgres://postgres@127.0.0.1:${pgPort}/postgres`,
    redisAdminUrl: redisUrl("127.0.0.1", redisPort, REDIS_ADMIN_USER, redisPassword),
  };
}

/** The login roles that PgBouncer admits (the RLS-subject roles; never a superuser or the migrator). */
export const PGBOUNCER_LOCAL_USERS = [ROLES.app, ROLES.readonly] as const;

async function pgbouncerStatus(dataDir: string, config: LocalStackConfig): Promise<ServiceStatus> {
  const dir = path.join(dataDir, "pgbouncer");
  const running = pidAlive(path.join(dir, PGBOUNCER_PID)) && (await isListening(config.pgbouncer.port));
  return { name: "pgbouncer", port: config.pgbouncer.port, state: running ? "running" : "stopped", dir };
}

/**
 * Starts the region's PgBouncer in front of `database` (session pooling, the repository's rendered
 * config), admitting the login roles with the SCRAM verifiers PostgreSQL holds for them. Already
 * running: the files are rendered again and, when they changed (new passwords), PgBouncer reloads.
 */
export async function startRegionPgbouncer(
  repoRoot: string,
  stack: string,
  config: LocalStackConfig,
  database: string,
  options: StartOptions = {},
): Promise<ServiceStatus> {
  const progress = options.onProgress ?? (() => {});
  const dataDir = regionDataDir(repoRoot, stack, config);
  const dir = ensureServiceDirectory(path.join(dataDir, "pgbouncer"));
  const authPath = path.join(dir, PGBOUNCER_AUTH_FILE);
  const previous = existsSync(authPath) ? authFileUsers(readFileSync(authPath, "utf8")) : [];
  const plan = await authEntries(config.postgres.port, previous);
  const changes = [
    ...(previous.length ? plan.added.map((name) => `+${name}`) : []),
    ...plan.removed.map((r) => `-${r.name} (${r.reason})`),
  ];
  if (changes.length) progress(`${stack}: PgBouncer auth file: ${changes.join(", ")}`);
  const users = plan.users;
  const local = localPgbouncerConfig({ database, host: "127.0.0.1", port: config.postgres.port, dir, listenPort: config.pgbouncer.port });
  const status = await pgbouncerStatus(dataDir, config);
  const detail = changes.length ? `auth file: ${changes.join(", ")}` : undefined;
  if (status.state === "running") {
    const files = () => [PGBOUNCER_AUTH_FILE, "pgbouncer.ini"].map((f) => readFileSync(path.join(dir, f), "utf8")).join("\n");
    const before = files();
    writePgbouncerFiles(dir, renderPgbouncerIni(local), users);
    if (files() !== before) {
      progress(`${stack}: PgBouncer config changed, reloading`);
      process.kill(Number(readFileSync(path.join(dir, PGBOUNCER_PID), "utf8").trim()), "SIGHUP");
    }
    return { ...status, ...(detail ? { detail } : {}) };
  }
  if (await isListening(config.pgbouncer.port)) {
    throw new Error(
      `${stack}: port ${config.pgbouncer.port} (pgbouncer.port) is taken by another server; stop it or change the port in stacks/Pulumi.${stack}.yaml`,
    );
  }
  progress(`${stack}: starting PgBouncer on 127.0.0.1:${config.pgbouncer.port} → ${database}`);
  await startPgbouncer({
    databases: local.databases,
    users,
    port: config.pgbouncer.port,
    dir,
    daemonize: true,
    settings: { listenAddr: local.listenAddr, defaultPoolSize: local.defaultPoolSize },
  });
  return { name: "pgbouncer", port: config.pgbouncer.port, state: "started", dir, ...(detail ? { detail } : {}) };
}

/**
 * The auth file's entries (lib/pgbouncer/auth.ts reconcileAuthEntries): the platform's login roles
 * (PGBOUNCER_LOCAL_USERS) with the verifiers PostgreSQL holds, plus whatever entry of the previous
 * file still can log in. Refuses when no platform role has a SCRAM password yet.
 */
async function authEntries(pgPort: number, previous: readonly string[]): Promise<AuthEntriesPlan> {
  return withConnection({ host: "127.0.0.1", port: pgPort, user: "postgres", database: "postgres" }, async (client) => {
    const { rows } = await client.query(
      `SELECT rolname, rolcanlogin AS "canLogin", rolpassword AS password FROM pg_authid WHERE rolname = ANY($1)`,
      [[...PGBOUNCER_LOCAL_USERS, ...previous]],
    );
    const roles = new Map<string, LoginRoleState>(
      rows.map((r: { rolname: string; canLogin: boolean; password: string | null }) => [r.rolname, r]),
    );
    const plan = reconcileAuthEntries(previous, PGBOUNCER_LOCAL_USERS, roles);
    if (!plan.users.some((u) => (PGBOUNCER_LOCAL_USERS as readonly string[]).includes(u.name)))
      throw new Error(`no login role of ${PGBOUNCER_LOCAL_USERS.join(", ")} has a SCRAM password on port ${pgPort}: run pulumi up first`);
    return plan;
  });
}

/** Stops the region's servers (those started from its data directory); `removeData` deletes the directory too. */
export async function stopRegionServices(
  repoRoot: string,
  stack: string,
  config: LocalStackConfig,
  options: { removeData?: boolean } = {},
): Promise<ServiceStatus[]> {
  const dataDir = regionDataDir(repoRoot, stack, config);
  const out: ServiceStatus[] = [];
  // The executor first: nothing should call PostgreSQL through it while it stops.
  const executorDir = path.join(dataDir, "executor");
  if (existsSync(executorDir)) {
    const port = (await executorProcessStatus(executorDir))?.port;
    await stopExecutorAt(executorDir);
    out.push({ name: "executor", port: port ?? config.executor?.port ?? 0, state: "stopped", dir: executorDir });
  }
  const pgbouncerDir = path.join(dataDir, "pgbouncer");
  if (existsSync(pgbouncerDir)) await stopPgbouncerAt(pgbouncerDir);
  out.push({ name: "pgbouncer", port: config.pgbouncer.port, state: "stopped", dir: pgbouncerDir });
  const redisDir = path.join(dataDir, "redis");
  if (existsSync(redisDir)) await stopRedisAt(redisDir);
  out.push({ name: "redis", port: config.redis.port, state: "stopped", dir: redisDir });
  const pgData = path.join(dataDir, "postgres", "data");
  if (existsSync(path.join(pgData, "postmaster.pid"))) {
    const pgCtl = postgresBinDir() ? path.join(postgresBinDir(), "pg_ctl") : "pg_ctl";
    await runServerProgram(pgCtl, ["-D", pgData, "-m", "fast", "-w", "stop"]).catch((err: Error) => {
      if (!/not running|No such file/i.test(err.message)) throw err;
    });
  }
  out.push({ name: "postgres", port: config.postgres.port, state: "stopped", dir: path.join(dataDir, "postgres") });
  if (options.removeData) rmSync(dataDir, { recursive: true, force: true });
  return out;
}

/** Which of the region's servers are up, without starting anything. */
export async function regionServicesStatus(repoRoot: string, stack: string, config: LocalStackConfig): Promise<ServiceStatus[]> {
  const dataDir = regionDataDir(repoRoot, stack, config);
  const pgData = path.join(dataDir, "postgres", "data");
  const running = await postgresDataDirectoryOnPort(config.postgres.port);
  const redisDir = path.join(dataDir, "redis");
  return [
    {
      name: "postgres",
      port: config.postgres.port,
      state: running !== undefined && path.resolve(running) === path.resolve(pgData) ? "running" : "stopped",
      dir: path.join(dataDir, "postgres"),
      log: postgresLogFile(pgData),
    },
    {
      name: "redis",
      port: config.redis.port,
      state: pidAlive(path.join(redisDir, "redis.pid")) && (await isListening(config.redis.port)) ? "running" : "stopped",
      dir: redisDir,
    },
    await pgbouncerStatus(dataDir, config),
    ...(await executorServiceStatus(dataDir, config)),
  ];
}

/** The executor's status when the stack uses one or one was started for it (none otherwise). */
async function executorServiceStatus(dataDir: string, config: LocalStackConfig): Promise<ServiceStatus[]> {
  const dir = path.join(dataDir, "executor");
  const status = await executorProcessStatus(dir);
  if (status) return [{ name: "executor", port: status.port, state: status.state, dir, log: status.log }];
  return config.transport === "executor" ? [{ name: "executor", port: config.executor!.port, state: "stopped", dir }] : [];
}

/** For messages: the directory shown relative to the home directory when it is under it. */
export function displayPath(dir: string): string {
  const home = os.homedir();
  return dir.startsWith(home + path.sep) ? `~/${path.relative(home, dir)}` : dir;
}
