/**
 * The PgBouncer config as code: exact rendered text (table-driven), the refusals with the field
 * they name, the auth file, and the pool arithmetic. Pure: no server.
 */
import { describe, expect, it } from "vitest";
import { ZodError } from "zod";
import {
  AuthUsers,
  checkAuthCoverage,
  checkPoolBudget,
  adrAppPools,
  DEFAULT_QUERY_TIMEOUT_SECONDS,
  newScramSalt,
  parseScramVerifier,
  renderAuthFile,
  renderPgbouncerIni,
  scramSha256Verifier,
  verifierMatches,
  type PgbouncerConfigInput,
} from "../../lib/pgbouncer";

const base: PgbouncerConfigInput = {
  databases: [{ name: "alphapulse", host: "10.0.1.5", port: 5432 }],
  authFile: "/etc/pgbouncer/userlist.txt",
};

const SETTINGS_TAIL = `auth_type = scram-sha-256
auth_file = /etc/pgbouncer/userlist.txt
admin_users =
stats_users =
pool_mode = session
server_reset_query = DISCARD ALL
server_reset_query_always = 0
server_check_query = select 1
server_check_delay = 30
max_client_conn = 1000
default_pool_size = 200
min_pool_size = 0
reserve_pool_size = 5
reserve_pool_timeout = 3
max_db_connections = 0
query_wait_timeout = 10
query_timeout = 35
idle_transaction_timeout = 60
client_idle_timeout = 0
client_login_timeout = 15
server_idle_timeout = 600
server_lifetime = 3600
server_connect_timeout = 5
server_login_retry = 3
ignore_startup_parameters =
disable_pqexec = 0
application_name_add_host = 0
log_connections = 1
log_disconnections = 1
log_pooler_errors = 1
tcp_keepalive = 1
client_tls_sslmode = disable
server_tls_sslmode = disable
`;

