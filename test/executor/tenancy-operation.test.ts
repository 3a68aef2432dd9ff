/**
 * The `tenancy` operation through the executor's handler, with the Invoke payload `npm run ops`
 * sends, against a real PostgreSQL set up as an AWS node (non-superuser executor, SCRAM, credential
 * from Secrets Manager): the local CLI's commands run on the executor's session and come back as
 * `{ exitCode, output, text, progress }`. Create, list, graduate, suspend; bad input is exit 2 naming
 * the field with nothing written; commands that need the operator's files are refused naming the
 * argument (and write nothing, here or in /tmp); an offboarding keeps its verified export in the
 * region's bucket (a local S3-like endpoint with the real S3 client) and refuses without one;
 * destructive commands keep their own guards (a purge before its date is refused).
 */
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withConnection } from "../../lib/db/client";
import { createHandler, type ExecutorHandler } from "../../lib/executor/handler";
import { LOCAL_EXECUTOR_CREDENTIALS } from "../../lib/executor/lambda-client";
import { startLocalS3, type LocalS3 } from "../../lib/executor/local-s3";
import type { TenancyRun } from "../../cli/remote-tenancy";
import { REGION, startExecutorCluster, type ExecutorCluster } from "./support";

const DB = "alphapulse_ops";
const BUCKET = "alphapulse-eu-test-pgbackrest-123456789012";
const KMS_KEY = "arn:aws:kms:eu-central-1:123456789012:key/region-key";

