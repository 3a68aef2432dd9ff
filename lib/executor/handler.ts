/**
 * The database executor's Lambda handler (docs/adr/ADR-004-database-executor.md): it runs inside the
 * region's VPC, next to PostgreSQL, and executes one named operation of lib/executor/operations.ts
 * per invocation — the same code the local regions run over a direct connection.
 *
 * Two payloads, both JSON:
 *   - a plain Invoke (our dynamic providers, lib/executor/lambda-client.ts):
 *       { "operation": "createTenant", "database": "alphapulse", "args": { … } }
 *   - the envelope of `aws.lambda.Invocation` with `lifecycleScope: "CRUD"`: the resource's input
 *     plus `tf: { action: "create" | "update" | "delete", prev_input }`. Create and update run
 *     `operation`; delete runs the input's `onDelete: { operation, args }` when it declares one and
 *     otherwise changes nothing (a resource removed from the program never deletes data by itself).
 *
 * A result is returned as JSON. Any failure is thrown, so Lambda replies with `X-Amz-Function-Error`
 * and `{ errorType, errorMessage }`: errorType is the error's name, or `PostgresError.<SQLSTATE>` for
 * a PostgreSQL error (the caller maps it back to `code`). The log gets one line per invocation
 * (operation, database, duration, outcome), never the args: they may carry passwords.
 *
 * Configuration (environment of the function, set by components/aws/executor.ts):
 *   EXECUTOR_DB_SECRET_ARN  Secrets Manager secret: JSON { username, password, host?, port?, ca? }
 *   EXECUTOR_DB_HOST        PostgreSQL host (the secret's `host` when unset)
 *   EXECUTOR_DB_PORT        @default 5432 (or the secret's `port`)
 *   EXECUTOR_DB_TLS         "verify-full" (default: TLS, certificate checked against the secret's `ca`
 *                           or the system roots) | "require" (TLS, unchecked) | "disable" (local only)
 *   EXECUTOR_DB_READY_TIMEOUT_S  how long a server still bootstrapping is waited for (not listening,
 *                           starting up, no pg_hba line or role for the executor yet) @default 600
 *   EXECUTOR_EXPORT_BUCKET, EXECUTOR_EXPORT_KMS_KEY_ARN  where `offboardTenant` keeps exports (ExportsConfig);
 *                           EXECUTOR_EXPORT_S3_ENDPOINT another S3 endpoint, path-style (tests only)
 * The secret is read once per warm container and re-read after 5 minutes (rotation).
 */
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import pg from "pg";
import { z } from "zod";
import type { Queryable } from "../db/client";
import type { ExportSink } from "../tenant/export-sink";
import type { StaticCredentials } from "./lambda-client";
import { OperationInputError, runOperation } from "./operations";

export const TLS_MODES = ["verify-full", "require", "disable"] as const;
export type TlsMode = (typeof TLS_MODES)[number];

export interface HandlerConfig {
  db: {
    secretArn: string;
    /** Overrides the secret's host/port. */
    host?: string;
    port?: number;
    tls: TlsMode;
    /**
     * How long a server that is not ready yet is waited for (a new node still bootstrapping: not
     * listening, starting up, no pg_hba line or no role for the executor yet). @default 0 (no wait);
     * the Lambda: EXECUTOR_DB_READY_TIMEOUT_S, default 600 (of its 900 s).
     */
    readyTimeoutMs?: number;
    /** Pause between two attempts while waiting. @default 5000 */
    readyPollMs?: number;
  };
  /** Another Secrets Manager endpoint and credentials: only the local executor sets them. */
  secretsManager?: { region?: string; endpoint?: string; credentials?: StaticCredentials };
  /** How long a secret read is reused. @default 300000 */
  secretTtlMs?: number;
  /** Where `offboardTenant` keeps exports (see ExportsConfig). @default none: it refuses to export */
  exports?: ExportsConfig;
  /** Another place for the exports instead of `exports`: the local executor keeps them in a directory of this machine. */
  exportSink?: () => Promise<ExportSink>;
}

/**
 * The region's backup bucket and KMS key: offboarding exports go to `s3://<bucket>/tenant-exports/…`,
 * SSE-KMS under the key (lib/tenant/s3-export-sink.ts). Environment: EXECUTOR_EXPORT_BUCKET and
 * EXECUTOR_EXPORT_KMS_KEY_ARN (both or neither), set by components/aws/executor.ts.
 */
