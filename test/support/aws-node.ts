/**
 * What cloud-init does on a new AWS database node, run with psql exactly as cloud-init runs it: the
 * executor's login role from roles.tsv (ROLE_SQL), then the superuser-only bootstrap SQL
 * (lib/platform/database-bootstrap.ts) on `postgres` and on template1. Idempotent: running it twice
 * converges. Used by the tests that need a PostgreSQL set up like an AWS node
 * (test/aws/database-bootstrap-pg.test.ts, test/executor/support.ts).
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { PostgresServer } from "../../lib/local/postgres-server";
import { ROLE_SQL } from "../../lib/platform/cloud-init";
import { EXECUTOR_ROLE, EXECUTOR_ROLE_ATTRIBUTES, renderDatabaseBootstrapSql } from "../../lib/platform/database-bootstrap";

const run = promisify(execFile);

/** Runs `sql` through psql as the superuser, stopping at the first error. */
export async function psqlScript(
  server: Pick<PostgresServer, "port">,
  database: string,
  sql: string,
  options: { variables?: Record<string, string>; env?: Record<string, string> } = {},
) {
  const variables = Object.entries({ ON_ERROR_STOP: "1", ...options.variables }).flatMap(([k, v]) => ["-v", `${k}=${v}`]);
  const child = run(
    "psql",
    ["-X", "-q", "-h", "127.0.0.1", "-p", String(server.port), "-U", "postgres", "-d", database, ...variables, "-f", "-"],
    {
      env: { ...process.env, ...options.env },
    },
  );
  child.child.stdin!.end(sql);
  return child;
}

/** The node bootstrap: the executor role with `executorPassword`, then the cluster and template SQL. */
export async function bootstrapAwsNode(server: Pick<PostgresServer, "port">, executorPassword: string): Promise<void> {
  await psqlScript(server, "postgres", ROLE_SQL, {
    variables: { role_name: EXECUTOR_ROLE, role_attributes: EXECUTOR_ROLE_ATTRIBUTES },
    env: { ROLE_PASSWORD: executorPassword },
  });
  const sql = renderDatabaseBootstrapSql();
  await psqlScript(server, "postgres", sql.cluster);
  await psqlScript(server, "template1", sql.template);
}
