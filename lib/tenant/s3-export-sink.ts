/**
 * The S3 export sink (lib/tenant/export-sink.ts): an offboarding export kept in the region's backup
 * bucket under `tenant-exports/<tenant id>/<file>`, encrypted with the region's KMS key (SSE-KMS).
 *
 * The export is written to a staging directory first (the Lambda's /tmp: the export's own
 * checksums verify it there, lib/enterprise/export.ts), then uploaded and verified, and the staging
 * copy is removed either way:
 *
 *  1. PutObject with the file's SHA-256 (`x-amz-checksum-sha256`: S3 refuses a body that does not
 *     match it), SSE-KMS under `kmsKeyArn`, and `If-None-Match: *` (an export is never overwritten);
 *  2. GetObject reads the whole object back: its bytes must hash to the same SHA-256, and S3 must
 *     report it encrypted with `aws:kms` under exactly `kmsKeyArn`.
 *
 * Any failure throws an ExportUploadError naming the object, so the offboarding restores the
 * tenant's status and records nothing. An object whose read-back failed may remain (the executor may
 * not delete: its policy grants PutObject and GetObject only); it is recorded nowhere, and the next
 * attempt writes a new file name.
 *
 * The whole file is held in memory for the upload (one PutObject, up to 5 GiB): the executor's
 * memory bounds the size of a tenant it can offboard (docs/data-safety.md).
 */
import { GetObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { exportObjectKey, s3Uri, TENANT_EXPORT_PREFIX, type ExportSink } from "./export-sink";

export interface S3ExportSinkOptions {
  client: S3Client;
  /** The region's backup bucket (platform contract `postgres.backupBucket`). */
  bucket: string;
  /** The region's KMS key ARN (platform contract `aws.kmsKeyArn`). */
  kmsKeyArn: string;
  /** @default TENANT_EXPORT_PREFIX ("tenant-exports") */
  prefix?: string;
  /** Where the export is staged before the upload. @default os.tmpdir() */
  stagingDir?: string;
}

/** An upload or its verification failed: nothing is recorded as this tenant's export. */
export class ExportUploadError extends Error {
  constructor(
    readonly location: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`export upload to ${location} failed: ${detail}`, options);
    this.name = "ExportUploadError";
  }
}

const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest();

/** Why a read-back copy is not the upload, or undefined when it is (pure). */
export function readBackProblem(
  expected: { sha256: string; kmsKeyArn: string },
  got: { sha256: string; serverSideEncryption?: string; kmsKeyId?: string },
): string | undefined {
  if (got.sha256 !== expected.sha256) return `the object read back hashes to ${got.sha256}, the export to ${expected.sha256}`;
  if (got.serverSideEncryption !== "aws:kms")
    return `the object is encrypted with ${got.serverSideEncryption ?? "nothing S3 reports"}, not aws:kms`;
  if (got.kmsKeyId !== expected.kmsKeyArn) return `the object is encrypted under ${got.kmsKeyId ?? "no key"}, not ${expected.kmsKeyArn}`;
  return undefined;
}

export function s3ExportSink(options: S3ExportSinkOptions): ExportSink {
  const prefix = options.prefix ?? TENANT_EXPORT_PREFIX;
  const locate = (tenantId: string, fileName: string) => {
    const key = exportObjectKey(tenantId, fileName, prefix);
    return { key, uri: s3Uri(options.bucket, key) };
  };
  return {
    kind: "s3",
    locationOf: (owner, fileName) => locate(owner.id, fileName).uri,
    async keep(owner, fileName, write) {
      const { key, uri } = locate(owner.id, fileName);
      const staging = mkdtempSync(path.join(options.stagingDir ?? os.tmpdir(), "alphapulse-export-"));
      try {
        const local = path.join(staging, fileName);
        const result = await write(local);
        const body = readFileSync(local);
        const digest = sha256(body);
        let versionId: string | undefined;
        try {
          const put = await options.client.send(
            new PutObjectCommand({
              Bucket: options.bucket,
              Key: key,
              Body: body,
              ContentType: fileName.endsWith(".gz") ? "application/gzip" : "application/x-ndjson",
              ChecksumSHA256: digest.toString("base64"),
              ServerSideEncryption: "aws:kms",
              SSEKMSKeyId: options.kmsKeyArn,
              BucketKeyEnabled: true,
              IfNoneMatch: "*",
              Metadata: { "alphapulse-tenant": owner.id, "alphapulse-slug": owner.slug },
            }),
          );
          versionId = put.VersionId;
        } catch (err) {
          throw new ExportUploadError(uri, `PutObject: ${(err as Error).message}`, { cause: err });
        }
        let readBack: { sha256: string; serverSideEncryption?: string; kmsKeyId?: string };
        try {
          // The latest version (reading a named version needs s3:GetObjectVersion, which the executor
          // is not granted); that it is the one just written is checked below.
          const got = await options.client.send(new GetObjectCommand({ Bucket: options.bucket, Key: key }));
          const bytes = got.Body ? await got.Body.transformToByteArray() : new Uint8Array();
          readBack = { sha256: sha256(bytes).toString("hex"), serverSideEncryption: got.ServerSideEncryption, kmsKeyId: got.SSEKMSKeyId };
          if (versionId !== undefined && got.VersionId !== versionId)
            throw new Error(`read version ${got.VersionId ?? "(none)"}, wrote version ${versionId}`);
        } catch (err) {
          throw new ExportUploadError(uri, `reading it back (GetObject): ${(err as Error).message}`, { cause: err });
        }
        const problem = readBackProblem({ sha256: digest.toString("hex"), kmsKeyArn: options.kmsKeyArn }, readBack);
        if (problem) throw new ExportUploadError(uri, problem);
        return { location: uri, result, sha256: readBack.sha256, versionId };
      } finally {
        rmSync(staging, { recursive: true, force: true });
      }
    },
  };
}
