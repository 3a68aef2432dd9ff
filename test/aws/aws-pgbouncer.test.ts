import { describe, expect, it } from "vitest";
import { awsPgbouncerConfig, checkAwsPoolBudget, poolPerTask } from "../../lib/pgbouncer/aws";
import { renderPgbouncerIni } from "../../lib/pgbouncer";

const adr = {
  databaseHost: "pg-primary.eu-prod.alphapulse.internal",
  appInstances: 10,
  appPoolPerInstance: 20,
  maxClientConnections: 1000,
  reservePoolSize: 5,
};

describe("PgBouncer on Fargate", () => {
  it.each([
    [2, 10, 20, 100],
    [3, 10, 20, 67],
    [4, 10, 20, 50],
    [2, 2, 20, 20],
    [3, 1, 1, 1],
  ])("%i tasks for %i × %i app connections: %i per task", (tasks, appInstances, appPoolPerInstance, pool) => {
    expect(poolPerTask({ tasks, appInstances, appPoolPerInstance })).toBe(pool);
  });

  it("renders through lib/pgbouncer: session mode, DISCARD ALL, SCRAM auth file, TLS to PostgreSQL, per-task pools", () => {
    const ini = renderPgbouncerIni(awsPgbouncerConfig({ ...adr, tasks: 3 })).split("\n");
    for (const line of [
      "alphapulse = host=pg-primary.eu-prod.alphapulse.internal port=5432 dbname=alphapulse",
      "listen_addr = *",
      "listen_port = 6432",
      "unix_socket_dir =",
      "auth_type = scram-sha-256",
      "auth_file = /run/pgbouncer/userlist.txt",
      "pool_mode = session",
      "server_reset_query = DISCARD ALL",
      "default_pool_size = 67",
      "reserve_pool_size = 5",
      "max_db_connections = 72",
      "max_client_conn = 1000",
      "server_tls_sslmode = require",
      "client_tls_sslmode = disable",
      "ignore_startup_parameters = extra_float_digits",
    ]) {
      expect(ini).toContain(line);
    }
    expect(ini.some((l) => l.startsWith("logfile") || l.startsWith("pidfile"))).toBe(false);
  });

  it("the whole fleet fits PostgreSQL's max_connections with the ADR's pools", () => {
    const report = checkAwsPoolBudget({ ...adr, tasks: 3, maxConnections: 250 });
    expect(report.problems).toEqual([]);
    expect([report.clientConnections, report.serverConnections, report.postgresAvailable]).toEqual([200, 216, 237]);
  });

  it("negative control: too small a max_connections is caught before deployment", () => {
    const report = checkAwsPoolBudget({ ...adr, tasks: 2, maxConnections: 200 });
    expect(report.problems).toEqual([
      {
        field: "postgres.maxConnections",
        message:
          "PgBouncer may open 210 server connections (pools + reserve), but PostgreSQL leaves 187 (max_connections 200 − 3 superuser reserved − 10 direct)",
      },
    ]);
  });
});
