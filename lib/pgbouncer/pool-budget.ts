/**
 * Pool arithmetic, checked before anything is deployed. In session mode PgBouncer pins one server
 * connection to each client connection for the client's whole life, and app-side pools never
 * disconnect: the app pools are therefore server connections, one for one. If they add up to more
 * than PgBouncer's pool, the surplus app connections wait `query_wait_timeout` and fail; if
 * PgBouncer's pools add up to more than PostgreSQL's max_connections, logins fail with "too many
 * clients". Both show up only under load, so they are checked here, as a pure function.
 */
import { ADR_POOL, PgbouncerConfig, type ConfigProblem, type PgbouncerConfigInput } from "./config";

/** One service's connection pool, as deployed. */
export interface AppPool {
  /** Names the service in messages, e.g. "api". */
  service: string;
  /** The PgBouncer database it connects to. */
  database: string;
  user: string;
  /** Running instances (ECS tasks, pods). */
  instances: number;
  /** Pool size per instance (node-postgres `max`). */
  poolMax: number;
}

/** ADR-001: the API, 10 instances with a pool of 20 each, as app_user. */
export function adrAppPools(database = "alphapulse"): AppPool[] {
  return [{ service: "api", database, user: "app_user", instances: ADR_POOL.appInstances, poolMax: ADR_POOL.poolPerInstance }];
}

export interface PostgresCapacity {
  maxConnections: number;
  /** PostgreSQL's superuser_reserved_connections. @default 3 */
  superuserReservedConnections?: number;
  /** Connections that bypass PgBouncer: migrations, maintenance jobs, monitoring, replication. @default 10 */
  directConnections?: number;
}

export interface PoolBudgetInput {
  pgbouncer: PgbouncerConfigInput;
  appPools: readonly AppPool[];
  /** PgBouncer processes behind one address (each has its own pools). @default 1 */
  pgbouncerInstances?: number;
  /** When given, PgBouncer's server connections are checked against it. */
  postgres?: PostgresCapacity;
}

export interface PoolUse {
  database: string;
  user: string;
  /** App connections (all instances). */
  clients: number;
  /** Server connections PgBouncer will open for this pair (all PgBouncer instances), reserve excluded. */
  capacity: number;
  /** Including the reserve pool. */
  capacityWithReserve: number;
}

export interface PoolBudgetReport {
  ok: boolean;
  problems: ConfigProblem[];
  pools: PoolUse[];
  clientConnections: number;
  /** Worst-case server connections PgBouncer opens (pools + reserve, capped per database), all instances. */
  serverConnections: number;
  /** What PostgreSQL leaves for PgBouncer, when `postgres` was given. */
  postgresAvailable?: number;
}

const min = (...xs: number[]) => Math.min(...xs.filter((x) => x > 0));

export function checkPoolBudget(input: PoolBudgetInput): PoolBudgetReport {
  const c = PgbouncerConfig.parse(input.pgbouncer);
  const bouncers = input.pgbouncerInstances ?? 1;
  const problems: ConfigProblem[] = [];
  if (!Number.isInteger(bouncers) || bouncers < 1) problems.push({ field: "pgbouncerInstances", message: "must be a positive integer" });

  const pairs = new Map<string, { database: string; user: string; clients: number; services: string[] }>();
  input.appPools.forEach((p, i) => {
    if (!Number.isInteger(p.instances) || p.instances < 1)
      problems.push({ field: `appPools[${i}].instances`, message: "must be a positive integer" });
    if (!Number.isInteger(p.poolMax) || p.poolMax < 1)
      problems.push({ field: `appPools[${i}].poolMax`, message: "must be a positive integer" });
    if (!c.databases.some((d) => d.name === p.database)) {
      problems.push({
        field: `appPools[${i}].database`,
        message: `"${p.database}" is not a PgBouncer database (have: ${c.databases.map((d) => d.name).join(", ")})`,
      });
    }
    const key = `${p.database}\u0000${p.user}`;
    const pair = pairs.get(key) ?? { database: p.database, user: p.user, clients: 0, services: [] };
    pair.clients += p.instances * p.poolMax;
    pair.services.push(`${p.service} (${p.instances} × ${p.poolMax})`);
    pairs.set(key, pair);
  });

  const pools: PoolUse[] = [];
  const perDatabase = new Map<string, number>();
  for (const pair of pairs.values()) {
    const db = c.databases.find((d) => d.name === pair.database);
    if (!db) continue;
    const userCap = c.users.find((u) => u.name === pair.user)?.maxUserConnections ?? 0;
    const dbCap = db.maxDbConnections ?? c.maxDbConnections;
    const poolSize = db.poolSize ?? c.defaultPoolSize;
    const reserve = db.reservePool ?? c.reservePoolSize;
    const capacity = min(poolSize, userCap, dbCap);
    const withReserve = min(poolSize + reserve, userCap, dbCap);
    pools.push({
      database: pair.database,
      user: pair.user,
      clients: pair.clients,
      capacity: capacity * bouncers,
      capacityWithReserve: withReserve * bouncers,
    });
    perDatabase.set(pair.database, (perDatabase.get(pair.database) ?? 0) + withReserve);
    if (pair.clients > capacity * bouncers) {
      problems.push({
        field: `appPools`,
        message:
          `${pair.services.join(" + ")} = ${pair.clients} connections as ${pair.user}@${pair.database}, but PgBouncer gives that pair ` +
          `${capacity * bouncers} server connections (${bouncers} × min(pool ${poolSize}${userCap ? `, user cap ${userCap}` : ""}${dbCap ? `, database cap ${dbCap}` : ""})). ` +
          `Session mode pins one server connection per app connection: the surplus waits query_wait_timeout (${c.queryWaitTimeout} s), then fails`,
      });
    }
  }

  const clientConnections = [...pairs.values()].reduce((s, p) => s + p.clients, 0);
  if (clientConnections > c.maxClientConn * bouncers) {
    problems.push({
      field: "maxClientConn",
      message: `the app pools open ${clientConnections} client connections, more than ${bouncers} × max_client_conn ${c.maxClientConn}`,
    });
  }

  let serverPerBouncer = 0;
  for (const [name, total] of perDatabase) {
    const db = c.databases.find((d) => d.name === name)!;
    const dbCap = db.maxDbConnections ?? c.maxDbConnections;
    serverPerBouncer += dbCap > 0 ? Math.min(total, dbCap) : total;
  }
  const serverConnections = serverPerBouncer * bouncers;

  let postgresAvailable: number | undefined;
  if (input.postgres) {
    const { maxConnections, superuserReservedConnections = 3, directConnections = 10 } = input.postgres;
    postgresAvailable = maxConnections - superuserReservedConnections - directConnections;
    if (serverConnections > postgresAvailable) {
      problems.push({
        field: "postgres.maxConnections",
        message:
          `PgBouncer may open ${serverConnections} server connections (pools + reserve), but PostgreSQL leaves ${postgresAvailable} ` +
          `(max_connections ${maxConnections} − ${superuserReservedConnections} superuser reserved − ${directConnections} direct)`,
      });
    }
  }
  return { ok: problems.length === 0, problems, pools, clientConnections, serverConnections, postgresAvailable };
}