export interface ExportsConfig {
  bucket: string;
  kmsKeyArn: string;
  /** Another S3 endpoint and credentials, path-style: only tests (lib/executor/local-s3.ts) set it. */
  s3?: { region?: string; endpoint?: string; credentials?: StaticCredentials };
}

export class ExecutorConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ExecutorConfigError";
  }
}

/** How long the Lambda waits for a node that is still bootstrapping (the first `pulumi up` of a region). */
export const DEFAULT_READY_TIMEOUT_S = 600;

/** Connection errors of a server that is not ready for the executor yet, which a wait can cure (pure). */
const NOT_READY_CODES = new Set([
  "ECONNREFUSED", // not listening yet
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENOTFOUND", // its DNS record not there yet
  "EAI_AGAIN",
  "57P03", // cannot_connect_now: starting up
  "28000", // no pg_hba.conf line for the executor yet
  "28P01", // its role not created yet (PostgreSQL says "password authentication failed" for both)
]);
export function serverNotReady(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return (
    (e.code !== undefined && NOT_READY_CODES.has(e.code)) || /connection timeout|Connection terminated unexpectedly/i.test(e.message ?? "")
  );
}

/** The handler's configuration from its environment; a missing or bad variable is named. */
export function handlerConfigFromEnv(env: NodeJS.ProcessEnv): HandlerConfig {
  const secretArn = env.EXECUTOR_DB_SECRET_ARN;
  if (!secretArn) throw new ExecutorConfigError("EXECUTOR_DB_SECRET_ARN is not set: the executor reads its database credential from it");
  const tls = (env.EXECUTOR_DB_TLS ?? "verify-full") as TlsMode;
  if (!TLS_MODES.includes(tls)) throw new ExecutorConfigError(`EXECUTOR_DB_TLS must be one of ${TLS_MODES.join(", ")} (got "${tls}")`);
  let port: number | undefined;
  if (env.EXECUTOR_DB_PORT !== undefined && env.EXECUTOR_DB_PORT !== "") {
    port = Number(env.EXECUTOR_DB_PORT);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new ExecutorConfigError(`EXECUTOR_DB_PORT must be a port number (got "${env.EXECUTOR_DB_PORT}")`);
    }
  }
  let readySeconds = DEFAULT_READY_TIMEOUT_S;
  if (env.EXECUTOR_DB_READY_TIMEOUT_S !== undefined && env.EXECUTOR_DB_READY_TIMEOUT_S !== "") {
    readySeconds = Number(env.EXECUTOR_DB_READY_TIMEOUT_S);
    if (!Number.isInteger(readySeconds) || readySeconds < 0 || readySeconds > 840) {
      throw new ExecutorConfigError(
        `EXECUTOR_DB_READY_TIMEOUT_S must be whole seconds from 0 to 840 (got "${env.EXECUTOR_DB_READY_TIMEOUT_S}")`,
      );
    }
  }
  const bucket = env.EXECUTOR_EXPORT_BUCKET || undefined;
  const kmsKeyArn = env.EXECUTOR_EXPORT_KMS_KEY_ARN || undefined;
  if ((bucket === undefined) !== (kmsKeyArn === undefined)) {
    throw new ExecutorConfigError(
      "EXECUTOR_EXPORT_BUCKET and EXECUTOR_EXPORT_KMS_KEY_ARN go together: exports are kept in the bucket under the key",
    );
  }
  // Another S3 endpoint (path-style): only the local S3 stand-in of the tests (lib/executor/local-s3.ts).
  const s3Endpoint = env.EXECUTOR_EXPORT_S3_ENDPOINT || undefined;
  return {
    db: { secretArn, host: env.EXECUTOR_DB_HOST || undefined, port, tls, readyTimeoutMs: readySeconds * 1000 },
    ...(bucket && kmsKeyArn ? { exports: { bucket, kmsKeyArn, ...(s3Endpoint ? { s3: { endpoint: s3Endpoint } } : {}) } } : {}),
  };
}

/** The S3 export sink of `exports`; the S3 client is loaded on first use only (the handler's cold start stays small). */
async function openExportSink(exports: ExportsConfig): Promise<ExportSink> {
  const [{ S3Client }, { s3ExportSink }] = await Promise.all([import("@aws-sdk/client-s3"), import("../tenant/s3-export-sink.js")]);
  const client = new S3Client({
    region: exports.s3?.region ?? process.env.AWS_REGION,
    endpoint: exports.s3?.endpoint,
    credentials: exports.s3?.credentials,
    forcePathStyle: exports.s3?.endpoint !== undefined,
  });
  return s3ExportSink({ client, bucket: exports.bucket, kmsKeyArn: exports.kmsKeyArn });
}

