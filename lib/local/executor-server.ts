/**
 * The database executor of a local region whose stack says `transport: executor`
 * (docs/adr/ADR-004-database-executor.md): the AWS regions' code path, on this machine.
 *
 * The stack's dynamic providers run in the engine's provider process and build an
 * ExecutorConnection (`localExecutorConnection`): they call the executor with the real
 * `@aws-sdk/client-lambda` client (lib/executor/lambda-client.ts), signed, over HTTP, at the
 * connection's `endpoint` — where the AWS path leaves `endpoint` unset and the SDK picks Lambda's.
 * What answers is lib/executor/local-endpoint.ts (Lambda Invoke and Secrets Manager, SigV4 checked)
 * running the executor's own handler (lib/executor/handler.ts) in its process. The handler reads its
 * database credential from "Secrets Manager" — the same endpoint — exactly as in a region, then runs
 * the operation on the region's PostgreSQL. The one difference to AWS: it connects as the local
 * cluster's admin (the direct transport's user, trust on loopback, no TLS), so both transports make
 * the same database (test/e2e/executor-transport.test.ts compares them).
 *
 * The executor must outlive one `pulumi up` (tenant stacks call it later), so `npm run local` starts
 * it as a detached process (`startExecutorProcess`, scripts/local-executor.ts) with its pid, options
 * and log (one JSON line per invocation, never the args) in `<region data>/executor/`, and the
 * offboarding exports its `offboardTenant` keeps in `<region data>/exports/` (lib/tenant-stacks/offboarding.ts);
 * `npm run local -- down` stops it (`stopExecutorAt`). `npm run local:executor` runs it in the
 * foreground instead.
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { ExecutorConnection } from "../../components/db/provider-runtime";
import { createHandler, type ExecutorHandler } from "../executor/handler";
import { LOCAL_EXECUTOR_CREDENTIALS } from "../executor/lambda-client";
import { startLocalExecutor, type LocalExecutor } from "../executor/local-endpoint";
import { localDirectorySink } from "../tenant/export-sink";
import { ensurePrivateDirectory, isListening, isProcessAlive, terminateServer, waitFor } from "./processes";

/** The AWS region the local executor's requests are signed for (any name works on loopback; this one says where it is). */
export const LOCAL_EXECUTOR_REGION = "local";
/** The files of a running executor process, in its directory. */
export const EXECUTOR_PID = "executor.pid";
export const EXECUTOR_OPTIONS = "executor.json";
export const EXECUTOR_LOG = "executor.log";

/** The local executor's function name for a stack: `<stack>-db-executor`, as the AWS regions name theirs. */
export function localExecutorFunctionName(stack: string): string {
  return `${stack}-db-executor`;
}

/** The Secrets Manager id under which a local executor serves its own database credential. */
export function localExecutorSecretId(functionName: string): string {
  return `arn:aws:secretsmanager:${LOCAL_EXECUTOR_REGION}:000000000000:secret:${functionName}`;
}

/**
 * How a local stack's providers reach its executor (pure). `server` is the direct connection's
 * server id (`127.0.0.1:<postgres port>`, components/db/provider-runtime.ts `serverId`): both
 * transports name the same server, so switching a stack's transport is an update, not a move.
 */
export function localExecutorConnection(o: { stack: string; executorPort: number; postgresPort: number }): ExecutorConnection {
  return {
    kind: "executor",
    functionName: localExecutorFunctionName(o.stack),
    region: LOCAL_EXECUTOR_REGION,
    endpoint: `http://127.0.0.1:${o.executorPort}`,
    server: `127.0.0.1:${o.postgresPort}`,
  };
}

export interface LocalExecutorServerOptions {
  functionName: string;
  /** Loopback port; a free one when 0 or omitted (in-process use only). */
  port?: number;
  /** The region's PostgreSQL on 127.0.0.1. */
  postgresPort: number;
  /** The role the handler connects as. @default "postgres" (the local clusters' admin, as the direct transport) */
  user?: string;
  /**
   * Where its `offboardTenant` keeps exports: a directory of this machine, where an AWS region's
   * executor uses the region's backup bucket. @default none: offboarding with an export is refused
   */
  exportDir?: string;
}

/**
 * Serves the executor in this process: the local endpoint on `port`, whose Invoke runs the
 * executor's handler configured as on AWS, except for its credential (served by this endpoint) and
 * its connection (loopback, no TLS).
 */
