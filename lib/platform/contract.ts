/**
 * The platform contract: what a regional platform stack exports, and all that its readers may rely
 * on. One zod schema serves both sides:
 *
 *   producers  components/local/local-platform.ts (`localPlatformOutputs`) and components/aws/index.ts
 *              (`awsPlatformOutputs`) export exactly this, each output checked against the schema
 *              when the stack is updated (a producer bug fails the update, not a later reader);
 *   consumers  the tenant program (components/tenant/program.ts, through its StackReference), the
 *              tenant CLI, the rollout and the offboarding (lib/tenant-stacks, lib/rollout) and
 *              `npm run local` read it only through `parsePlatformContract`.
 *
 * A reader that finds an output missing or of the wrong type gets a PlatformContractError naming the
 * output and the stack (`platform stack local-eu: output \`database.oid\` is missing (expected a
 * number)`); the CLIs print it and exit 2, nothing changed.
 *
 * Both kinds share `kind`, `stack`, `region`, `database` (name, oid, how to reach it, the tenants the
 * platform declares itself), `schema`, `pgbouncer` and `redis`; each adds what only it has. Nothing
 * in it names a file of the deployer's machine: the local Redis admin password is a secret output
 * (SECRET_OUTPUTS), on AWS every credential — and the tenant-context keys — stays in Secrets Manager
 * and only its ARN is an output.
 */
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import type { DatabaseConnection } from "../../components/db/provider-runtime";
import { REDACTED } from "../synth/format";
import { PlatformContractError } from "./contract-error";
import { ResidencyRegion, TenantId, TenantSlug } from "../tenant/model";

const Text = z.string().min(1);
const Port = z.number().int().min(1).max(65535);
const Arn = z.string().regex(/^arn:aws[a-z-]*:/, { message: "must be an ARN (arn:aws:…)" });

/** Zod mirror of components/db/provider-runtime.ts DirectConnection. */
export const DirectConnectionSchema = z.object({ kind: z.literal("direct").optional(), host: Text, port: Port, user: Text });
/** Zod mirror of components/db/provider-runtime.ts ExecutorConnection. */
export const ExecutorConnectionSchema = z.object({
  kind: z.literal("executor"),
  functionName: Text,
  region: Text,
  endpoint: z.url().optional(),
  server: Text,
});
/** Zod mirror of components/db/provider-runtime.ts DatabaseConnection. */
export const DatabaseConnectionSchema = z.discriminatedUnion("kind", [ExecutorConnectionSchema, DirectConnectionSchema]);

/** True when A and B are the same type (a mismatch fails `tsc`, below). */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** The zod mirror and the TypeScript type cannot drift apart: this line stops compiling. */
export const CONNECTION_SCHEMA_MIRRORS_TYPE: Same<z.infer<typeof DatabaseConnectionSchema>, DatabaseConnection> = true;

/** The regional database: what the tenant resources are declared against. */
const Database = z.object({
  name: Text,
  /** components/db Database `oid`: tenants follow (and refuse) a recreated database. */
  oid: z.number().int().positive(),
  connection: DatabaseConnectionSchema,
  /** Tenants the platform stack declares itself (its stack config): id by slug. */
  tenantIds: z.record(TenantSlug, TenantId),
});

/** The design applied to it (components/db DatabaseSchema). */
const Schema = z.object({
  fingerprint: Text,
  migrations: z.array(Text),
  /** Role names by purpose (app, migrator, readonly, …). */
  roles: z.record(Text, Text),
});

const common = {
  stack: Text,
  region: ResidencyRegion,
  database: Database,
  schema: Schema,
};

export const LocalPlatformContract = z.object({
  kind: z.literal("local"),
  ...common,
  pgbouncer: z.object({ host: Text, port: Port }),
  redis: z.object({
    host: Text,
    port: Port,
    tls: z.literal(false),
    adminUser: Text,
    /** Secret output. */
    adminPassword: Text,
  }),
  /** The app role's URL, password included (secret output). */
  appUrl: z.url(),
  /** The migrator role's URL, password included (secret output). */
  migratorUrl: z.url(),
  /** The tenant-context key the region's services sign proofs with (ADR-005; secret output). */
  // A platform stack without keys exports null here (an output resolved to undefined): read as absent.
  contextKey: z.preprocess(
    (key) => key ?? undefined,
    z.object({ kid: Text, region: ResidencyRegion, secret: z.string().regex(/^[0-9a-f]{64,128}$/) }).optional(),
  ),
});
export type LocalPlatformContract = z.infer<typeof LocalPlatformContract>;