describe("renderPgbouncerIni", () => {
  it("renders the ADR defaults exactly", () => {
    expect(renderPgbouncerIni(base)).toBe(
      `;; Rendered by lib/pgbouncer/config.ts (renderPgbouncerIni). Change the config, not this file.

[databases]
alphapulse = host=10.0.1.5 port=5432 dbname=alphapulse

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = 6432
unix_socket_dir =
` + SETTINGS_TAIL,
    );
    expect(DEFAULT_QUERY_TIMEOUT_SECONDS).toBe(35);
  });

  it("is deterministic", () => {
    expect(renderPgbouncerIni(base)).toBe(renderPgbouncerIni(structuredClone(base)));
  });

  const cases: { name: string; config: Partial<PgbouncerConfigInput>; lines: string[]; absent?: string[] }[] = [
    {
      name: "per-database pool size, reserve and cap; database name differs from dbname",
      config: {
        databases: [{ name: "ap", host: "db.internal", dbname: "alphapulse", poolSize: 50, reservePool: 2, maxDbConnections: 60 }],
      },
      lines: ["ap = host=db.internal port=5432 dbname=alphapulse pool_size=50 reserve_pool=2 max_db_connections=60"],
    },
    {
      name: "per-user limits get a [users] section",
      config: {
        users: [
          { name: "app_user", maxUserConnections: 205 },
          { name: "alphapulse_readonly", maxUserConnections: 15 },
        ],
      },
      lines: ["[users]", "app_user = max_user_connections=205", "alphapulse_readonly = max_user_connections=15"],
    },
    { name: "no [users] section without limits", config: {}, lines: [], absent: ["[users]"] },
    {
      name: "console users, listen address, unix socket, log and pid files",
      config: {
        adminUsers: ["pgb_admin"],
        statsUsers: ["exporter", "pgb_admin"],
        listenAddr: "0.0.0.0",
        listenPort: 6543,
        unixSocketDir: "/run/pgbouncer",
        logfile: "/var/log/pgb.log",
        pidfile: "/run/pgb.pid",
      },
      lines: [
        "admin_users = pgb_admin",
        "stats_users = exporter,pgb_admin",
        "listen_addr = 0.0.0.0",
        "listen_port = 6543",
        "unix_socket_dir = /run/pgbouncer",
        "logfile = /var/log/pgb.log",
        "pidfile = /run/pgb.pid",
      ],
    },
    {
      name: "sizes and timeouts as configured (fractions of seconds allowed)",
      config: {
        defaultPoolSize: 1,
        maxDbConnections: 1,
        reservePoolSize: 0,
        queryWaitTimeout: 1.5,
        queryTimeout: 0,
        serverLoginRetry: 0.5,
        maxClientConn: 50,
      },
      lines: [
        "default_pool_size = 1",
        "max_db_connections = 1",
        "reserve_pool_size = 0",
        "query_wait_timeout = 1.5",
        "query_timeout = 0",
        "server_login_retry = 0.5",
        "max_client_conn = 50",
      ],
    },
    {
      name: "client TLS required, server verified against a CA",
      config: {
        clientTls: { sslmode: "require", keyFile: "/etc/pgbouncer/tls.key", certFile: "/etc/pgbouncer/tls.crt" },
        serverTls: { sslmode: "verify-full", caFile: "/etc/pgbouncer/rds-ca.pem" },
      },
      lines: [
        "client_tls_sslmode = require",
        "client_tls_key_file = /etc/pgbouncer/tls.key",
        "client_tls_cert_file = /etc/pgbouncer/tls.crt",
        "client_tls_protocols = secure",
        "server_tls_sslmode = verify-full",
        "server_tls_ca_file = /etc/pgbouncer/rds-ca.pem",
        "server_tls_protocols = secure",
      ],
      absent: ["client_tls_ca_file"],
    },
    {
      name: "hardening switches",
      config: { disablePqexec: true, logConnections: false, ignoreStartupParameters: ["extra_float_digits"] },
      lines: ["disable_pqexec = 1", "log_connections = 0", "ignore_startup_parameters = extra_float_digits"],
    },
  ];
  it.each(cases)("$name", ({ config, lines, absent }) => {
    const text = renderPgbouncerIni({ ...base, ...config });
    const all = text.split("\n");
    for (const line of lines) expect(all).toContain(line);
    for (const a of absent ?? []) expect(text).not.toContain(a);
  });

  const refusals: { name: string; config: Record<string, unknown>; field: string; message: RegExp }[] = [
    { name: "transaction pooling", config: { poolMode: "transaction" }, field: "poolMode", message: /session/ },
    { name: "an empty reset query", config: { serverResetQuery: "" }, field: "serverResetQuery", message: /DISCARD ALL/ },
    { name: "a lighter reset query", config: { serverResetQuery: "DEALLOCATE ALL" }, field: "serverResetQuery", message: /inherits/ },
    {
      name: "query_timeout below the largest tier timeout",
      config: { queryTimeout: 30 },
      field: "queryTimeout",
      message: /largest tier statement timeout \(30 s\)/,
    },
    {
      name: "client TLS without a key",
      config: { clientTls: { sslmode: "require", certFile: "/c.crt" } },
      field: "clientTls.keyFile",
      message: /required/,
    },
    {
      name: "server verify-full without a CA",
      config: { serverTls: { sslmode: "verify-full" } },
      field: "serverTls.caFile",
      message: /required/,
    },
    { name: "a relative auth file", config: { authFile: "userlist.txt" }, field: "authFile", message: /absolute path/ },
    {
      name: "a path that would end the line",
      config: { logfile: "/tmp/x\nadmin_users = mallory" },
      field: "logfile",
      message: /absolute path/,
    },
    {
      name: "a database name with a space",
      config: { databases: [{ name: "alpha pulse", host: "h" }] },
      field: "databases.0.name",
      message: /letters, digits/,
    },
    {
      name: "a host that smuggles a setting",
      config: { databases: [{ name: "a", host: "h user=postgres" }] },
      field: "databases.0.host",
      message: /host name/,
    },
    {
      name: "the reserved console database",
      config: { databases: [{ name: "pgbouncer", host: "h" }] },
      field: "databases.0.name",
      message: /reserved/,
    },
    {
      name: "a duplicate database",
      config: {
        databases: [
          { name: "a", host: "h" },
          { name: "a", host: "k" },
        ],
      },
      field: "databases.1.name",
      message: /duplicate/,
    },
    { name: "no database", config: { databases: [] }, field: "databases", message: /at least one/ },
    { name: "an unknown key", config: { poolSize: 20 }, field: "", message: /poolSize/ },
    {
      name: "dropping options= from startup packets",
      config: { ignoreStartupParameters: ["options"] },
      field: "ignoreStartupParameters.0",
      message: /extra_float_digits/,
    },
    { name: "a zero pool", config: { defaultPoolSize: 0 }, field: "defaultPoolSize", message: />=1/ },
    {
      name: "listen address with a newline",
      config: { listenAddr: "127.0.0.1\nauth_type = trust" },
      field: "listenAddr",
      message: /host names/,
    },
  ];
  it.each(refusals)("refuses $name, naming $field", ({ config, field, message }) => {
    let error: unknown;
    try {
      renderPgbouncerIni({ ...base, ...config });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ZodError);
    const issue = (error as ZodError).issues[0];
    expect(issue.path.join(".")).toBe(field);
    expect(issue.message + JSON.stringify(issue)).toMatch(message);
  });
});