describe("the tenancy operation in the executor handler (real PostgreSQL, AWS-like roles)", () => {
  let cluster: ExecutorCluster;
  let handler: ExecutorHandler;
  /** The same executor with the region's export bucket (EXECUTOR_EXPORT_BUCKET set). */
  let withBucket: ExecutorHandler;
  let s3: LocalS3;
  const tenancy = async (...argv: string[]) => (await handler({ operation: "tenancy", database: DB, args: { argv } })) as TenancyRun;
  const tenancyWithBucket = async (...argv: string[]) =>
    (await withBucket({ operation: "tenancy", database: DB, args: { argv } })) as TenancyRun;
  const rows = (sql: string, params: unknown[] = []) =>
    withConnection(cluster.superuserUrl(DB), async (c) => (await c.query(sql, params)).rows);

  beforeAll(async () => {
    process.env.EXECUTOR_QUIET = "1";
    cluster = await startExecutorCluster();
    handler = createHandler(cluster.config);
    s3 = await startLocalS3({ buckets: [BUCKET] });
    withBucket = createHandler({
      ...cluster.config,
      exports: { bucket: BUCKET, kmsKeyArn: KMS_KEY, s3: { region: REGION, endpoint: s3.url, credentials: LOCAL_EXECUTOR_CREDENTIALS } },
    });
    await handler({ operation: "createDatabase", database: "postgres", args: { name: DB } });
  });
  afterAll(async () => {
    await s3?.close();
    await cluster?.stop();
  });

  it("migrates and creates a tenant with the CLI's commands: the --json document, the CLI's text and its progress", async () => {
    const migrated = await tenancy("migrate", "--region", "eu");
    expect(migrated.exitCode, JSON.stringify(migrated.output)).toBe(0);
    expect(migrated.progress.length).toBeGreaterThan(0); // migrate reports its phases
    const created = await tenancy("tenant", "create", "acme-capital", "--tier", "enterprise", "--region", "eu", "--name", "Acme Capital");
    expect(created).toMatchObject({
      exitCode: 0,
      output: { slug: "acme-capital", tier: "enterprise", placement: "shared", status: "active" },
    });
    expect(created.text).toMatch(/^created tenant acme-capital\n/);
    expect(created.text).toContain("Acme Capital");
    expect(await rows("SELECT slug, tier FROM tenancy.tenants")).toEqual([{ slug: "acme-capital", tier: "enterprise" }]);

    const list = await tenancy("tenant", "list");
    expect(list.exitCode).toBe(0);
    expect(list.output).toEqual([expect.objectContaining({ slug: "acme-capital", createdAt: expect.any(String) })]);
    expect(list.text).toMatch(/slug.*tier.*region/);

    // Read-only checks run as the executor role too: the isolation audit of the region's database.
    const audit = await tenancy("audit");
    expect(audit.output, JSON.stringify(audit.output)).toMatchObject({ clean: true, findings: [] });
    expect(audit.exitCode).toBe(0);
  });

  it("graduates and suspends a tenant (the move's progress comes back)", async () => {
    const graduated = await tenancy("tenant", "graduate", "acme-capital");
    expect(graduated.exitCode, JSON.stringify(graduated.output)).toBe(0);
    expect(graduated.output).toMatchObject({
      direction: "graduate",
      to: expect.stringMatching(/^tenant_[0-9a-f]{32}$/),
      alreadyThere: false,
    });
    expect(graduated.text).toMatch(/^graduated acme-capital: shared → tenant_/);
    expect(graduated.progress.some((line) => /^\[[a-z-]+\] /.test(line))).toBe(true);
    expect(await rows("SELECT placement FROM tenancy.tenants WHERE slug = 'acme-capital'")).toEqual([{ placement: "dedicated" }]);
    // Resumable and idempotent, as locally: a second run has nothing to do.
    expect((await tenancy("tenant", "graduate", "acme-capital")).output).toMatchObject({ alreadyThere: true });

    const suspended = await tenancy("tenant", "suspend", "acme-capital");
    expect(suspended).toMatchObject({ exitCode: 0, output: { slug: "acme-capital", status: "suspended" } });
    expect(suspended.text).toMatch(/^tenant acme-capital is suspended/);
    expect(await rows("SELECT status FROM tenancy.tenants WHERE slug = 'acme-capital'")).toEqual([{ status: "suspended" }]);
  });

  it("answers bad input with exit 2 naming the field, as the CLI does, and writes nothing", async () => {
    const badSlug = await tenancy("tenant", "create", "Bad_Slug", "--tier", "pro", "--region", "eu");
    expect(badSlug.exitCode).toBe(2);
    expect(badSlug.output).toMatchObject({ error: { kind: "usage", field: "slug" } });
    expect(badSlug.text).toBeUndefined();
    const unknownFlag = await tenancy("tenant", "list", "--bogus");
    expect(unknownFlag).toMatchObject({ exitCode: 2, output: { error: { kind: "usage", field: "--bogus" } } });
    const unknownCommand = await tenancy("tenant", "frobnicate");
    expect(unknownCommand).toMatchObject({ exitCode: 2, output: { error: { field: "command" } } });
    const noTenant = await tenancy("tenant", "show", "nobody-here");
    expect(noTenant).toMatchObject({ exitCode: 2, output: { error: { field: "slug", message: 'slug: no tenant "nobody-here"' } } });
    expect(await rows("SELECT count(*)::int AS n FROM tenancy.tenants")).toEqual([{ n: 1 }]);
    // The operation's own args are strict: refused before anything runs.
    await expect(handler({ operation: "tenancy", database: DB, args: { argv: [] } })).rejects.toMatchObject({
      name: "OperationInputError",
      message: expect.stringMatching(/args\.argv: must name a tenancy command/),
    });
    await expect(handler({ operation: "tenancy", database: DB, args: { argv: ["tenant", "list"], cwd: "/" } })).rejects.toThrow(/cwd/);
  });

  it("refuses commands that need the operator's files, Redis or a command-line credential, naming the argument; nothing is written", async () => {
    const out = path.join(os.tmpdir(), `ops-export-${process.pid}.json`);
    const exported = await tenancy("tenant", "export", "acme-capital", "--out", out);
    expect(exported.exitCode).toBe(2);
    expect(exported.output).toMatchObject({
      error: { kind: "usage", field: "--out", message: expect.stringMatching(/^--out: not run inside the executor: .*\/tmp/) },
    });
    expect(existsSync(out)).toBe(false);
    expect((await tenancy("tenant", "import", "--in", out)).output).toMatchObject({ error: { field: "--in" } });
    expect(
      (await tenancy("tenant", "restore", "acme-capital", "--as-of", "2026-01-01 00:00:00+00", "--pgbackrest-config", "/etc/x")).output,
    ).toMatchObject({
      error: { field: "--pgbackrest-config" },
    });
    expect((await tenancy("tenant", "suspend", "acme-capital", "--redis-url", "redis://admin:pw@10.0.0.1:6379")).output).toMatchObject({
      error: { field: "--redis-url" },
    });
    expect((await tenancy("tenant", "list", "--database-url", "postgres://postgres@127.0.0.1/postgres")).output).toMatchObject({
      error: { field: "--database-url" },
    });
    // Offboarding writes its export first: refused unless the operator says --skip-export (or only looks: --dry-run).
    const offboarding = await tenancy("tenant", "delete", "acme-capital");
    expect(offboarding).toMatchObject({
      exitCode: 2,
      output: { error: { field: "--export-dir", message: expect.stringMatching(/--skip-export/) } },
    });
    expect(await rows("SELECT status FROM tenancy.tenants WHERE slug = 'acme-capital'")).toEqual([{ status: "suspended" }]);
  });

  it("offboards with --skip-export and keeps the rows: the purge before the retention date is refused by the library", async () => {
    expect((await tenancy("tenant", "create", "gone-fund", "--tier", "pro", "--region", "eu")).exitCode).toBe(0);
    const dry = await tenancy("tenant", "delete", "gone-fund", "--dry-run");
    expect(dry.exitCode, JSON.stringify(dry.output)).toBe(0);
    expect(dry.text).toMatch(/^would offboard tenant gone-fund/);
    const offboarded = await tenancy("tenant", "delete", "gone-fund", "--skip-export", "--retention-days", "7");
    expect(offboarded.exitCode, JSON.stringify(offboarded.output)).toBe(0);
    expect(offboarded.output).toMatchObject({ tenant: { status: "offboarded" } });
    const purge = await tenancy("tenant", "purge", "gone-fund");
    expect(purge).toMatchObject({ exitCode: 2, output: { error: { field: "slug", message: expect.stringMatching(/retained until/) } } });
    expect(await rows("SELECT status FROM tenancy.tenants WHERE slug = 'gone-fund'")).toEqual([{ status: "offboarded" }]);
  });

  it("offboards inside the region with its export kept in the region's bucket (verified), never in a directory", async () => {
    expect((await tenancy("tenant", "create", "bucket-fund", "--tier", "pro", "--region", "eu")).exitCode).toBe(0);
    const inDirectory = await tenancyWithBucket("tenant", "delete", "bucket-fund", "--export-dir", "/tmp/exports");
    expect(inDirectory).toMatchObject({ exitCode: 2, output: { error: { field: "--export-dir" } } });
    expect(s3.keys(BUCKET)).toEqual([]);

    const offboarded = await tenancyWithBucket("tenant", "delete", "bucket-fund", "--retention-days", "7");
    expect(offboarded.exitCode, JSON.stringify(offboarded.output)).toBe(0);
    const { tenant, exportFile } = offboarded.output as { tenant: { id: string; status: string }; exportFile: string };
    expect(tenant.status).toBe("offboarded");
    expect(exportFile).toMatch(new RegExp(`^s3://${BUCKET}/tenant-exports/${tenant.id}/bucket-fund-`));
    expect(offboarded.text).toContain(`verified export: ${exportFile}`);
    const key = exportFile.slice(`s3://${BUCKET}/`.length);
    expect(s3.keys(BUCKET)).toEqual([key]);
    expect(s3.object(BUCKET, key)).toMatchObject({ serverSideEncryption: "aws:kms", kmsKeyId: KMS_KEY });
    expect(await rows("SELECT status, offboarding_export FROM tenancy.tenants WHERE id = $1", [tenant.id])).toEqual([
      { status: "offboarded", offboarding_export: exportFile },
    ]);
    // The purge stays its own step, refused before the retention date.
    expect((await tenancyWithBucket("tenant", "purge", "bucket-fund")).exitCode).toBe(2);
  });
});