export const AwsPlatformContract = z.object({
  kind: z.literal("aws"),
  ...common,
  pgbouncer: z.object({ host: Text, port: Port, authFileSecretArn: Arn, cluster: Text, service: Text }),
  redis: z.object({
    host: Text,
    readerHost: Text,
    port: Port,
    tls: z.literal(true),
    adminUser: Text,
    /** The admin password lives in Secrets Manager only. */
    adminSecretArn: Arn,
    /** The ElastiCache user group tenant stacks add their Redis users to. */
    userGroupId: Text,
    /** Secrets Manager name prefix of the tenants' Redis credentials. */
    tenantSecretPrefix: Text,
  }),
  /** The PostgreSQL nodes (SSM sessions, backups, logs). */
  postgres: z.object({
    primaryHost: Text,
    replicaHost: Text,
    port: Port,
    primaryInstanceId: Text,
    replicaInstanceId: Text,
    adminSecretArn: Arn,
    /** The executor's own login (Secrets Manager). */
    executorSecretArn: Arn,
    backupBucket: Text,
    logGroupName: Text,
  }),
  /**
   * The region's tenant-context keys (ADR-005), as Secrets Manager ARNs, never values: each secret
   * holds `{"kid","region","secret"}` (lib/tenant-context/proof.ts ContextKey). Services sign with
   * `current`; every key in `keys` verifies (a rotation keeps two). The application's task role
   * attaches `readPolicyArn` (GetSecretValue on exactly these secrets); the executor's role does not.
   */
  contextKeys: z.object({
    current: z.object({ kid: Text, secretArn: Arn }),
    keys: z.array(z.object({ kid: Text, secretArn: Arn })).min(1),
    readPolicyArn: Arn,
  }),
  /** The database executor (components/aws/executor.ts): `database.connection` calls it. */
  executor: z.object({
    functionName: Text,
    functionArn: Arn,
    roleArn: Arn,
    securityGroupId: Text,
    /** Attach to the deployer (CI) role: `lambda:InvokeFunction` on this function only. */
    invokePolicyArn: Arn,
    logGroupName: Text,
  }),
  aws: z.object({
    region: Text,
    /** The account the stack's provider is pinned to (tenant stacks pin theirs to it). */
    accountId: z.string().regex(/^\d{12}$/, { message: "must be a 12-digit AWS account id" }),
    /** The `alphapulse:cost-centre` tag value (tenant stacks tag with it). */
    costCentre: Text,
    vpcId: Text,
    appSecurityGroupId: Text,
    privateSubnetIds: z.array(Text).min(1),
    kmsKeyArn: Arn,
    alarmTopicArn: Arn,
    tenantDashboard: Text,
    tenantMetricNamespace: Text,
  }),
});
export type AwsPlatformContract = z.infer<typeof AwsPlatformContract>;

export const PLATFORM_KINDS = ["local", "aws"] as const;
export type PlatformKind = (typeof PLATFORM_KINDS)[number];

/** The contract, by its `kind`. */
export const platformContract = z.discriminatedUnion("kind", [LocalPlatformContract, AwsPlatformContract]);
export type PlatformContract = z.infer<typeof platformContract>;

const SCHEMA_BY_KIND = { local: LocalPlatformContract, aws: AwsPlatformContract } as const;

/** Every top-level output name of either kind: what a StackReference reader asks for. */
export const PLATFORM_OUTPUT_NAMES: readonly string[] = [
  ...new Set([...Object.keys(LocalPlatformContract.shape), ...Object.keys(AwsPlatformContract.shape)]),
];

/** Output paths whose values are secret: the producers export them as secrets, `redactSecrets` hides them. */
export const SECRET_OUTPUTS = ["redis.adminPassword", "appUrl", "migratorUrl", "contextKey"] as const;

export { PlatformContractError };

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  return path.reduce<unknown>(
    (v, key) => (v !== null && typeof v === "object" ? (v as Record<PropertyKey, unknown>)[key] : undefined),
    value,
  );
}

function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/** What an issue expected, for humans: `a number`, `"eu"`, `one of "eu", "us"`. */
function expectedOf(issue: z.core.$ZodIssue): string | undefined {
  const oneOf = (values: readonly unknown[]) =>
    values.length === 1 ? JSON.stringify(values[0]) : `one of ${values.map((v) => JSON.stringify(v)).join(", ")}`;
  if (issue.code === "invalid_type") return withArticle(issue.expected);
  if (issue.code === "invalid_value") return oneOf(issue.values);
  if (issue.code === "invalid_union" && "options" in issue)
    return oneOf((issue.options as unknown[]).filter((o) => o !== undefined && o !== null));
  return undefined;
}

/** The first issue of a failed parse of `value`: the output's dotted name (under `prefix`) and what is wrong. */
function describeIssue(error: z.ZodError, value: unknown, prefix: readonly PropertyKey[] = []): { output: string; text: string } {
  const issue = error.issues[0];
  const output = [...prefix, ...issue.path].map(String).join(".");
  const actual = valueAt(value, issue.path);
  const expected = expectedOf(issue);
  let text: string;
  if (actual === undefined) text = `is missing${expected ? ` (expected ${expected})` : ""}`;
  else if (issue.code === "invalid_type") text = `has the wrong type: expected ${expected}, found ${describeType(actual)}`;
  else if (expected) text = `is ${JSON.stringify(actual)} (expected ${expected})`;
  else text = `is invalid: ${issue.message}${typeof actual !== "object" ? ` (found ${JSON.stringify(actual)})` : ""}`;
  return { output, text };
}

