/**
 * The local database executor (lib/local/executor-server.ts) as `npm run local` runs it: a detached
 * process that outlives its starter, called with the real Lambda client over HTTP through the
 * connection a `transport: executor` stack builds, running the executor's handler against a real
 * PostgreSQL. Starting it twice reuses it, with other options restarts it; a port held by another server is refused naming
 * `executor.port`; stopped, a call fails as "unreachable" and nothing runs.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sameServer, type ExecutorConnection } from "../../components/db/provider-runtime";
import { withConnection } from "../../lib/db/client";
import { invokeExecutor } from "../../lib/executor/lambda-client";
import { localDatabaseConnection } from "../../components/local/local-platform";
import {
  EXECUTOR_LOG,
  executorProcessStatus,
  localExecutorConnection,
  startExecutorProcess,
  stopExecutorAt,
} from "../../lib/local/executor-server";
import { startPostgres, THROWAWAY_SETTINGS, type PostgresServer } from "../../lib/local/postgres-server";
import { freePort, isProcessAlive } from "../../lib/local/processes";
import { REPO_ROOT } from "../../lib/pulumi/env";
import { parseLocalStackConfig } from "../../lib/stack-config/local";

describe("the connection of a local stack", () => {
  const base = { kind: "local", region: "eu", postgres: { port: 55432 }, pgbouncer: { port: 56432 }, redis: { port: 56379 } };

  it("is direct by default, and the executor's with transport: executor, naming the same server", () => {
    const direct = localDatabaseConnection("local-eu", parseLocalStackConfig(base));
    expect(direct).toEqual({ host: "127.0.0.1", port: 55432, user: "postgres" });
    const executor = localDatabaseConnection(
      "local-eu",
      parseLocalStackConfig({ ...base, transport: "executor", executor: { port: 57001 } }),
    );
    expect(executor).toEqual({
      kind: "executor",
      functionName: "local-eu-db-executor",
      region: "local",
      endpoint: "http://127.0.0.1:57001",
      server: "127.0.0.1:55432",
    });
    // Switching a stack's transport is an update of the same server, not a move (provider checks).
    expect(sameServer(direct, executor)).toBe(true);
  });
});

/** What components/db/provider-runtime.ts `callDatabase` does for an executor connection (its tsx loader does not run under vitest). */
const callDatabase = (connection: ExecutorConnection, database: string, operation: string, args: unknown) =>
  invokeExecutor(connection, { operation, database, args });

describe("the local executor process", () => {
  let cluster: PostgresServer;
  let dir: string;
  let port: number;
  const functionName = "exec-test-db-executor";

  beforeAll(async () => {
    cluster = await startPostgres({ settings: THROWAWAY_SETTINGS });
    dir = mkdtempSync(path.join(os.tmpdir(), "local-executor-"));
    port = await freePort();
  }, 60_000);

  afterAll(async () => {
    await stopExecutorAt(dir, { removeDir: true }).catch(() => {});
    await cluster?.stop({ removeData: true, mode: "immediate" });
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("runs operations for the providers over the Lambda API, detached from its starter; reused while running, restarted for other options", async () => {
    const started = await startExecutorProcess(REPO_ROOT, dir, { functionName, port, postgresPort: cluster.port });
    expect(started).toMatchObject({ port, state: "started" });
    const connection = localExecutorConnection({ stack: "exec-test", executorPort: port, postgresPort: cluster.port });
    expect(connection.functionName).toBe(functionName);

    await callDatabase(connection, "postgres", "createDatabase", { name: "through_executor" });
    const read = await callDatabase(connection, "postgres", "readDatabase", { name: "through_executor" });
    // The database is on the cluster (not a stand-in), created by the handler in the executor process.
    const [row] = await withConnection(
      cluster.adminUrl,
      async (c) => (await c.query<{ oid: number }>("SELECT oid::int AS oid FROM pg_database WHERE datname = 'through_executor'")).rows,
    );
    expect(read).toEqual({ oid: row.oid });
    // A PostgreSQL error comes back with its SQLSTATE, as on AWS.
    await expect(callDatabase(connection, "no_such_db", "currentDatabaseOid", {})).rejects.toMatchObject({ code: "3D000" });

    // Its log: one line per invocation, operation and outcome, never the args.
    const log = readFileSync(path.join(dir, EXECUTOR_LOG), "utf8");
    expect(log).toMatch(/"operation":"createDatabase","database":"postgres".*"outcome":"ok"/);
    expect(log).not.toContain('through_executor","');

    const again = await startExecutorProcess(REPO_ROOT, dir, { functionName, port, postgresPort: cluster.port });
    expect(again.state).toBe("running");
    const pid = Number(readFileSync(path.join(dir, "executor.pid"), "utf8"));
    expect(isProcessAlive(pid)).toBe(true);

    // Other options (here another function name) restart it: the old process is gone, the new one answers for the new name only.
    const renamed = await startExecutorProcess(REPO_ROOT, dir, { functionName: "renamed-db-executor", port, postgresPort: cluster.port });
    expect(renamed.state).toBe("started");
    expect(isProcessAlive(pid)).toBe(false);
    await expect(callDatabase(connection, "postgres", "readDatabase", { name: "through_executor" })).rejects.toThrow(/does not exist/);
    const moved = { ...connection, functionName: "renamed-db-executor" };
    expect(await callDatabase(moved, "postgres", "readDatabase", { name: "through_executor" })).toEqual({ oid: row.oid });
  }, 120_000);

  it("stopped, a call is unreachable and nothing runs; a port held by another server is refused naming executor.port", async () => {
    await stopExecutorAt(dir);
    expect(await executorProcessStatus(dir)).toMatchObject({ state: "stopped" });
    const connection = localExecutorConnection({ stack: "exec-test", executorPort: port, postgresPort: cluster.port });
    await expect(callDatabase(connection, "postgres", "createDatabase", { name: "never_made" })).rejects.toThrow(/unreachable/);
    const other = http.createServer((_, res) => res.end());
    await new Promise<void>((resolve) => other.listen(0, "127.0.0.1", () => resolve()));
    try {
      const taken = (other.address() as AddressInfo).port;
      await expect(startExecutorProcess(REPO_ROOT, dir, { functionName, port: taken, postgresPort: cluster.port })).rejects.toThrow(
        `port ${taken} (executor.port) is taken by another server`,
      );
    } finally {
      other.close();
    }
  }, 120_000);
});
