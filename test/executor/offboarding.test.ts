/**
 * Offboarding on AWS, inside the region: the `offboardTenant` operation through the executor's
 * handler, against a real PostgreSQL set up as an AWS node (test/executor/support.ts: the executor
 * is not a superuser, logs in with SCRAM, reads its credential from Secrets Manager) and the local
 * S3-like endpoint (lib/executor/local-s3.ts) with the real S3 client. No mocks on the data path.
 *
 * - dry run: the steps with the s3:// destination; nothing changes, nothing is uploaded;
 * - offboarding: the signed export kept at s3://<bucket>/tenant-exports/<tenant id>/<file> under the
 *   region key, read back and verified; the tenant offboarded with a 30-day purge date and the URI in
 *   the registry; every row still there (until the purge); a restore from the object into another
 *   database gets every row back;
 * - negative controls: the upload fails (500) or the stored bytes are damaged (read-back mismatch):
 *   the tenant is active again and nothing is offboarded or recorded; an executor without an export
 *   bucket refuses before changing anything.
 */
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withConnection } from "../../lib/db/client";
import { importTenant } from "../../lib/enterprise/import";
import { createHandler, handlerConfigFromEnv, type ExecutorHandler } from "../../lib/executor/handler";
import { LOCAL_EXECUTOR_CREDENTIALS } from "../../lib/executor/lambda-client";
import { startLocalS3, type LocalS3, type S3Fault } from "../../lib/executor/local-s3";
import { TENANT_TABLES } from "../../lib/schema/catalogue";
import { countTenantRows, findTenant } from "../../lib/tenant/registry";
import { seedTenant } from "../../lib/tenant/seed";
import { offboardBeforeDestroy } from "../../lib/tenant-stacks/offboarding";
import type { PlatformContract } from "../../lib/platform/contract";
import { FUNCTION_NAME, REGION, startExecutorCluster, type ExecutorCluster } from "./support";

const DB = "alphapulse_offboard";
const RESTORE_DB = "alphapulse_restore";
const BUCKET = "alphapulse-eu-test-pgbackrest-123456789012";
const KMS_KEY = "arn:aws:kms:eu-central-1:123456789012:key/region-key";
const CONTEXT_KEY = { kid: "eu-test-1", region: "eu", secret: "ab".repeat(32) };
const AT = "2026-12-06T03:30:00.000Z";

interface OffboardResult {
  tenant: { id: string; slug: string; status: string; purgeAfter: string | null };
  dryRun: boolean;
  steps: string[];
  retained: { table: string; rows: number }[];
  exportFile?: string;
  exportedRows?: number;
  exportSha256?: string;
  exportSignedWith?: string | null;
  purgeAfter: string | null;
}

