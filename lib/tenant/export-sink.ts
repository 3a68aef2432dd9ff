/**
 * Where an offboarding export is kept (docs/data-safety.md). One interface, two places:
 *
 *   localDirectorySink  a directory of this machine (`tenancy tenant delete`, `npm run tenant --
 *                       destroy` against a local region): the export is written in place.
 *   s3ExportSink        the region's backup bucket under `tenant-exports/<tenant id>/`, SSE-KMS under
 *                       the region's key (lib/tenant/s3-export-sink.ts): what the database executor
 *                       uses inside the VPC, where the only disk is the Lambda's ephemeral one.
 *
 * lib/tenant/offboarding.ts writes the export through `keep` and records `location` in the registry
 * (`offboarding_export`): a path, or an `s3://bucket/key` URI. `keep` returns only once the kept copy
 * is complete and verified; anything else throws, and the offboarding then restores the tenant's
 * status and stops. The helpers below are pure.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";

/** The tenant an export belongs to (its id names the S3 prefix; the slug is in the file name). */
export interface ExportOwner {
  id: string;
  slug: string;
}

export interface KeptExport<T> {
  /** Where the export is kept: an absolute path or `s3://bucket/key`. */
  location: string;
  /** What `write` returned (the export's report). */
  result: T;
  /** SHA-256 (hex) of the kept bytes, as read back; absent for a local file (the export verified it as it wrote). */
  sha256?: string;
  /** The object version (a versioned bucket). */
  versionId?: string;
}

export interface ExportSink {
  /** What kind of place: for the plan's wording. */
  readonly kind: "directory" | "s3";
  /** Where the export `fileName` of `owner` would be kept (pure: the dry run prints it). */
  locationOf(owner: ExportOwner, fileName: string): string;
  /**
   * Runs `write(localPath)`, which must leave the complete export at `localPath`, and keeps it at
   * `locationOf(owner, fileName)`. Resolves once the kept copy is verified; throws otherwise (a
   * local staging copy is removed either way).
   */
  keep<T>(owner: ExportOwner, fileName: string, write: (localPath: string) => Promise<T>): Promise<KeptExport<T>>;
}

/** Exports written straight into `dir` (created 0700 when missing). */
export function localDirectorySink(dir: string): ExportSink {
  const root = path.resolve(dir);
  return {
    kind: "directory",
    locationOf: (_owner, fileName) => path.join(root, fileName),
    async keep(owner, fileName, write) {
      const location = path.join(root, fileName);
      mkdirSync(root, { recursive: true, mode: 0o700 });
      return { location, result: await write(location) };
    },
  };
}

/** The key prefix of offboarding exports in the region's backup bucket (the executor may write only below it). */
export const TENANT_EXPORT_PREFIX = "tenant-exports";

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/;

/** `tenant-exports/<tenant id>/<file>`: one prefix per tenant, so a restore lists one tenant's exports. */
export function exportObjectKey(tenantId: string, fileName: string, prefix: string = TENANT_EXPORT_PREFIX): string {
  if (!UUID.test(tenantId)) throw new Error(`export object key: tenant id ${JSON.stringify(tenantId)} is not a tenant uuid`);
  if (!FILE_NAME.test(fileName)) throw new Error(`export object key: file name ${JSON.stringify(fileName)} is not an export file name`);
  return `${prefix.replace(/\/+$/, "")}/${tenantId}/${fileName}`;
}

export function s3Uri(bucket: string, key: string): string {
  if (!BUCKET_NAME.test(bucket)) throw new Error(`s3 uri: bucket ${JSON.stringify(bucket)} is not a bucket name`);
  return `s3://${bucket}/${key}`;
}

/** `s3://bucket/key` → `{ bucket, key }`; undefined for anything else (a local path). */
export function parseS3Uri(uri: string): { bucket: string; key: string } | undefined {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  return m && BUCKET_NAME.test(m[1]) ? { bucket: m[1], key: m[2] } : undefined;
}
