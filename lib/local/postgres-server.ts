/**
 * A throwaway (or long-lived, for the local stacks) PostgreSQL cluster on loopback: initdb into a
 * directory, start on a port, stop and remove. Used by the tests, the benchmarks and the local stacks.
 */
import { existsSync, rmSync, writeFileSync, appendFileSync } from "node:fs";
import path from "node:path";
import { withConnection } from "../db/client";
import { freePort, runServerProgram, serviceDirectory, ensureServiceDirectory, waitFor } from "./processes";

/** Where Debian puts the server programs; `PG_BINDIR` overrides. */
export function postgresBinDir(): string {
  if (process.env.PG_BINDIR) return process.env.PG_BINDIR;
  for (const version of ["17", "16", "15"]) {
    const dir = `/usr/lib/postgresql/${version}/bin`;
    if (existsSync(path.join(dir, "pg_ctl"))) return dir;
  }
  return ""; // rely on PATH
}

const bin = (program: string) => (postgresBinDir() ? path.join(postgresBinDir(), program) : program);

export interface PostgresServerOptions {
  /** Data directory; a fresh temporary one when omitted. */
  dataDir?: string;
  /** Port on 127.0.0.1; a free one when omitted. */
  port?: number;
  /** Extra postgresql.conf lines, e.g. `{ shared_preload_libraries: "pg_stat_statements" }`. */
  settings?: Record<string, string | number>;
}

export interface PostgresServer {
  port: number;
  dataDir: string;
  /** Superuser URL (trust on loopback) to the `postgres` database. */
  adminUrl: string;
  /** Superuser URL to database `name`. */
  urlFor(name: string): string;
  stop(options?: { removeData?: boolean; mode?: "fast" | "immediate" }): Promise<void>;
  start(): Promise<void>;
}

/** Settings for small, fast test clusters; the durability trade-offs are for throwaway data only. */
export const THROWAWAY_SETTINGS: Record<string, string | number> = {
  fsync: "off",
  synchronous_commit: "off",
  full_page_writes: "off",
  shared_buffers: "128MB",
  max_connections: 300,
};

/** The server's log file (pg_ctl -l): next to the data directory. */
export function postgresLogFile(dataDir: string): string {
  return path.join(path.dirname(dataDir), "postgres.log");
}

/** initdb (when the data directory is new), then start. */
export async function startPostgres(options: PostgresServerOptions = {}): Promise<PostgresServer> {
  const port = options.port ?? (await freePort());
  const dataDir = options.dataDir ?? path.join(serviceDirectory("alphapulse-pg"), "data");
  const socketDir = path.join(path.dirname(dataDir), "sockets");
  ensureServiceDirectory(socketDir);
  if (!existsSync(path.join(dataDir, "PG_VERSION"))) {
    ensureServiceDirectory(dataDir);
    await runServerProgram(bin("initdb"), ["-D", dataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]);
    const conf = { listen_addresses: "'127.0.0.1'", port, unix_socket_directories: `'${socketDir}'`, ...quote(options.settings ?? {}) };
    appendFileSync(
      path.join(dataDir, "postgresql.conf"),
      "\n# alphapulse\n" +
        Object.entries(conf)
          .map(([k, v]) => `${k} = ${v}`)
          .join("\n") +
        "\n",
    );
    writeFileSync(path.join(dataDir, "pg_hba.conf"), "local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n");
  }
  const server: PostgresServer = {
    port,
    dataDir,
    adminUrl: `postgres://postgres@127.0.0.1:${port}/postgres`,
    urlFor: (name) => `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(name)}`,
    async start() {
      await runServerProgram(bin("pg_ctl"), ["-D", dataDir, "-l", postgresLogFile(dataDir), "-w", "-t", "60", "start"]);
      await waitFor(`PostgreSQL on port ${port}`, () => canConnect(server.adminUrl));
    },
    async stop({ removeData = false, mode = "fast" } = {}) {
      await runServerProgram(bin("pg_ctl"), ["-D", dataDir, "-m", mode, "-w", "stop"]).catch(() => {});
      if (removeData) rmSync(path.dirname(dataDir), { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}

function quote(settings: Record<string, string | number>): Record<string, string | number> {
  return Object.fromEntries(Object.entries(settings).map(([k, v]) => [k, typeof v === "number" ? v : `'${v.replace(/'/g, "''")}'`]));
}

export async function canConnect(url: string): Promise<boolean> {
  try {
    await withConnection(url, (client) => client.query("SELECT 1"), { connectionTimeoutMillis: 2000 });
    return true;
  } catch {
    return false;
  }
}
