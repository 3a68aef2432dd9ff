/**
 * `npm run build:executor`'s bundle is the artifact Lambda runs: built here into a temp dir, then
 * loaded by plain `node` (no tsx, no node_modules next to it: as in the Lambda sandbox) with the
 * function's environment, and its `handler` invoked against a real PostgreSQL set up as an AWS node
 * (test/executor/support.ts). The Secrets Manager client finds the local endpoint through the SDK's
 * own AWS_ENDPOINT_URL_SECRETS_MANAGER variable. The load time is printed (docs/adr/ADR-004), never asserted.
 */
import { execFile } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildExecutorBundle } from "../../lib/executor/bundle";
import { LOCAL_EXECUTOR_CREDENTIALS } from "../../lib/executor/lambda-client";
import { startLocalS3 } from "../../lib/executor/local-s3";
import { REPO_ROOT } from "../../lib/pulumi/env";
import { FUNCTION_NAME, REGION, startExecutorCluster, type ExecutorCluster } from "./support";

const run = promisify(execFile);

describe("the executor bundle, run as Lambda runs it", () => {
  let dir: string;
  let bundle: string;
  let cluster: ExecutorCluster;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "alphapulse-executor-bundle-"));
    const built = await buildExecutorBundle(REPO_ROOT, path.join(dir, "build", "index.js"));
    expect(built.bytes).toBeGreaterThan(0);
    // Alone in a directory without node_modules: everything it needs is inside.
    bundle = path.join(dir, "task", "index.js");
    await run("mkdir", ["-p", path.dirname(bundle)]);
    copyFileSync(built.file, bundle);
    cluster = await startExecutorCluster();
  });
  afterAll(async () => {
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function invoke(
    event: unknown,
    extraEnv: Record<string, string> = {},
  ): Promise<{ loadMs: number; result?: unknown; error?: { name: string; message: string } }> {
    const script = `const t = process.hrtime.bigint();
      const m = require(${JSON.stringify(bundle)});
      const loadMs = Number(process.hrtime.bigint() - t) / 1e6;
      m.handler(JSON.parse(process.argv[1])).then(
        (result) => console.log(JSON.stringify({ loadMs, result })),
        (e) => console.log(JSON.stringify({ loadMs, error: { name: e.name, message: e.message } })));`;
    const { stdout } = await run(process.execPath, ["-e", script, JSON.stringify(event)], {
      cwd: path.dirname(bundle),
      env: {
        PATH: process.env.PATH,
        AWS_REGION: REGION,
        AWS_ACCESS_KEY_ID: LOCAL_EXECUTOR_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: LOCAL_EXECUTOR_CREDENTIALS.secretAccessKey,
        AWS_ENDPOINT_URL_SECRETS_MANAGER: cluster.endpoint.url,
        AWS_LAMBDA_FUNCTION_NAME: FUNCTION_NAME,
        EXECUTOR_DB_SECRET_ARN: cluster.config.db.secretArn,
        EXECUTOR_DB_HOST: "127.0.0.1",
        EXECUTOR_DB_PORT: String(cluster.server.port),
        EXECUTOR_DB_TLS: "disable",
        EXECUTOR_QUIET: "1",
        ...extraEnv,
      },
    });
    return JSON.parse(stdout.trim().split("\n").pop()!);
  }

  it("creates, migrates and registers through the bundle's handler", async () => {
    const created = await invoke({ operation: "createDatabase", database: "postgres", args: { name: "bundled" } });
    expect(created.error).toBeUndefined();
    expect(created.result).toMatchObject({ oid: expect.any(Number) });
    const migrated = await invoke({ operation: "migrate", database: "bundled", args: { region: "eu" } });
    expect(migrated.result).toMatchObject({ versions: expect.arrayContaining(["0001"]) });
    const tenant = await invoke({
      operation: "createTenant",
      database: "bundled",
      args: { slug: "bundle-fund", tier: "pro", region: "eu" },
    });
    expect(tenant.result).toMatchObject({ slug: "bundle-fund", placement: "shared" });
    const again = await invoke({ operation: "migrate", database: "bundled", args: { region: "eu", dryRun: true } });
    expect(again.result).toMatchObject({ unchanged: true });
    console.log(`executor bundle: module load ${created.loadMs.toFixed(0)} ms (cold, this machine)`);
  });

  it("runs a tenancy command (the CLI's code is inside, @pulumi/pulumi is not)", async () => {
    const listed = await invoke({ operation: "tenancy", database: "bundled", args: { argv: ["tenant", "list"] } });
    expect(listed.error).toBeUndefined();
    expect(listed.result).toMatchObject({ exitCode: 0, output: [expect.objectContaining({ slug: "bundle-fund" })] });
    expect((listed.result as { text: string }).text).toMatch(/bundle-fund/);
    expect(readFileSync(bundle, "utf8")).not.toMatch(/node_modules\/@pulumi\/pulumi\//);
  });

  it("offboards with the export kept in S3: the S3 client is inside the bundle, loaded on first use", async () => {
    const bucket = "alphapulse-eu-test-pgbackrest-123456789012";
    const kmsKeyArn = "arn:aws:kms:eu-central-1:123456789012:key/region-key";
    const s3 = await startLocalS3({ buckets: [bucket] });
    try {
      const env = { EXECUTOR_EXPORT_BUCKET: bucket, EXECUTOR_EXPORT_KMS_KEY_ARN: kmsKeyArn, EXECUTOR_EXPORT_S3_ENDPOINT: s3.url };
      const done = await invoke({ operation: "offboardTenant", database: "bundled", args: { ref: "bundle-fund" } }, env);
      expect(done.error).toBeUndefined();
      expect(done.result).toMatchObject({
        tenant: { status: "offboarded" },
        exportFile: expect.stringMatching(/^s3:\/\/alphapulse-eu-test-/),
      });
      expect(s3.keys(bucket)).toEqual([expect.stringMatching(/^tenant-exports\/[0-9a-f-]{36}\/bundle-fund-\d{8}T\d{6}Z\.jsonl$/)]);
      expect(s3.object(bucket, s3.keys(bucket)[0])).toMatchObject({ serverSideEncryption: "aws:kms", kmsKeyId: kmsKeyArn });
    } finally {
      await s3.close();
    }
  });

  it("throws typed errors the client maps back", async () => {
    expect((await invoke({ operation: "dropEverything", database: "bundled", args: {} })).error).toMatchObject({
      name: "OperationInputError",
    });
    expect((await invoke({ operation: "findTenant", database: "gone_db", args: { ref: "x" } })).error).toMatchObject({
      name: "PostgresError.3D000",
    });
  });
});
