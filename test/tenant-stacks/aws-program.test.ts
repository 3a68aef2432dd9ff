/**
 * The tenant program against each AWS regional stack, under Pulumi's mocks: the platform stacks'
 * own synthesised outputs (npm run synth of stacks/Pulumi.<stack>.yaml, in child processes) are
 * what the StackReference answers. Exact types, names, parents, providers, protect/retainOnDelete,
 * secret outputs; the residency and ownership refusals before anything is declared; the graph
 * passes the policy rules.
 */
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { declareTenant, tenantProgram } from "../../components/tenant/program";
import { evaluate, formatViolation } from "../../policy/rules";
import { viewsFromSynth } from "../../policy/views";
import { renderTenantAcl } from "../../lib/redis/acl";
import { PlatformMocks, startRecording, type SynthResource } from "../../lib/synth/mocks";
import { synthesizePlatformStack } from "../../lib/synth/tenant";
import { tenantDefaultTags } from "../../lib/tenant-stacks/aws-platform";
import { stackReferenceName } from "../../lib/tenant-stacks/names";
import type { TenantStackSpec } from "../../lib/tenant-stacks/spec";

const STACKS = ["eu-prod", "eu-staging", "us-prod"] as const;
const T = {
  stack: "pulumi:pulumi:Stack",
  ref: "pulumi:pulumi:StackReference",
  tenantStack: "alphapulse:tenant:TenantStack",
  registry: "pulumi-nodejs:dynamic/db:Tenant",
  placement: "pulumi-nodejs:dynamic/db:DedicatedPlacement",
  login: "pulumi-nodejs:dynamic/db:TenantLoginRole",
  provider: "pulumi:providers:aws",
  redisUser: "alphapulse:aws:TenantRedisUser",
  credential: "alphapulse:aws:Credential",
  password: "random:index/randomPassword:RandomPassword",
  secret: "aws:secretsmanager/secret:Secret",
  secretVersion: "aws:secretsmanager/secretVersion:SecretVersion",
  ecUser: "aws:elasticache/user:User",
  membership: "aws:elasticache/userGroupAssociation:UserGroupAssociation",
  alarms: "alphapulse:aws:TenantAlarms",
  filter: "aws:cloudwatch/logMetricFilter:LogMetricFilter",
  alarm: "aws:cloudwatch/metricAlarm:MetricAlarm",
} as const;

const spec = (slug: string, tier: TenantStackSpec["tier"], region: TenantStackSpec["region"], platform: string): TenantStackSpec => ({
  slug,
  tier,
  region,
  platform,
});

const ENTERPRISE = spec("newco-ent", "enterprise", "eu", "eu-prod");
const STARTER = spec("newco-start", "starter", "eu", "eu-staging");
const US_PRO = spec("hudson-pro", "pro", "us", "us-prod");
const STAYING = spec("staying-pro", "pro", "eu", "eu-prod");
const LEAVING = spec("leaving-pro", "pro", "eu", "eu-prod");

let outputs: Record<string, Record<string, unknown>>;
let all: SynthResource[];
let stackOutputs: Record<string, unknown>;
const refusals: Record<string, unknown> = {};
/** The `aws` output of a platform stack's contract (lib/platform/contract.ts). */
const awsOf = (stack: string) => outputs[stack].aws as Record<string, unknown>;

/** The resources of one tenant (its TenantStack and everything under it), by type and name. */
function tenantResources(slug: string) {
  const mine = all.filter((r) => r.name === slug || r.name.startsWith(`${slug}-`));
  const get = (type: string, name: string) => {
    const found = mine.find((r) => r.type === type && r.name === name);
    if (!found) throw new Error(`no ${type} ${name}; have ${mine.map((r) => `${r.type} ${r.name}`).join(", ")}`);
    return found;
  };
  return { mine, get, shape: mine.map((r) => [r.type, r.name, all.find((p) => p.urn === r.parent)?.name]).sort() };
}

