/**
 * `tenancy pgbouncer render --out <dir> --database-url <url> [--listen-port <p>]`: a ready-to-run
 * PgBouncer for a local PostgreSQL. Writes <dir>/pgbouncer.ini and <dir>/userlist.txt, the latter
 * with the SCRAM verifiers read from pg_authid (so they are identical to the server's and SCRAM
 * pass-through works; this needs a superuser connection). Checks the pool against the server's
 * max_connections. Everything is validated and rendered before anything is written; the files are
 * replaced atomically.
 */
import { chownSync, renameSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { ensureServiceDirectory, runsAsRoot } from "../../lib/local/processes";
import { checkPoolBudget } from "../../lib/pgbouncer/pool-budget";
import { AuthUser, PGBOUNCER_NAME_PATTERN, renderAuthFile, SCRAM_VERIFIER_PATTERN } from "../../lib/pgbouncer/auth";
import { FILE_PATH_PATTERN, localPgbouncerConfig, PgbouncerConfig, renderPgbouncerIni } from "../../lib/pgbouncer/config";
import { ROLES } from "../../lib/schema/roles";
import { optionalFlag, parseInteger, positionals, requiredFlag } from "../args";
import { CONNECTION_OPTIONS, databaseUrl, describeDatabaseUrl, withConnection } from "../connection";
import { UsageError, usageErrorFromZod } from "../output";
import type { Command } from "../command";

/** Services connect as app_user; add alphapulse_readonly (reporting) with --users when it has a password. */
export const DEFAULT_RENDER_USERS: string[] = [ROLES.app];

interface RenderInput {
  out: string;
  listenPort: number;
  listenAddr: string;
  poolSize: number;
  users: string[];
  host: string;
  port: number;
}

function parseInput(ctx: Parameters<Command["run"]>[0]): RenderInput {
  positionals(ctx, []);
  const out = path.resolve(requiredFlag(ctx, "out"));
  if (!FILE_PATH_PATTERN.test(out)) throw new UsageError("must be a directory path of letters, digits and . _ / @ + -", "--out");
  const listenPort = parseInteger(optionalFlag(ctx, "listen-port") ?? "6432", "--listen-port", 1, 65535);
  const listenAddr = optionalFlag(ctx, "listen-addr") ?? "127.0.0.1";
  const poolSize = parseInteger(optionalFlag(ctx, "pool-size") ?? "20", "--pool-size", 1, 10_000);
  const users = (optionalFlag(ctx, "users") ?? DEFAULT_RENDER_USERS.join(",")).split(",").map((u) => u.trim());
  for (const u of users) if (!PGBOUNCER_NAME_PATTERN.test(u)) throw new UsageError(`${JSON.stringify(u)} is not a role name`, "--users");
  if (new Set(users).size !== users.length) throw new UsageError("names a role twice", "--users");
  const url = new URL(databaseUrl(ctx.flags));
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (!/^[A-Za-z0-9.:-]+$/.test(host))
    throw new UsageError("must name a TCP host (PgBouncer is rendered to connect over TCP)", "--database-url");
  return { out, listenPort, listenAddr, poolSize, users, host, port: Number(url.port || 5432) };
}

/** Writes `text` to `file` through a temporary file and a rename, so a reader never sees half of it. */
function writeAtomically(file: string, text: string, owner?: { uid: number; gid: number }): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o600 });
  if (owner) chownSync(tmp, owner.uid, owner.gid);
  renameSync(tmp, file);
}

