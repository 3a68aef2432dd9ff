/**
 * SCRAM end to end, on a cluster of this test's own whose pg_hba requires scram-sha-256 (the
 * shared test cluster trusts loopback): the verifier we compute is the one PostgreSQL computes;
 * the same verifier on both ends lets PgBouncer log in by SCRAM pass-through with no password on
 * disk; and `tenancy pgbouncer render` writes a config that runs as is.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pgbouncerProgram } from "../../lib/local/pgbouncer-server";
import { startPostgres, THROWAWAY_SETTINGS, type PostgresServer } from "../../lib/local/postgres-server";
import { freePort, isListening, runsAsRoot, serviceDirectory, waitFor } from "../../lib/local/processes";
import { newScramSalt, parseScramVerifier, scramSha256Verifier } from "../../lib/pgbouncer/auth";
import { ROLES } from "../../lib/schema/roles";
import { TenantPool, tenantQuery } from "../../lib/tenant-context/client";
import { bouncerFor, CONSOLE_PASSWORD, CONSOLE_USER, foreignRows, tenantDatabase, type Bouncer, type TenantDatabase } from "./helpers";
import { tenancy } from "../support/cli";

const APP_PASSWORD = "scram-app-password-42";
let server: PostgresServer;
let db: TenantDatabase;
let appVerifier: string;
const stop: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  server = await startPostgres({ settings: { ...THROWAWAY_SETTINGS, password_encryption: "scram-sha-256" } });
  const admin = new pg.Client({ connectionString: server.adminUrl });
  await admin.connect();
  await admin.query("CREATE DATABASE scram");
  await admin.end();
  db = await tenantDatabase({
    tiers: ["pro", "starter"],
    database: { name: "scram", url: server.urlFor("scram"), urlAs: () => "", drop: async () => {} },
  });
  // app_user's password is our verifier, set as is: PostgreSQL stores a pre-hashed verifier unchanged.
  appVerifier = scramSha256Verifier(APP_PASSWORD, { salt: newScramSalt() });
  const c = new pg.Client({ connectionString: server.adminUrl });
  await c.connect();
  await c.query(`ALTER ROLE ${ROLES.app} PASSWORD '${appVerifier}'`);
  await c.end();
  // From here on only the superuser may skip the password.
  writeFileSync(
    path.join(server.dataDir, "pg_hba.conf"),
    "local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n",
  );
  const r = new pg.Client({ connectionString: server.adminUrl });
  await r.connect();
  await r.query("SELECT pg_reload_conf()");
  await r.end();
});

afterAll(async () => {
  for (const s of stop.reverse()) await s().catch(() => {});
  await server?.stop({ removeData: true, mode: "immediate" });
});

async function bouncerWith(verifier: string): Promise<Bouncer> {
  const b = await bouncerFor(db, {
    users: [
      { name: ROLES.app, scramVerifier: verifier },
      { name: CONSOLE_USER, scramVerifier: scramSha256Verifier(CONSOLE_PASSWORD, { salt: newScramSalt() }) },
    ],
  });
  stop.push(() => b.stop({ removeDir: true }));
  return b;
}

async function login(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  c.on("error", () => {});
  try {
    await c.connect();
    return (await c.query("SELECT current_user AS u")).rows[0].u;
  } catch (err) {
    return `refused: ${(err as Error).message}`;
  } finally {
    await c.end().catch(() => {});
  }
}

describe("SCRAM verifiers", () => {
  it("ours equals PostgreSQL's for the same password, salt and iterations", async () => {
    const c = new pg.Client({ connectionString: server.adminUrl });
    await c.connect();
    try {
      await c.query("CREATE ROLE scram_probe LOGIN PASSWORD 'probe-password-12345'");
      const { rows } = await c.query("SELECT rolpassword FROM pg_authid WHERE rolname = 'scram_probe'");
      const theirs = rows[0].rolpassword as string;
      const { salt, iterations } = parseScramVerifier(theirs);
      expect(scramSha256Verifier("probe-password-12345", { salt, iterations })).toBe(theirs);
      expect(scramSha256Verifier("probe-password-12346", { salt, iterations })).not.toBe(theirs);
    } finally {
      await c.query("DROP ROLE IF EXISTS scram_probe");
      await c.end();
    }
  });

  it("PostgreSQL itself requires the password now (the setup is real)", async () => {
    expect(await login(db.directAppUrl)).toMatch(/^refused: .*password/);
    const withPassword = new URL(db.directAppUrl);
    withPassword.password = APP_PASSWORD;
    expect(await login(withPassword.toString())).toBe(ROLES.app);
  });
});

describe("PgBouncer with the same verifier as PostgreSQL", () => {
  it("authenticates the client and logs in to PostgreSQL by SCRAM pass-through", async () => {
    const b = await bouncerWith(appVerifier);
    expect(readFileSync(path.join(b.dir, "userlist.txt"), "utf8")).not.toContain(APP_PASSWORD);
    expect(await login(b.urlFor(db.name, ROLES.app, APP_PASSWORD))).toBe(ROLES.app);
    const pool = new TenantPool({ connectionString: b.urlFor(db.name, ROLES.app, APP_PASSWORD), max: 1 });
    try {
      const { rows } = await tenantQuery(pool, { tenantId: db.tenants[0].id, tier: "pro" }, "SELECT tenant_id FROM trades");
      expect(rows.length).toBe(20);
      expect(foreignRows(rows, db.tenants[0].id)).toBe(0);
    } finally {
      await pool.end();
    }
  });

  it("refuses a wrong password", async () => {
    const b = await bouncerWith(appVerifier);
    expect(await login(b.urlFor(db.name, ROLES.app, "not-the-password-1"))).toMatch(/^refused: .*SASL authentication failed/);
  });

  it("negative control: a verifier of the same password with another salt passes PgBouncer but not PostgreSQL", async () => {
    const b = await bouncerWith(scramSha256Verifier(APP_PASSWORD, { salt: newScramSalt() }));
    expect(await login(b.urlFor(db.name, ROLES.app, APP_PASSWORD))).toMatch(/^refused: /);
    expect(b.logTail(40)).toMatch(/password authentication failed|SASL authentication failed|server login failed/);
  });
});

describe("tenancy pgbouncer render", () => {
  function runIni(ini: string, port: number): Promise<ChildProcess> {
    const owner = runsAsRoot ? statSync(path.dirname(ini)) : undefined;
    const child = spawn(pgbouncerProgram(), [ini], { stdio: "ignore", ...(owner ? { uid: owner.uid, gid: owner.gid } : {}) });
    stop.push(async () => {
      child.kill("SIGTERM");
      await waitFor("pgbouncer to exit", () => Promise.resolve(child.exitCode !== null || child.signalCode !== null), 10_000);
    });
    return waitFor(`pgbouncer on ${port}`, () => isListening(port)).then(() => child);
  }

  const outDir = (prefix: string) => {
    const dir = serviceDirectory(prefix);
    stop.push(() => Promise.resolve(rmSync(dir, { recursive: true, force: true })));
    return dir;
  };

  it("writes a config that runs as is, with the server's own verifiers", async () => {
    const out = outDir("pgb-render");
    const port = await freePort();
    const { code, json, stderr } = await tenancy(
      "pgbouncer",
      "render",
      "--out",
      out,
      "--database-url",
      server.urlFor(db.name),
      "--listen-port",
      String(port),
      "--users",
      ROLES.app,
      "--json",
    );
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(json).toMatchObject({
      out,
      listen: { addr: "127.0.0.1", port },
      database: { name: db.name, host: "127.0.0.1", port: server.port },
      users: [ROLES.app],
      pool: { defaultPoolSize: 20 },
      run: `pgbouncer ${out}/pgbouncer.ini`,
    });
    expect(readFileSync(json.files.authFile, "utf8")).toBe(`"${ROLES.app}" "${appVerifier}"\n`);
    expect(statSync(json.files.authFile).mode & 0o777).toBe(0o600);
    const ini = readFileSync(json.files.ini, "utf8");
    expect(ini).toContain(`\n${db.name} = host=127.0.0.1 port=${server.port} dbname=${db.name}\n`);
    expect(ini).toContain("\npool_mode = session\n");
    expect(ini).toContain("\nserver_reset_query = DISCARD ALL\n");

    await runIni(json.files.ini, port);
    expect(await login(`postgres://${ROLES.app}:${APP_PASSWORD}@127.0.0.1:${port}/${db.name}`)).toBe(ROLES.app);
  });

  it.each([
    [["--listen-port", "70000"], "--listen-port"],
    [["--listen-port", "64x"], "--listen-port"],
    [["--pool-size", "0"], "--pool-size"],
    [["--pool-size", "400"], "--pool-size"], // more than this server's max_connections leaves
    [["--users", "app_user,bad name"], "--users"],
    [["--users", "nobody_here"], "--users"],
    [["--listen-addr", "0.0.0.0\nauth_type=trust"], "--listen-addr"],
  ])("bad input %j → exit 2 naming %s, nothing written", async (extra, field) => {
    const out = outDir("pgb-render-bad");
    const { code, json } = await tenancy("pgbouncer", "render", "--out", out, "--database-url", server.urlFor(db.name), ...extra, "--json");
    expect(code).toBe(2);
    expect(json.error.field).toBe(field);
    expect(existsSync(path.join(out, "pgbouncer.ini"))).toBe(false);
    expect(existsSync(path.join(out, "userlist.txt"))).toBe(false);
  });

  it("without --database-url or DATABASE_URL: exit 2 naming --database-url; without --out: naming --out", async () => {
    const saved = process.env.DATABASE_URL;
    delete process.env.DATABASE_URL;
    try {
      expect((await tenancy("pgbouncer", "render", "--out", "/tmp/x", "--json")).json.error.field).toBe("--database-url");
      expect((await tenancy("pgbouncer", "render", "--database-url", server.urlFor(db.name), "--json")).json.error.field).toBe("--out");
    } finally {
      if (saved !== undefined) process.env.DATABASE_URL = saved;
    }
  });

  it("a role without a SCRAM password is a failure naming the role (exit 1), nothing written", async () => {
    const out = outDir("pgb-render-nopw");
    const { code, stderr } = await tenancy(
      "pgbouncer",
      "render",
      "--out",
      out,
      "--database-url",
      server.urlFor(db.name),
      "--users",
      `${ROLES.app},${ROLES.readonly}`,
    );
    expect(code).toBe(1);
    expect(stderr).toContain(`role "${ROLES.readonly}" has no SCRAM-SHA-256 password`);
    expect(existsSync(path.join(out, "pgbouncer.ini"))).toBe(false);
  });
});
