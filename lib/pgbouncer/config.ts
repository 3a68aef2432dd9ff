/**
 * PgBouncer as code: a zod-validated configuration and a pure renderer to pgbouncer.ini. The local
 * stacks (lib/local/pgbouncer-server.ts), the `tenancy pgbouncer render` command and the AWS
 * component all render through here, so a setting means the same thing everywhere.
 *
 * Keys are the pgbouncer.ini keys in camelCase (`queryWaitTimeout` → `query_wait_timeout`), times in
 * seconds as in the ini. What the design fixes is not configurable: session pooling (ADR-001: the
 * tenant context used to be a session variable, and session mode stays correct for any client), the
 * reset query DISCARD ALL (without it the next client inherits the previous one's session), and
 * SCRAM-SHA-256 with an auth file (lib/pgbouncer/auth.ts says why).
 *
 * Sizes follow the ADR: 10 app instances × a pool of 20 = 200 server connections for app_user
 * (`ADR_APP_POOLS`, checked by lib/pgbouncer/pool-budget.ts).
 */
import { z } from "zod";
import { TIER_LIMITS } from "../tenant/tiers";
import { PgbouncerName } from "./auth";

const Port = z.number().int().min(1).max(65535);
const Count = z.number().int().min(0);
const Positive = z.number().int().min(1);
/** Seconds, as PgBouncer takes them (fractions allowed); 0 disables where PgBouncer says so. */
const Seconds = z
  .number()
  .min(0)
  .max(86_400 * 30)
  .finite();
/** Absolute paths of a conservative character set: nothing that could end a line or start a comment in the ini. */
export const FILE_PATH_PATTERN = /^\/[A-Za-z0-9._/@+-]*$/;
const FilePath = z.string().regex(FILE_PATH_PATTERN, { message: "must be an absolute path of letters, digits and . _ / @ + -" });
/** Host names, IPv4 and IPv6 addresses (no brackets), or a comma-separated list of them. */
const HOST_PATTERN = /^[A-Za-z0-9.:-]+(,[A-Za-z0-9.:-]+)*$/;
const Host = z.string().regex(HOST_PATTERN, { message: "must be a host name or IP address (or a comma-separated list)" });

/** The largest per-tier statement timeout, in seconds: PgBouncer's query_timeout must stay above it. */
export const MAX_TIER_STATEMENT_TIMEOUT_SECONDS = Math.max(...Object.values(TIER_LIMITS).map((l) => l.statementTimeoutMs)) / 1000;

/**
 * query_timeout is the ceiling no session can lift (PgBouncer cancels the query and closes the
 * connection; `SET statement_timeout = 0` does not reach it). It sits above the largest tier timeout,
 * so a tier's own limit (set per transaction by lib/tenant-context/client.ts) always fires first with a clean
 * statement-timeout error, and the ceiling only catches sessions that lifted theirs.
 */
export const DEFAULT_QUERY_TIMEOUT_SECONDS = Math.ceil(MAX_TIER_STATEMENT_TIMEOUT_SECONDS) + 5;

/** ADR-001: 20 connections per app instance × 10 instances. */
export const ADR_POOL = { appInstances: 10, poolPerInstance: 20 } as const;
export const ADR_SERVER_CONNECTIONS = ADR_POOL.appInstances * ADR_POOL.poolPerInstance;

export const PgbouncerDatabase = z
  .object({
    /** The name clients connect to. */
    name: PgbouncerName,
    host: Host,
    port: Port.default(5432),
    /** The PostgreSQL database; defaults to `name`. */
    dbname: PgbouncerName.optional(),
    /** Server connections per user for this database; defaults to `defaultPoolSize`. */
    poolSize: Positive.optional(),
    /** Reserve connections for this database; defaults to `reservePoolSize`. */
    reservePool: Count.optional(),
    /** Cap on all server connections to this database; defaults to `maxDbConnections`. */
    maxDbConnections: Count.optional(),
  })
  .strict();
export type PgbouncerDatabase = z.infer<typeof PgbouncerDatabase>;

export const PgbouncerUserLimit = z
  .object({
    name: PgbouncerName,
    /** Cap on this user's server connections across databases. */
    maxUserConnections: Positive,
  })
  .strict();
export type PgbouncerUserLimit = z.infer<typeof PgbouncerUserLimit>;

export const TLS_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] as const;
const TlsProtocols = z.enum(["secure", "tlsv1.2", "tlsv1.3", "tlsv1.2,tlsv1.3"]);

export const ClientTls = z
  .object({
    sslmode: z.enum(TLS_MODES).default("disable"),
    keyFile: FilePath.optional(),
    certFile: FilePath.optional(),
    /** CA for client certificates (verify-ca / verify-full). */
    caFile: FilePath.optional(),
    protocols: TlsProtocols.default("secure"),
  })
  .strict();

