/**
 * What a tenant destroy removes, read from the stack's state (pure): the AWS tenant's resources and
 * their effect, the one protection it lifts (the Redis secret), and what it refuses to lift.
 */
import { describe, expect, it } from "vitest";
import { offboardingLines } from "../../lib/tenant-stacks/report";
import { describeRemoval, protectionToLift, removalPlan, type StateResource } from "../../lib/tenant-stacks/removal";

const urn = (type: string, name: string) => `urn:pulumi:tenant-acme::alphapulse-tenant::${type}::${name}`;
const TENANT_ID = "0b9f8a3c-1d2e-4f50-8a6b-7c8d9e0f1a2b";
const SECRET_ARN = "arn:aws:secretsmanager:eu-central-1:111111111111:secret:alphapulse/eu-prod/redis/tenants/acme-AbCdEf";

/** The state of an AWS tenant stack (starter), as `pulumi stack export` lists it. */
const AWS_STATE: StateResource[] = [
  { type: "pulumi:pulumi:Stack", urn: urn("pulumi:pulumi:Stack", "alphapulse-tenant-tenant-acme"), custom: false },
  { type: "pulumi:pulumi:StackReference", urn: urn("pulumi:pulumi:StackReference", "platform"), id: "eu-prod", custom: true },
  { type: "alphapulse:tenant:TenantStack", urn: urn("alphapulse:tenant:TenantStack", "acme"), custom: false },
  { type: "pulumi-nodejs:dynamic/db:Tenant", urn: urn("pulumi-nodejs:dynamic/db:Tenant", "acme-registry"), id: TENANT_ID, custom: true },
  { type: "pulumi:providers:aws", urn: urn("pulumi:providers:aws", "acme-aws"), id: "p", custom: true },
  { type: "alphapulse:aws:TenantRedisUser", urn: urn("alphapulse:aws:TenantRedisUser", "acme-cache"), custom: false },
  {
    type: "random:index/randomPassword:RandomPassword",
    urn: urn("random:index/randomPassword:RandomPassword", "acme-cache-password"),
    id: "none",
    custom: true,
  },
  {
    type: "aws:secretsmanager/secret:Secret",
    urn: urn("aws:secretsmanager/secret:Secret", "acme-cache-secret"),
    id: SECRET_ARN,
    custom: true,
    protect: true,
    inputs: { recoveryWindowInDays: 30 },
  },
  {
    type: "aws:secretsmanager/secretVersion:SecretVersion",
    urn: urn("aws:secretsmanager/secretVersion:SecretVersion", "acme-cache-value"),
    id: "v",
    custom: true,
  },
  { type: "aws:elasticache/user:User", urn: urn("aws:elasticache/user:User", "acme-cache-user"), id: `tenant-${TENANT_ID}`, custom: true },
  {
    type: "aws:elasticache/userGroupAssociation:UserGroupAssociation",
    urn: urn("aws:elasticache/userGroupAssociation:UserGroupAssociation", "acme-cache-membership"),
    id: `eu-prod-redis-users,tenant-${TENANT_ID}`,
    custom: true,
  },
  {
    type: "aws:cloudwatch/metricAlarm:MetricAlarm",
    urn: urn("aws:cloudwatch/metricAlarm:MetricAlarm", "acme-alarms-slow-statements"),
    id: "a",
    custom: true,
  },
];

