/**
 * `alphapulse:aws:DatabaseExecutor` — the one thing that talks to PostgreSQL for `pulumi up` on AWS
 * (ADR-004): a Lambda function in the private subnets running the repository's data layer
 * (lib/executor/handler.ts, bundled by `npm run build:executor` into `.build/executor/index.js`).
 * The dynamic providers of components/db call it through an ExecutorConnection
 * (`{kind: "executor", functionName, region, server}`); the deployer needs no network path into
 * the VPC, only `lambda:InvokeFunction` on this function.
 *
 * - Network: its own security group (an identity from Network), egress 5432 to the PostgreSQL
 *   group and 443 to the interface endpoints (Secrets Manager, KMS) and, with `exportBucket`, to the
 *   S3 gateway endpoint, nothing else; no public path
 *   (the VPC has none). The PostgreSQL group admits 5432 from this group (PostgresCluster
 *   `executor`), and pg_hba admits the executor's role from these subnets only.
 * - Credentials: it connects as `alphapulse_executor` (CREATEDB CREATEROLE, not a superuser;
 *   lib/platform/database-bootstrap.ts) with the password from its Secrets Manager secret, read at
 *   run time: the password is never in the environment, the code or the state of this component.
 * - Encryption: the environment and the log group under the region's KMS key.
 * - IAM: the function's role reads exactly its database secret (and, only when
 *   `pgbouncerAuthFileSecretArn` is given, writes exactly that secret), writes and reads exactly the
 *   `tenant-exports/` prefix of the backup bucket (only with `exportBucket`: offboarding exports,
 *   lib/tenant/s3-export-sink.ts), uses exactly the region key, manages its ENIs and writes its own log group. The deployer's side is a managed policy
 *   (`invokePolicyArn`) allowing `lambda:InvokeFunction` on this function only: attach it to the CI
 *   role (docs/aws.md).
 * - Artifact: `.build/executor/index.js`. When it is missing (a fresh checkout, `npm run synth`
 *   offline) the function gets PLACEHOLDER_HANDLER, which fails every call with a message saying to
 *   build the bundle, and a warning is logged: synthesis works offline, a deploy never runs stale
 *   or absent code silently.
 *
 * Builders below the class are pure (plain values in and out) and tested in
 * test/aws/executor-builders.test.ts; the constructor declares.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { existsSync } from "node:fs";
import path from "node:path";
import { TENANT_EXPORT_PREFIX } from "../../lib/tenant/export-sink";
import { tcpRule, type TcpRuleArgs } from "./tcp-rule";

/** Where `npm run build:executor` writes the handler bundle, relative to the repository root. */
export const EXECUTOR_BUNDLE = ".build/executor/index.js";
/** The Lambda runtime (the repository's Node.js line). */
export const EXECUTOR_RUNTIME = "nodejs20.x";
export const EXECUTOR_HANDLER = "index.handler";

/**
 * What runs when the bundle was not built: every call fails with this message (and the Pulumi
 * operation with it), so a missing build can never look like a successful no-op.
 */
export const PLACEHOLDER_HANDLER = `exports.handler = async () => {
  throw new Error("alphapulse database executor: placeholder artifact (${EXECUTOR_BUNDLE} was missing when the stack was deployed); run npm run build:executor and pulumi up again");
};
`;

/** The environment the handler reads (lib/executor/handler.ts). No secret: the password is read from EXECUTOR_DB_SECRET_ARN. */
export const EXECUTOR_ENV = {
  secretArn: "EXECUTOR_DB_SECRET_ARN",
  host: "EXECUTOR_DB_HOST",
  port: "EXECUTOR_DB_PORT",
  tls: "EXECUTOR_DB_TLS",
  server: "EXECUTOR_SERVER",
  authFileSecretArn: "EXECUTOR_PGBOUNCER_AUTH_FILE_SECRET_ARN",
  exportBucket: "EXECUTOR_EXPORT_BUCKET",
  exportKmsKeyArn: "EXECUTOR_EXPORT_KMS_KEY_ARN",
} as const;