export const ServerTls = z
  .object({
    sslmode: z.enum(TLS_MODES).default("disable"),
    /** CA that signed the server's certificate (verify-ca / verify-full), e.g. the RDS bundle. */
    caFile: FilePath.optional(),
    keyFile: FilePath.optional(),
    certFile: FilePath.optional(),
    protocols: TlsProtocols.default("secure"),
  })
  .strict();

/**
 * Startup parameters PgBouncer may drop (drivers that send extra_float_digits). Nothing else:
 * dropping `options=-c ...` or a startup statement_timeout silently would hide a misconfigured client.
 */
const IgnorableStartupParameter = z.enum(["extra_float_digits"]);

export const PgbouncerConfig = z
  .object({
    listenAddr: z
      .string()
      .regex(/^(\*|[A-Za-z0-9.:-]+(,[A-Za-z0-9.:-]+)*)$/, { message: "must be *, or host names / IP addresses separated by commas" })
      .default("127.0.0.1"),
    listenPort: Port.default(6432),
    /** Directory for the Unix socket; omitted = no Unix socket (TCP only). */
    unixSocketDir: FilePath.optional(),
    authFile: FilePath,
    logfile: FilePath.optional(),
    pidfile: FilePath.optional(),
    databases: z.array(PgbouncerDatabase).min(1, { message: "must name at least one database" }),
    /** Per-user caps ([users] section). */
    users: z.array(PgbouncerUserLimit).default([]),
    /** Users (from the auth file) allowed on the admin console. */
    adminUsers: z.array(PgbouncerName).default([]),
    /** Users (from the auth file) allowed SHOW commands (metrics exporters). */
    statsUsers: z.array(PgbouncerName).default([]),

    poolMode: z.literal("session", { message: 'must be "session" (ADR-001)' }).default("session"),
    serverResetQuery: z
      .literal("DISCARD ALL", { message: 'must be "DISCARD ALL": without it the next client inherits the session' })
      .default("DISCARD ALL"),

    /** Client connections PgBouncer accepts (cheap: no server connection each). */
    maxClientConn: Positive.default(1000),
    /** Server connections per (database, user) pair: the ADR's 10 × 20. */
    defaultPoolSize: Positive.default(ADR_SERVER_CONNECTIONS),
    minPoolSize: Count.default(0),
    /** Extra connections for a pool whose clients waited `reservePoolTimeout` (operators' ad-hoc sessions). */
    reservePoolSize: Count.default(5),
    reservePoolTimeout: Seconds.default(3),
    /** Cap on server connections per database, all users; 0 = no cap. */
    maxDbConnections: Count.default(0),

    /** A client waiting longer than this for a server connection gets an error (pool exhausted). */
    queryWaitTimeout: Seconds.default(10),
    /** Ceiling on any query, above every tier's statement timeout (see DEFAULT_QUERY_TIMEOUT_SECONDS); 0 disables. */
    queryTimeout: Seconds.default(DEFAULT_QUERY_TIMEOUT_SECONDS),
    /** A client idle inside a transaction longer than this is disconnected (it holds locks and a server connection). */
    idleTransactionTimeout: Seconds.default(60),
    clientIdleTimeout: Seconds.default(0),
    clientLoginTimeout: Seconds.default(15),
    serverIdleTimeout: Seconds.default(600),
    serverLifetime: Seconds.default(3600),
    serverConnectTimeout: Seconds.default(5),
    /** After a failed server login (PostgreSQL restarting), new clients fail fast for this long. */
    serverLoginRetry: Seconds.default(3),
    serverCheckDelay: Seconds.default(30),

    ignoreStartupParameters: z.array(IgnorableStartupParameter).default([]),
    /** Refuse the simple query protocol (one statement per message only); breaks psql and the admin console. */
    disablePqexec: z.boolean().default(false),
    applicationNameAddHost: z.boolean().default(false),
    logConnections: z.boolean().default(true),
    logDisconnections: z.boolean().default(true),
    logPoolerErrors: z.boolean().default(true),
    tcpKeepalive: z.boolean().default(true),

    clientTls: ClientTls.default({ sslmode: "disable", protocols: "secure" }),
    serverTls: ServerTls.default({ sslmode: "disable", protocols: "secure" }),
  })
  .strict()
  .superRefine((c, ctx) => {
    const names = c.databases.map((d) => d.name);
    names.forEach((n, i) => {
      if (n === "pgbouncer")
        ctx.addIssue({ code: "custom", path: ["databases", i, "name"], message: '"pgbouncer" is reserved for the admin console' });
      if (names.indexOf(n) !== i) ctx.addIssue({ code: "custom", path: ["databases", i, "name"], message: `duplicate database "${n}"` });
    });
    c.users.forEach((u, i) => {
      if (c.users.findIndex((v) => v.name === u.name) !== i)
        ctx.addIssue({ code: "custom", path: ["users", i, "name"], message: `duplicate user "${u.name}"` });
    });
    if (c.queryTimeout !== 0 && c.queryTimeout <= MAX_TIER_STATEMENT_TIMEOUT_SECONDS) {
      ctx.addIssue({
        code: "custom",
        path: ["queryTimeout"],
        message: `must exceed the largest tier statement timeout (${MAX_TIER_STATEMENT_TIMEOUT_SECONDS} s), or the tier's own timeout never fires cleanly (or be 0)`,
      });
    }
    if (c.minPoolSize > c.defaultPoolSize)
      ctx.addIssue({ code: "custom", path: ["minPoolSize"], message: "must not exceed defaultPoolSize" });
    if (c.clientTls.sslmode !== "disable" && (!c.clientTls.keyFile || !c.clientTls.certFile)) {
      ctx.addIssue({
        code: "custom",
        path: ["clientTls", c.clientTls.keyFile ? "certFile" : "keyFile"],
        message: `is required when clientTls.sslmode is "${c.clientTls.sslmode}"`,
      });
    }
    if ((c.clientTls.sslmode === "verify-ca" || c.clientTls.sslmode === "verify-full") && !c.clientTls.caFile) {
      ctx.addIssue({
        code: "custom",
        path: ["clientTls", "caFile"],
        message: `is required to verify client certificates (sslmode "${c.clientTls.sslmode}")`,
      });
    }
    if ((c.serverTls.sslmode === "verify-ca" || c.serverTls.sslmode === "verify-full") && !c.serverTls.caFile) {
      ctx.addIssue({
        code: "custom",
        path: ["serverTls", "caFile"],
        message: `is required to verify the server (sslmode "${c.serverTls.sslmode}")`,
      });
    }
    if (c.serverTls.sslmode === "allow") {
      ctx.addIssue({
        code: "custom",
        path: ["serverTls", "sslmode"],
        message: 'must not be "allow" (unimplemented in PgBouncer 1.18); use prefer, require or verify-full',
      });
    }
  });
