/**
 * The AWS side of the tenant-context keys (ADR-005) under Pulumi's mocks: a RegionalPlatform in the
 * middle of a rotation (two keys declared) declares each key once (components/db TenantContextKey,
 * through the executor), keeps its value in a protected Secrets Manager secret under the region's KMS
 * key that is deleted before the key, never in plain state, and lets only the application's read
 * policy — not the executor — read it.
 */
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { RegionalPlatform, type RegionalPlatformArgs } from "../../components/aws/regional-platform";
import { contextKeyReadPolicy, contextKeySecretString, TenantContextKeySecret } from "../../components/aws/tenant-context-key-secret";
import { ContextKey } from "../../lib/tenant-context/proof";
import { ACCOUNT_ID, record, REGIONAL_PLATFORM_ARGS, T, type Recorded } from "./harness";

const args: RegionalPlatformArgs = { ...REGIONAL_PLATFORM_ARGS, contextKeys: ["eu-1", "eu-2"] };

const KEY = "pulumi-nodejs:dynamic/db:TenantContextKey";
const KEY_SECRET = "alphapulse:aws:TenantContextKeySecret";
const POLICY = "aws:iam/policy:Policy";
const ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy";

/** An Output's value (Output#promise is internal but stable). */
const settle = <T>(o: pulumi.Output<T>) => (o as unknown as { promise(): Promise<T> }).promise();

let rec: Recorded;
let platform: RegionalPlatform;
beforeAll(async () => {
  rec = await record(() => {
    platform = new RegionalPlatform("eu-test", args);
  });
});

