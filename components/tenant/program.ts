/**
 * The tenant program: what the stack `tenant-<slug>` of the project `alphapulse-tenant` declares. An
 * inline program run by the Automation API (lib/tenant-stacks/automation.ts); the spec is closed
 * over, and recorded as stack tags by the driver (lib/tenant-stacks/tags.ts).
 *
 * 1. Reads the regional platform stack through a StackReference (same backend), through the
 *    platform contract (lib/platform/contract.ts): a bad output fails naming it and the stack.
 * 2. Refuses a tenant whose residency differs from the platform stack's, or a slug the platform
 *    stack declares itself, before declaring anything (the CLI checked already; this is the guard
 *    that holds for every caller, the rollout included).
 * 3. Declares the tenant (components/tenant/tenant-stack.ts) against the platform's kind: a local
 *    region (direct connection, the region's redis-server) or an AWS region (the region's executor,
 *    ElastiCache, CloudWatch; lib/tenant-stacks/aws-platform.ts).
 */
import * as pulumi from "@pulumi/pulumi";
import type { PulumiFn } from "@pulumi/pulumi/automation";
import { parsePlatformContract, PLATFORM_OUTPUT_NAMES } from "../../lib/platform/contract";
import { awsTenantPlatform } from "../../lib/tenant-stacks/aws-platform";
import { localTenantTarget, ownershipProblem, platformSummary, residencyProblem } from "../../lib/tenant-stacks/platform";
import { platformReference, type TenantStackSpec } from "../../lib/tenant-stacks/spec";
import { TenantStack, type TenantStackArgs } from "./tenant-stack";

export { PLATFORM_OUTPUT_NAMES };

/** Reads the named outputs of a stack reference as plain values (secrets unwrapped; the inputs built from them are secret-free connection data). */
async function readOutputs(ref: pulumi.StackReference, names: readonly string[]): Promise<Record<string, unknown>> {
  const entries = await Promise.all(
    names.map(async (name) => {
      const details = await ref.getOutputDetails(name);
      return [name, details.value ?? details.secretValue] as const;
    }),
  );
  return Object.fromEntries(entries.filter(([, value]) => value !== undefined));
}

/** How the program runs besides its spec. */
export interface TenantProgramOptions {
  /**
   * Only `npm run tenant -- destroy`, after a successful offboarding: the protected Redis secret of
   * an AWS tenant is declared unprotected (TenantStackArgs.releaseForDestroy), so the destroy that
   * follows can schedule its deletion. @default false
   */
  releaseForDestroy?: boolean;
}

/** Checks the spec against the platform, then the TenantStack's args for the platform's kind. Throws (RunError) before anything is declared. */
export function tenantStackArgs(
  spec: TenantStackSpec,
  outputs: Record<string, unknown>,
  options: TenantProgramOptions = {},
): TenantStackArgs {
  try {
    const platform = parsePlatformContract(outputs, spec.platform);
    const summary = platformSummary(platform);
    const problem = residencyProblem(spec, summary) ?? ownershipProblem(spec.slug, summary);
    if (problem) throw new pulumi.RunError(problem);
    const tenant = { slug: spec.slug, tier: spec.tier, region: spec.region, displayName: spec.displayName };
    if (platform.kind === "aws") {
      const aws = awsTenantPlatform(platform);
      return {
        ...tenant,
        // The executor transport: components/db/provider-runtime.ts ExecutorConnection.
        connection: aws.database.connection,
        database: aws.database.name,
        databaseOid: aws.database.oid,
        cache: { kind: "aws", platform: aws },
        releaseForDestroy: options.releaseForDestroy ?? false,
      };
    }
    const target = localTenantTarget(platform);
    return {
      ...tenant,
      connection: target.connection,
      database: target.database,
      databaseOid: target.databaseOid,
      // The admin password came out of the reference in plain text: secret again before it reaches the state.
      cache: { kind: "local", redis: pulumi.secret(target.redis) },
    };
  } catch (err) {
    if (err instanceof pulumi.RunError) throw err;
    throw new pulumi.RunError((err as Error).message);
  }
}

/** Declares the tenant against already-read platform outputs; returns the stack outputs. */
export function declareTenant(spec: TenantStackSpec, outputs: Record<string, unknown>, options: TenantProgramOptions = {}) {
  const args = tenantStackArgs(spec, outputs, options);
  const tenant = new TenantStack(spec.slug, args);
  return {
    slug: spec.slug,
    tier: spec.tier,
    region: spec.region,
    platform: spec.platform,
    tenantId: tenant.tenantId,
    placement: tenant.placement ? "dedicated" : "shared",
    schema: tenant.placement?.schema ?? "shared",
    cacheUser: tenant.cacheUser,
    cachePassword: tenant.cachePassword,
    cacheSecretArn: tenant.cacheSecretArn,
    loginRole: tenant.loginRole?.role,
    loginPassword: tenant.loginRole?.password,
    database: args.database,
  };
}

export function tenantProgram(spec: TenantStackSpec, options: TenantProgramOptions = {}): PulumiFn {
  return async () => {
    const ref = new pulumi.StackReference("platform", { name: platformReference(spec) });
    return declareTenant(spec, await readOutputs(ref, PLATFORM_OUTPUT_NAMES), options);
  };
}
