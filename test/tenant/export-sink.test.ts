/**
 * Export sinks: the pure helpers (object keys, URIs, the read-back check) and the S3 sink with the
 * real `@aws-sdk/client-s3` client against the local S3-like endpoint (lib/executor/local-s3.ts,
 * SigV4 checked): the object is written under the tenant's prefix with SSE-KMS under the given key,
 * read back and verified; a 500, a damaged object and a wrong signing key fail (negative controls),
 * and the staging copy is gone either way.
 */
import { S3Client } from "@aws-sdk/client-s3";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOCAL_EXECUTOR_CREDENTIALS } from "../../lib/executor/lambda-client";
import { startLocalS3, type LocalS3, type S3Fault } from "../../lib/executor/local-s3";
import { exportObjectKey, localDirectorySink, parseS3Uri, s3Uri } from "../../lib/tenant/export-sink";
import { readBackProblem, s3ExportSink } from "../../lib/tenant/s3-export-sink";

const BUCKET = "alphapulse-eu-test-pgbackrest-123456789012";
const KEY = "arn:aws:kms:eu-central-1:123456789012:key/0000-region-key";
const TENANT = { id: "0b9f8a3c-1d2e-4f50-8a6b-7c8d9e0f1a2b", slug: "acme" };

describe("export sink helpers (pure)", () => {
  it("keys an export by tenant id under tenant-exports/", () => {
    expect(exportObjectKey(TENANT.id, "acme-20261206T030000Z.jsonl")).toBe(`tenant-exports/${TENANT.id}/acme-20261206T030000Z.jsonl`);
    expect(s3Uri(BUCKET, "tenant-exports/x/y")).toBe(`s3://${BUCKET}/tenant-exports/x/y`);
    expect(parseS3Uri(`s3://${BUCKET}/tenant-exports/x/y.jsonl`)).toEqual({ bucket: BUCKET, key: "tenant-exports/x/y.jsonl" });
    expect(parseS3Uri("/var/exports/acme.jsonl")).toBeUndefined();
  });

  it.each([
    ["a tenant id that is not a uuid", "../other", "a.jsonl", /is not a tenant uuid/],
    ["a file name with a path", TENANT.id, "../../pgbackrest/x", /is not an export file name/],
  ])("refuses %s", (_, id, file, message) => {
    expect(() => exportObjectKey(id, file)).toThrow(message);
  });

  it("a read-back copy must hash the same and be under exactly the region key", () => {
    const expected = { sha256: "aa", kmsKeyArn: KEY };
    expect(readBackProblem(expected, { sha256: "aa", serverSideEncryption: "aws:kms", kmsKeyId: KEY })).toBeUndefined();
    expect(readBackProblem(expected, { sha256: "ab", serverSideEncryption: "aws:kms", kmsKeyId: KEY })).toMatch(/hashes to ab/);
    expect(readBackProblem(expected, { sha256: "aa", serverSideEncryption: "AES256", kmsKeyId: KEY })).toMatch(/AES256, not aws:kms/);
    expect(readBackProblem(expected, { sha256: "aa", serverSideEncryption: "aws:kms", kmsKeyId: `${KEY}-other` })).toMatch(/not arn/);
  });

  it("a local directory sink writes in place and reports the path", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "sink-dir-"));
    try {
      const sink = localDirectorySink(path.join(dir, "exports"));
      const kept = await sink.keep(TENANT, "acme.jsonl", (file) => {
        writeFileSync(file, "x\n");
        return Promise.resolve({ rows: 1 });
      });
      expect(kept).toEqual({ location: path.join(dir, "exports", "acme.jsonl"), result: { rows: 1 } });
      expect(sink.locationOf(TENANT, "acme.jsonl")).toBe(kept.location);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the S3 export sink, real SDK client, local S3-like endpoint", () => {
  let s3: LocalS3;
  let fault: S3Fault | undefined;
  let staging: string;
  const client = (credentials = LOCAL_EXECUTOR_CREDENTIALS) =>
    new S3Client({ region: "eu-central-1", endpoint: s3.url, forcePathStyle: true, credentials, maxAttempts: 2 });
  const sinkWith = (c: S3Client) => s3ExportSink({ client: c, bucket: BUCKET, kmsKeyArn: KEY, stagingDir: staging });
  const writeExport = (content: string) => (file: string) => {
    writeFileSync(file, content);
    return Promise.resolve({ rows: content.split("\n").length - 1 });
  };

  beforeAll(async () => {
    staging = mkdtempSync(path.join(os.tmpdir(), "sink-staging-"));
    s3 = await startLocalS3({ buckets: [BUCKET], fault: () => fault });
  });
  afterAll(async () => {
    await s3?.close();
    rmSync(staging, { recursive: true, force: true });
  });

  it("uploads under the tenant's prefix with SSE-KMS, reads it back, verifies it, and removes the staging copy", async () => {
    const c = client();
    const kept = await sinkWith(c).keep(TENANT, "acme-1.jsonl", writeExport('{"a":1}\n{"b":2}\n'));
    const key = `tenant-exports/${TENANT.id}/acme-1.jsonl`;
    expect(kept).toMatchObject({ location: `s3://${BUCKET}/${key}`, result: { rows: 2 }, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const stored = s3.object(BUCKET, key)!;
    expect(stored.body.toString()).toBe('{"a":1}\n{"b":2}\n');
    expect(stored).toMatchObject({
      serverSideEncryption: "aws:kms",
      kmsKeyId: KEY,
      bucketKeyEnabled: true,
      contentType: "application/x-ndjson",
    });
    expect(stored.metadata).toEqual({ "alphapulse-tenant": TENANT.id, "alphapulse-slug": "acme" });
    expect(kept.versionId).toBe(stored.versionId);
    expect(readdirSync(staging)).toEqual([]);
    // An export is never overwritten (If-None-Match: *).
    await expect(sinkWith(c).keep(TENANT, "acme-1.jsonl", writeExport("other\n"))).rejects.toThrow(/PutObject: .*pre-?condition/i);
    expect(s3.object(BUCKET, key)!.body.toString()).toBe('{"a":1}\n{"b":2}\n');
    c.destroy();
  });

  it("negative control: a 500 on every PUT fails the keep, nothing stored, staging removed", async () => {
    const c = client();
    fault = "internal-error";
    try {
      await expect(sinkWith(c).keep(TENANT, "acme-2.jsonl", writeExport("x\n"))).rejects.toMatchObject({
        name: "ExportUploadError",
        message: expect.stringMatching(/^export upload to s3:\/\/.*acme-2\.jsonl failed: PutObject/),
      });
    } finally {
      fault = undefined;
      c.destroy();
    }
    expect(s3.object(BUCKET, `tenant-exports/${TENANT.id}/acme-2.jsonl`)).toBeUndefined();
    expect(readdirSync(staging)).toEqual([]);
  });

  it("negative control: bytes damaged in storage fail the read-back check", async () => {
    const c = client();
    fault = "corrupt-on-put";
    try {
      await expect(sinkWith(c).keep(TENANT, "acme-3.jsonl", writeExport('{"row":"value"}\n'))).rejects.toThrow(
        /acme-3\.jsonl failed: the object read back hashes to [0-9a-f]{64}, the export to [0-9a-f]{64}/,
      );
    } finally {
      fault = undefined;
      c.destroy();
    }
    expect(readdirSync(staging)).toEqual([]);
  });

  it("negative control: a request signed with an unknown key is refused (the signature is checked)", async () => {
    const c = client({ accessKeyId: "SOMEONEELSE", secretAccessKey: "nope" });
    await expect(sinkWith(c).keep(TENANT, "acme-4.jsonl", writeExport("x\n"))).rejects.toThrow(/PutObject/);
    c.destroy();
    const wrongSecret = client({ accessKeyId: LOCAL_EXECUTOR_CREDENTIALS.accessKeyId, secretAccessKey: "wrong" });
    await expect(sinkWith(wrongSecret).keep(TENANT, "acme-5.jsonl", writeExport("x\n"))).rejects.toThrow(/signature/i);
    wrongSecret.destroy();
    expect(s3.keys(BUCKET).filter((k) => /acme-[45]/.test(k))).toEqual([]);
    expect(existsSync(staging)).toBe(true);
  });
});