describe("offboardTenant through the executor: export to S3, verified, then offboarded", () => {
  let cluster: ExecutorCluster;
  let s3: LocalS3;
  let fault: S3Fault | undefined;
  let handler: ExecutorHandler;
  let scratch: string;
  const invoke = (operation: string, args: unknown = {}, database = DB, h = () => handler) => h()({ operation, database, args });
  const rows = (sql: string, params: unknown[] = [], database = DB) =>
    withConnection(cluster.superuserUrl(database), async (c) => (await c.query(sql, params)).rows);
  const registryRow = (id: string) =>
    rows(`SELECT status, offboarding_export, purge_after IS NOT NULL AS has_purge_date FROM tenancy.tenants WHERE id = $1`, [id]);
  const tenantRows = (id: string) =>
    withConnection(cluster.superuserUrl(DB), async (c) =>
      (await countTenantRows(c, (await findTenant(c, id))!)).reduce((n, t) => n + t.rows, 0),
    );

  async function seededTenant(slug: string): Promise<{ id: string; rows: number }> {
    const t = (await invoke("createTenant", { slug, tier: "pro", region: "eu" })) as { id: string; slug: string; placement: "shared" };
    await withConnection(cluster.superuserUrl(DB), (c) => seedTenant(c, t, { trades: 40 }));
    return { id: t.id, rows: await tenantRows(t.id) };
  }

  beforeAll(async () => {
    process.env.EXECUTOR_QUIET = "1";
    scratch = mkdtempSync(path.join(os.tmpdir(), "offboard-executor-"));
    cluster = await startExecutorCluster();
    s3 = await startLocalS3({ buckets: [BUCKET], fault: () => fault });
    handler = createHandler({
      ...cluster.config,
      exports: { bucket: BUCKET, kmsKeyArn: KMS_KEY, s3: { region: REGION, endpoint: s3.url, credentials: LOCAL_EXECUTOR_CREDENTIALS } },
    });
    for (const db of [DB, RESTORE_DB]) {
      await invoke("createDatabase", { name: db }, "postgres");
      await invoke("migrate", { catalogue: TENANT_TABLES, region: "eu" }, db);
      await invoke("installContextKey", CONTEXT_KEY, db);
    }
  });
  afterAll(async () => {
    await s3?.close();
    await cluster?.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it("a dry run says what it would do (the s3:// destination) and changes nothing", async () => {
    const t = await seededTenant("dry-fund");
    const plan = (await invoke("offboardTenant", { ref: "dry-fund", dryRun: true, at: AT })) as OffboardResult;
    const uri = `s3://${BUCKET}/tenant-exports/${t.id}/dry-fund-20261206T033000Z.jsonl`;
    expect(plan.dryRun).toBe(true);
    expect(plan.steps).toEqual([
      "suspend dry-fund (no writes after the export's snapshot)",
      `export ${t.rows} row(s), verified, to ${uri}`,
      "mark it offboarded: rows, schema and registry entry kept for 30 day(s)",
      "then, after that date: `tenancy tenant purge dry-fund` (refused before it); `tenancy tenant resume dry-fund` undoes this before it",
    ]);
    expect(await registryRow(t.id)).toEqual([{ status: "active", offboarding_export: null, has_purge_date: false }]);
    expect(s3.requests.put).toBe(0);
  });

  it("keeps the signed export in S3 under the region key, verified; offboards; keeps every row; a restore gets them back", async () => {
    const t = await seededTenant("leaving-fund");
    const done = (await invoke("offboardTenant", { ref: t.id, at: AT })) as OffboardResult;
    const key = `tenant-exports/${t.id}/leaving-fund-20261206T033000Z.jsonl`;
    const uri = `s3://${BUCKET}/${key}`;
    expect(done).toMatchObject({
      dryRun: false,
      exportFile: uri,
      exportedRows: t.rows,
      exportSignedWith: CONTEXT_KEY.kid,
      tenant: { status: "offboarded" },
      purgeAfter: expect.any(String),
    });
    const days = (Date.parse(done.purgeAfter!) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThan(30.1);

    // The object: encrypted under the region key, the bytes the sink read back and hashed.
    const stored = s3.object(BUCKET, key)!;
    expect(stored).toMatchObject({ serverSideEncryption: "aws:kms", kmsKeyId: KMS_KEY });
    const { createHash } = await import("node:crypto");
    expect(createHash("sha256").update(stored.body).digest("hex")).toBe(done.exportSha256);
    expect(JSON.parse(stored.body.toString("utf8").split("\n")[0])).toMatchObject({
      tenant: { id: t.id, slug: "leaving-fund", status: "suspended" },
      signature: { kid: CONTEXT_KEY.kid },
    });

    // The registry records the URI exactly as the local path records its file; the rows stay.
    expect(await registryRow(t.id)).toEqual([{ status: "offboarded", offboarding_export: uri, has_purge_date: true }]);
    expect(await tenantRows(t.id)).toBe(t.rows);
    expect(done.retained.reduce((n, r) => n + r.rows, 0)).toBe(t.rows);
    // Idempotent: a second call does nothing and uploads nothing.
    const puts = s3.requests.put;
    expect(await invoke("offboardTenant", { ref: t.id })).toMatchObject({ alreadyOffboarded: true });
    expect(s3.requests.put).toBe(puts);

    // Restore (docs/data-safety.md): fetch the object, import it (its MAC checked with the region's key).
    const client = new S3Client({ region: REGION, endpoint: s3.url, forcePathStyle: true, credentials: LOCAL_EXECUTOR_CREDENTIALS });
    const got = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    const file = path.join(scratch, "leaving-fund.jsonl");
    writeFileSync(file, await got.Body!.transformToByteArray());
    client.destroy();
    const restored = await withConnection(cluster.superuserUrl(RESTORE_DB), (c) => importTenant(c, file));
    expect(restored).toMatchObject({ rows: t.rows });
    expect(await rows(`SELECT slug FROM tenancy.tenants WHERE id = $1`, [t.id], RESTORE_DB)).toEqual([{ slug: "leaving-fund" }]);
  });

  it.each<[string, S3Fault]>([
    ["the upload fails (500 on every attempt)", "internal-error"],
    ["the stored bytes do not hash to the export (read-back mismatch)", "corrupt-on-put"],
  ])("negative control: %s — the tenant is active again, nothing offboarded or recorded", async (_, kind) => {
    const slug = kind === "internal-error" ? "upload-fails" : "bytes-damaged";
    const t = await seededTenant(slug);
    fault = kind;
    try {
      await expect(invoke("offboardTenant", { ref: slug, at: AT })).rejects.toThrow(
        new RegExp(
          `export of ${slug} failed, the tenant was not offboarded: export upload to s3://${BUCKET}/tenant-exports/${t.id}/${slug}-20261206T033000Z\\.jsonl failed: ` +
            (kind === "internal-error" ? "PutObject" : "the object read back hashes to"),
        ),
      );
    } finally {
      fault = undefined;
    }
    expect(await registryRow(t.id)).toEqual([{ status: "active", offboarding_export: null, has_purge_date: false }]);
    expect(await tenantRows(t.id)).toBe(t.rows);
    // The control: with the endpoint healthy again, the same call offboards.
    expect(await invoke("offboardTenant", { ref: slug })).toMatchObject({ tenant: { status: "offboarded" } });
  });

  it("`npm run tenant -- destroy`'s offboarder on an AWS platform: the same operation through the Lambda API (dry run, then for real)", async () => {
    const t = await seededTenant("via-lambda");
    cluster.setHandler(handler);
    const connection = {
      kind: "executor" as const,
      functionName: FUNCTION_NAME,
      region: REGION,
      endpoint: cluster.endpoint.url,
      server: "eu-test/postgres",
    };
    const platform = {
      kind: "aws",
      stack: "eu-test",
      region: "eu",
      database: { name: DB, oid: 1, connection, tenantIds: {} },
    } as unknown as PlatformContract;
    const request = { slug: "via-lambda", tenantId: t.id, platform, exportDir: "/nowhere/local", retentionDays: 14 };
    const invokes = cluster.endpoint.requests.invoke;
    const plan = await offboardBeforeDestroy({ ...request, dryRun: true });
    expect(plan.steps[1]).toMatch(
      new RegExp(`^export ${t.rows} row\\(s\\), verified, to s3://${BUCKET}/tenant-exports/${t.id}/via-lambda-`),
    );
    expect(plan).toMatchObject({ purgeAfter: undefined, exportFile: undefined });
    expect(await registryRow(t.id)).toEqual([{ status: "active", offboarding_export: null, has_purge_date: false }]);
    const done = await offboardBeforeDestroy({ ...request, dryRun: false });
    expect(cluster.endpoint.requests.invoke).toBe(invokes + 2); // both ran in the "region", not in this process
    expect(done.exportFile).toMatch(new RegExp(`^s3://${BUCKET}/tenant-exports/${t.id}/via-lambda-\\d{8}T\\d{6}Z\\.jsonl$`));
    expect(done).toMatchObject({
      exportedRows: t.rows,
      exportSignedWith: CONTEXT_KEY.kid,
      exportSha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect((Date.parse(done.purgeAfter!) - Date.now()) / 86_400_000).toBeGreaterThan(13.9);
    expect(await registryRow(t.id)).toEqual([{ status: "offboarded", offboarding_export: done.exportFile, has_purge_date: true }]);
    expect(existsSync("/nowhere/local")).toBe(false); // --export-dir plays no part on AWS
  });

  it("an executor without an export bucket refuses before changing anything; strict args name the field", async () => {
    const t = await seededTenant("no-bucket");
    const bare = createHandler(cluster.config);
    await expect(invoke("offboardTenant", { ref: t.id }, DB, () => bare)).rejects.toMatchObject({
      name: "OperationInputError",
      message: expect.stringMatching(/no place to keep the export .*EXECUTOR_EXPORT_BUCKET.*nothing was changed/),
    });
    await expect(invoke("offboardTenant", { ref: t.id, exportDir: "/tmp" })).rejects.toThrow(/args: Unrecognized key: "exportDir"/);
    await expect(invoke("offboardTenant", { ref: t.id, retentionDays: 0 })).rejects.toThrow(/args\.retentionDays/);
    expect(await registryRow(t.id)).toEqual([{ status: "active", offboarding_export: null, has_purge_date: false }]);
    // An explicit skip offboards without an export, on any transport.
    expect(await invoke("offboardTenant", { ref: t.id, skipExport: true }, DB, () => bare)).toMatchObject({
      tenant: { status: "offboarded" },
      steps: expect.arrayContaining([expect.stringMatching(/^no export \(--skip-export\)/)]),
    });
  });
});

describe("the executor's export configuration (pure)", () => {
  const base = { EXECUTOR_DB_SECRET_ARN: "arn:aws:secretsmanager:eu-central-1:1:secret:x" };
  it("reads the bucket and key from the environment, both or neither", () => {
    expect(handlerConfigFromEnv(base).exports).toBeUndefined();
    expect(handlerConfigFromEnv({ ...base, EXECUTOR_EXPORT_BUCKET: BUCKET, EXECUTOR_EXPORT_KMS_KEY_ARN: KMS_KEY }).exports).toEqual({
      bucket: BUCKET,
      kmsKeyArn: KMS_KEY,
    });
    expect(() => handlerConfigFromEnv({ ...base, EXECUTOR_EXPORT_BUCKET: BUCKET })).toThrow(
      "EXECUTOR_EXPORT_BUCKET and EXECUTOR_EXPORT_KMS_KEY_ARN go together",
    );
    expect(() => handlerConfigFromEnv({ ...base, EXECUTOR_EXPORT_KMS_KEY_ARN: KMS_KEY })).toThrow(/go together/);
  });
});
