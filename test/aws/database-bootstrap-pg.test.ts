/**
 * The AWS split of duties on a real PostgreSQL: the node bootstrap's superuser SQL
 * (lib/platform/database-bootstrap.ts, run with psql exactly as cloud-init runs it, after the login
 * role from ROLE_SQL), then everything else as the executor's role — CREATEDB CREATEROLE, not a
 * superuser: CREATE DATABASE, migrate (twice: converges, no warnings), a tenant, an Enterprise
 * schema with its login role, the PgBouncer verifiers. The isolation audit of the result is clean.
 *
 * Its own cluster (a fresh one, as on a new node): the bootstrap changes template1 and creates
 * roles, which must not leak into the shared test cluster of the other files.
 * Negative controls: the executor cannot read pg_authid nor create a BYPASSRLS role itself, app_user
 * cannot call the verifier function, and a database NOT copied from the bootstrapped template1
 * never converges under the executor (the template part is what makes migrate work).
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootstrapAwsNode } from "../support/aws-node";
import { auditDatabase } from "../../lib/audit/isolation-audit";
import { connect } from "../../lib/db/client";
import { ensureTenantLoginRole, terminateTenantLoginSessions } from "../../lib/enterprise/dedicated";
import { graduateTenant } from "../../lib/enterprise/graduation";
import { startPostgres, THROWAWAY_SETTINGS, type PostgresServer } from "../../lib/local/postgres-server";
import { renderAuthFile, SCRAM_VERIFIER_PATTERN } from "../../lib/pgbouncer/auth";
import { EXECUTOR_ROLE, PGBOUNCER_VERIFIERS_FUNCTION } from "../../lib/platform/database-bootstrap";
import { executorOperations } from "../../lib/executor/operations";
import { migrate } from "../../lib/schema/migrate";
import { ROLES } from "../../lib/schema/roles";
import { createTenant } from "../../lib/tenant/registry";
import { seedTenant } from "../../lib/tenant/seed";

let server: PostgresServer;

const url = (database: string, user: string) => `postgres://${user}@127.0.0.1:${server.port}/${database}`;

/** A session as the executor that records every notice (a WARNING means a privilege it could not change). */
async function asExecutor(database: string) {
  const client = new pg.Client({ connectionString: url(database, EXECUTOR_ROLE) });
  const notices: string[] = [];
  client.on("notice", (n) => notices.push(`${n.severity}: ${n.message}`));
  await client.connect();
  return { client, notices };
}

beforeAll(async () => {
  server = await startPostgres({ settings: THROWAWAY_SETTINGS });
  await bootstrapAwsNode(server, "executor-password-of-the-test");
  await bootstrapAwsNode(server, "executor-password-of-the-test"); // idempotent: a second run converges
}, 120_000);

afterAll(async () => {
  await server?.stop({ removeData: true, mode: "immediate" });
});

describe("the bootstrap's roles", () => {
  it("the executor logs in, creates databases and roles, and is not a superuser", async () => {
    const admin = await connect(server.adminUrl);
    try {
      const { rows } = await admin.query(
        `SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls, rolreplication, rolcanlogin,
                ARRAY(SELECT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid ORDER BY 1) AS member_of
           FROM pg_roles r WHERE rolname = $1`,
        [EXECUTOR_ROLE],
      );
      expect(rows[0]).toEqual({
        rolsuper: false,
        rolcreatedb: true,
        rolcreaterole: true,
        rolbypassrls: false,
        rolreplication: false,
        rolcanlogin: true,
        member_of: [ROLES.maintenance, ROLES.owner, "pg_read_all_stats", "pg_signal_backend"].sort(),
      });
      const maintenance = await admin.query(`SELECT rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = $1`, [ROLES.maintenance]);
      expect(maintenance.rows[0]).toEqual({ rolbypassrls: true, rolcanlogin: false });
    } finally {
      await admin.end();
    }
  });

  it("negative controls: the executor cannot read pg_authid nor make a BYPASSRLS role (why the bootstrap does)", async () => {
    const { client } = await asExecutor("postgres");
    try {
      await expect(client.query("SELECT rolpassword FROM pg_authid")).rejects.toMatchObject({ code: "42501" });
      await expect(client.query("CREATE ROLE would_bypass NOLOGIN BYPASSRLS")).rejects.toMatchObject({ code: "42501" });
    } finally {
      await client.end();
    }
  });
});