beforeAll(async () => {
  const docs = await Promise.all(STACKS.map((s) => synthesizePlatformStack(s)));
  outputs = Object.fromEntries(docs.map((d) => [d.stack, d.outputs]));
  const recording = await startRecording(
    new PlatformMocks({ accountId: "111111111111", stackOutputs: { [stackReferenceName("eu-prod")]: outputs["eu-prod"] } }),
    "alphapulse-tenant",
    "tenant-test",
  );
  await pulumi.runtime.runInPulumiStack(async () => {
    // The program as `npm run tenant -- up` runs it (StackReference and all) for one tenant, the
    // declaration behind it for the others (one StackReference name per program).
    const result = await tenantProgram(ENTERPRISE)();
    declareTenant(STARTER, outputs["eu-staging"]);
    declareTenant(US_PRO, outputs["us-prod"]);
    // The destroy of an offboarded tenant (npm run tenant -- destroy): one `up` declaring the Redis
    // secret unprotected, then the destroy. Next to the same tenant declared normally.
    declareTenant(STAYING, outputs["eu-prod"]);
    declareTenant(LEAVING, outputs["eu-prod"], { releaseForDestroy: true });
    for (const [key, bad] of [
      ["eu-on-us", spec("eu-on-us", "pro", "eu", "us-prod")],
      ["taken", spec("acme-capital", "pro", "eu", "eu-prod")],
    ] as const) {
      try {
        declareTenant(bad, outputs[bad.platform]);
        refusals[key] = "declared";
      } catch (err) {
        refusals[key] = err;
      }
    }
    return result;
  });
  await recording.settle();
  all = recording.resources();
  stackOutputs = recording.outputs(all.find((r) => r.type === T.stack)!.urn) ?? {};
}, 240_000);

