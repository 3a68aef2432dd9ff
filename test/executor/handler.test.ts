/**
 * The executor's Lambda handler with exactly the payloads AWS delivers — the plain Invoke payload
 * of our providers and the `aws.lambda.Invocation` CRUD envelope (`tf.action`, `tf.prev_input`) —
 * against a real PostgreSQL set up as an AWS node is: the executor is NOT a superuser, logs in with
 * SCRAM, and reads its credential from (a local) Secrets Manager. Migrate, tenant create/update/
 * delete, Enterprise placement, login roles, PgBouncer's auth-file verifiers, idempotent re-runs, a
 * server still bootstrapping (waited for), and a crash half-way (the handler's
 * process killed inside a graduation) followed by a re-run that finishes the move.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withConnection } from "../../lib/db/client";
import {
  createHandler,
  DEFAULT_READY_TIMEOUT_S,
  handlerConfigFromEnv,
  parseExecutorEvent,
  type ExecutorHandler,
} from "../../lib/executor/handler";
import { freePort } from "../../lib/local/processes";
import { SCRAM_VERIFIER_PATTERN } from "../../lib/pgbouncer/auth";
import { EXECUTOR_ROLE } from "../../lib/platform/database-bootstrap";
import { TENANT_TABLES } from "../../lib/schema/catalogue";
import { RLS_SUBJECT_ROLES } from "../../lib/schema/roles";
import { runScript } from "../support/run-script";
import { EXECUTOR_PASSWORD, startExecutorCluster, type ExecutorCluster } from "./support";

const DB = "alphapulse_exec";

describe("executor handler on a real PostgreSQL (non-superuser, SCRAM, secret from Secrets Manager)", () => {
  let cluster: ExecutorCluster;
  let handler: ExecutorHandler;
  const invoke = (operation: string, args: unknown = {}, database = DB) => handler({ operation, database, args });
  const rows = (sql: string, params: unknown[] = []) =>
    withConnection(cluster.superuserUrl(DB), async (c) => (await c.query(sql, params)).rows);

  beforeAll(async () => {
    process.env.EXECUTOR_QUIET = "1";
    cluster = await startExecutorCluster();
    handler = createHandler(cluster.config);
  });
  afterAll(async () => cluster?.stop());

  it("creates the database and migrates it; a re-run changes nothing", async () => {
    const created = (await invoke("createDatabase", { name: DB }, "postgres")) as { oid: number };
    expect(created.oid).toBeGreaterThan(0);
    await expect(invoke("createDatabase", { name: DB }, "postgres")).rejects.toThrow(/already exists/);
    const passwords = { app: "app-password-0123456789", migrator: "migrator-password-012345", readonly: "readonly-password-01234" };
    const first = (await invoke("migrate", { catalogue: TENANT_TABLES, region: "eu", passwords })) as { versions: string[]; roles: object };
    expect(first.versions.length).toBeGreaterThan(5);
    expect(first.roles).toMatchObject({ app: "app_user" });
    const again = (await invoke("migrate", { catalogue: TENANT_TABLES, region: "eu", dryRun: true })) as { unchanged: boolean };
    expect(again.unchanged).toBe(true);
    expect(await invoke("readDatabase", { name: DB }, "postgres")).toEqual({ oid: created.oid });
    // The region is recorded: another one is refused by the library, through the handler.
    await expect(invoke("migrate", { region: "us" })).rejects.toThrow(/region/);
  });

  it("runs the CRUD envelope of aws.lambda.Invocation: create, update, and delete (onDelete refuses a served tenant)", async () => {
    const input = { operation: "createTenant", database: DB, args: { slug: "crud-fund", tier: "starter", region: "eu" } };
    const tenant = (await handler({ ...input, tf: { action: "create", prev_input: null } })) as { id: string; tier: string };
    expect(tenant.tier).toBe("starter");
    const updated = (await handler({
      operation: "updateTenant",
      database: DB,
      args: { id: tenant.id, slug: "crud-fund", tier: "pro" },
      onDelete: { operation: "releaseTenantFromStack", args: { ref: tenant.id } },
      tf: { action: "update", prev_input: input },
    })) as { tier: string };
    expect(updated.tier).toBe("pro");
    // Delete runs onDelete: a served tenant is refused with the command to run; nothing changes.
    const deleting = {
      operation: "updateTenant",
      database: DB,
      args: { id: tenant.id, slug: "crud-fund", tier: "pro" },
      onDelete: { operation: "releaseTenantFromStack", args: { ref: tenant.id } },
      tf: { action: "delete", prev_input: null },
    };
    await expect(handler(deleting)).rejects.toMatchObject({
      name: "TenantStillServedError",
      message: expect.stringMatching(/tenancy tenant delete crud-fund/),
    });
    expect(await rows("SELECT slug, tier, status FROM tenancy.tenants WHERE id = $1", [tenant.id])).toEqual([
      { slug: "crud-fund", tier: "pro", status: "active" },
    ]);
    // Without onDelete, deleting the Invocation changes nothing in the database.
    expect(await handler({ ...input, tf: { action: "delete", prev_input: null } })).toMatchObject({ skipped: true });
    // Offboarded: the same delete releases it (its rows stay until the purge).
    await rows(
      "UPDATE tenancy.tenants SET status = 'offboarded', offboarded_at = now(), purge_after = now() + interval '30 days' WHERE id = $1",
      [tenant.id],
    );
    expect(await handler(deleting)).toEqual({ released: "offboarded" });
    expect(await rows("SELECT count(*)::int AS n FROM tenancy.tenants WHERE id = $1", [tenant.id])).toEqual([{ n: 1 }]);
  });

  it("places an Enterprise tenant in its own schema with its login role; re-runs are idempotent", async () => {
    const t = (await invoke("createTenant", { slug: "vault-capital", tier: "enterprise", region: "eu" })) as { id: string };
    const moved = (await invoke("graduateTenant", { ref: t.id })) as { to: string; alreadyThere: boolean };
    expect(moved.to).toMatch(/^tenant_[0-9a-f]{32}$/);
    expect(moved.alreadyThere).toBe(false);
    expect(await invoke("graduateTenant", { ref: t.id })).toMatchObject({ to: moved.to, alreadyThere: true });
    expect(await invoke("findTenant", { ref: "vault-capital" })).toMatchObject({ placement: "dedicated" });

    const role = (await invoke("ensureTenantLoginRole", { id: t.id, tier: "enterprise", password: "tenant-login-password-0123" })) as {
      role: string;
    };
    expect(role.role).toBe(`${moved.to}_login`);
    expect(await invoke("ensureTenantLoginRole", { id: t.id, tier: "enterprise" })).toEqual(role);
    expect(await invoke("tenantLoginRoleExists", { id: t.id })).toEqual({ exists: true });
    // A served Enterprise tenant keeps its role and its schema: both stack deletes are refused.
    await expect(invoke("dropLoginRoleForStack", { id: t.id })).rejects.toThrow(/served Enterprise tenant/);
    await expect(invoke("demoteForStack", { ref: t.id })).rejects.toThrow(/Enterprise tenant in its dedicated schema/);
    // The tier changes (the stack's update), then the stack's deletes demote and drop.
    await invoke("updateTenant", { id: t.id, slug: "vault-capital", tier: "pro" });
    expect(await invoke("dropLoginRoleForStack", { id: t.id })).toEqual({ dropped: true });
    expect(await invoke("demoteForStack", { ref: t.id })).toEqual({ demoted: true });
    expect(await invoke("findTenant", { ref: t.id })).toMatchObject({ placement: "shared", tier: "pro" });
    expect(await invoke("tenantLoginRoleExists", { id: t.id })).toEqual({ exists: false });
  });

  it("reads PgBouncer's auth-file verifiers through the bootstrap's function (not pg_authid); a re-run gives the same revision", async () => {
    // The executor cannot read pg_authid (it is no superuser): the verifiers come from
    // alphapulse_bootstrap.pgbouncer_verifiers() in "postgres", as on an AWS node.
    await expect(
      withConnection(cluster.superuserUrl("postgres"), (c) =>
        c.query(`SET ROLE ${EXECUTOR_ROLE}; SELECT rolpassword FROM pg_catalog.pg_authid LIMIT 1`),
      ),
    ).rejects.toThrow(/permission denied/);
    const first = (await invoke("pgbouncerAuthFile", {}, "postgres")) as { authFile: string; revision: string };
    const lines = first.authFile.trim().split("\n");
    // The RLS-subject login roles of the migrated database, each with its SCRAM verifier, exactly.
    const expected = await withConnection(
      cluster.superuserUrl("postgres"),
      async (c) =>
        (
          await c.query<{ rolname: string; rolpassword: string }>(
            "SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY($1) AND rolcanlogin ORDER BY rolname",
            [[...RLS_SUBJECT_ROLES]],
          )
        ).rows,
    );
    expect(expected.length).toBeGreaterThan(0);
    expect(lines).toEqual(expected.map((r) => `"${r.rolname}" "${r.rolpassword}"`));
    for (const r of expected) expect(r.rolpassword).toMatch(SCRAM_VERIFIER_PATTERN);
    expect(first.revision).toMatch(/^[0-9a-f]{64}$/);
    expect(await invoke("pgbouncerAuthFile", {}, "postgres")).toEqual(first);
    await expect(invoke("pgbouncerAuthFile", { extra: 1 }, "postgres")).rejects.toMatchObject({ name: "OperationInputError" });
  });

  it("finishes a graduation that crashed half-way when it runs again", async () => {
    const t = (await invoke("createTenant", { slug: "crash-capital", tier: "enterprise", region: "eu" })) as { id: string };
    const crashed = await runScript(
      "test/executor/fixtures/run-handler.ts",
      [JSON.stringify({ operation: "graduateTenant", database: DB, args: { ref: t.id } })],
      {
        EXECUTOR_TEST_CONFIG: JSON.stringify(cluster.config),
        TENANCY_FAILPOINT: "after-prefill",
        EXECUTOR_QUIET: "1",
      },
    );
    expect(crashed.code).not.toBe(0); // SIGKILL at the failpoint: no reply, as a Lambda whose sandbox died
    expect(crashed.stdout).toBe("");
    expect(await invoke("findTenant", { ref: t.id })).toMatchObject({ placement: "shared" });
    const resumed = (await invoke("graduateTenant", { ref: t.id })) as { resumed: boolean; alreadyThere: boolean };
    expect(resumed).toMatchObject({ resumed: true, alreadyThere: false });
    expect(await invoke("findTenant", { ref: t.id })).toMatchObject({ placement: "dedicated" });
  });

  it("reports failures the way the caller maps them back: error type, SQLSTATE, the field", async () => {
    await expect(invoke("findTenant", { ref: "x" }, "no_such_db")).rejects.toMatchObject({ name: "PostgresError.3D000" });
    await expect(invoke("createTenant", { slug: "Bad Slug", tier: "pro", region: "eu" })).rejects.toMatchObject({
      name: "OperationInputError",
      message: expect.stringMatching(/args\.slug/),
    });
    await expect(invoke("dropEverything")).rejects.toThrow(/unknown operation "dropEverything"/);
    await expect(handler({ operation: "findTenant", database: "Robert'); DROP", args: {} })).rejects.toThrow(/payload refused: database/);
    await expect(handler({ operation: "findTenant", database: DB, args: {}, tf: { action: "destroy" } })).rejects.toThrow(/tf\.action/);
    await expect(handler([1, 2])).rejects.toThrow(/expected a JSON object/);
  });

  it("authenticates with the secret's password (negative control: a wrong one fails, nothing runs)", async () => {
    const wrong = await startExecutorCluster({ password: "not-the-executor-password" });
    try {
      // Same server as `cluster` but the secret served by `wrong`'s endpoint carries a bad password.
      const bad = createHandler({
        ...cluster.config,
        secretsManager: wrong.config.secretsManager,
        db: { ...cluster.config.db, secretArn: wrong.config.db.secretArn },
      });
      await expect(
        bad({ operation: "createTenant", database: DB, args: { slug: "never-fund", tier: "pro", region: "eu" } }),
      ).rejects.toMatchObject({
        name: "PostgresError.28P01",
      });
      expect(await rows("SELECT count(*)::int AS n FROM tenancy.tenants WHERE slug = 'never-fund'")).toEqual([{ n: 0 }]);
      const missing = createHandler({
        ...cluster.config,
        db: { ...cluster.config.db, secretArn: "arn:aws:secretsmanager:eu-central-1:1:secret:nope" },
      });
      await expect(missing({ operation: "findTenant", database: DB, args: { ref: "x" } })).rejects.toThrow(
        /can't find the specified secret/,
      );
    } finally {
      await wrong.stop();
    }
    expect(EXECUTOR_PASSWORD).not.toBe("not-the-executor-password");
  });

  it("waits for a server that is still bootstrapping (the first up of a region), and only for that", async () => {
    const waiting = createHandler({ ...cluster.config, db: { ...cluster.config.db, readyTimeoutMs: 120_000, readyPollMs: 200 } });
    // Not a readiness problem: a missing database fails at once (a wait would outlast this test's timeout).
    await expect(waiting({ operation: "findTenant", database: "no_such_db", args: { ref: "x" } })).rejects.toMatchObject({
      name: "PostgresError.3D000",
    });
    await cluster.server.stop({ mode: "fast" });
    let restarted = false;
    try {
      const call = waiting({ operation: "findTenant", database: DB, args: { ref: "vault-capital" } });
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await cluster.server.start();
      restarted = true;
      expect(await call).toMatchObject({ slug: "vault-capital" });
    } finally {
      if (!restarted) await cluster.server.start();
    }
    // Negative control: without a wait (createHandler's default) the same call fails while the server is down.
    const port = await freePort();
    const impatient = createHandler({ ...cluster.config, db: { ...cluster.config.db, port } });
    await expect(impatient({ operation: "findTenant", database: DB, args: { ref: "x" } })).rejects.toThrow(/ECONNREFUSED/);
    // A bounded wait ends with what to check.
    const bounded = createHandler({ ...cluster.config, db: { ...cluster.config.db, port, readyTimeoutMs: 1000, readyPollMs: 200 } });
    await expect(bounded({ operation: "findTenant", database: DB, args: { ref: "x" } })).rejects.toThrow(
      /did not accept the executor within 1 s \(last: ECONNREFUSED.*bootstrap finished\?.*cloud-init status/,
    );
  });
});

describe("handler configuration and payload parsing (pure)", () => {
  it.each([
    [{}, /EXECUTOR_DB_SECRET_ARN is not set/],
    [{ EXECUTOR_DB_SECRET_ARN: "arn", EXECUTOR_DB_TLS: "prefer" }, /EXECUTOR_DB_TLS must be one of verify-full, require, disable/],
    [{ EXECUTOR_DB_SECRET_ARN: "arn", EXECUTOR_DB_PORT: "54x" }, /EXECUTOR_DB_PORT must be a port number/],
  ])("refuses %j naming the variable", (env, message) => {
    expect(() => handlerConfigFromEnv(env)).toThrow(message);
  });

  it("defaults to verified TLS and to waiting for a bootstrapping server", () => {
    expect(handlerConfigFromEnv({ EXECUTOR_DB_SECRET_ARN: "arn", EXECUTOR_DB_HOST: "10.0.1.5" })).toEqual({
      db: { secretArn: "arn", host: "10.0.1.5", port: undefined, tls: "verify-full", readyTimeoutMs: DEFAULT_READY_TIMEOUT_S * 1000 },
    });
  });

  it.each([
    [
      { operation: "migrate", database: "a", args: { region: "eu" } },
      { kind: "run", operation: "migrate", database: "a", args: { region: "eu" } },
    ],
    [
      { operation: "migrate", database: "a" },
      { kind: "run", operation: "migrate", database: "a", args: {} },
    ],
    [
      { operation: "migrate", database: "a", args: {}, tf: { action: "update", prev_input: { operation: "migrate" } } },
      { kind: "run", action: "update", operation: "migrate", database: "a", args: {} },
    ],
    [
      {
        operation: "createTenant",
        database: "a",
        args: {},
        onDelete: { operation: "releaseTenantFromStack", args: { ref: "x" } },
        tf: { action: "delete" },
      },
      { kind: "run", action: "delete", operation: "releaseTenantFromStack", database: "a", args: { ref: "x" } },
    ],
  ])("parses %j", (event, request) => {
    expect(parseExecutorEvent(event)).toEqual(request);
    expect(parseExecutorEvent(JSON.stringify(event))).toEqual(request);
  });
  it("reads the wait from EXECUTOR_DB_READY_TIMEOUT_S (default 600 s), refusing a value past Lambda's limit", () => {
    const env = { EXECUTOR_DB_SECRET_ARN: "arn:aws:secretsmanager:eu-central-1:1:secret:x" };
    expect(handlerConfigFromEnv(env).db.readyTimeoutMs).toBe(DEFAULT_READY_TIMEOUT_S * 1000);
    expect(handlerConfigFromEnv({ ...env, EXECUTOR_DB_READY_TIMEOUT_S: "0" }).db.readyTimeoutMs).toBe(0);
    expect(() => handlerConfigFromEnv({ ...env, EXECUTOR_DB_READY_TIMEOUT_S: "900" })).toThrow(/EXECUTOR_DB_READY_TIMEOUT_S/);
  });
});
