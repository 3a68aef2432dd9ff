/**
 * A PgBouncer on loopback, started from the rendered config (lib/pgbouncer/config.ts) for the tests,
 * the benchmarks and the local stacks. PgBouncer refuses to run as root: when we are root it runs as
 * the `postgres` system user (like the PostgreSQL programs, lib/local/processes.ts), and its
 * directory and files belong to that user.
 *
 * Foreground by default (a child of this process, stopped with `stop()`); `daemonize: true` detaches
 * it for the local stacks, stopped later with `stopPgbouncerAt(dir)`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { renderAuthFile, type AuthUser } from "../pgbouncer/auth";
import { renderPgbouncerIni, type PgbouncerConfigInput } from "../pgbouncer/config";
import { ensureServiceDirectory, freePort, isListening, runsAsRoot, serviceDirectory, terminateServer, waitFor } from "./processes";

export const PGBOUNCER_INI = "pgbouncer.ini";
export const PGBOUNCER_AUTH_FILE = "userlist.txt";
export const PGBOUNCER_LOG = "pgbouncer.log";
export const PGBOUNCER_PID = "pgbouncer.pid";

/** The pgbouncer program: `PGBOUNCER`, else Debian's /usr/sbin/pgbouncer, else PATH. */
export function pgbouncerProgram(): string {
  if (process.env.PGBOUNCER) return process.env.PGBOUNCER;
  return existsSync("/usr/sbin/pgbouncer") ? "/usr/sbin/pgbouncer" : "pgbouncer";
}

export interface PgbouncerServerOptions {
  /** The [databases] entries (host/port of the PostgreSQL behind it). */
  databases: PgbouncerConfigInput["databases"];
  /** Auth file entries: who may log in (SCRAM verifiers). */
  users: readonly AuthUser[];
  /** Port on 127.0.0.1; a free one when omitted. */
  port?: number;
  /** Working directory (config, auth file, log, pid); a fresh temporary one when omitted. */
  dir?: string;
  /** Any other config (pool sizes, timeouts, console users), validated like everything else. */
  settings?: Omit<PgbouncerConfigInput, "databases" | "authFile" | "listenPort" | "logfile" | "pidfile">;
  /** Detach so PgBouncer outlives this process (local stacks). @default false */
  daemonize?: boolean;
  /**
   * Negative controls only: rewrites the rendered ini before it is written, to run a deliberately
   * broken setup (e.g. an empty server_reset_query) that the config schema refuses.
   */
  unsafeRewriteIni?: (ini: string) => string;
}

export interface PgbouncerServer {
  host: string;
  port: number;
  dir: string;
  iniPath: string;
  /** `postgres://user:password@127.0.0.1:<port>/<database>` */
  urlFor(database: string, user: string, password: string): string;
  /** Starts it again (same port, same files) after `stop()`. */
  start(): Promise<void>;
  /** SIGTERM: immediate shutdown, clients are disconnected. */
  stop(options?: { removeDir?: boolean }): Promise<void>;
  /** SIGHUP: re-reads the ini and the auth file. */
  reload(): void;
  /** The end of the log, for failure messages. */
  logTail(lines?: number): string;
}

/** Writes the config files into `dir` (owned by the service user when we are root). */
export function writePgbouncerFiles(dir: string, ini: string, users: readonly AuthUser[]): { iniPath: string; authPath: string } {
  const iniPath = path.join(dir, PGBOUNCER_INI);
  const authPath = path.join(dir, PGBOUNCER_AUTH_FILE);
  const auth = renderAuthFile(users);
  writeFileSync(iniPath, ini, { mode: 0o600 });
  writeFileSync(authPath, auth, { mode: 0o600 });
  if (runsAsRoot) {
    const { uid, gid } = statSync(dir);
    chownSync(iniPath, uid, gid);
    chownSync(authPath, uid, gid);
  }
  return { iniPath, authPath };
}

function pidFromFile(dir: string): number | undefined {
  const file = path.join(dir, PGBOUNCER_PID);
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, "utf8").trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function tail(file: string, lines: number): string {
  if (!existsSync(file)) return "(no log)";
  return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
}

/** Renders the config into a directory and starts PgBouncer; resolves when it accepts connections. */
export async function startPgbouncer(options: PgbouncerServerOptions): Promise<PgbouncerServer> {
  const port = options.port ?? (await freePort());
  const dir = options.dir ? ensureServiceDirectory(options.dir) : serviceDirectory("alphapulse-pgbouncer");
  const daemonize = options.daemonize ?? false;
  const logPath = path.join(dir, PGBOUNCER_LOG);
  const rendered = renderPgbouncerIni({
    ...options.settings,
    databases: options.databases,
    listenPort: port,
    authFile: path.join(dir, PGBOUNCER_AUTH_FILE),
    logfile: logPath,
    pidfile: path.join(dir, PGBOUNCER_PID),
  });
  const ini = options.unsafeRewriteIni ? options.unsafeRewriteIni(rendered) : rendered;
  const { iniPath } = writePgbouncerFiles(dir, ini, options.users);
  const owner = runsAsRoot ? statSync(dir) : undefined;

  let child: ChildProcess | undefined;
  const launch = async () => {
    if (await isListening(port)) throw new Error(`port ${port} is already in use; cannot start pgbouncer there`);
    let exited: string | undefined;
    const args = daemonize ? ["-d", iniPath] : [iniPath];
    const proc = spawn(pgbouncerProgram(), args, {
      stdio: "ignore",
      detached: daemonize,
      cwd: dir,
      ...(owner ? { uid: owner.uid, gid: owner.gid } : {}),
    });
    proc.on("error", (err) => (exited = err.message));
    proc.on("exit", (code, signal) => {
      if (!daemonize || code !== 0) exited = `pgbouncer exited (${signal ?? code})\n${tail(logPath, 20)}`;
    });
    if (daemonize) proc.unref();
    else child = proc;
    await waitFor(`pgbouncer on port ${port}`, async () => {
      if (exited) throw new Error(exited);
      return isListening(port);
    });
  };
  try {
    await launch();
  } catch (err) {
    if (!options.dir) rmSync(dir, { recursive: true, force: true }); // a directory we made, for nothing
    throw err;
  }

  const host = "127.0.0.1";
  const server: PgbouncerServer = {
    host,
    port,
    dir,
    iniPath,
    urlFor: (database, user, password) =>
      `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}:${port}/${encodeURIComponent(database)}`,
    start: launch,
    async stop({ removeDir = false } = {}) {
      const pid = child && child.exitCode === null && child.signalCode === null ? child.pid : pidFromFile(dir);
      if (pid !== undefined) await terminateServer("pgbouncer", pid, port);
      child = undefined;
      if (removeDir) rmSync(dir, { recursive: true, force: true });
    },
    reload() {
      const pid = child?.pid ?? pidFromFile(dir);
      if (pid !== undefined) process.kill(pid, "SIGHUP");
    },
    logTail: (lines = 20) => tail(logPath, lines),
  };
  return server;
}

/** Stops a daemonized PgBouncer started with `startPgbouncer({ dir, daemonize: true })`. */
export async function stopPgbouncerAt(dir: string, options: { removeDir?: boolean } = {}): Promise<void> {
  const pid = pidFromFile(dir);
  const iniPath = path.join(dir, PGBOUNCER_INI);
  const portLine = existsSync(iniPath) ? /^listen_port = (\d+)$/m.exec(readFileSync(iniPath, "utf8")) : null;
  if (pid !== undefined && portLine) await terminateServer("pgbouncer", pid, Number(portLine[1]));
  if (options.removeDir) rmSync(dir, { recursive: true, force: true });
}
