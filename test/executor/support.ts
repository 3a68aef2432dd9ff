/**
 * A PostgreSQL cluster set up the way an AWS node is (the node bootstrap, test/support/aws-node.ts),
 * with a pg_hba.conf line that makes the executor's role authenticate with SCRAM (a wrong password
 * fails), plus a local endpoint that serves its credential as a Secrets Manager secret. Its own
 * cluster per file: the bootstrap changes template1 and creates cluster-wide roles.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { withConnection } from "../../lib/db/client";
import type { HandlerConfig } from "../../lib/executor/handler";
import { LOCAL_EXECUTOR_CREDENTIALS } from "../../lib/executor/lambda-client";
import { startLocalExecutor, type LocalExecutor, type LocalHandler } from "../../lib/executor/local-endpoint";
import { startPostgres, THROWAWAY_SETTINGS, type PostgresServer } from "../../lib/local/postgres-server";
import { EXECUTOR_ROLE } from "../../lib/platform/database-bootstrap";
import { bootstrapAwsNode } from "../support/aws-node";

export const EXECUTOR_PASSWORD = "executor-password-of-the-test";
export const SECRET_ARN = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:eu-test-db-executor-AbCdEf";
export const FUNCTION_NAME = "eu-test-db-executor";
export const REGION = "eu-central-1";

export interface ExecutorCluster {
  server: PostgresServer;
  /** Serves Lambda Invoke (running `handler`) and the executor's secret. */
  endpoint: LocalExecutor;
  /** The handler's configuration: this cluster, the secret on `endpoint`, no TLS (loopback). */
  config: HandlerConfig;
  /** Replaced by the test: what the endpoint's Invoke runs. */
  setHandler(handler: LocalHandler): void;
  superuserUrl(database: string): string;
  stop(): Promise<void>;
}

export async function startExecutorCluster(secret: Record<string, unknown> = {}): Promise<ExecutorCluster> {
  const server = await startPostgres({ settings: THROWAWAY_SETTINGS });
  await bootstrapAwsNode(server, EXECUTOR_PASSWORD);
  // The executor authenticates with SCRAM, as on AWS (everyone else keeps the throwaway trust).
  const hba = path.join(server.dataDir, "pg_hba.conf");
  writeFileSync(hba, `host all ${EXECUTOR_ROLE} 127.0.0.1/32 scram-sha-256\n${readFileSync(hba, "utf8")}`);
  await withConnection(server.adminUrl, (c) => c.query("SELECT pg_reload_conf()"));

  let current: LocalHandler = () => Promise.reject(new Error("no handler set"));
  const endpoint = await startLocalExecutor({
    functionName: FUNCTION_NAME,
    handler: (event) => current(event),
    secrets: { [SECRET_ARN]: JSON.stringify({ username: EXECUTOR_ROLE, password: EXECUTOR_PASSWORD, ...secret }) },
  });
  const config: HandlerConfig = {
    db: { secretArn: SECRET_ARN, host: "127.0.0.1", port: server.port, tls: "disable" },
    secretsManager: { region: REGION, endpoint: endpoint.url, credentials: LOCAL_EXECUTOR_CREDENTIALS },
  };
  return {
    server,
    endpoint,
    config,
    setHandler: (h) => (current = h),
    superuserUrl: (database) => server.urlFor(database),
    async stop() {
      await endpoint.close();
      await server.stop({ removeData: true, mode: "immediate" });
    },
  };
}
