/**
 * DatabaseExecutor: the pure builders (exact values) and the component under Pulumi's mocks (exact
 * types, names and inputs). The handler itself is tested against a real PostgreSQL in test/executor.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DatabaseExecutor,
  deployerInvokePolicy,
  EXECUTOR_ENV,
  executorCode,
  executorEnvironment,
  executorRolePolicy,
  executorSecurityGroupRules,
  PLACEHOLDER_HANDLER,
  tenantExportObjectsArn,
  validateDatabaseExecutorArgs,
  type DatabaseExecutorArgs,
} from "../../components/aws/executor";
import { record, T, type Recorded } from "./harness";

const KEY = "arn:aws:kms:eu-central-1:111111111111:key/k";
const DB_SECRET = "arn:aws:secretsmanager:eu-central-1:111111111111:secret:alphapulse/test/postgres/alphapulse_executor-AbCdEf";
const AUTH_SECRET = "arn:aws:secretsmanager:eu-central-1:111111111111:secret:alphapulse/test/pgbouncer/auth-file-GhIjKl";
const BACKUP_BUCKET = "alphapulse-test-pgbackrest-111111111111";
const dir = mkdtempSync(path.join(os.tmpdir(), "executor-test-"));
const bundle = path.join(dir, "index.js");
writeFileSync(bundle, "exports.handler = async () => ({ ok: true });\n");

const args: DatabaseExecutorArgs = {
  region: "eu-central-1",
  functionName: "test-db-executor",
  server: "test/postgres",
  subnetIds: ["subnet-a", "subnet-b"],
  securityGroupId: "sg-executor",
  databaseSecurityGroupId: "sg-postgres",
  endpointSecurityGroupId: "sg-endpoints",
  database: { host: "pg-primary.test.alphapulse.internal", port: 5432, secretArn: DB_SECRET },
  pgbouncerAuthFileSecretArn: AUTH_SECRET,
  kmsKeyArn: KEY,
  exportBucket: { name: BACKUP_BUCKET, s3PrefixListId: "pl-s3" },
  bundlePath: bundle,
};
const EXPORT_OBJECTS = `arn:aws:s3:::${BACKUP_BUCKET}/tenant-exports/*`;

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("builders", () => {
  it("egress only: 5432 to PostgreSQL, 443 to the endpoints and to S3 (exports)", () => {
    expect(executorSecurityGroupRules("ex", args).map((r) => [r.name, r.args])).toEqual([
      [
        "ex-to-postgres",
        {
          direction: "egress",
          securityGroupId: "sg-executor",
          peer: { referencedSecurityGroupId: "sg-postgres" },
          port: 5432,
          description: "PostgreSQL (TLS + SCRAM as the executor's role)",
        },
      ],
      [
        "ex-to-endpoints",
        {
          direction: "egress",
          securityGroupId: "sg-executor",
          peer: { referencedSecurityGroupId: "sg-endpoints" },
          port: 443,
          description: "Secrets Manager and KMS endpoints",
        },
      ],
      [
        "ex-to-s3",
        {
          direction: "egress",
          securityGroupId: "sg-executor",
          peer: { prefixListId: "pl-s3" },
          port: 443,
          description: "S3 gateway endpoint (tenant exports in the backup bucket)",
        },
      ],
    ]);
    // Without an export bucket: no path to S3.
    expect(executorSecurityGroupRules("ex", { ...args, exportBucket: undefined }).map((r) => r.name)).toEqual([
      "ex-to-postgres",
      "ex-to-endpoints",
    ]);
  });

  it("the environment names the secret, never a password", () => {
    expect(executorEnvironment(args)).toEqual({
      [EXECUTOR_ENV.secretArn]: DB_SECRET,
      [EXECUTOR_ENV.host]: "pg-primary.test.alphapulse.internal",
      [EXECUTOR_ENV.port]: "5432",
      [EXECUTOR_ENV.tls]: "require",
      [EXECUTOR_ENV.server]: "test/postgres",
      [EXECUTOR_ENV.authFileSecretArn]: AUTH_SECRET,
      [EXECUTOR_ENV.exportBucket]: BACKUP_BUCKET,
      [EXECUTOR_ENV.exportKmsKeyArn]: KEY,
    });
    expect(Object.keys(executorEnvironment({ ...args, exportBucket: undefined }))).not.toContain(EXECUTOR_ENV.exportBucket);
    expect(Object.keys(executorEnvironment({ ...args, pgbouncerAuthFileSecretArn: undefined }))).not.toContain(
      EXECUTOR_ENV.authFileSecretArn,
    );
  });

  it("the role reads exactly its secret, writes exactly the auth file and the export prefix, uses exactly the region key", () => {
    expect(tenantExportObjectsArn(BACKUP_BUCKET)).toBe(EXPORT_OBJECTS);
    expect(
      executorRolePolicy({
        logGroupArn: "arn:logs",
        databaseSecretArn: DB_SECRET,
        authFileSecretArn: AUTH_SECRET,
        kmsKeyArn: KEY,
        exportObjectsArn: EXPORT_OBJECTS,
      }),
    ).toEqual({
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
        { Sid: "OwnLogGroup", Effect: "Allow", Action: ["logs:CreateLogStream", "logs:PutLogEvents"], Resource: ["arn:logs"] },
        { Sid: "DatabaseCredential", Effect: "Allow", Action: "secretsmanager:GetSecretValue", Resource: [DB_SECRET] },
        { Sid: "PgbouncerAuthFile", Effect: "Allow", Action: "secretsmanager:PutSecretValue", Resource: [AUTH_SECRET] },
        { Sid: "TenantExports", Effect: "Allow", Action: ["s3:PutObject", "s3:GetObject"], Resource: [EXPORT_OBJECTS] },
        { Sid: "RegionKey", Effect: "Allow", Action: ["kms:Decrypt", "kms:GenerateDataKey"], Resource: KEY },
      ],
    });
    // Exports alone still need a data key (SSE-KMS writes), and grant nothing else of the bucket.
    const exportsOnly = executorRolePolicy({
      logGroupArn: "arn:logs",
      databaseSecretArn: DB_SECRET,
      kmsKeyArn: KEY,
      exportObjectsArn: EXPORT_OBJECTS,
    });
    expect(exportsOnly.Statement.at(-1)).toEqual({
      Sid: "RegionKey",
      Effect: "Allow",
      Action: ["kms:Decrypt", "kms:GenerateDataKey"],
      Resource: KEY,
    });
    expect(exportsOnly.Statement.filter((st) => JSON.stringify(st).includes("s3:"))).toEqual([
      { Sid: "TenantExports", Effect: "Allow", Action: ["s3:PutObject", "s3:GetObject"], Resource: [EXPORT_OBJECTS] },
    ]);
    // Without the auth file: no write at all, decrypt only.
    const readOnly = executorRolePolicy({ logGroupArn: "arn:logs", databaseSecretArn: DB_SECRET, kmsKeyArn: KEY });
    expect(JSON.stringify(readOnly)).not.toContain("PutSecretValue");
    expect(JSON.stringify(readOnly)).not.toContain("s3:");
    expect(readOnly.Statement.at(-1)).toEqual({ Sid: "RegionKey", Effect: "Allow", Action: ["kms:Decrypt"], Resource: KEY });
    // Nothing but the ENI actions is granted on every resource.
    expect(readOnly.Statement.filter((s) => s.Resource === "*").map((s) => s.Sid)).toEqual(["VpcNetworkInterfaces"]);
  });

  it("the deployer may invoke exactly this function", () => {
    expect(deployerInvokePolicy("arn:aws:lambda:eu-central-1:111111111111:function:test-db-executor")).toEqual({
      Version: "2012-10-17",
      Statement: [
        {
          Sid: "InvokeDatabaseExecutor",
          Effect: "Allow",
          Action: "lambda:InvokeFunction",
          Resource: ["arn:aws:lambda:eu-central-1:111111111111:function:test-db-executor"],
        },
      ],
    });
  });

  it("the bundle when it exists, the placeholder (which fails every call) when it does not", async () => {
    expect(executorCode(bundle).placeholder).toBe(false);
    const missing = executorCode(path.join(dir, "missing.js"));
    expect(missing.placeholder).toBe(true);
    const asset = (await missing.archive.assets)["index.js"] as { text: Promise<string> };
    expect(await asset.text).toBe(PLACEHOLDER_HANDLER);
    // The placeholder throws with a message that says what to do (run as Lambda would load it: a CommonJS module).
    const placeholderFile = path.join(dir, "placeholder.cjs");
    writeFileSync(placeholderFile, PLACEHOLDER_HANDLER);
    const { handler } = ((await import(pathToFileURL(placeholderFile).href)) as { default: { handler: () => Promise<unknown> } }).default;
    await expect(handler()).rejects.toThrow("run npm run build:executor and pulumi up again");
  });

  it.each<[string, Partial<DatabaseExecutorArgs>, string]>([
    ["a bad function name", { functionName: "db executor" }, 'functionName "db executor" must be 1-64 letters, digits, - or _'],
    ["one subnet", { subnetIds: ["subnet-a"] }, "subnetIds needs at least two private subnets, got 1"],
    [
      "a timeout over Lambda's limit",
      { timeoutSeconds: 901 },
      "timeoutSeconds must be an integer from 30 to 900 (Lambda's limit), got 901",
    ],
    ["a bad port", { database: { host: "h", port: 0, secretArn: "s" } }, "database.port must be a TCP port, got 0"],
    ["an empty server id", { server: " " }, "server must name the PostgreSQL server"],
  ])("refuses %s, naming the field", (_, patch, message) => {
    expect(() => validateDatabaseExecutorArgs("ex", { ...args, ...patch })).toThrow(`DatabaseExecutor ex: ${message}`);
  });
});

describe("DatabaseExecutor component", () => {
  let rec: Recorded;
  beforeAll(async () => {
    rec = await record((provider) => new DatabaseExecutor("ex", args, { providers: { aws: provider } }));
  });

  it("declares exactly these resources, named from its name", () => {
    expect(rec.all.filter((r) => !r.type.startsWith("pulumi:")).map((r) => [r.type, r.name])).toEqual([
      ["alphapulse:aws:DatabaseExecutor", "ex"],
      [T.logGroup, "ex-logs"],
      ["aws:iam/policy:Policy", "ex-invoke"],
      ["aws:iam/role:Role", "ex-role"],
      ["aws:iam/rolePolicy:RolePolicy", "ex-role"],
      ["aws:lambda/function:Function", "ex-function"],
      [T.egress, "ex-to-endpoints"],
      [T.egress, "ex-to-postgres"],
      [T.egress, "ex-to-s3"],
    ]);
    expect(rec.ofType(T.ingress)).toEqual([]);
  });

  it("the function: in the private subnets with its group, environment under the key, logs to its encrypted group", () => {
    const fn = rec.get("aws:lambda/function:Function", "ex-function");
    expect(fn.inputs).toMatchObject({
      name: "test-db-executor",
      runtime: "nodejs20.x",
      handler: "index.handler",
      timeout: 900,
      memorySize: 1024,
      kmsKeyArn: KEY,
      vpcConfig: { subnetIds: ["subnet-a", "subnet-b"], securityGroupIds: ["sg-executor"] },
      environment: { variables: executorEnvironment(args) },
      loggingConfig: { logFormat: "JSON", logGroup: "/aws/lambda/test-db-executor" },
    });
    expect(rec.get(T.logGroup, "ex-logs").inputs).toEqual({ name: "/aws/lambda/test-db-executor", retentionInDays: 90, kmsKeyId: KEY });
    // Nothing of the environment is a password.
    expect(JSON.stringify(fn.inputs.environment)).not.toMatch(/password/i);
  });

  it("the role policy as declared: exactly the export prefix of the backup bucket, and the region key", () => {
    const policy = JSON.parse(rec.get("aws:iam/rolePolicy:RolePolicy", "ex-role").inputs.policy as string) as {
      Statement: { Sid: string; Action: unknown; Resource: unknown }[];
    };
    expect(policy.Statement.filter((st) => JSON.stringify(st.Action).includes("s3:"))).toEqual([
      { Sid: "TenantExports", Effect: "Allow", Action: ["s3:PutObject", "s3:GetObject"], Resource: [EXPORT_OBJECTS] },
    ]);
    expect(policy.Statement.find((st) => st.Sid === "RegionKey")).toEqual({
      Sid: "RegionKey",
      Effect: "Allow",
      Action: ["kms:Decrypt", "kms:GenerateDataKey"],
      Resource: KEY,
    });
    expect(rec.get(T.egress, "ex-to-s3").inputs).toMatchObject({ prefixListId: "pl-s3", fromPort: 443, toPort: 443 });
  });
});