export const pgbouncerRenderCommand: Command = {
  words: ["pgbouncer", "render"],
  summary: "write a ready-to-run pgbouncer.ini and SCRAM auth file for a PostgreSQL (verifiers read from pg_authid)",
  usage: "pgbouncer render --out <dir> --database-url <url> [--listen-port <p>] [--listen-addr <a>] [--pool-size <n>] [--users <a,b>]",
  options: {
    ...CONNECTION_OPTIONS,
    out: { type: "string" },
    "listen-port": { type: "string" },
    "listen-addr": { type: "string" },
    "pool-size": { type: "string" },
    users: { type: "string" },
  },
  async run(ctx) {
    const input = parseInput(ctx);
    const url = databaseUrl(ctx.flags);
    const server = await withConnection(ctx, async (client) => {
      const { rows: info } = await client.query(
        `SELECT current_database() AS database, current_setting('max_connections')::int AS max_connections,
                current_setting('superuser_reserved_connections')::int AS reserved,
                (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser`,
      );
      if (!info[0].superuser)
        throw new Error(`reading SCRAM verifiers needs a superuser connection (pg_authid); ${describeDatabaseUrl(url)} is not one`);
      const { rows } = await client.query(`SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY($1) AND rolcanlogin`, [
        input.users,
      ]);
      return {
        ...info[0],
        verifiers: new Map<string, string | null>(
          rows.map((r: { rolname: string; rolpassword: string | null }) => [r.rolname, r.rolpassword]),
        ),
      };
    });
    if (!PGBOUNCER_NAME_PATTERN.test(server.database))
      throw new UsageError(`database ${JSON.stringify(server.database)} has a name PgBouncer config cannot carry`, "--database-url");
    const configInput = localPgbouncerConfig({
      database: server.database,
      host: input.host,
      port: input.port,
      dir: input.out,
      listenPort: input.listenPort,
      listenAddr: input.listenAddr,
      poolSize: input.poolSize,
    });
    const parsed = PgbouncerConfig.safeParse(configInput);
    if (!parsed.success) {
      const field = String(parsed.error.issues[0].path[0] ?? "");
      const flag = {
        listenAddr: "--listen-addr",
        listenPort: "--listen-port",
        defaultPoolSize: "--pool-size",
        databases: "--database-url",
      }[field];
      throw flag ? new UsageError(parsed.error.issues[0].message, flag) : usageErrorFromZod(parsed.error);
    }
    const budget = checkPoolBudget({
      pgbouncer: configInput,
      appPools: [{ service: "local app", database: server.database, user: ROLES.app, instances: 1, poolMax: input.poolSize }],
      postgres: { maxConnections: server.max_connections, superuserReservedConnections: server.reserved },
    });
    if (!budget.ok) throw new UsageError(budget.problems.map((p) => p.message).join("; "), "--pool-size");

    const missing = input.users.filter((u) => !server.verifiers.has(u));
    if (missing.length) throw new UsageError(`no login role ${missing.map((m) => JSON.stringify(m)).join(", ")} on this server`, "--users");
    const users: AuthUser[] = input.users.map((name) => {
      const verifier = server.verifiers.get(name);
      if (!verifier || !SCRAM_VERIFIER_PATTERN.test(verifier)) {
        throw new Error(
          `role "${name}" has no SCRAM-SHA-256 password: set one (ALTER ROLE ${name} PASSWORD '...' with password_encryption = scram-sha-256, or migrate with passwords) and render again`,
        );
      }
      return { name, scramVerifier: verifier };
    });

    const ini = renderPgbouncerIni(configInput);
    const auth = renderAuthFile(users);
    ensureServiceDirectory(input.out);
    const owner = runsAsRoot ? statSync(input.out) : undefined;
    const files = { ini: path.join(input.out, "pgbouncer.ini"), authFile: path.join(input.out, "userlist.txt") };
    writeAtomically(files.authFile, auth, owner);
    writeAtomically(files.ini, ini, owner);

    const result = {
      out: input.out,
      files,
      listen: { addr: input.listenAddr, port: input.listenPort },
      database: { name: server.database, host: input.host, port: input.port },
      users: users.map((u) => u.name),
      pool: { defaultPoolSize: input.poolSize, serverConnections: budget.serverConnections, postgresAvailable: budget.postgresAvailable },
      run: `pgbouncer ${files.ini}`,
    };
    ctx.out.result(result, () =>
      [
        `wrote ${files.ini}`,
        `wrote ${files.authFile} (${users.length} SCRAM verifier${users.length === 1 ? "" : "s"}: ${result.users.join(", ")})`,
        `PgBouncer listens on ${input.listenAddr}:${input.listenPort} for database ${server.database} → ${input.host}:${input.port}; pool ${input.poolSize} per user, session mode, DISCARD ALL`,
        `server connections at most ${budget.serverConnections} of the ${budget.postgresAvailable} PostgreSQL leaves`,
        `run: ${result.run}${runsAsRoot ? "   (as the owner of the directory, e.g. runuser -u postgres -- ...)" : ""}`,
      ].join("\n"),
    );
  },
};
