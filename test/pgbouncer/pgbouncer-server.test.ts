/**
 * lib/local/pgbouncer-server.ts: start, stop, restart on the same port, reload (a password rotated
 * in the auth file takes effect without a restart), daemonized for the local stacks, and a clear
 * error when the port is taken.
 */
import { readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import pg from "pg";
import { beforeAll, describe, expect, it } from "vitest";
import { PGBOUNCER_AUTH_FILE, startPgbouncer, stopPgbouncerAt, writePgbouncerFiles } from "../../lib/local/pgbouncer-server";
import { freePort, isListening, waitFor } from "../../lib/local/processes";
import { newScramSalt, scramSha256Verifier } from "../../lib/pgbouncer/auth";
import { adminUrl, withDatabase } from "../support/postgres";
import { sleep } from "./helpers";

const USER = "pgb_admin";
const OLD = "console-password-old";
const NEW = "console-password-new";
let database: { name: string; host: string; port: number };

async function version(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  c.on("error", () => {});
  try {
    await c.connect();
    return String((await c.query("SHOW VERSION")).rows[0].version);
  } catch (err) {
    return `refused: ${(err as Error).message}`;
  } finally {
    await c.end().catch(() => {});
  }
}

beforeAll(() => {
  const u = new URL(withDatabase(adminUrl(), "postgres"));
  database = { name: "postgres", host: u.hostname, port: Number(u.port) };
});

const settings = { adminUsers: [USER] };
const users = (password: string) => [{ name: USER, scramVerifier: scramSha256Verifier(password, { salt: newScramSalt() }) }];

describe("startPgbouncer", () => {
  it("starts, stops, and starts again on the same port", async () => {
    const b = await startPgbouncer({ databases: [database], users: users(OLD), settings });
    try {
      const url = b.urlFor("pgbouncer", USER, OLD);
      expect(await version(url)).toMatch(/^PgBouncer 1\./);
      await b.stop();
      expect(await isListening(b.port)).toBe(false);
      await b.start();
      expect(await version(url)).toMatch(/^PgBouncer 1\./);
    } finally {
      await b.stop({ removeDir: true });
    }
  });

  it("reload picks up a rotated password from the auth file", async () => {
    const b = await startPgbouncer({ databases: [database], users: users(OLD), settings });
    try {
      const ini = readFileSync(b.iniPath, "utf8");
      await sleep(1100); // PgBouncer re-reads the auth file when its mtime (whole seconds) changed
      writePgbouncerFiles(b.dir, ini, users(NEW));
      expect(readFileSync(path.join(b.dir, PGBOUNCER_AUTH_FILE), "utf8")).not.toContain(NEW);
      b.reload();
      await waitFor("the new password to work", async () => /^PgBouncer/.test(await version(b.urlFor("pgbouncer", USER, NEW))), 10_000);
      expect(await version(b.urlFor("pgbouncer", USER, OLD))).toMatch(/^refused: .*SASL authentication failed/);
    } finally {
      await b.stop({ removeDir: true });
    }
  });

  it("daemonized, it outlives its starter's handle and stops by directory", async () => {
    const b = await startPgbouncer({ databases: [database], users: users(OLD), settings, daemonize: true });
    expect(await version(b.urlFor("pgbouncer", USER, OLD))).toMatch(/^PgBouncer/);
    await stopPgbouncerAt(b.dir, { removeDir: true });
    expect(await isListening(b.port)).toBe(false);
  });

  it("refuses a port that is already taken", async () => {
    const port = await freePort();
    const holder = net.createServer().listen(port, "127.0.0.1");
    await new Promise((r) => holder.once("listening", r));
    try {
      await expect(startPgbouncer({ databases: [database], users: users(OLD), settings, port })).rejects.toThrow(
        `port ${port} is already in use`,
      );
    } finally {
      holder.close();
    }
  });
});