describe("the tenant-context keys of an AWS region", () => {
  it("each declared key once, through the executor, with its Secrets Manager home beside the database", () => {
    const platformUrn = rec.get("alphapulse:aws:RegionalPlatform", "eu-test").urn;
    const databaseUrn = rec.get("alphapulse:db:RegionalDatabase", "eu-test-data").urn;
    expect(
      rec.ofType(KEY).map((k) => [k.name, k.parent, k.inputs.kid, k.inputs.region, (k.inputs.connection as { kind: string }).kind]),
    ).toEqual([
      ["eu-test-data-context-key-eu-1", databaseUrn, "eu-1", "eu", "executor"],
      ["eu-test-data-context-key-eu-2", databaseUrn, "eu-2", "eu", "executor"],
    ]);
    expect(rec.ofType(KEY_SECRET).map((c) => [c.name, c.parent])).toEqual([
      ["eu-test-context-key-eu-1", platformUrn],
      ["eu-test-context-key-eu-2", platformUrn],
    ]);
    for (const kid of ["eu-1", "eu-2"]) {
      const home = rec.get(KEY_SECRET, `eu-test-context-key-${kid}`).urn;
      expect(rec.all.filter((r) => r.parent === home).map((r) => [r.type, r.name])).toEqual([
        [T.secret, `eu-test-context-key-${kid}-secret`],
        [T.secretVersion, `eu-test-context-key-${kid}-value`],
      ]);
    }
    expect(platform.contextKeySecrets.map((s) => s.kid)).toEqual(["eu-1", "eu-2"]);
  });

  it("the secret: named by stack and kid, under the region's KMS key, protected, a recovery window, deleted before its key", async () => {
    const regionKey = rec.get(T.kmsKey, "eu-test-key");
    const kmsKeyArn = await settle(platform.kmsKeyArn);
    for (const kid of ["eu-1", "eu-2"]) {
      const secret = rec.get(T.secret, `eu-test-context-key-${kid}-secret`);
      const key = rec.get(KEY, `eu-test-data-context-key-${kid}`);
      expect(secret.inputs.name).toBe(`alphapulse/eu-test/tenant-context/${kid}`);
      expect(secret.inputs.kmsKeyId).toBe(kmsKeyArn);
      expect(secret.propertyDependencies.kmsKeyId).toEqual([regionKey.urn]);
      expect([secret.protect, secret.retainOnDelete, secret.inputs.recoveryWindowInDays]).toEqual([true, false, 30]);
      // It depends on the key: Pulumi deletes it first, so its protection refuses a removed kid
      // before the key is retired (docs/aws.md, rotation).
      expect(secret.dependencies).toContain(key.urn);
      expect(key.protect).toBe(false);
    }
  });

  it("the value: `{kid, region, secret}` of the key, a secret everywhere, never a plain input", async () => {
    for (const kid of ["eu-1", "eu-2"]) {
      const key = rec.get(KEY, `eu-test-data-context-key-${kid}`);
      const version = rec.get(T.secretVersion, `eu-test-context-key-${kid}-value`);
      // The engine received the value as a secret, computed from the key resource.
      expect(version.inputs.secretString).toBe("[secret]");
      expect(version.propertyDependencies.secretString).toEqual([key.urn]);
      expect(version.propertyDependencies.secretId).toEqual([rec.get(T.secret, `eu-test-context-key-${kid}-secret`).urn]);
      // The key's own secret is an output the engine keeps encrypted, never an input.
      expect(key.additionalSecretOutputs).toEqual(["secret"]);
      expect(Object.keys(key.inputs).sort()).toEqual(["__provider", "connection", "database", "databaseOid", "kid", "region"]);
    }
    const [first, second] = platform.database.contextKeys;
    const value = contextKeySecretString(first.key);
    expect(await pulumi.isSecret(value)).toBe(true);
    const parsed = ContextKey.parse(JSON.parse(await settle(value)));
    expect(parsed).toMatchObject({ kid: "eu-1", region: "eu" });
    expect(parsed.secret).toBe(await settle(first.key.secret));
    expect(await pulumi.isSecret(first.key.secret)).toBe(true);
    // Services sign with the last key.
    expect((await settle(platform.database.contextKey)).kid).toBe("eu-2");
    expect(await settle(second.key.secret)).not.toBe(parsed.secret);
    // No recorded input anywhere holds a key in plain text.
    const text = JSON.stringify(rec.all.map((r) => r.inputs));
    expect(text).not.toContain(parsed.secret);
    expect(text).not.toContain(await settle(second.key.secret));
  });

  it("only the application's read policy reads the secrets: GetSecretValue on exactly them, Decrypt through Secrets Manager only", async () => {
    const arns = await Promise.all(platform.contextKeySecrets.map((s) => settle(s.secretArn)));
    expect(arns).toEqual([
      expect.stringMatching(/^arn:aws:secretsmanager:eu-central-1:111111111111:secret:alphapulse\/eu-test\/tenant-context\/eu-1-/),
      expect.stringMatching(/^arn:aws:secretsmanager:eu-central-1:111111111111:secret:alphapulse\/eu-test\/tenant-context\/eu-2-/),
    ]);
    const policy = rec.get(POLICY, "eu-test-context-key-read");
    expect(policy.parent).toBe(rec.get("alphapulse:aws:RegionalPlatform", "eu-test").urn);
    const kmsKeyArn = await settle(platform.kmsKeyArn);
    expect(JSON.parse(String(policy.inputs.policy))).toEqual(
      contextKeyReadPolicy({ secretArns: arns, kmsKeyArn, awsRegion: "eu-central-1" }),
    );
    expect(await settle(platform.contextKeyReadPolicyArn)).toBe(`arn:aws:iam::${ACCOUNT_ID}:policy/eu-test-context-key-read`);
    // Nothing else in the tree — the executor's role, the nodes', PgBouncer's — names them.
    const grants = [...rec.ofType(POLICY), ...rec.ofType(ROLE_POLICY)].filter((p) => arns.some((a) => String(p.inputs.policy).includes(a)));
    expect(grants.map((p) => p.name)).toEqual(["eu-test-context-key-read"]);
    const executor = JSON.parse(String(rec.get(ROLE_POLICY, "eu-test-executor-role").inputs.policy)) as {
      Statement: { Action: unknown; Resource: unknown }[];
    };
    const reads = executor.Statement.filter((s) => JSON.stringify(s.Action).includes("secretsmanager:GetSecretValue"));
    expect(reads.map((s) => s.Resource)).toEqual([[await settle(platform.postgres.executorSecretArn)]]);
  });

  it("refuses a bad kid before declaring anything", () => {
    expect(
      () =>
        new TenantContextKeySecret("bad", {
          key: platform.database.contextKeys[0].key,
          kid: "EU 1",
          secretNamePrefix: "alphapulse/eu-test/tenant-context",
          kmsKeyArn: "arn:aws:kms:eu-central-1:111111111111:key/k",
        }),
    ).toThrow('TenantContextKeySecret bad: kid "EU 1" must be 1-32 characters of a-z, 0-9, _ and -');
  });
});
