/**
 * A local stand-in for the two AWS APIs the executor transport calls, on a loopback port, so the
 * real AWS SDK clients (their SigV4 signing, their retries) run unchanged in tests and local stacks:
 *
 *   POST /2015-03-31/functions/{name}/invocations   Lambda Invoke: runs the handler in this process
 *        and answers as Lambda does — 200 with the result, or 200 with `X-Amz-Function-Error:
 *        Unhandled` and `{ errorType, errorMessage, trace }` when the handler throws; 404
 *        ResourceNotFoundException for another function; 429 TooManyRequestsException when
 *        `throttle` says so (lib/executor/lambda-client.ts retries those).
 *   POST /  with `X-Amz-Target: secretsmanager.GetSecretValue`: the secrets given at start.
 *
 * Every request must carry a valid SigV4 signature by one of `credentials` (403
 * UnrecognizedClientException for an unknown key, InvalidSignatureException for a wrong signature):
 * the unauthorised path is the real one. Used by test/executor and `npm run local:executor`.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { LOCAL_EXECUTOR_CREDENTIALS, type StaticCredentials } from "./lambda-client";

export type LocalHandler = (event: unknown) => Promise<unknown>;

export interface LocalExecutorOptions {
  /** The function's handler, run in this process for each Invoke. */
  handler: LocalHandler;
  /** The one function name (or ARN ending in it) this endpoint answers for. */
  functionName: string;
  /** @default a free loopback port */
  port?: number;
  /** Accepted signing keys. @default [LOCAL_EXECUTOR_CREDENTIALS] */
  credentials?: StaticCredentials[];
  /** SecretId (name or ARN) → SecretString. @default {} */
  secrets?: Record<string, string>;
  /** Called per Invoke; true answers 429 (throttled) without running the handler. */
  throttle?: () => boolean;
}

export interface LocalExecutor {
  url: string;
  port: number;
  /** Requests seen, by API: what tests count (e.g. the SDK's retries). */
  requests: { invoke: number; throttled: number; secrets: number; refused: number };
  close(): Promise<void>;
}

const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");
const hmac = (key: string | Buffer, data: string) => createHmac("sha256", key).update(data).digest();
const rfc3986 = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * Why a request's SigV4 signature is not acceptable, or undefined when it is (pure over the request
 * as received). Recomputes the signature with the key's secret, as AWS does.
 */
export function signatureProblem(
  request: { method: string; url: string; headers: http.IncomingHttpHeaders; body: Buffer },
  credentials: readonly StaticCredentials[],
  /** S3 signs the path as sent (encoded once); every other service encodes it twice. @default false */
  singleEncodedPath = false,
):
  | { type: "UnrecognizedClientException" | "InvalidSignatureException" | "MissingAuthenticationTokenException"; message: string }
  | undefined {
  const auth = request.headers.authorization;
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(
      String(auth ?? ""),
    );
  if (!m) return { type: "MissingAuthenticationTokenException", message: "Missing Authentication Token" };
  const [, accessKeyId, date, region, service, signedHeaders, signature] = m;
  const key = credentials.find((c) => c.accessKeyId === accessKeyId);
  if (!key) return { type: "UnrecognizedClientException", message: "The security token included in the request is invalid." };
  const amzDate = String(request.headers["x-amz-date"] ?? "");
  const [rawPath, rawQuery = ""] = request.url.split("?");
  const canonicalPath = rawPath
    .split("/")
    .map((segment) => rfc3986(decodeURIComponent(segment)))
    .map((segment) => (singleEncodedPath ? segment : rfc3986(segment)))
    .join("/");
  const canonicalQuery = rawQuery
    .split("&")
    .filter(Boolean)
    .map((pair) => pair.split("=").map((p) => rfc3986(decodeURIComponent(p ?? ""))))
    .sort(([a, av], [b, bv]) => (a === b ? (av < bv ? -1 : 1) : a < b ? -1 : 1))
    .map(([k, v = ""]) => `${k}=${v}`)
    .join("&");
  const names = signedHeaders.split(";");
  const canonicalHeaders = names
    .map((name) => {
      const value = request.headers[name];
      const text = Array.isArray(value) ? value.join(",") : String(value ?? "");
      return `${name}:${text.trim().replace(/\s+/g, " ")}\n`;
    })
    .join("");
  const payloadHash = String(request.headers["x-amz-content-sha256"] ?? sha256(request.body));
  const canonical = [request.method, canonicalPath, canonicalQuery, canonicalHeaders, signedHeaders, payloadHash].join("\n");
  const scope = `${date}/${region}/${service}/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonical)].join("\n");
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${key.secretAccessKey}`, date), region), service), "aws4_request");
  const expected = hmac(signingKey, toSign);
  if (!timingSafeEqual(expected, Buffer.from(signature, "hex"))) {
    return {
      type: "InvalidSignatureException",
      message:
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
    };
  }
  return undefined;
}

