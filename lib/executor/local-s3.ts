/**
 * A local stand-in for the S3 object API the offboarding export uses (lib/tenant/s3-export-sink.ts),
 * on a loopback port, in the style of lib/executor/local-endpoint.ts: the real `@aws-sdk/client-s3`
 * client (path-style addressing) runs unchanged against it.
 *
 *   PUT  /{bucket}/{key}   PutObject: stores the bytes with the SSE headers it was sent; refuses a body
 *                          that does not match `x-amz-checksum-sha256` or `x-amz-content-sha256`
 *                          (400 BadDigest / XAmzContentSHA256Mismatch) and an existing key under
 *                          `If-None-Match: *` (412 PreconditionFailed); answers ETag and a version id.
 *   GET  /{bucket}/{key}   GetObject: the bytes, the SSE headers, the SHA-256 checksum of what it holds.
 *   HEAD /{bucket}/{key}   HeadObject: the same headers, no body.
 *
 * Every request must carry a valid SigV4 signature by one of `credentials` (403 otherwise), as S3
 * signs (the path encoded once). Errors are S3's XML. `fault` makes it fail the way tests need: a 500
 * for every request it names, or a PUT acknowledged while the bytes it keeps are damaged (the
 * checksums it reports are then those of the damaged bytes, as S3 computes them over what it holds).
 */