describe("auth file", () => {
  const salt = Buffer.from("000102030405060708090a0b0c0d0e0f", "hex");
  const verifier = scramSha256Verifier("correct-horse-battery", { salt });

  it("renders one quoted line per user, in order", () => {
    const other = scramSha256Verifier("another-password-1", { salt });
    expect(
      renderAuthFile([
        { name: "app_user", scramVerifier: verifier },
        { name: "pgb_admin", scramVerifier: other },
      ]),
    ).toBe(`"app_user" "${verifier}"\n"pgb_admin" "${other}"\n`);
  });

  it("writes verifiers only: no password appears", () => {
    expect(renderAuthFile([{ name: "app_user", scramVerifier: verifier }])).not.toContain("correct-horse-battery");
    expect(verifier).toMatch(/^SCRAM-SHA-256\$4096:AAECAwQFBgcICQoLDA0ODw==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$/);
  });

  it.each([
    { users: [], path: "", message: /at least one/ },
    { users: [{ name: "a", scramVerifier: "md5abc" }], path: "0.scramVerifier", message: /SCRAM-SHA-256/ },
    { users: [{ name: 'a" "x', scramVerifier: "x" }], path: "0.name", message: /letters/ },
    { users: [{ name: "a", scramVerifier: "plain-text-password" }], path: "0.scramVerifier", message: /SCRAM/ },
  ])("refuses $path ($message)", ({ users, path, message }) => {
    const result = AuthUsers.safeParse(users);
    expect(result.success).toBe(false);
    expect(result.error!.issues[0].path.join(".")).toBe(path);
    expect(result.error!.issues[0].message).toMatch(message);
  });

  it("refuses duplicate users", () => {
    expect(() =>
      renderAuthFile([
        { name: "a", scramVerifier: verifier },
        { name: "a", scramVerifier: verifier },
      ]),
    ).toThrow(/duplicate user/);
  });

  it("computes SCRAM verifiers deterministically per salt", () => {
    expect(scramSha256Verifier("correct-horse-battery", { salt })).toBe(verifier);
    expect(scramSha256Verifier("correct-horse-battery", { salt: newScramSalt() })).not.toBe(verifier);
    expect(verifierMatches("correct-horse-battery", verifier)).toBe(true);
    expect(verifierMatches("correct-horse-batterx", verifier)).toBe(false);
    expect(parseScramVerifier(verifier)).toMatchObject({ iterations: 4096, salt });
  });

  it.each([
    ["short", /at least 12/],
    ["has a space in it", /printable ASCII/],
    ["pässwörter-mit-umlaut", /printable ASCII/],
  ])("refuses the password %j", (password, message) => {
    expect(() => scramSha256Verifier(password, { salt })).toThrow(message);
  });
});

describe("checkAuthCoverage", () => {
  it("names console users and limited users missing from the auth file", () => {
    expect(
      checkAuthCoverage(
        { ...base, adminUsers: ["pgb_admin"], statsUsers: ["exporter"], users: [{ name: "app_user", maxUserConnections: 10 }] },
        ["pgb_admin", "app_user"],
      ),
    ).toEqual([{ field: "statsUsers[0]", message: '"exporter" is not in the auth file, so it cannot log in to the console' }]);
    expect(checkAuthCoverage({ ...base, users: [{ name: "ghost", maxUserConnections: 1 }] }, ["app_user"])).toEqual([
      { field: "users[0].name", message: '"ghost" has a connection limit but is not in the auth file' },
    ]);
  });
});