/** What callers write (defaults optional). */
export type PgbouncerConfigInput = z.input<typeof PgbouncerConfig>;
/** What the renderer works with (defaults filled in). */
export type PgbouncerConfig = z.output<typeof PgbouncerConfig>;

const bool = (b: boolean) => (b ? "1" : "0");
const num = (n: number) => String(n);

function databaseLine(d: PgbouncerDatabase): string {
  const parts = [`host=${d.host}`, `port=${d.port}`, `dbname=${d.dbname ?? d.name}`];
  if (d.poolSize !== undefined) parts.push(`pool_size=${d.poolSize}`);
  if (d.reservePool !== undefined) parts.push(`reserve_pool=${d.reservePool}`);
  if (d.maxDbConnections !== undefined) parts.push(`max_db_connections=${d.maxDbConnections}`);
  return `${d.name} = ${parts.join(" ")}`;
}

/**
 * pgbouncer.ini for `config` (validated first; throws a ZodError naming the field). Pure and
 * deterministic: the same config renders the same text, every setting written explicitly so the
 * file does not depend on PgBouncer's compiled-in defaults.
 */
export function renderPgbouncerIni(input: PgbouncerConfigInput): string {
  const c = PgbouncerConfig.parse(input);
  const lines: string[] = [
    ";; Rendered by lib/pgbouncer/config.ts (renderPgbouncerIni). Change the config, not this file.",
    "",
    "[databases]",
  ];
  lines.push(...c.databases.map(databaseLine));
  if (c.users.length) {
    lines.push("", "[users]", ...c.users.map((u) => `${u.name} = max_user_connections=${u.maxUserConnections}`));
  }
  const settings: [string, string][] = [
    ["listen_addr", c.listenAddr],
    ["listen_port", num(c.listenPort)],
    ["unix_socket_dir", c.unixSocketDir ?? ""],
  ];
  if (c.logfile) settings.push(["logfile", c.logfile]);
  if (c.pidfile) settings.push(["pidfile", c.pidfile]);
  settings.push(
    ["auth_type", "scram-sha-256"],
    ["auth_file", c.authFile],
    ["admin_users", c.adminUsers.join(",")],
    ["stats_users", c.statsUsers.join(",")],
    ["pool_mode", c.poolMode],
    ["server_reset_query", c.serverResetQuery],
    ["server_reset_query_always", "0"],
    ["server_check_query", "select 1"],
    ["server_check_delay", num(c.serverCheckDelay)],
    ["max_client_conn", num(c.maxClientConn)],
    ["default_pool_size", num(c.defaultPoolSize)],
    ["min_pool_size", num(c.minPoolSize)],
    ["reserve_pool_size", num(c.reservePoolSize)],
    ["reserve_pool_timeout", num(c.reservePoolTimeout)],
    ["max_db_connections", num(c.maxDbConnections)],
    ["query_wait_timeout", num(c.queryWaitTimeout)],
    ["query_timeout", num(c.queryTimeout)],
    ["idle_transaction_timeout", num(c.idleTransactionTimeout)],
    ["client_idle_timeout", num(c.clientIdleTimeout)],
    ["client_login_timeout", num(c.clientLoginTimeout)],
    ["server_idle_timeout", num(c.serverIdleTimeout)],
    ["server_lifetime", num(c.serverLifetime)],
    ["server_connect_timeout", num(c.serverConnectTimeout)],
    ["server_login_retry", num(c.serverLoginRetry)],
    ["ignore_startup_parameters", c.ignoreStartupParameters.join(",")],
    ["disable_pqexec", bool(c.disablePqexec)],
    ["application_name_add_host", bool(c.applicationNameAddHost)],
    ["log_connections", bool(c.logConnections)],
    ["log_disconnections", bool(c.logDisconnections)],
    ["log_pooler_errors", bool(c.logPoolerErrors)],
    ["tcp_keepalive", bool(c.tcpKeepalive)],
    ["client_tls_sslmode", c.clientTls.sslmode],
  );
  if (c.clientTls.sslmode !== "disable") {
    settings.push(["client_tls_key_file", c.clientTls.keyFile!], ["client_tls_cert_file", c.clientTls.certFile!]);
    if (c.clientTls.caFile) settings.push(["client_tls_ca_file", c.clientTls.caFile]);
    settings.push(["client_tls_protocols", c.clientTls.protocols]);
  }
  settings.push(["server_tls_sslmode", c.serverTls.sslmode]);
  if (c.serverTls.sslmode !== "disable") {
    if (c.serverTls.caFile) settings.push(["server_tls_ca_file", c.serverTls.caFile]);
    if (c.serverTls.keyFile) settings.push(["server_tls_key_file", c.serverTls.keyFile]);
    if (c.serverTls.certFile) settings.push(["server_tls_cert_file", c.serverTls.certFile]);
    settings.push(["server_tls_protocols", c.serverTls.protocols]);
  }
  lines.push("", "[pgbouncer]", ...settings.map(([k, v]) => (v === "" ? `${k} =` : `${k} = ${v}`)));
  return lines.join("\n") + "\n";
}