export async function serveLocalExecutor(options: LocalExecutorServerOptions): Promise<LocalExecutor> {
  const secretId = localExecutorSecretId(options.functionName);
  // The handler reads its secret from this endpoint, whose URL is known once it listens.
  const bound: { handler?: ExecutorHandler } = {};
  const endpoint = await startLocalExecutor({
    functionName: options.functionName,
    port: options.port,
    secrets: { [secretId]: JSON.stringify({ username: options.user ?? "postgres", password: "" }) },
    handler: (event) => bound.handler!(event),
  });
  const exportDir = options.exportDir;
  bound.handler = createHandler({
    db: { secretArn: secretId, host: "127.0.0.1", port: options.postgresPort, tls: "disable" },
    secretsManager: { region: LOCAL_EXECUTOR_REGION, endpoint: endpoint.url, credentials: LOCAL_EXECUTOR_CREDENTIALS },
    ...(exportDir === undefined ? {} : { exportSink: () => Promise.resolve(localDirectorySink(exportDir)) }),
  });
  return endpoint;
}

export interface ExecutorProcessStatus {
  port: number;
  state: "started" | "running" | "stopped";
  dir: string;
  log: string;
  detail?: string;
}

function readPid(dir: string): number | undefined {
  const file = path.join(dir, EXECUTOR_PID);
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, "utf8").trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function readOptions(dir: string): { port: number } | undefined {
  const file = path.join(dir, EXECUTOR_OPTIONS);
  return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as { port: number }) : undefined;
}

function tail(file: string, lines = 20): string {
  return existsSync(file) ? readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n") : "(no log)";
}

/** The executor process in `dir` and its port, without starting anything. */
export async function executorProcessStatus(dir: string): Promise<ExecutorProcessStatus | undefined> {
  const options = readOptions(dir);
  if (!options) return undefined;
  const pid = readPid(dir);
  const running = pid !== undefined && isProcessAlive(pid) && (await isListening(options.port));
  return { port: options.port, state: running ? "running" : "stopped", dir, log: path.join(dir, EXECUTOR_LOG) };
}

/**
 * Starts the executor as a detached process (scripts/local-executor.ts) that outlives this one,
 * unless one started from `dir` with the same options is running already. One running with other
 * options (another port, server or function) is restarted. A port held by anything else is an
 * error naming it. Resolves when it accepts connections.
 */
export async function startExecutorProcess(
  repoRoot: string,
  dir: string,
  options: Required<Omit<LocalExecutorServerOptions, "user" | "exportDir">> & { user?: string; exportDir?: string },
): Promise<ExecutorProcessStatus> {
  const wanted = { ...options, user: options.user ?? "postgres", exportDir: options.exportDir ?? null };
  ensurePrivateDirectory(dir);
  const log = path.join(dir, EXECUTOR_LOG);
  const current = await executorProcessStatus(dir);
  if (current?.state === "running") {
    if (JSON.stringify(readOptions(dir)) === JSON.stringify(wanted)) return current;
    await stopExecutorAt(dir);
  }
  if (await isListening(wanted.port))
    throw new Error(`port ${wanted.port} (executor.port) is taken by another server; stop it or change the port in the stack file`);
  writeFileSync(path.join(dir, EXECUTOR_OPTIONS), JSON.stringify(wanted) + "\n", { mode: 0o600 });
  const out = openSync(log, "a", 0o600);
  let exited: string | undefined;
  try {
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        path.join(repoRoot, "scripts", "local-executor.ts"),
        "--port",
        String(wanted.port),
        "--postgres-port",
        String(wanted.postgresPort),
        "--function-name",
        wanted.functionName,
        "--user",
        wanted.user,
        ...(wanted.exportDir === null ? [] : ["--export-dir", wanted.exportDir]),
      ],
      // Its own process group, detached from our terminal: it keeps serving after `npm run local` exits.
      { cwd: repoRoot, detached: true, stdio: ["ignore", out, out], env: { ...process.env, EXECUTOR_QUIET: "0" } },
    );
    child.on("error", (err) => (exited = err.message));
    child.on("exit", (code, signal) => (exited = `the executor exited (${signal ?? code})`));
    writeFileSync(path.join(dir, EXECUTOR_PID), `${child.pid}\n`);
    child.unref();
  } finally {
    closeSync(out);
  }
  await waitFor(
    `the local executor on port ${wanted.port}`,
    async () => {
      if (exited) throw new Error(`${exited}; its log (${log}):\n${tail(log)}`);
      return isListening(wanted.port);
    },
    60_000,
  );
  return { port: wanted.port, state: "started", dir, log };
}

/** Stops the executor process started from `dir` (if any); `removeDir` deletes its files too. */
export async function stopExecutorAt(dir: string, options: { removeDir?: boolean } = {}): Promise<void> {
  const pid = readPid(dir);
  const port = readOptions(dir)?.port;
  if (pid !== undefined && port !== undefined) await terminateServer("the local executor", pid, port);
  rmSync(path.join(dir, EXECUTOR_PID), { force: true });
  if (options.removeDir) rmSync(dir, { recursive: true, force: true });
}