describe("removalPlan", () => {
  it("lists every removed resource of an AWS tenant with its effect; the stack, providers, references and components are not removals", () => {
    expect(removalPlan(AWS_STATE).map(describeRemoval)).toEqual([
      `acme-registry (pulumi-nodejs:dynamic/db:Tenant ${TENANT_ID}): registry entry released; rows kept until \`tenancy tenant purge\``,
      "acme-cache-password (random:index/randomPassword:RandomPassword none): forgotten (it exists only in the state)",
      `acme-cache-secret (aws:secretsmanager/secret:Secret ${SECRET_ARN}): secret scheduled for deletion with a 30-day recovery window (\`aws secretsmanager restore-secret\` until then)`,
      "acme-cache-value (aws:secretsmanager/secretVersion:SecretVersion v): goes with its secret",
      `acme-cache-user (aws:elasticache/user:User tenant-${TENANT_ID}): ElastiCache user deleted (the tenant can no longer authenticate); keys kept until the purge`,
      `acme-cache-membership (aws:elasticache/userGroupAssociation:UserGroupAssociation eu-prod-redis-users,tenant-${TENANT_ID}): removed from the regional user group`,
      "acme-alarms-slow-statements (aws:cloudwatch/metricAlarm:MetricAlarm a): alarm deleted",
    ]);
  });

  it("a secret without a recovery window says so; an unknown type is 'deleted'", () => {
    const [secret, other] = removalPlan([
      { ...AWS_STATE[7], inputs: { recoveryWindowInDays: 0 } },
      { type: "aws:sns/topic:Topic", urn: urn("aws:sns/topic:Topic", "t"), custom: true },
    ]);
    expect(secret.effect).toBe("secret deleted at once (no recovery window)");
    expect(other).toEqual({ type: "aws:sns/topic:Topic", name: "t", effect: "deleted" });
  });
});

describe("protectionToLift", () => {
  it("lifts only the tenant's Redis secret", () => {
    const { lift, refused } = protectionToLift(removalPlan(AWS_STATE));
    expect(lift.map((r) => r.name)).toEqual(["acme-cache-secret"]);
    expect(refused).toEqual([]);
  });

  it("negative control: any other protected resource is refused, never lifted", () => {
    const state = AWS_STATE.map((r) => (r.type === "pulumi-nodejs:dynamic/db:Tenant" ? { ...r, protect: true } : r));
    const { lift, refused } = protectionToLift(removalPlan(state));
    expect(lift.map((r) => r.name)).toEqual(["acme-cache-secret"]);
    expect(refused.map((r) => r.name)).toEqual(["acme-registry"]);
    // Another stack's secret (not `<slug>-cache-secret`) is refused as well.
    const foreign = protectionToLift(removalPlan([{ ...AWS_STATE[7], urn: urn("aws:secretsmanager/secret:Secret", "admin-secret") }]));
    expect(foreign.refused.map((r) => r.name)).toEqual(["admin-secret"]);
  });

  it("a local tenant's state has nothing protected", () => {
    const local: StateResource[] = [
      AWS_STATE[3],
      {
        type: "pulumi-nodejs:dynamic/cache:TenantCacheUser",
        urn: urn("pulumi-nodejs:dynamic/cache:TenantCacheUser", "acme-cache"),
        id: "u",
        custom: true,
      },
    ];
    expect(protectionToLift(removalPlan(local))).toEqual({ lift: [], refused: [] });
    expect(removalPlan(local)[1].effect).toBe("Redis user revoked, its connections cut; keys kept until the purge");
  });
});

describe("the destroy report", () => {
  it("lists what was removed (a dry run: what would be), after the steps and the export", () => {
    const removed = removalPlan(AWS_STATE).filter((r) => r.name === "acme-cache-secret" || r.name === "acme-cache-user");
    const result = {
      slug: "acme",
      stack: "tenant-acme",
      action: "destroy" as const,
      ok: true,
      changes: { delete: 9 },
      durationMs: 1,
      steps: ["suspend acme (no writes after the export's snapshot)"],
      exportFile: `s3://bucket-name/tenant-exports/${TENANT_ID}/acme-20261206T033000Z.jsonl`,
      exportedRows: 3,
      removed,
    };
    expect(offboardingLines([result])).toEqual([
      "acme:",
      "  1. suspend acme (no writes after the export's snapshot)",
      `  verified export: s3://bucket-name/tenant-exports/${TENANT_ID}/acme-20261206T033000Z.jsonl (3 row(s))`,
      "  removed:",
      `    - ${describeRemoval(removed[0])}`,
      `    - ${describeRemoval(removed[1])}`,
    ]);
    expect(offboardingLines([{ ...result, dryRun: true }])).toContain("  the destroy would remove:");
  });
});