function reply(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Starts the endpoint on 127.0.0.1; `close()` stops it. */
export async function startLocalExecutor(options: LocalExecutorOptions): Promise<LocalExecutor> {
  const credentials = options.credentials ?? [LOCAL_EXECUTOR_CREDENTIALS];
  const secrets = options.secrets ?? {};
  const requests = { invoke: 0, throttled: 0, secrets: 0, refused: 0 };

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): Promise<void> {
    const url = req.url ?? "/";
    const problem = signatureProblem({ method: req.method ?? "GET", url, headers: req.headers, body }, credentials);
    if (problem) {
      requests.refused++;
      return reply(
        res,
        403,
        { Type: "User", message: problem.message },
        { "x-amzn-errortype": `${problem.type}:http://internal.amazon.com/coral/com.amazon.coral.service/` },
      );
    }
    const invoke = /^\/2015-03-31\/functions\/([^/]+)\/invocations(?:\?.*)?$/.exec(url);
    if (req.method === "POST" && invoke) {
      const name = decodeURIComponent(invoke[1]);
      if (name !== options.functionName && !name.endsWith(`:function:${options.functionName}`)) {
        return reply(
          res,
          404,
          { Type: "User", Message: `Function not found: ${name}` },
          { "x-amzn-errortype": "ResourceNotFoundException" },
        );
      }
      if (options.throttle?.()) {
        requests.throttled++;
        return reply(
          res,
          429,
          { Reason: "ReservedFunctionConcurrentInvocationLimitExceeded", Type: "User", message: "Rate Exceeded." },
          { "x-amzn-errortype": "TooManyRequestsException" },
        );
      }
      requests.invoke++;
      let event: unknown;
      try {
        event = body.length ? JSON.parse(body.toString("utf8")) : {};
      } catch {
        return reply(
          res,
          400,
          { Type: "User", message: "Could not parse request body into json" },
          { "x-amzn-errortype": "InvalidRequestContentException" },
        );
      }
      try {
        const result = await options.handler(event);
        return reply(res, 200, result ?? null, { "x-amz-executed-version": "$LATEST" });
      } catch (err) {
        const e = err instanceof Error ? err : new Error(String(err));
        // What the Node.js runtime sends for an uncaught error: name, message, stack lines.
        return reply(
          res,
          200,
          { errorType: e.name, errorMessage: e.message, trace: String(e.stack ?? "").split("\n") },
          { "x-amz-function-error": "Unhandled", "x-amz-executed-version": "$LATEST" },
        );
      }
    }
    if (req.method === "POST" && url === "/" && req.headers["x-amz-target"] === "secretsmanager.GetSecretValue") {
      requests.secrets++;
      const { SecretId } = JSON.parse(body.toString("utf8") || "{}") as { SecretId?: string };
      const value = SecretId === undefined ? undefined : secrets[SecretId];
      if (value === undefined) {
        return reply(
          res,
          400,
          { __type: "ResourceNotFoundException", message: "Secrets Manager can't find the specified secret." },
          { "x-amzn-errortype": "ResourceNotFoundException", "content-type": "application/x-amz-json-1.1" },
        );
      }
      return reply(
        res,
        200,
        { ARN: SecretId, Name: SecretId, SecretString: value, VersionId: "local", VersionStages: ["AWSCURRENT"], CreatedDate: 0 },
        { "content-type": "application/x-amz-json-1.1" },
      );
    }
    return reply(res, 404, { message: `no such API here: ${req.method} ${url}` }, { "x-amzn-errortype": "UnknownOperationException" });
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      handle(req, res, Buffer.concat(chunks)).catch((err: unknown) => {
        if (!res.headersSent)
          reply(res, 500, { message: String((err as Error)?.message ?? err) }, { "x-amzn-errortype": "ServiceException" });
      });
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
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
