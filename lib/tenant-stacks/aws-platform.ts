/**
 * What a tenant stack on AWS takes from its regional platform stack (kind `aws`), and what it
 * derives from it: the provider's region, account and default tags, the executor connection of the
 * database side, the regional Redis user group and KMS key, the log group and metric namespace of
 * the per-tenant alarms. Pure: read through the platform contract (lib/platform/contract.ts), whose
 * errors name the output and the stack (exit 2 in the CLI).
 */
import { parsePlatformContract, type AwsPlatformContract } from "../platform/contract";
import type { ResidencyRegion, Tier } from "../tenant/model";
import { tenantStackName } from "./names";
import { PlatformStackError } from "./platform";

/** What the AWS tenant program declares against. */
export interface AwsTenantPlatform {
  stack: string;
  region: ResidencyRegion;
  awsRegion: string;
  accountId: string;
  costCentre: string;
  kmsKeyArn: string;
  alarmTopicArn: string;
  database: Pick<AwsPlatformContract["database"], "name" | "oid" | "connection">;
  logGroupName: string;
  metricNamespace: string;
  userGroupId: string;
  tenantSecretPrefix: string;
}

/** True when a platform stack's outputs say it is an AWS regional stack. */
export function isAwsPlatform(outputs: Record<string, unknown>): boolean {
  return outputs.kind === "aws";
}

/** What a tenant stack takes from an AWS platform contract (lib/platform/contract.ts). */
export function awsTenantPlatform(o: AwsPlatformContract): AwsTenantPlatform {
  return {
    stack: o.stack,
    region: o.region,
    awsRegion: o.aws.region,
    accountId: o.aws.accountId,
    costCentre: o.aws.costCentre,
    kmsKeyArn: o.aws.kmsKeyArn,
    alarmTopicArn: o.aws.alarmTopicArn,
    database: { name: o.database.name, oid: o.database.oid, connection: o.database.connection },
    logGroupName: o.postgres.logGroupName,
    metricNamespace: o.aws.tenantMetricNamespace,
    userGroupId: o.redis.userGroupId,
    tenantSecretPrefix: o.redis.tenantSecretPrefix,
  };
}

/** Reads an AWS platform stack's outputs through the platform contract (errors name the output and the stack). */
export function readAwsTenantPlatform(stack: string, outputs: Record<string, unknown>): AwsTenantPlatform {
  const contract = parsePlatformContract(outputs, stack);
  if (contract.kind !== "aws") throw new PlatformStackError(`platform stack ${stack} is not an AWS stack (kind ${contract.kind})`, stack);
  return awsTenantPlatform(contract);
}

/** Tag keys of a tenant stack's AWS provider (`defaultTags`): the platform's four, and the tenant's own. */
export const TENANT_TAG_KEYS = {
  stack: "alphapulse:stack",
  residency: "alphapulse:residency",
  component: "alphapulse:component",
  costCentre: "alphapulse:cost-centre",
  tenant: "alphapulse:tenant",
  tier: "alphapulse:tier",
} as const;

/** Every taggable resource of the tenant stack carries these (the provider's default tags). */
export function tenantDefaultTags(
  tenant: { slug: string; tier: Tier; region: ResidencyRegion },
  costCentre: string,
): Record<string, string> {
  return {
    [TENANT_TAG_KEYS.stack]: tenantStackName(tenant.slug),
    [TENANT_TAG_KEYS.residency]: tenant.region,
    [TENANT_TAG_KEYS.component]: "tenant",
    [TENANT_TAG_KEYS.costCentre]: costCentre,
    [TENANT_TAG_KEYS.tenant]: tenant.slug,
    [TENANT_TAG_KEYS.tier]: tenant.tier,
  };
}