export interface DatabaseExecutorArgs {
  /** AWS region (plain: the connection and the ENI policy name it). */
  region: string;
  /** Lambda function name, e.g. `eu-prod-db-executor`. Caution: changing it replaces the function. */
  functionName: string;
  /** Stable identity of the PostgreSQL server, e.g. `eu-prod/postgres` (what the providers compare; never change it). */
  server: string;
  /** Private subnets the function's ENIs go in (the VPC has no public subnet). */
  subnetIds: pulumi.Input<string>[];
  /** The executor's security group (Network `executorSecurityGroupId`); this component adds its egress rules. */
  securityGroupId: pulumi.Input<string>;
  /** PostgreSQL's security group (egress 5432 to it). */
  databaseSecurityGroupId: pulumi.Input<string>;
  /** The interface endpoints' security group (egress 443: Secrets Manager, KMS). */
  endpointSecurityGroupId: pulumi.Input<string>;
  /** Where the executor connects: the primary's DNS name, the port, the secret `{"username","password"}` of its role. */
  database: { host: string; port: number; secretArn: pulumi.Input<string> };
  /** PgBouncer's auth-file secret: the executor writes the SCRAM verifiers into it as a new version. @default none */
  pgbouncerAuthFileSecretArn?: pulumi.Input<string>;
  /** Region KMS key (ARN): environment, log group, the secrets it reads and writes, the exports it keeps. */
  kmsKeyArn: pulumi.Input<string>;
  /**
   * The region's backup bucket (PostgresCluster `backupBucketName`): `offboardTenant` keeps tenant
   * exports under `tenant-exports/` in it, SSE-KMS under `kmsKeyArn` (lib/tenant/s3-export-sink.ts).
   * The role gets exactly s3:PutObject and s3:GetObject on that prefix and kms:GenerateDataKey and
   * kms:Decrypt on the key; the security group egress 443 to the S3 gateway endpoint's prefix list.
   * @default none: the executor keeps no exports (offboardTenant refuses unless the export is skipped)
   */
  exportBucket?: { name: pulumi.Input<string>; s3PrefixListId: pulumi.Input<string> };
  /** Seconds per invocation; 900 is Lambda's limit (long operations run with `npm run ops`, docs/aws.md). @default 900 */
  timeoutSeconds?: number;
  /** @default 1024 */
  memoryMiB?: number;
  /** @default 90 */
  logRetentionDays?: number;
  /** The bundle to deploy. @default `<repo>/.build/executor/index.js` (PLACEHOLDER_HANDLER when missing) */
  bundlePath?: string;
}

/** The connection the components/db providers use to reach the database through this executor. */
export interface ExecutorConnectionValue {
  kind: "executor";
  functionName: string;
  region: string;
  server: string;
}

export class DatabaseExecutor extends pulumi.ComponentResource {
  readonly functionName: pulumi.Output<string>;
  readonly functionArn: pulumi.Output<string>;
  readonly securityGroupId: pulumi.Output<string>;
  readonly roleArn: pulumi.Output<string>;
  readonly logGroupName: pulumi.Output<string>;
  /** Managed policy allowing `lambda:InvokeFunction` on this function only: attach it to the deployer (CI) role. */
  readonly invokePolicyArn: pulumi.Output<string>;
  /** The ExecutorConnection; its functionName comes from the function, so every provider call waits for it. */
  readonly connection: pulumi.Output<ExecutorConnectionValue>;
  /** True when the bundle was missing and the placeholder was deployed. */
  readonly placeholder: boolean;

