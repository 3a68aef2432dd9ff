/**
 * PgBouncer on AWS: the lib/pgbouncer config for the Fargate tasks of a regional stack, and the pool
 * arithmetic across tasks. Pure; components/aws/pgbouncer-service.ts renders the result with
 * lib/pgbouncer `renderPgbouncerIni`, the same renderer the local stacks use.
 *
 * Every task has its own pools, so the app fleet's connections (session mode pins one server
 * connection per app connection) are split evenly over the tasks: each task's pool is
 * ceil(app connections / tasks). PostgreSQL must leave room for every task's pool plus reserve.
 */
import { checkPoolBudget, type PgbouncerConfigInput, type PoolBudgetReport } from "./";

/** Where a task writes its config and auth file (an ephemeral task volume; the root file system is read-only). */
export const PGBOUNCER_RUN_DIR = "/run/pgbouncer";
export const PGBOUNCER_PORT = 6432;

export interface AwsPgbouncerOptions {
  /** PostgreSQL primary (DNS name in the stack's private zone). */
  databaseHost: string;
  /** @default 5432 */
  databasePort?: number;
  /** Database name, the same behind PgBouncer. @default "alphapulse" */
  databaseName?: string;
  /** PgBouncer tasks behind the NLB. */
  tasks: number;
  /** App instances connecting as app_user (ADR-001: 10). */
  appInstances: number;
  /** Pool size of each app instance (ADR-001: 20). */
  appPoolPerInstance: number;
  /** Client connections each task accepts. */
  maxClientConnections: number;
  /** Extra server connections per task for clients that waited (operators' ad-hoc sessions). */
  reservePoolSize: number;
}

/** Server connections per task for app_user: the app fleet's connections split over the tasks. */
export function poolPerTask(o: Pick<AwsPgbouncerOptions, "tasks" | "appInstances" | "appPoolPerInstance">): number {
  return Math.ceil((o.appInstances * o.appPoolPerInstance) / o.tasks);
}

/** The lib/pgbouncer config of one task: listens on all interfaces, TLS to PostgreSQL, logs to stderr. */
export function awsPgbouncerConfig(o: AwsPgbouncerOptions): PgbouncerConfigInput {
  const pool = poolPerTask(o);
  return {
    listenAddr: "*",
    listenPort: PGBOUNCER_PORT,
    authFile: `${PGBOUNCER_RUN_DIR}/userlist.txt`,
    databases: [{ name: o.databaseName ?? "alphapulse", host: o.databaseHost, port: o.databasePort ?? 5432 }],
    maxClientConn: o.maxClientConnections,
    defaultPoolSize: pool,
    reservePoolSize: o.reservePoolSize,
    maxDbConnections: pool + o.reservePoolSize,
    ignoreStartupParameters: ["extra_float_digits"],
    tcpKeepalive: true,
    // The cluster's certificate is the node's own (Debian snakeoil): encrypt, without CA verification.
    serverTls: { sslmode: "require" },
  };
}

/** lib/pgbouncer's budget check for the whole fleet: app pools vs the tasks' pools vs PostgreSQL's max_connections. */
export function checkAwsPoolBudget(o: AwsPgbouncerOptions & { maxConnections: number }): PoolBudgetReport {
  return checkPoolBudget({
    pgbouncer: awsPgbouncerConfig(o),
    appPools: [
      {
        service: "app",
        database: o.databaseName ?? "alphapulse",
        user: "app_user",
        instances: o.appInstances,
        poolMax: o.appPoolPerInstance,
      },
    ],
    pgbouncerInstances: o.tasks,
    postgres: { maxConnections: o.maxConnections },
  });
}