describe("checkPoolBudget", () => {
  const pg300 = { maxConnections: 300 };

  it("the ADR's numbers fit: 10 × 20 app connections = 200 server connections (+5 reserve)", () => {
    const report = checkPoolBudget({ pgbouncer: base, appPools: adrAppPools(), postgres: pg300 });
    expect(report).toEqual({
      ok: true,
      problems: [],
      pools: [{ database: "alphapulse", user: "app_user", clients: 200, capacity: 200, capacityWithReserve: 205 }],
      clientConnections: 200,
      serverConnections: 205,
      postgresAvailable: 287,
    });
  });

  const cases: { name: string; input: Parameters<typeof checkPoolBudget>[0]; fields: string[]; message?: RegExp }[] = [
    {
      name: "an 11th app instance exceeds the pool",
      input: { pgbouncer: base, appPools: [{ ...adrAppPools()[0], instances: 11 }] },
      fields: ["appPools"],
      message:
        /api \(11 × 20\) = 220 connections as app_user@alphapulse, but PgBouncer gives that pair 200 server connections .* query_wait_timeout \(10 s\)/,
    },
    {
      name: "two services sharing one pair add up",
      input: {
        pgbouncer: base,
        appPools: [...adrAppPools(), { service: "worker", database: "alphapulse", user: "app_user", instances: 2, poolMax: 5 }],
      },
      fields: ["appPools"],
      message: /api \(10 × 20\) \+ worker \(2 × 5\) = 210/,
    },
    {
      name: "a per-user cap below the app pools",
      input: { pgbouncer: { ...base, users: [{ name: "app_user", maxUserConnections: 150 }] }, appPools: adrAppPools() },
      fields: ["appPools"],
      message: /user cap 150/,
    },
    {
      name: "a database cap below the app pools",
      input: { pgbouncer: { ...base, maxDbConnections: 100 }, appPools: adrAppPools() },
      fields: ["appPools"],
      message: /database cap 100/,
    },
    {
      name: "PostgreSQL too small for PgBouncer's pools",
      input: { pgbouncer: base, appPools: adrAppPools(), postgres: { maxConnections: 200 } },
      fields: ["postgres.maxConnections"],
      message: /may open 205 server connections .* leaves 187 \(max_connections 200 − 3 superuser reserved − 10 direct\)/,
    },
    {
      name: "two PgBouncers double the server connections",
      input: { pgbouncer: base, appPools: adrAppPools(), pgbouncerInstances: 2, postgres: { maxConnections: 400 } },
      fields: ["postgres.maxConnections"],
      message: /410/,
    },
    {
      name: "max_client_conn below the app pools",
      input: { pgbouncer: { ...base, maxClientConn: 100 }, appPools: adrAppPools() },
      fields: ["maxClientConn"],
    },
    {
      name: "an app pool on an unknown database",
      input: { pgbouncer: base, appPools: adrAppPools("other") },
      fields: ["appPools[0].database"],
    },
    {
      name: "a nonsensical instance count",
      input: { pgbouncer: base, appPools: [{ ...adrAppPools()[0], instances: 0 }] },
      fields: ["appPools[0].instances"],
    },
  ];
  it.each(cases)("$name", ({ input, fields, message }) => {
    const report = checkPoolBudget(input);
    expect(report.ok).toBe(false);
    expect(report.problems.map((p) => p.field)).toEqual(fields);
    if (message) expect(report.problems[0].message).toMatch(message);
  });

  it("a second PgBouncer doubles the capacity for the app pools", () => {
    const report = checkPoolBudget({
      pgbouncer: { ...base, defaultPoolSize: 100 },
      appPools: adrAppPools(),
      pgbouncerInstances: 2,
      postgres: pg300,
    });
    expect(report.ok).toBe(true);
    expect(report.pools[0].capacity).toBe(200);
    expect(report.serverConnections).toBe(210);
  });
});