describe("the data layer as the executor", () => {
  let db: { client: pg.Client; notices: string[] };
  const database = "alphapulse";

  beforeAll(async () => {
    const { client } = await asExecutor("postgres");
    await client.query(`CREATE DATABASE ${database}`);
    await client.end();
    db = await asExecutor(database);
  }, 60_000);
  afterAll(async () => {
    await db?.client.end();
  });

  it("migrate succeeds, converges on a second run, and changes no privilege it cannot (no warnings)", async () => {
    const passwords = { migrator: "migrator-password-1", app: "app-password-12345", readonly: "readonly-password-1" };
    const first = await migrate(db.client, { region: "eu", passwords });
    expect(first.versioned.length).toBeGreaterThan(0);
    // Passwords again (what DatabaseSchema's update does): only PASSWORD, no attribute a non-superuser may not name.
    const second = await migrate(db.client, { region: "eu", passwords });
    expect(second.roles).toEqual([
      `ALTER ROLE "${ROLES.migrator}" PASSWORD '***'`,
      `ALTER ROLE "${ROLES.app}" PASSWORD '***'`,
      `ALTER ROLE "${ROLES.readonly}" PASSWORD '***'`,
    ]);
    const third = await migrate(db.client, { region: "eu" });
    expect(third.unchanged).toBe(true);
    expect(db.notices.filter((n) => n.startsWith("WARNING"))).toEqual([]);
    const dry = await migrate(db.client, { region: "eu", dryRun: true });
    expect(dry.unchanged).toBe(true);
  });

  it("creates a tenant, graduates it to a dedicated schema (rows copied as maintenance) and gives it a login role", async () => {
    const tenant = await createTenant(db.client, { slug: "acme-capital", tier: "enterprise", region: "eu" });
    await seedTenant(db.client, tenant, { trades: 5 });
    const moved = await graduateTenant(db.client, tenant.slug);
    expect(moved.rowsMoved).toBeGreaterThan(0);
    const login = await ensureTenantLoginRole(db.client, { ...tenant, placement: "dedicated" });
    expect(login.role).toMatch(/^tenant_[0-9a-f]+_login$/);
    // Again, with a new password (rotation): the existing role is altered by a non-superuser.
    const again = await ensureTenantLoginRole(db.client, { ...tenant, placement: "dedicated" }, { password: "rotated-password-123" });
    expect(again.role).toBe(login.role);
    // Suspension and offboarding end the tenant's sessions: the executor may signal them.
    const tenantSession = await connect(url(database, login.role));
    tenantSession.on("error", () => {});
    try {
      expect(await terminateTenantLoginSessions(db.client, tenant.id)).toBe(1);
    } finally {
      await tenantSession.end().catch(() => {});
    }
    expect((await migrate(db.client, { region: "eu" })).unchanged).toBe(true);
  });

  it("the isolation audit of the executor-built database is clean", async () => {
    const admin = await connect(url(database, "postgres"));
    try {
      expect(await auditDatabase(admin)).toEqual([]);
    } finally {
      await admin.end();
    }
  });

  it("the executor reads the PgBouncer verifiers through the bootstrap's function, and they render an auth file", async () => {
    const { client } = await asExecutor("postgres");
    try {
      const { rows } = await client.query(`SELECT name, scram_verifier AS "scramVerifier" FROM ${PGBOUNCER_VERIFIERS_FUNCTION}()`);
      expect(rows.map((r: { name: string }) => r.name)).toEqual([ROLES.readonly, ROLES.app].sort());
      for (const r of rows as { scramVerifier: string }[]) expect(r.scramVerifier).toMatch(SCRAM_VERIFIER_PATTERN);
      expect(renderAuthFile(rows).split("\n").filter(Boolean)).toHaveLength(2);
      // The operation the PgbouncerAuthFile resource calls through the executor: the same file, and its revision.
      const op = await executorOperations.pgbouncerAuthFile(client, {});
      expect(op.authFile).toBe(renderAuthFile(rows));
      expect(op.revision).toMatch(/^[0-9a-f]{64}$/);
    } finally {
      await client.end();
    }
  });

  it("negative control: app_user cannot call the verifier function", async () => {
    const admin = await connect(server.adminUrl);
    try {
      await admin.query(`GRANT CONNECT ON DATABASE postgres TO ${ROLES.app}`);
    } finally {
      await admin.end();
    }
    const app = await connect(url("postgres", ROLES.app));
    try {
      await expect(app.query(`SELECT * FROM ${PGBOUNCER_VERIFIERS_FUNCTION}()`)).rejects.toMatchObject({ code: "42501" });
    } finally {
      await app.end();
    }
  });

  it("negative control: a database not copied from the bootstrapped template1 never converges under the executor", async () => {
    const { client } = await asExecutor("postgres");
    await client.query(`CREATE DATABASE bare TEMPLATE template0`);
    await client.end();
    const bare = await asExecutor("bare");
    try {
      await migrate(bare.client, { region: "eu" });
      const again = await migrate(bare.client, { region: "eu" });
      expect(again.unchanged).toBe(false);
      expect(bare.notices.some((n) => n.startsWith("WARNING"))).toBe(true);
    } finally {
      await bare.client.end();
    }
  });
});