  constructor(name: string, args: DatabaseExecutorArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("alphapulse:aws:DatabaseExecutor", name, {}, opts);
    validateDatabaseExecutorArgs(name, args);
    const parent = { parent: this };
    const bundle = args.bundlePath ?? path.join(path.resolve(__dirname, "..", ".."), EXECUTOR_BUNDLE);
    const code = executorCode(bundle);
    if (code.placeholder)
      void pulumi.log.warn(
        `DatabaseExecutor ${name}: ${bundle} is missing; deploying PLACEHOLDER_HANDLER (run npm run build:executor)`,
        this,
      );

    for (const rule of executorSecurityGroupRules(name, args)) tcpRule(rule.name, rule.args, parent);

    const logGroup = new aws.cloudwatch.LogGroup(
      `${name}-logs`,
      { name: `/aws/lambda/${args.functionName}`, retentionInDays: args.logRetentionDays ?? 90, kmsKeyId: args.kmsKeyArn },
      parent,
    );
    const role = new aws.iam.Role(`${name}-role`, { assumeRolePolicy: JSON.stringify(EXECUTOR_ASSUME_ROLE_POLICY) }, parent);
    const rolePolicy = new aws.iam.RolePolicy(
      `${name}-role`,
      {
        role: role.id,
        policy: pulumi.jsonStringify(
          executorRolePolicy({
            logGroupArn: logGroup.arn,
            databaseSecretArn: args.database.secretArn,
            authFileSecretArn: args.pgbouncerAuthFileSecretArn,
            kmsKeyArn: args.kmsKeyArn,
            exportObjectsArn: args.exportBucket && pulumi.output(args.exportBucket.name).apply(tenantExportObjectsArn),
          }),
        ),
      },
      parent,
    );

    const fn = new aws.lambda.Function(
      `${name}-function`,
      {
        name: args.functionName,
        role: role.arn,
        runtime: EXECUTOR_RUNTIME,
        handler: EXECUTOR_HANDLER,
        code: code.archive,
        timeout: args.timeoutSeconds ?? 900,
        memorySize: args.memoryMiB ?? 1024,
        vpcConfig: { subnetIds: args.subnetIds, securityGroupIds: [args.securityGroupId] },
        kmsKeyArn: args.kmsKeyArn,
        environment: { variables: executorEnvironment(args) },
        loggingConfig: { logFormat: "JSON", logGroup: logGroup.name },
        description: `AlphaPulse database executor of ${args.server} (runs the data layer inside the VPC)`,
      },
      // The role must be able to create the ENIs and write logs before the function exists.
      { parent: this, dependsOn: [rolePolicy, logGroup] },
    );

    const invokePolicy = new aws.iam.Policy(
      `${name}-invoke`,
      {
        description: `Invoke exactly the database executor ${args.functionName} (attach to the deployer role)`,
        policy: pulumi.jsonStringify(deployerInvokePolicy(fn.arn)),
      },
      parent,
    );

    this.functionName = fn.name;
    this.functionArn = fn.arn;
    this.securityGroupId = pulumi.output(args.securityGroupId);
    this.roleArn = role.arn;
    this.logGroupName = logGroup.name;
    this.invokePolicyArn = invokePolicy.arn;
    this.placeholder = code.placeholder;
    this.connection = fn.name.apply((functionName) => executorConnection({ functionName, region: args.region, server: args.server }));
    this.registerOutputs({
      functionName: this.functionName,
      functionArn: this.functionArn,
      securityGroupId: this.securityGroupId,
      roleArn: this.roleArn,
      invokePolicyArn: this.invokePolicyArn,
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Builders: pure, module-level, plain values in and out (Inputs pass through untouched).
// ---------------------------------------------------------------------------------------------

const FUNCTION_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** The checks that need no resource. Throws naming the field. */
export function validateDatabaseExecutorArgs(
  name: string,
  args: Pick<DatabaseExecutorArgs, "functionName" | "server" | "subnetIds" | "database" | "timeoutSeconds" | "memoryMiB">,
): void {
  if (!FUNCTION_NAME.test(args.functionName))
    throw new Error(`DatabaseExecutor ${name}: functionName "${args.functionName}" must be 1-64 letters, digits, - or _`);
  if (args.server.trim() === "") throw new Error(`DatabaseExecutor ${name}: server must name the PostgreSQL server`);
  if (args.subnetIds.length < 2)
    throw new Error(`DatabaseExecutor ${name}: subnetIds needs at least two private subnets, got ${args.subnetIds.length}`);
  if (!Number.isInteger(args.database.port) || args.database.port < 1 || args.database.port > 65535)
    throw new Error(`DatabaseExecutor ${name}: database.port must be a TCP port, got ${args.database.port}`);
  const timeout = args.timeoutSeconds ?? 900;
  if (!Number.isInteger(timeout) || timeout < 30 || timeout > 900)
    throw new Error(`DatabaseExecutor ${name}: timeoutSeconds must be an integer from 30 to 900 (Lambda's limit), got ${timeout}`);
  const memory = args.memoryMiB ?? 1024;
  if (!Number.isInteger(memory) || memory < 256 || memory > 10240)
    throw new Error(`DatabaseExecutor ${name}: memoryMiB must be an integer from 256 to 10240, got ${memory}`);
}

/** The function's code: the bundle when it exists, else the placeholder (and say so). */
export function executorCode(bundlePath: string): { archive: pulumi.asset.AssetArchive; placeholder: boolean } {
  if (existsSync(bundlePath)) {
    return { archive: new pulumi.asset.AssetArchive({ "index.js": new pulumi.asset.FileAsset(bundlePath) }), placeholder: false };
  }
  return { archive: new pulumi.asset.AssetArchive({ "index.js": new pulumi.asset.StringAsset(PLACEHOLDER_HANDLER) }), placeholder: true };
}

export function executorConnection(o: { functionName: string; region: string; server: string }): ExecutorConnectionValue {
  return { kind: "executor", functionName: o.functionName, region: o.region, server: o.server };
}

/** The objects the executor may write and read in the backup bucket: `arn:aws:s3:::<bucket>/tenant-exports/*`. */
export function tenantExportObjectsArn(bucket: string): string {
  return `arn:aws:s3:::${bucket}/${TENANT_EXPORT_PREFIX}/*`;
}

/** The handler's environment: where the database is, which secrets, where exports go; never a password. */
export function executorEnvironment(
  args: Pick<DatabaseExecutorArgs, "database" | "server" | "pgbouncerAuthFileSecretArn" | "exportBucket" | "kmsKeyArn">,
): Record<string, pulumi.Input<string>> {
  return {
    [EXECUTOR_ENV.secretArn]: args.database.secretArn,
    [EXECUTOR_ENV.host]: args.database.host,
    [EXECUTOR_ENV.port]: String(args.database.port),
    // The nodes' certificate is the image's own (no public CA): encrypted, not verified; SCRAM
    // authenticates both ends (channel binding is the next step, docs/aws.md).
    [EXECUTOR_ENV.tls]: "require",
    [EXECUTOR_ENV.server]: args.server,
    ...(args.pgbouncerAuthFileSecretArn !== undefined ? { [EXECUTOR_ENV.authFileSecretArn]: args.pgbouncerAuthFileSecretArn } : {}),
    ...(args.exportBucket !== undefined
      ? { [EXECUTOR_ENV.exportBucket]: args.exportBucket.name, [EXECUTOR_ENV.exportKmsKeyArn]: args.kmsKeyArn }
      : {}),
  };
}

/**
 * Egress only: 5432 to PostgreSQL, 443 to the interface endpoints and (with an export bucket) to the
 * S3 gateway endpoint. Nothing comes in (Lambda needs no ingress).
 */
export function executorSecurityGroupRules(
  name: string,
  o: Pick<DatabaseExecutorArgs, "securityGroupId" | "databaseSecurityGroupId" | "endpointSecurityGroupId" | "exportBucket">,
): { name: string; args: TcpRuleArgs }[] {
  return [
    {
      name: `${name}-to-postgres`,
      args: {
        direction: "egress",
        securityGroupId: o.securityGroupId,
        peer: { referencedSecurityGroupId: o.databaseSecurityGroupId },
        port: 5432,
        description: "PostgreSQL (TLS + SCRAM as the executor's role)",
      },
    },
    {
      name: `${name}-to-endpoints`,
      args: {
        direction: "egress",
        securityGroupId: o.securityGroupId,
        peer: { referencedSecurityGroupId: o.endpointSecurityGroupId },
        port: 443,
        description: "Secrets Manager and KMS endpoints",
      },
    },
    ...(o.exportBucket !== undefined
      ? [
          {
            name: `${name}-to-s3`,
            args: {
              direction: "egress" as const,
              securityGroupId: o.securityGroupId,
              peer: { prefixListId: o.exportBucket.s3PrefixListId },
              port: 443,
              description: "S3 gateway endpoint (tenant exports in the backup bucket)",
            },
          },
        ]
      : []),
  ];
}

export const EXECUTOR_ASSUME_ROLE_POLICY = {
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" }],
} as const;

/**
 * The function role's policy. `T` is a string in tests, an Output in the component.
 * ENI actions: Lambda creates and deletes the function's network interfaces with the role; EC2
 * does not scope these to a resource, so `*` (what AWSLambdaVPCAccessExecutionRole grants, without
 * its `logs:*` on every group).
 */
export function executorRolePolicy<T>(o: {
  logGroupArn: T;
  databaseSecretArn: T;
  authFileSecretArn?: T;
  kmsKeyArn: T;
  /** `tenantExportObjectsArn(bucket)`: write and read the offboarding exports, nothing else of the bucket. */
  exportObjectsArn?: T;
}) {
  // Writing a secret version or an SSE-KMS object needs a data key; reading either needs Decrypt.
  const writesUnderKey = o.authFileSecretArn !== undefined || o.exportObjectsArn !== undefined;
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "VpcNetworkInterfaces",
        Effect: "Allow",
        Action: [
          "ec2:CreateNetworkInterface",
          "ec2:DescribeNetworkInterfaces",
          "ec2:DescribeSubnets",
          "ec2:DeleteNetworkInterface",
          "ec2:AssignPrivateIpAddresses",
          "ec2:UnassignPrivateIpAddresses",
        ],
        Resource: "*",
      },
      { Sid: "OwnLogGroup", Effect: "Allow", Action: ["logs:CreateLogStream", "logs:PutLogEvents"], Resource: [o.logGroupArn] },
      { Sid: "DatabaseCredential", Effect: "Allow", Action: "secretsmanager:GetSecretValue", Resource: [o.databaseSecretArn] },
      ...(o.authFileSecretArn !== undefined
        ? [{ Sid: "PgbouncerAuthFile", Effect: "Allow", Action: "secretsmanager:PutSecretValue", Resource: [o.authFileSecretArn] }]
        : []),
      ...(o.exportObjectsArn !== undefined
        ? [{ Sid: "TenantExports", Effect: "Allow", Action: ["s3:PutObject", "s3:GetObject"], Resource: [o.exportObjectsArn] }]
        : []),
      {
        Sid: "RegionKey",
        Effect: "Allow",
        Action: writesUnderKey ? ["kms:Decrypt", "kms:GenerateDataKey"] : ["kms:Decrypt"],
        Resource: o.kmsKeyArn,
      },
    ],
  };
}

/** What the deployer (CI role, operator) needs to run the data layer: invoke exactly this function. */
export function deployerInvokePolicy<T>(functionArn: T) {
  return {
    Version: "2012-10-17",
    Statement: [{ Sid: "InvokeDatabaseExecutor", Effect: "Allow", Action: "lambda:InvokeFunction", Resource: [functionArn] }],
  };
}
