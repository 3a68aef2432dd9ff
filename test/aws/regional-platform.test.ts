import { beforeAll, describe, expect, it } from "vitest";
import { keyPolicy, RegionalPlatform } from "../../components/aws/regional-platform";
import { ResidencyError } from "../../lib/platform/residency";
import { ACCOUNT_ID, record, REGIONAL_PLATFORM_ARGS, T, type Recorded } from "./harness";

const args = REGIONAL_PLATFORM_ARGS;

let rec: Recorded;
beforeAll(async () => {
  rec = await record(() => new RegionalPlatform("eu-test", args));
});

describe("RegionalPlatform", () => {
  it("composes the six components, named from its name", () => {
    const components = rec.all
      .filter((r) => r.type.startsWith("alphapulse:aws:") && r.type !== "alphapulse:aws:Credential")
      .map((r) => [r.type, r.name]);
    expect(components).toEqual([
      ["alphapulse:aws:RegionalPlatform", "eu-test"],
      ["alphapulse:aws:DatabaseExecutor", "eu-test-executor"],
      ["alphapulse:aws:Network", "eu-test-network"],
      ["alphapulse:aws:PgBouncerService", "eu-test-pgbouncer"],
      ["alphapulse:aws:PostgresCluster", "eu-test-postgres"],
      ["alphapulse:aws:RedisCache", "eu-test-redis"],
      ["alphapulse:aws:TenantContextKeySecret", "eu-test-context-key-eu-1"],
      ["alphapulse:aws:TenantObservability", "eu-test-tenants"],
    ]);
    // The data layer: the same component as the local stacks, through the executor.
    expect(rec.all.filter((r) => r.type.startsWith("alphapulse:db:")).map((r) => [r.type, r.name])).toEqual([
      ["alphapulse:db:RegionalDatabase", "eu-test-data"],
    ]);
    // PgBouncer's auth file, read through the executor, written by PgBouncerService (a new secret version + redeploy).
    expect(rec.all.filter((r) => r.type.endsWith("db:PgbouncerAuthFile")).map((r) => r.name)).toEqual(["eu-test-pgbouncer-auth-file"]);
    const service = rec.get("aws:ecs/service:Service", "eu-test-pgbouncer-service");
    expect(service.inputs.forceNewDeployment).toBe(true);
    // The trigger's value is the auth file's revision (unknown under mocks): it comes from that resource.
    expect(service.propertyDependencies.triggers?.some((u) => u.endsWith("PgbouncerAuthFile::eu-test-pgbouncer-auth-file"))).toBe(true);
    expect(rec.get(T.secretVersion, "eu-test-pgbouncer-auth-file-value").inputs.secretString).toBe("[secret]");
  });

  it("per-tenant observability reads the cluster's own log group and alarms to the region's topic", () => {
    const filters = rec.ofType("aws:cloudwatch/logMetricFilter:LogMetricFilter");
    expect(filters.map((f) => f.inputs.logGroupName)).toEqual(Array(4).fill("/alphapulse/eu-test-postgres/postgresql"));
    expect(rec.ofType(T.logGroup).filter((g) => g.parent?.includes("TenantObservability"))).toEqual([]);
    const alarm = rec.get(T.alarm, "eu-test-tenants-tenant-slow-statements");
    expect(alarm.inputs.alarmActions).toEqual(rec.get(T.alarm, "eu-test-postgres-connections").inputs.alarmActions);
  });

  it("one provider, pinned to the region and the account, with the default tags", () => {
    const providers = rec.ofType(T.provider).filter((p) => p.name !== "test-aws");
    expect(
      providers.map((p) => [
        p.name,
        p.inputs.region,
        JSON.parse(String(p.inputs.allowedAccountIds)),
        JSON.parse(String(p.inputs.defaultTags)),
      ]),
    ).toEqual([
      [
        "eu-test-aws",
        "eu-central-1",
        [ACCOUNT_ID],
        {
          tags: {
            "alphapulse:stack": "eu-test",
            "alphapulse:residency": "eu",
            "alphapulse:component": "regional-platform",
            "alphapulse:cost-centre": "CC-1",
          },
        },
      ],
    ]);
  });

  it("every AWS resource in the tree uses that provider, and none sets its own region", () => {
    const provider = rec.get(T.provider, "eu-test-aws").urn;
    const aws = rec.all.filter((r) => r.type.startsWith("aws:"));
    expect(aws.length).toBeGreaterThan(100);
    expect(aws.filter((r) => r.provider !== provider).map((r) => r.name)).toEqual([]);
    expect(aws.filter((r) => r.inputs.region !== undefined).map((r) => r.name)).toEqual([]);
  });

  it("one rotating, protected KMS key for the region; logs may use it for this region only", () => {
    const key = rec.get(T.kmsKey, "eu-test-key");
    expect([key.protect, key.retainOnDelete, key.inputs.enableKeyRotation, key.inputs.deletionWindowInDays]).toEqual([
      true,
      true,
      true,
      30,
    ]);
    expect(JSON.parse(String(key.inputs.policy))).toEqual(keyPolicy(ACCOUNT_ID, "eu-central-1"));
    expect(JSON.stringify(keyPolicy(ACCOUNT_ID, "eu-central-1"))).toContain(
      '"kms:EncryptionContext:aws:logs:arn":"arn:aws:logs:eu-central-1:111111111111:log-group:*"',
    );
    expect(rec.get("aws:kms/alias:Alias", "eu-test-key").inputs.name).toBe("alias/alphapulse/eu-test");
  });

  it("wires the pieces: PgBouncer is PostgreSQL's only client; the app group reaches PgBouncer and Redis", () => {
    const sgId = (name: string) => String(rec.all.find((r) => r.type === T.ingress && r.name === name)?.inputs.referencedSecurityGroupId);
    expect(sgId("eu-test-postgres-from-client-0")).toMatch(/^eu-test-network-pgbouncer-/);
    expect(sgId("eu-test-pgbouncer-nlb-from-client-0")).toMatch(/^eu-test-network-app-/);
    expect(sgId("eu-test-redis-from-client-0")).toMatch(/^eu-test-network-app-/);
    expect(rec.get(T.bucket, "eu-test-postgres-backups").inputs.bucket).toBe("alphapulse-eu-test-pgbackrest-111111111111");
  });

  it("the residency guard and the pool budget refuse before anything is declared", async () => {
    const before = new Set(rec.all.map((r) => r.urn));
    expect(() => new RegionalPlatform("us-region", { ...args, awsRegion: "us-east-1" })).toThrow(
      new ResidencyError(
        'RegionalPlatform us-region: region "us-east-1" is outside residency "eu" (allowed: eu-central-1, eu-west-1, eu-west-3, eu-north-1, eu-south-1, eu-south-2)',
      ),
    );
    expect(
      () =>
        new RegionalPlatform("us-tenant", {
          ...args,
          tenants: [{ id: "dd6ad784-7363-46b4-8594-14f8bf1eac3c", slug: "hudson-quant", tier: "pro", region: "us" }],
        }),
    ).toThrow("RegionalPlatform us-tenant: a eu stack refuses tenants of another residency: hudson-quant (us)");
    expect(
      () =>
        new RegionalPlatform("us-image", {
          ...args,
          pgbouncer: { ...args.pgbouncer, image: "222222222222.dkr.ecr.us-east-1.amazonaws.com/p:1" },
        }),
    ).toThrow('RegionalPlatform us-image pgbouncer.image: region "us-east-1" is outside residency "eu"');
    expect(
      () => new RegionalPlatform("us-zone", { ...args, network: { ...args.network, availabilityZones: ["eu-central-1a", "eu-west-1b"] } }),
    ).toThrow('RegionalPlatform us-zone network.availabilityZones[1]: availability zone "eu-west-1b" is in eu-west-1');
    expect(() => new RegionalPlatform("pools", { ...args, postgres: { ...args.postgres, maxConnections: 100 } })).toThrow(
      "RegionalPlatform pools: postgres.maxConnections: PgBouncer may open 210 server connections (pools + reserve), but PostgreSQL leaves 87",
    );
    // Only the refused components themselves were registered: no provider, no key, nothing inside.
    const added = (await rec.again()).filter((r) => !before.has(r.urn));
    expect(added.map((r) => [r.type, r.name])).toEqual([
      ["alphapulse:aws:RegionalPlatform", "pools"],
      ["alphapulse:aws:RegionalPlatform", "us-image"],
      ["alphapulse:aws:RegionalPlatform", "us-region"],
      ["alphapulse:aws:RegionalPlatform", "us-tenant"],
      ["alphapulse:aws:RegionalPlatform", "us-zone"],
    ]);
  });
});
