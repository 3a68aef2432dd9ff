/**
 * The long-lived servers of one local stack ("region"): its own PostgreSQL cluster, Redis and (when
 * lib/local/pgbouncer-server.ts lands) PgBouncer, on the loopback ports of the stack's config, with
 * their data under `.pulumi-local/<stack>/`. Starting is idempotent: a server already running from
 * that directory is left alone; a port held by anything else is an error that names it.
 *
 * They outlive the process that starts them (pg_ctl and daemonized redis-server), so `npm run local`
 * can exit and the developer keeps a running region; `stopRegionServices` ends them.
 */
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import type { LocalStackConfig } from "../local-stack-config";
import { postgresBinDir, startPostgres } from "./postgres-server";
import { ensureServiceDirectory, isListening, runServerProgram, runsAsRoot } from "./processes";
import { startRedis, stopRedisAt, REDIS_ADMIN_USER, redisUrl } from "./redis-server";

/** postgresql.conf settings of a local region: durable (these clusters keep their data), small. */
export const LOCAL_REGION_POSTGRES_SETTINGS: Record<string, string | number> = {
  max_connections: 200,
  shared_buffers: "128MB",
  log_min_duration_statement: -1,
};

export type ServiceState = "started" | "running" | "stopped" | "unavailable";

export interface ServiceStatus {
  name: "postgres" | "redis" | "pgbouncer";
  port: number;
  state: ServiceState;
  /** Where its data, config and log live. */
  dir?: string;
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
export function regionDataDir(repoRoot: string, stack: string, config: Pick<LocalStackConfig, "dataDir">): string {
  if (config.dataDir) return path.resolve(repoRoot, config.dataDir);
  const preferred = path.join(repoRoot, ".pulumi-local", stack);
  if (!runsAsRoot || postgresCanReach(repoRoot)) return preferred;
  const hash = createHash("sha256").update(repoRoot).digest("hex").slice(0, 8);
  return path.join("/var/tmp", "alphapulse-local", hash, stack);
}

function postgresCanReach(dir: string): boolean {
  return spawnSync("runuser", ["-u", "postgres", "--", "test", "-x", dir], { stdio: "ignore" }).status === 0;
}

async function postgresDataDirectoryOnPort(port: number): Promise<string | undefined> {
  const client = new pg.Client({ host: "127.0.0.1", port, user: "postgres", database: "postgres", connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    return (await client.query("SHOW data_directory")).rows[0].data_directory as string;
  } catch {
    return undefined;
  } finally {
    await client.end().catch(() => {});
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
  const services: ServiceStatus[] = [];

  // PostgreSQL: one cluster per region.
  const pgDir = path.join(dataDir, "postgres");
  const pgData = path.join(pgDir, "data");
  const pgPort = config.postgres.port;
  const running = await postgresDataDirectoryOnPort(pgPort);
  if (running !== undefined && path.resolve(running) === path.resolve(pgData)) {
    services.push({ name: "postgres", port: pgPort, state: "running", dir: pgDir });
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
    services.push({ name: "postgres", port: pgPort, state: "started", dir: pgDir });
  }

  // Redis: a daemonized server with its files (config, ACL users, pid, log) in its own directory.
  const redisDir = path.join(dataDir, "redis");
  mkdirSync(redisDir, { recursive: true, mode: 0o700 });
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
    await startRedis({ port: redisPort, dir: redisDir, daemonize: true, adminPassword: redisPassword });
    services.push({ name: "redis", port: redisPort, state: "started", dir: redisDir });
  }

  // PgBouncer: lib/local/pgbouncer-server.ts (issue 4) is not in this checkout yet.
  services.push({
    name: "pgbouncer",
    port: config.pgbouncer.port,
    state: "unavailable",
    detail: "lib/local/pgbouncer-server.ts not available yet",
  });

  return {
    stack,
    region: config.region,
    dataDir,
    services,
    postgresAdminUrl: `postgres://postgres@127.0.0.1:${pgPort}/postgres`,
    redisAdminUrl: redisUrl("127.0.0.1", redisPort, REDIS_ADMIN_USER, redisPassword),
  };
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
    },
    {
      name: "redis",
      port: config.redis.port,
      state: pidAlive(path.join(redisDir, "redis.pid")) && (await isListening(config.redis.port)) ? "running" : "stopped",
      dir: redisDir,
    },
    { name: "pgbouncer", port: config.pgbouncer.port, state: "unavailable", detail: "lib/local/pgbouncer-server.ts not available yet" },
  ];
}

/** For messages: the directory shown relative to the home directory when it is under it. */
export function displayPath(dir: string): string {
  const home = os.homedir();
  return dir.startsWith(home + path.sep) ? `~/${path.relative(home, dir)}` : dir;
}
