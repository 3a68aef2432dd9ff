/**
 * The deployer's side of the executor transport: one synchronous Lambda Invoke per operation with the
 * real AWS SDK client (its SigV4 signing), and the reply mapped to a result or a
 * thrown error. Never succeeds silently:
 *
 * - The handler failed (`X-Amz-Function-Error`, e.g. "Unhandled"): ExecutorError carrying the
 *   handler's message, its error type and — for a PostgreSQL error — the SQLSTATE (`code`), so
 *   callers test `err.code === "3D000"` the same way on both transports.
 * - Lambda refused or could not be reached (unauthorised, no such function, network, throttled past
 *   the retries): ExecutorError naming the function, its region and what to check. Nothing ran
 *   in the database (the handler was never started).
 *
 * Only what certainly never reached the handler is retried (3 attempts, backoff from 500 ms):
 * throttling (429 TooManyRequestsException: Lambda refused before running anything) and a connection
 * that could not be opened. The SDK's own retries are off: its standard strategy also retries a
 * connection reset or a 5xx after the request was sent, when the handler may be running, and an
 * operator command (`npm run ops`) must not run twice because a long Invoke's connection dropped.
 * Such a failure says that the operation may have run.
 */
import { InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import type { ExecutorConnection } from "../../components/db/provider-runtime";

/** What the handler receives for a plain Invoke (lib/executor/handler.ts). */
export interface ExecutorPayload {
  operation: string;
  database: string;
  args: unknown;
}

/** The error prefix the handler gives a PostgreSQL error's type: `PostgresError.<SQLSTATE>`. */
export const POSTGRES_ERROR_TYPE = "PostgresError";

/** Static AWS credentials (the shape the SDK accepts). */
export interface StaticCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export class ExecutorError extends Error {
  /** "function": the handler ran and failed; "invoke": Lambda refused or was not reached (nothing ran). */
  readonly kind: "function" | "invoke";
  /** The handler's error type (e.g. "TenantStillServedError", "PostgresError.3D000") or the AWS error name. */
  readonly errorType: string;
  /** SQLSTATE when the handler failed on a PostgreSQL error. */
  readonly code?: string;

  constructor(message: string, details: { kind: "function" | "invoke"; errorType: string; code?: string }) {
    super(message);
    this.name = "ExecutorError";
    this.kind = details.kind;
    this.errorType = details.errorType;
    this.code = details.code;
  }
}

export interface InvokeOptions {
  /** Static credentials (the local executor and tests); otherwise the SDK's default chain. */
  credentials?: StaticCredentials;
  /** Attempts while the call never reached the handler (throttled, connection refused). @default 3 */
  maxAttempts?: number;
  /** Backoff before the second attempt, doubled for each further one. @default 500 */
  retryBaseDelayMs?: number;
}

/** Network errors raised before a connection existed: the request was never sent. */
const NOT_CONNECTED = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"]);

function networkCode(err: unknown): string | undefined {
  const e = err as { code?: string; cause?: { code?: string } };
  return e.code ?? e.cause?.code;
}

/** The call certainly never reached the handler, so running it again cannot run it twice (pure). */
export function neverReachedHandler(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  if (e.$metadata?.httpStatusCode === 429 || e.name === "TooManyRequestsException") return true;
  const code = networkCode(err);
  return !e.$metadata?.httpStatusCode && code !== undefined && NOT_CONNECTED.has(code);
}

/** Credentials the local executor endpoint accepts by default (loopback only; not a secret). */
export const LOCAL_EXECUTOR_CREDENTIALS: StaticCredentials = { accessKeyId: "ALPHAPULSELOCAL", secretAccessKey: "local-executor-only" };

function isLoopbackEndpoint(endpoint: string | undefined): boolean {
  if (!endpoint) return false;
  try {
    const host = new URL(endpoint).hostname.replace(/^\[|\]$/g, "");
    return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
  } catch {
    return false;
  }
}

/** Why an Invoke call itself failed, in the operator's words (pure). */
export function describeInvokeFailure(connection: ExecutorConnection, err: unknown): string {
  const e = err as { name?: string; message?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const where = `executor ${connection.functionName} (${connection.region}${connection.endpoint ? ` at ${connection.endpoint}` : ""})`;
  const status = e.$metadata?.httpStatusCode;
  const detail = `${e.name ?? "Error"}${status ? ` ${status}` : ""}: ${e.message ?? String(err)}`;
  if (status === 403 || /AccessDenied|UnrecognizedClient|InvalidSignature|SignatureDoesNotMatch|ExpiredToken/.test(e.name ?? "")) {
    return `${where} refused the call: not authorised to invoke it (${detail}). The deployer needs lambda:InvokeFunction on exactly this function; check the AWS credentials in use. Nothing ran in the database`;
  }
  if (status === 404 || e.name === "ResourceNotFoundException") {
    return `${where} does not exist (${detail}): deploy the region's platform stack first (it declares the executor). Nothing ran in the database`;
  }
  if (status === 429 || e.name === "TooManyRequestsException") {
    return `${where} is throttled, still after the retries (${detail}): its concurrency is exhausted; run again later. Nothing ran in the database`;
  }
  if (!status && neverReachedHandler(err)) {
    return `${where} is unreachable (${detail}): check the network path to the Lambda API and the region. Nothing ran in the database`;
  }
  if (!status) {
    return `${where}: the connection failed after the call was sent (${detail}), so the operation may have run. It was not retried (that could run it twice): check its effect before running it again`;
  }
  return `${where}: the Lambda API failed the call (${detail})`;
}

/**
 * Invokes the executor synchronously with `payload` and returns the handler's JSON result; throws
 * ExecutorError on any failure (see the file comment).
 */
export async function invokeExecutor(
  connection: ExecutorConnection,
  payload: ExecutorPayload,
  options: InvokeOptions = {},
): Promise<unknown> {
  const client = new LambdaClient({
    region: connection.region,
    endpoint: connection.endpoint,
    maxAttempts: 1, // retried below, only when nothing can have run
    credentials: options.credentials ?? (isLoopbackEndpoint(connection.endpoint) ? LOCAL_EXECUTOR_CREDENTIALS : undefined),
  });
  const command = new InvokeCommand({
    FunctionName: connection.functionName,
    InvocationType: "RequestResponse",
    Payload: new TextEncoder().encode(JSON.stringify(payload)),
  });
  const attempts = options.maxAttempts ?? 3;
  let reply;
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        reply = await client.send(command);
        break;
      } catch (err) {
        if (attempt < attempts && neverReachedHandler(err)) {
          await new Promise((resolve) => setTimeout(resolve, (options.retryBaseDelayMs ?? 500) * 2 ** (attempt - 1)));
          continue;
        }
        throw new ExecutorError(describeInvokeFailure(connection, err), {
          kind: "invoke",
          errorType: (err as { name?: string }).name ?? "Error",
        });
      }
    }
  } finally {
    client.destroy();
  }
  const text = reply.Payload ? new TextDecoder().decode(reply.Payload) : "";
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    if (!reply.FunctionError) {
      throw new ExecutorError(`executor ${connection.functionName}: its reply is not JSON: ${text.slice(0, 200)}`, {
        kind: "function",
        errorType: "InvalidReply",
      });
    }
  }
  if (reply.FunctionError) {
    const e = (body ?? {}) as { errorType?: string; errorMessage?: string };
    const errorType = e.errorType ?? reply.FunctionError;
    const code = errorType.startsWith(`${POSTGRES_ERROR_TYPE}.`) ? errorType.slice(POSTGRES_ERROR_TYPE.length + 1) : undefined;
    throw new ExecutorError(
      e.errorMessage ?? `executor ${connection.functionName} failed (${reply.FunctionError}): ${text.slice(0, 500)}`,
      {
        kind: "function",
        errorType,
        code,
      },
    );
  }
  return body;
}