describe("the tenant program on AWS: the graph", () => {
  it("an Enterprise tenant on eu-prod: the same database components as locally, its Redis user, its alarms and filters", () => {
    const { shape } = tenantResources("newco-ent");
    expect(shape).toEqual(
      [
        [T.tenantStack, "newco-ent", "alphapulse-tenant-tenant-test"],
        [T.registry, "newco-ent-registry", "newco-ent"],
        [T.placement, "newco-ent-dedicated", "newco-ent"],
        [T.login, "newco-ent-login", "newco-ent"],
        [T.provider, "newco-ent-aws", "newco-ent"],
        [T.redisUser, "newco-ent-cache", "newco-ent"],
        [T.credential, "newco-ent-cache", "newco-ent-cache"],
        [T.password, "newco-ent-cache-password", "newco-ent-cache"],
        [T.secret, "newco-ent-cache-secret", "newco-ent-cache"],
        [T.secretVersion, "newco-ent-cache-value", "newco-ent-cache"],
        [T.ecUser, "newco-ent-cache-user", "newco-ent-cache"],
        [T.membership, "newco-ent-cache-membership", "newco-ent-cache"],
        [T.alarms, "newco-ent-alarms", "newco-ent"],
        [T.filter, "newco-ent-alarms-slow-statements-filter", "newco-ent-alarms"],
        [T.filter, "newco-ent-alarms-statement-timeouts-filter", "newco-ent-alarms"],
        [T.alarm, "newco-ent-alarms-slow-statements", "newco-ent-alarms"],
        [T.alarm, "newco-ent-alarms-statement-timeouts", "newco-ent-alarms"],
      ].sort(),
    );
  });

  it("a starter tenant: no dedicated schema, no login role, no own filters", () => {
    expect(tenantResources("newco-start").shape.map(([type, name]) => `${type} ${name}`)).toEqual(
      [
        `${T.tenantStack} newco-start`,
        `${T.registry} newco-start-registry`,
        `${T.provider} newco-start-aws`,
        `${T.redisUser} newco-start-cache`,
        `${T.credential} newco-start-cache`,
        `${T.password} newco-start-cache-password`,
        `${T.secret} newco-start-cache-secret`,
        `${T.secretVersion} newco-start-cache-value`,
        `${T.ecUser} newco-start-cache-user`,
        `${T.membership} newco-start-cache-membership`,
        `${T.alarms} newco-start-alarms`,
        `${T.alarm} newco-start-alarms-slow-statements`,
        `${T.alarm} newco-start-alarms-statement-timeouts`,
      ].sort(),
    );
  });

  it("the database side goes through the platform's executor connection", () => {
    for (const [slug, platform] of [
      ["newco-ent", "eu-prod"],
      ["newco-start", "eu-staging"],
      ["hudson-pro", "us-prod"],
    ] as const) {
      const registry = tenantResources(slug).get(T.registry, `${slug}-registry`);
      const database = outputs[platform].database as { name: string; oid: number; connection: Record<string, unknown> };
      expect(database.connection.kind).toBe("executor");
      expect(registry.inputs).toMatchObject({
        connection: database.connection,
        database: database.name,
        databaseOid: database.oid,
        slug,
        region: platform.slice(0, 2),
      });
    }
    const { get } = tenantResources("newco-ent");
    expect(get(T.placement, "newco-ent-dedicated").deletedWith).toBe(get(T.registry, "newco-ent-registry").urn);
    expect(get(T.login, "newco-ent-login").additionalSecretOutputs).toEqual(["password"]);
  });

  it("every AWS resource uses the tenant's provider: the platform's region and account, the tenant's tags", () => {
    for (const [slug, s, tier] of [
      ["newco-ent", "eu-prod", "enterprise"],
      ["newco-start", "eu-staging", "starter"],
      ["hudson-pro", "us-prod", "pro"],
    ] as const) {
      const { mine, get } = tenantResources(slug);
      const provider = get(T.provider, `${slug}-aws`);
      expect(provider.inputs).toMatchObject({ region: awsOf(s).region, allowedAccountIds: JSON.stringify([awsOf(s).accountId]) });
      const tags = JSON.parse(String(provider.inputs.defaultTags)).tags;
      expect(tags).toEqual(tenantDefaultTags({ slug, tier, region: s.slice(0, 2) as "eu" | "us" }, String(awsOf(s).costCentre)));
      expect(tags).toMatchObject({ "alphapulse:tenant": slug, "alphapulse:tier": tier, "alphapulse:residency": s.slice(0, 2) });
      for (const r of mine.filter((x) => x.type.startsWith("aws:"))) expect([r.name, r.provider]).toEqual([r.name, provider.urn]);
    }
  });

  it("the Redis user: the renderer's access string, in the regional user group; the password a protected secret under the region key", () => {
    const { get } = tenantResources("newco-ent");
    const registry = get(T.registry, "newco-ent-registry");
    expect(registry.protect).toBe(false);
    // The mocks' tenant id (lib/synth/mocks.ts): the access string is rendered from it.
    const user = get(T.ecUser, "newco-ent-cache-user");
    const tenantId = String(user.inputs.userId).replace(/^tenant-/, "");
    expect(user.inputs).toEqual({
      userId: `tenant-${tenantId}`,
      userName: `tenant_${tenantId}`,
      engine: "redis",
      accessString: renderTenantAcl(tenantId).accessString,
      authenticationMode: { type: "password", passwords: ["[secret]"] },
    });
    // The provider's schema marks the passwords secret, as in a real run.
    expect(user.additionalSecretOutputs).toContain("passwords");
    expect(get(T.membership, "newco-ent-cache-membership").inputs).toEqual({
      userGroupId: "eu-prod-redis-users",
      userId: `tenant-${tenantId}`,
    });
    const secret = get(T.secret, "newco-ent-cache-secret");
    expect([secret.protect, secret.retainOnDelete]).toEqual([true, false]);
    expect(secret.inputs).toMatchObject({
      name: "alphapulse/eu-prod/redis/tenants/newco-ent",
      kmsKeyId: awsOf("eu-prod").kmsKeyArn,
      recoveryWindowInDays: 30,
    });
    expect(get(T.secretVersion, "newco-ent-cache-value").inputs.secretString).toBe("[secret]");
    expect(get(T.password, "newco-ent-cache-password").protect).toBe(false);
  });

  it("no password in plain text anywhere: inputs and stack outputs", () => {
    const text = JSON.stringify({ all, stackOutputs });
    expect(text).not.toMatch(/mock-password-|mock-login-/);
    expect(stackOutputs).toMatchObject({
      slug: "newco-ent",
      tier: "enterprise",
      platform: "eu-prod",
      placement: "dedicated",
      loginPassword: "[secret]",
      cacheSecretArn: expect.stringMatching(
        /^arn:aws:secretsmanager:eu-central-1:111111111111:secret:alphapulse\/eu-prod\/redis\/tenants\/newco-ent-/,
      ),
    });
    expect(stackOutputs.cachePassword).toBeUndefined();
  });

  it("alarms select the tenant by its log tag; an Enterprise tenant's read its own filters", () => {
    const ent = tenantResources("newco-ent");
    const logTag = String(ent.get(T.filter, "newco-ent-alarms-slow-statements-filter").inputs.pattern).match(/tenant:([0-9a-f]+)/)?.[1];
    expect(logTag).toMatch(/^[0-9a-f]{16}$/);
    expect(ent.get(T.filter, "newco-ent-alarms-slow-statements-filter").inputs).toMatchObject({
      logGroupName: outputs["eu-prod"].postgres && (outputs["eu-prod"].postgres as Record<string, unknown>).logGroupName,
      pattern: `{ ($.application_name = "tenant:${logTag}") && ($.message = "duration:*") }`,
    });
    const entAlarm = ent.get(T.alarm, "newco-ent-alarms-slow-statements");
    expect(entAlarm.inputs).toMatchObject({ metricName: "SlowStatements", namespace: expect.stringMatching(/^AlphaPulse\/Tenant\//) });
    expect(entAlarm.inputs.dimensions).toBeUndefined();
    const starter = tenantResources("newco-start").get(T.alarm, "newco-start-alarms-statement-timeouts");
    expect(starter.inputs).toMatchObject({
      metricName: "TenantStatementTimeouts",
      namespace: "AlphaPulse/TenantQueries/eu-staging-postgres",
      dimensions: { Tag: expect.stringMatching(/^tenant:[0-9a-f]{16}$/) },
      alarmActions: [awsOf("eu-staging").alarmTopicArn],
    });
  });

  it("the tenant graphs pass every policy rule of their residency", () => {
    for (const [slug, residency] of [
      ["newco-ent", "eu"],
      ["newco-start", "eu"],
      ["hudson-pro", "us"],
    ] as const) {
      const resources = tenantResources(slug).mine;
      expect(evaluate(viewsFromSynth(resources), { residency }).map(formatViolation)).toEqual([]);
    }
  });
});

describe("the tenant program on AWS: the destroy of an offboarded tenant (releaseForDestroy)", () => {
  const shapeOf = (slug: string) =>
    tenantResources(slug).mine.map((r) => ({
      type: r.type,
      name: r.name.replace(slug, "<slug>"),
      protect: r.protect,
      retainOnDelete: r.retainOnDelete ?? false,
    }));

  it("declares the same resources; only the Redis secret is unprotected, its 30-day recovery window kept", () => {
    const staying = shapeOf("staying-pro");
    const leaving = shapeOf("leaving-pro");
    expect(leaving.map(({ type, name }) => [type, name])).toEqual(staying.map(({ type, name }) => [type, name]));
    const differs = leaving.filter((r, i) => JSON.stringify(r) !== JSON.stringify(staying[i]));
    expect(differs).toEqual([{ type: T.secret, name: "<slug>-cache-secret", protect: false, retainOnDelete: false }]);
    // The negative control: declared normally, the same secret is protected.
    expect(staying.find((r) => r.type === T.secret)).toMatchObject({ protect: true });
    const secret = tenantResources("leaving-pro").get(T.secret, "leaving-pro-cache-secret");
    expect(secret.inputs).toMatchObject({ name: "alphapulse/eu-prod/redis/tenants/leaving-pro", recoveryWindowInDays: 30 });
    // Nothing else of the tenant is protected either way: the registry's delete guards its data.
    expect(leaving.filter((r) => r.protect).map((r) => r.name)).toEqual([]);
  });

  it("the policy sees it: stateful-protection flags exactly the released secret (only the destroy's own up declares it)", () => {
    const violations = evaluate(viewsFromSynth(tenantResources("leaving-pro").mine), { residency: "eu" }).map(formatViolation);
    expect(violations).toHaveLength(1);
    expect(violations[0]).toMatch(/stateful-protection.*leaving-pro-cache-secret.*not protected/);
  });
});

describe("the tenant program on AWS: refusals before anything is declared", () => {
  it("an EU tenant on us-prod is refused by residency, and declares nothing", () => {
    expect(refusals["eu-on-us"]).toBeInstanceOf(pulumi.RunError);
    expect((refusals["eu-on-us"] as Error).message).toBe(
      'tenant "eu-on-us" has residency "eu" but platform stack us-prod serves "us": its data may not be stored there (use --region us, or --platform with a "eu" stack)',
    );
    expect(tenantResources("eu-on-us").mine).toEqual([]);
  });

  it("a slug the platform stack declares itself is refused", () => {
    expect((refusals.taken as Error).message).toBe(
      'tenant "acme-capital" is declared by platform stack eu-prod itself (its stack config); manage it there, or pick another slug',
    );
    expect(tenantResources("acme-capital").mine).toEqual([]);
  });
});
