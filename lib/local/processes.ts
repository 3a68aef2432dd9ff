/**
 * Small helpers for the local servers (PostgreSQL, PgBouncer, Redis) that the tests, the benchmarks
 * and the local stacks start on loopback. Nothing here talks to the network beyond 127.0.0.1.
 */
import { execFile, spawnSync } from "node:child_process";
import { chownSync, mkdirSync, mkdtempSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/** A free TCP port on 127.0.0.1, as the kernel hands it out. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** True when a TCP connection to 127.0.0.1:port succeeds. */
export function isListening(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Polls `check` until it returns true or `timeoutMs` passes. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/**
 * PostgreSQL's server programs refuse to run as root. When we are root, they run as the
 * `postgres` system user (present wherever the Debian server package is installed).
 */
export const runsAsRoot = typeof process.getuid === "function" && process.getuid() === 0;

function systemUser(name: string): { uid: number; gid: number } {
  const id = (flag: string) => Number(spawnSync("id", [flag, name], { encoding: "utf8" }).stdout.trim());
  return { uid: id("-u"), gid: id("-g") };
}

/**
 * Runs a server program, as `postgres` when we are root. Resolves with stdout; rejects with stderr
 * in the message. As root it runs from `/`: the service user may not be able to enter our working
 * directory (a clone in a `mktemp -d` directory is 0700), and pg_ctl refuses to start there. Pass
 * absolute paths.
 */
export async function runServerProgram(program: string, args: string[], serviceUser = "postgres"): Promise<string> {
  const [file, argv] = runsAsRoot ? ["runuser", ["-u", serviceUser, "--", program, ...args]] : [program, args];
  try {
    const { stdout } = await execFileAsync(file, argv, { maxBuffer: 16 * 1024 * 1024, cwd: runsAsRoot ? "/" : undefined });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${program} ${args.join(" ")} failed: ${e.stderr?.trim() || e.message}`);
  }
}

/** A fresh directory the service user can write to (owned by it when we are root). */
export function serviceDirectory(prefix: string, serviceUser = "postgres", parent = os.tmpdir()): string {
  const dir = mkdtempSync(path.join(parent, `${prefix}-`));
  if (runsAsRoot) {
    const { uid, gid } = systemUser(serviceUser);
    chownSync(dir, uid, gid);
  }
  return dir;
}

/** Creates `dir` (and parents) and hands it to the service user when we are root. */
export function ensureServiceDirectory(dir: string, serviceUser = "postgres"): string {
  mkdirSync(dir, { recursive: true });
  if (runsAsRoot) {
    const { uid, gid } = systemUser(serviceUser);
    chownSync(dir, uid, gid);
  }
  return dir;
}

/**
 * A directory only its owner may enter (0700), its missing parents created with the default mode.
 * `mkdirSync(dir, { recursive: true, mode: 0o700 })` would give every parent it creates 0700 too,
 * and a region's data directory created that way shuts out the servers that run as `postgres`
 * (initdb: "could not access directory … Permission denied").
 */
export function ensurePrivateDirectory(dir: string): string {
  mkdirSync(path.dirname(dir), { recursive: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** True while process `pid` exists (signal 0 probes without signalling). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM to a server process, then waits until it has exited and its port is closed. */
export async function terminateServer(name: string, pid: number, port: number): Promise<void> {
  if (!isProcessAlive(pid)) return;
  process.kill(pid, "SIGTERM");
  await waitFor(`${name} (pid ${pid}) to exit`, async () => !isProcessAlive(pid) && !(await isListening(port)), 15_000);
}