function withArticle(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

/**
 * Validates a platform stack's outputs (plain values, secrets included) against the contract.
 * Throws a PlatformContractError naming `stack` and the first output at fault. Outputs outside the
 * contract are dropped.
 */
export function parsePlatformContract(outputs: Record<string, unknown>, stack: string): PlatformContract {
  if (Object.keys(outputs).length === 0) {
    throw new PlatformContractError(
      `platform stack ${stack} has no outputs: it has not been deployed yet (run \`npm run pulumi -- up --stack ${stack}\`)`,
      stack,
      undefined,
    );
  }
  const fail = (output: string, text: string): never => {
    throw new PlatformContractError(`platform stack ${stack}: output \`${output}\` ${text}`, stack, output);
  };
  const kind = outputs.kind;
  if (kind === undefined) fail("kind", `is missing (expected one of ${PLATFORM_KINDS.join(", ")})`);
  if (!PLATFORM_KINDS.includes(kind as PlatformKind))
    fail("kind", `is ${JSON.stringify(kind)} (expected one of ${PLATFORM_KINDS.join(", ")})`);
  const parsed = SCHEMA_BY_KIND[kind as PlatformKind].safeParse(outputs);
  if (!parsed.success) {
    const { output, text } = describeIssue(parsed.error, outputs);
    fail(output, text);
  }
  const contract = parsed.data as PlatformContract;
  if (contract.stack !== stack) fail("stack", `is ${JSON.stringify(contract.stack)}: these are the outputs of another stack than ${stack}`);
  return contract;
}

/** A copy of `outputs` with every SECRET_OUTPUTS value present replaced by "[secret]" (for printing). */
export function redactSecrets<T>(outputs: T): T {
  const copy = structuredClone(outputs) as unknown;
  for (const path of SECRET_OUTPUTS) {
    const keys = path.split(".");
    const parent = valueAt(copy, keys.slice(0, -1));
    const last = keys[keys.length - 1];
    if (parent !== null && typeof parent === "object" && (parent as Record<string, unknown>)[last] !== undefined)
      (parent as Record<string, unknown>)[last] = REDACTED;
  }
  return copy as T;
}

// ---- producers ----------------------------------------------------------------------------------

/** `T` with every value, at any depth, allowed to be a pulumi Input. */
export type DeepInput<T> = pulumi.Input<T extends object ? { [K in keyof T]: DeepInput<T[K]> } : T>;

/** The stack outputs of a contract: one Output per top-level field. */
export type ContractOutputs<C> = { [K in keyof C]: pulumi.Output<C[K]> };

/**
 * One output of a `kind` stack, checked as its producer exports it: returns `value`, or throws the
 * PlatformContractError a reader would get (so a producer bug fails `pulumi up`, naming the output).
 */
export function checkPlatformOutput(kind: PlatformKind, stack: string, key: string, value: unknown): unknown {
  const field = (SCHEMA_BY_KIND[kind].shape as Record<string, z.ZodType>)[key];
  if (!field) throw new PlatformContractError(`platform stack ${stack}: output \`${key}\` is not part of the ${kind} contract`, stack, key);
  const parsed = field.safeParse(value);
  if (parsed.success) return value;
  const { output, text } = describeIssue(parsed.error, value, [key]);
  throw new PlatformContractError(`platform stack ${stack}: output \`${output}\` ${text}`, stack, output);
}

function schemaHasPath(schema: z.ZodType, path: readonly string[]): boolean {
  if (path.length === 0) return true;
  const shape = (schema as { shape?: Record<string, z.ZodType> }).shape;
  return shape !== undefined && path[0] in shape && schemaHasPath(shape[path[0]], path.slice(1));
}

function produce<C extends PlatformContract>(
  kind: C["kind"],
  stack: string,
  values: DeepInput<Omit<C, "kind" | "stack">>,
): ContractOutputs<C> {
  const schema = SCHEMA_BY_KIND[kind];
  const all: Record<string, unknown> = { ...(values as Record<string, unknown>), kind, stack };
  const outputs: Record<string, pulumi.Output<unknown>> = {};
  for (const key of Object.keys(schema.shape)) {
    // A secret nested in an output makes the whole output secret (Pulumi tracks secrecy per Output).
    const secret = SECRET_OUTPUTS.some((p) => p.split(".")[0] === key && schemaHasPath(schema, p.split(".")));
    const checked = (pulumi.output(all[key]) as pulumi.Output<unknown>).apply((value) => checkPlatformOutput(kind, stack, key, value));
    outputs[key] = secret ? pulumi.secret(checked) : checked;
  }
  return outputs as ContractOutputs<C>;
}

/** The outputs of a local platform stack (components/local/local-platform.ts), checked and with SECRET_OUTPUTS secret. */
export function localPlatformOutputs(stack: string, values: DeepInput<Omit<LocalPlatformContract, "kind" | "stack">>) {
  return produce<LocalPlatformContract>("local", stack, values);
}

/** The outputs of a regional AWS platform stack (components/aws/index.ts), checked. */
export function awsPlatformOutputs(stack: string, values: DeepInput<Omit<AwsPlatformContract, "kind" | "stack">>) {
  return produce<AwsPlatformContract>("aws", stack, values);
}