export interface ConfigProblem {
  /** Config key path, e.g. "adminUsers[0]". */
  field: string;
  message: string;
}

/**
 * Checks that need the config and the auth file together: every console user and every [users]
 * entry must be able to log in, i.e. appear in the auth file. Pure.
 */
export function checkAuthCoverage(input: PgbouncerConfigInput, authUserNames: readonly string[]): ConfigProblem[] {
  const c = PgbouncerConfig.parse(input);
  const known = new Set(authUserNames);
  const problems: ConfigProblem[] = [];
  c.adminUsers.forEach(
    (u, i) =>
      known.has(u) ||
      problems.push({ field: `adminUsers[${i}]`, message: `"${u}" is not in the auth file, so it cannot log in to the console` }),
  );
  c.statsUsers.forEach(
    (u, i) =>
      known.has(u) ||
      problems.push({ field: `statsUsers[${i}]`, message: `"${u}" is not in the auth file, so it cannot log in to the console` }),
  );
  c.users.forEach(
    (u, i) =>
      known.has(u.name) ||
      problems.push({ field: `users[${i}].name`, message: `"${u.name}" has a connection limit but is not in the auth file` }),
  );
  return problems;
}

export interface LocalPgbouncerOptions {
  /** The database clients connect to (same name behind PgBouncer). */
  database: string;
  /** PostgreSQL's address. */
  host: string;
  port: number;
  /** Directory holding the auth file, the log and the pid file. */
  dir: string;
  listenPort: number;
  listenAddr?: string;
  /** One local app instance's pool. @default 20 (ADR_POOL.poolPerInstance) */
  poolSize?: number;
}

/**
 * The config of a local PgBouncer (the local stacks, `tenancy pgbouncer render`): loopback, files
 * in one directory, a pool sized for one app instance, every other setting as in production.
 */
export function localPgbouncerConfig(o: LocalPgbouncerOptions): PgbouncerConfigInput {
  return {
    listenAddr: o.listenAddr ?? "127.0.0.1",
    listenPort: o.listenPort,
    databases: [{ name: o.database, host: o.host, port: o.port }],
    authFile: `${o.dir}/userlist.txt`,
    logfile: `${o.dir}/pgbouncer.log`,
    pidfile: `${o.dir}/pgbouncer.pid`,
    defaultPoolSize: o.poolSize ?? ADR_POOL.poolPerInstance,
  };
}
