/**
 * What a tenant stack on AWS takes from its regional platform stack (kind `aws`), and what it
 * derives from it: the provider's region, account and default tags, the executor connection of the
 * database side, the regional Redis user group and KMS key, the log group and metric namespace of
 * the per-tenant alarms. Pure: outputs come in as plain values; every error names the output and
 * the stack (PlatformStackError, exit 2 in the CLI).
 */
import { z } from "zod";
import { ResidencyRegion, type Tier } from "../tenant/model";
import { PlatformStackError } from "./platform";
import { tenantStackName } from "./names";

/** The executor connection of the AWS data plane (components/db/provider-runtime.ts ExecutorConnection). */
export const ExecutorConnectionOutput = z.object({
  kind: z.literal("executor"),
  functionName: z.string().min(1),
  region: z.string().min(1),
  endpoint: z.string().min(1).optional(),
  server: z.string().min(1),
});

/** The outputs of an AWS platform stack a tenant stack reads. Extra outputs are ignored. */
export const AwsTenantPlatformOutputs = z.looseObject({
  kind: z.literal("aws"),
  region: ResidencyRegion,
  awsRegion: z.string().min(1),
  accountId: z.string().regex(/^\d{12}$/, { message: "must be a 12-digit AWS account id" }),
  costCentre: z.string().min(1),
  kmsKeyArn: z.string().min(1),
  alarmTopicArn: z.string().min(1),
  database: z.object({
    name: z.string().min(1),
    oid: z.number().int().positive(),
    connection: ExecutorConnectionOutput,
  }),
  postgres: z.looseObject({ logGroupName: z.string().min(1), tenantMetricNamespace: z.string().min(1) }),
  redis: z.looseObject({ userGroupId: z.string().min(1), tenantSecretPrefix: z.string().min(1) }),
  tenants: z.record(z.string(), z.string()).optional(),
});
export type AwsTenantPlatformOutputs = z.infer<typeof AwsTenantPlatformOutputs>;

/** What the AWS tenant program declares against. */
export interface AwsTenantPlatform {
  stack: string;
  region: ResidencyRegion;
  awsRegion: string;
  accountId: string;
  costCentre: string;
  kmsKeyArn: string;
  alarmTopicArn: string;
  database: AwsTenantPlatformOutputs["database"];
  logGroupName: string;
  metricNamespace: string;
  userGroupId: string;
  tenantSecretPrefix: string;
}

/** True when a platform stack's outputs say it is an AWS regional stack. */
export function isAwsPlatform(outputs: Record<string, unknown>): boolean {
  return outputs.kind === "aws";
}

/** Validates an AWS platform stack's outputs for a tenant stack, naming the stack and the output at fault. */
export function readAwsTenantPlatform(stack: string, outputs: Record<string, unknown>): AwsTenantPlatform {
  const parsed = AwsTenantPlatformOutputs.safeParse(outputs);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new PlatformStackError(
      `platform stack ${stack}: output \`${issue.path.join(".") || "?"}\` ${issue.message} (tenant stacks on AWS need it)`,
      stack,
    );
  }
  const o = parsed.data;
  return {
    stack,
    region: o.region,
    awsRegion: o.awsRegion,
    accountId: o.accountId,
    costCentre: o.costCentre,
    kmsKeyArn: o.kmsKeyArn,
    alarmTopicArn: o.alarmTopicArn,
    database: o.database,
    logGroupName: o.postgres.logGroupName,
    metricNamespace: o.postgres.tenantMetricNamespace,
    userGroupId: o.redis.userGroupId,
    tenantSecretPrefix: o.redis.tenantSecretPrefix,
  };
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