import { createHash, randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { LOCAL_EXECUTOR_CREDENTIALS, type StaticCredentials } from "./lambda-client";
import { signatureProblem } from "./local-endpoint";

export interface StoredObject {
  body: Buffer;
  contentType?: string;
  serverSideEncryption?: string;
  kmsKeyId?: string;
  bucketKeyEnabled?: boolean;
  metadata: Record<string, string>;
  versionId: string;
}

/** What a test makes the endpoint do for one request (undefined: answer normally). */
export type S3Fault = "internal-error" | "corrupt-on-put";

export interface LocalS3Options {
  /** The buckets that exist (another answers 404 NoSuchBucket). */
  buckets: string[];
  /** @default a free loopback port */
  port?: number;
  /** Accepted signing keys. @default [LOCAL_EXECUTOR_CREDENTIALS] */
  credentials?: StaticCredentials[];
  /** Called per request; see S3Fault. */
  fault?: (request: { method: string; bucket: string; key: string }) => S3Fault | undefined;
}

export interface LocalS3 {
  url: string;
  port: number;
  requests: { put: number; get: number; head: number; refused: number; failed: number };
  /** The object as stored (latest version), or undefined. */
  object(bucket: string, key: string): StoredObject | undefined;
  /** Every key of a bucket. */
  keys(bucket: string): string[];
  close(): Promise<void>;
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest();
const xmlEscape = (s: string) => s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

function s3Error(res: http.ServerResponse, status: number, code: string, message: string, head = false): void {
  const text = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message><RequestId>local</RequestId></Error>`;
  res.writeHead(status, {
    "content-type": "application/xml",
    "content-length": head ? 0 : Buffer.byteLength(text),
    "x-amz-request-id": "local",
  });
  res.end(head ? undefined : text);
}

function objectHeaders(o: StoredObject): Record<string, string> {
  return {
    etag: `"${createHash("md5").update(o.body).digest("hex")}"`,
    "content-length": String(o.body.length),
    "content-type": o.contentType ?? "binary/octet-stream",
    "x-amz-version-id": o.versionId,
    "x-amz-checksum-sha256": sha256(o.body).toString("base64"),
    "x-amz-checksum-type": "FULL_OBJECT",
    ...(o.serverSideEncryption ? { "x-amz-server-side-encryption": o.serverSideEncryption } : {}),
    ...(o.kmsKeyId ? { "x-amz-server-side-encryption-aws-kms-key-id": o.kmsKeyId } : {}),
    ...(o.bucketKeyEnabled ? { "x-amz-server-side-encryption-bucket-key-enabled": "true" } : {}),
    ...Object.fromEntries(Object.entries(o.metadata).map(([k, v]) => [`x-amz-meta-${k}`, v])),
    "last-modified": new Date().toUTCString(),
  };
}

const header = (req: http.IncomingMessage, name: string): string | undefined => {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(",") : v;
};

/** Starts the endpoint on 127.0.0.1; `close()` stops it. */
export async function startLocalS3(options: LocalS3Options): Promise<LocalS3> {
  const credentials = options.credentials ?? [LOCAL_EXECUTOR_CREDENTIALS];
  const store = new Map<string, Map<string, StoredObject>>(options.buckets.map((b) => [b, new Map()]));
  const requests = { put: 0, get: 0, head: 0, refused: 0, failed: 0 };

  function handle(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): void {
    const method = req.method ?? "GET";
    const url = req.url ?? "/";
    const head = method === "HEAD";
    const problem = signatureProblem({ method, url, headers: req.headers, body }, credentials, true);
    if (problem) {
      requests.refused++;
      const code = problem.type === "InvalidSignatureException" ? "SignatureDoesNotMatch" : "InvalidAccessKeyId";
      return s3Error(res, 403, code, problem.message, head);
    }
    const m = /^\/([^/?]+)\/([^?]+)(?:\?.*)?$/.exec(url);
    if (!m) return s3Error(res, 400, "NotImplemented", `only object requests (/{bucket}/{key}) are answered here: ${method} ${url}`, head);
    const bucket = decodeURIComponent(m[1]);
    const key = decodeURIComponent(m[2]);
    const objects = store.get(bucket);
    if (!objects) return s3Error(res, 404, "NoSuchBucket", "The specified bucket does not exist", head);
    const fault = options.fault?.({ method, bucket, key });
    if (fault === "internal-error") {
      requests.failed++;
      return s3Error(res, 500, "InternalError", "We encountered an internal error. Please try again.", head);
    }

    if (method === "PUT") {
      requests.put++;
      if (/aws-chunked/.test(header(req, "content-encoding") ?? "") || /^STREAMING-/.test(header(req, "x-amz-content-sha256") ?? "")) {
        return s3Error(res, 501, "NotImplemented", "aws-chunked uploads are not answered by the local S3 endpoint: send a sized body");
      }
      const contentHash = header(req, "x-amz-content-sha256");
      if (contentHash && contentHash !== "UNSIGNED-PAYLOAD" && contentHash !== sha256(body).toString("hex")) {
        return s3Error(
          res,
          400,
          "XAmzContentSHA256Mismatch",
          "The provided 'x-amz-content-sha256' header does not match what was computed.",
        );
      }
      const checksum = header(req, "x-amz-checksum-sha256");
      if (checksum !== undefined && checksum !== sha256(body).toString("base64")) {
        return s3Error(res, 400, "BadDigest", "The SHA256 you specified did not match the calculated checksum.");
      }
      if (header(req, "if-none-match") === "*" && objects.has(key)) {
        return s3Error(res, 412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold");
      }
      const kept = Buffer.from(body);
      if (fault === "corrupt-on-put" && kept.length > 0) kept[Math.floor(kept.length / 2)] ^= 0xff;
      const sse = header(req, "x-amz-server-side-encryption");
      const object: StoredObject = {
        body: kept,
        contentType: header(req, "content-type"),
        serverSideEncryption: sse,
        kmsKeyId: sse === "aws:kms" ? header(req, "x-amz-server-side-encryption-aws-kms-key-id") : undefined,
        bucketKeyEnabled: header(req, "x-amz-server-side-encryption-bucket-key-enabled") === "true",
        metadata: Object.fromEntries(
          Object.entries(req.headers)
            .filter(([k]) => k.startsWith("x-amz-meta-"))
            .map(([k, v]) => [k.slice("x-amz-meta-".length), String(v)]),
        ),
        versionId: randomUUID().replace(/-/g, ""),
      };
      objects.set(key, object);
      // The checksum S3 acknowledges is of what the request carried (the damage, if any, is silent).
      const headers = { ...objectHeaders(object), "x-amz-checksum-sha256": sha256(body).toString("base64"), "content-length": "0" };
      delete (headers as Record<string, string>)["content-type"];
      res.writeHead(200, headers);
      return void res.end();
    }
    if (method === "GET" || head) {
      if (head) requests.head++;
      else requests.get++;
      const object = objects.get(key);
      if (!object) return s3Error(res, 404, "NoSuchKey", "The specified key does not exist.", head);
      res.writeHead(200, objectHeaders(object));
      return void res.end(head ? undefined : object.body);
    }
    return s3Error(res, 405, "MethodNotAllowed", `The specified method is not allowed against this resource: ${method}`, head);
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      try {
        handle(req, res, Buffer.concat(chunks));
      } catch (err) {
        if (!res.headersSent) s3Error(res, 500, "InternalError", String((err as Error)?.message ?? err));
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    object: (bucket, key) => store.get(bucket)?.get(key),
    keys: (bucket) => [...(store.get(bucket)?.keys() ?? [])],
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