const DatabaseSecret = z.object({
  username: z.string().min(1),
  password: z.string(),
  host: z.string().optional(),
  port: z.coerce.number().int().optional(),
  ca: z.string().optional(),
});
type DatabaseSecret = z.infer<typeof DatabaseSecret>;

const Identifier = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, { message: "must be a lower-case SQL identifier" });
const Invocation = z.object({
  operation: z.string().min(1, { message: "must name an operation" }),
  database: Identifier,
  args: z.unknown().optional(),
});
const CrudEnvelope = z.object({
  action: z.enum(["create", "update", "delete"]),
  prev_input: z.unknown().optional(),
});
const OnDelete = z.strictObject({ operation: z.string().min(1), args: z.unknown().optional() });

/** What one event asks for: run an operation, or nothing (an Invocation resource deleted without `onDelete`). */
export type ExecutorRequest =
  | { kind: "run"; operation: string; database: string; args: unknown; action?: "create" | "update" | "delete" }
  | { kind: "skip"; action: "delete"; reason: string };

function inputError(where: string, error: z.ZodError): OperationInputError {
  const issues = error.issues.map((i) => `${[where, ...i.path.map(String)].filter(Boolean).join(".") || "payload"}: ${i.message}`);
  return new OperationInputError(`executor payload refused: ${issues.join("; ")}`);
}

/** Reads a plain Invoke payload or a CRUD envelope (pure; bad input is refused naming the field). */
export function parseExecutorEvent(event: unknown): ExecutorRequest {
  const body = typeof event === "string" ? (JSON.parse(event) as unknown) : event;
  if (!body || typeof body !== "object" || Array.isArray(body)) {
    throw new OperationInputError("executor payload refused: expected a JSON object { operation, database, args }");
  }
  const record = body as Record<string, unknown>;
  let action: "create" | "update" | "delete" | undefined;
  if (record.tf !== undefined) {
    const tf = CrudEnvelope.safeParse(record.tf);
    if (!tf.success) throw inputError("tf", tf.error);
    action = tf.data.action;
    if (action === "delete") {
      if (record.onDelete === undefined) {
        return { kind: "skip", action, reason: "the Invocation declares no onDelete: deleting it changes nothing in the database" };
      }
      const onDelete = OnDelete.safeParse(record.onDelete);
      if (!onDelete.success) throw inputError("onDelete", onDelete.error);
      const database = Identifier.safeParse(record.database);
      if (!database.success) throw inputError("database", database.error);
      return { kind: "run", action, operation: onDelete.data.operation, database: database.data, args: onDelete.data.args ?? {} };
    }
  }
  const parsed = Invocation.safeParse(record);
  if (!parsed.success) throw inputError("", parsed.error);
  return { kind: "run", action, operation: parsed.data.operation, database: parsed.data.database, args: parsed.data.args ?? {} };
}

/** node-postgres TLS options for a mode (pure). */
export function sslOptions(tls: TlsMode, ca: string | undefined): pg.ClientConfig["ssl"] {
  if (tls === "disable") return false;
  if (tls === "require") return { rejectUnauthorized: false };
  return ca ? { rejectUnauthorized: true, ca } : { rejectUnauthorized: true };
}

/** An error as Lambda should report it: PostgreSQL errors typed by their SQLSTATE (see the file comment). */
export function reportedError(err: unknown): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) {
    const reported = new Error(e.message);
    reported.name = `PostgresError.${code}`;
    reported.stack = `${reported.name}: ${e.message}`;
    return reported;
  }
  if (!e.name || e.name === "Error") e.name = e.constructor?.name && e.constructor.name !== "Object" ? e.constructor.name : "Error";
  return e;
}

export type ExecutorHandler = (event: unknown, context?: unknown) => Promise<unknown>;

/** A handler bound to `config` (tests and the local executor build their own; Lambda uses `handler`). */
export function createHandler(config: HandlerConfig): ExecutorHandler {
  let cached: { secret: DatabaseSecret; at: number } | undefined;
  const ttl = config.secretTtlMs ?? 300_000;
  let sink: Promise<ExportSink> | undefined;
  const exports = config.exports;
  const exportSink = config.exportSink ?? (exports ? () => (sink ??= openExportSink(exports)) : undefined);

  async function secret(): Promise<DatabaseSecret> {
    if (cached && Date.now() - cached.at < ttl) return cached.secret;
    const client = new SecretsManagerClient({
      region: config.secretsManager?.region ?? process.env.AWS_REGION,
      endpoint: config.secretsManager?.endpoint,
      credentials: config.secretsManager?.credentials,
    });
    try {
      const reply = await client.send(new GetSecretValueCommand({ SecretId: config.db.secretArn }));
      let json: unknown;
      try {
        json = JSON.parse(reply.SecretString ?? "");
      } catch {
        throw new ExecutorConfigError(`secret ${config.db.secretArn} is not JSON { username, password, host?, port? }`);
      }
      const parsed = DatabaseSecret.safeParse(json);
      if (!parsed.success) {
        throw new ExecutorConfigError(
          `secret ${config.db.secretArn}: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
        );
      }
      cached = { secret: parsed.data, at: Date.now() };
      return parsed.data;
    } finally {
      client.destroy();
    }
  }

  async function withDatabase<T>(database: string, fn: (client: Queryable) => Promise<T>): Promise<T> {
    const s = await secret();
    const host = config.db.host ?? s.host;
    if (!host) throw new ExecutorConfigError("no database host: set EXECUTOR_DB_HOST or the secret's host");
    const client = new pg.Client({
      host,
      port: config.db.port ?? s.port ?? 5432,
      user: s.username,
      password: s.password,
      database,
      ssl: sslOptions(config.db.tls, s.ca),
      application_name: "alphapulse-executor",
      connectionTimeoutMillis: 10_000,
    });
    client.on("error", () => {});
    try {
      await client.connect();
    } catch (err) {
      // A rotated password: read the secret again on the next invocation.
      if ((err as { code?: string }).code === "28P01") cached = undefined;
      throw err;
    }
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => {});
    }
  }

  /**
   * withDatabase, waiting up to `readyTimeoutMs` while the server is not ready for the executor: the
   * first `pulumi up` of a region reaches the primary while cloud-init still bootstraps it. Only
   * connecting is retried; once `fn` runs, its errors are its own.
   */
  async function withReadyDatabase<T>(database: string, fn: (client: Queryable) => Promise<T>): Promise<T> {
    const deadline = Date.now() + (config.db.readyTimeoutMs ?? 0);
    for (;;) {
      let connected = false;
      try {
        return await withDatabase(database, (client) => {
          connected = true;
          return fn(client);
        });
      } catch (err) {
        if (connected || !serverNotReady(err)) throw err;
        if (Date.now() >= deadline) {
          if (!config.db.readyTimeoutMs) throw err;
          const e = err as Error & { code?: string };
          throw Object.assign(
            new Error(
              `the database server did not accept the executor within ${Math.round(config.db.readyTimeoutMs / 1000)} s (last: ${e.code ? `${e.code} ` : ""}${e.message}): ` +
                "is the node's bootstrap finished? (`cloud-init status --wait` through SSM, docs/aws.md); run `pulumi up` again when it is",
            ),
            { code: e.code },
          );
        }
        log({ database, outcome: "waiting for the server", reason: (err as { code?: string }).code ?? (err as Error).message });
        await new Promise((resolve) => setTimeout(resolve, Math.min(config.db.readyPollMs ?? 5000, Math.max(0, deadline - Date.now()))));
      }
    }
  }

  return async (event: unknown): Promise<unknown> => {
    const started = Date.now();
    let request: ExecutorRequest | undefined;
    try {
      request = parseExecutorEvent(event);
      if (request.kind === "skip") {
        log({ action: request.action, outcome: "skipped", ms: Date.now() - started });
        return { skipped: true, reason: request.reason };
      }
      const { operation, database, args } = request;
      const result = await withReadyDatabase(database, (client) =>
        runOperation(operation, client, args, { database, withDatabase, exportSink }),
      );
      log({ operation, database, action: request.action, outcome: "ok", ms: Date.now() - started });
      return result;
    } catch (err) {
      const reported = reportedError(err);
      log({
        operation: request?.kind === "run" ? request.operation : undefined,
        database: request?.kind === "run" ? request.database : undefined,
        outcome: "error",
        errorType: reported.name,
        ms: Date.now() - started,
      });
      throw reported;
    }
  };
}

function log(line: Record<string, unknown>): void {
  if (process.env.EXECUTOR_QUIET === "1") return;
  console.log(JSON.stringify({ executor: "alphapulse", ...line }));
}

let fromEnv: ExecutorHandler | undefined;

/** The Lambda entry point (`index.handler` in the bundle built by scripts/build-executor.ts). */
export const handler: ExecutorHandler = (event, context) => {
  fromEnv ??= createHandler(handlerConfigFromEnv(process.env));
  return fromEnv(event, context);
};
