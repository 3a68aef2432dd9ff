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
 * 3. Declares the tenant (components/tenant/tenant-stack.ts).
 */
import * as pulumi from "@pulumi/pulumi";
import type { PulumiFn } from "@pulumi/pulumi/automation";
import { parsePlatformContract, PLATFORM_OUTPUT_NAMES } from "../../lib/platform/contract";
import { ownershipProblem, platformSummary, residencyProblem, tenantStackTarget } from "../../lib/tenant-stacks/platform";
import { platformReference, type TenantStackSpec } from "../../lib/tenant-stacks/spec";
import { TenantStack } from "./tenant-stack";

/** Reads the named outputs of a stack reference as plain values (secrets unwrapped: the program re-wraps the one it passes on). */
async function readOutputs(ref: pulumi.StackReference, names: readonly string[]): Promise<Record<string, unknown>> {
  const entries = await Promise.all(
    names.map(async (name) => {
      const details = await ref.getOutputDetails(name);
      return [name, details.value ?? details.secretValue] as const;
    }),
  );
  return Object.fromEntries(entries.filter(([, value]) => value !== undefined));
}

export function tenantProgram(spec: TenantStackSpec): PulumiFn {
  return async () => {
    const ref = new pulumi.StackReference("platform", { name: platformReference(spec) });
    const outputs = await readOutputs(ref, PLATFORM_OUTPUT_NAMES);
    let target;
    try {
      const platform = parsePlatformContract(outputs, spec.platform);
      const summary = platformSummary(platform);
      const problem = residencyProblem(spec, summary) ?? ownershipProblem(spec.slug, summary);
      if (problem) throw new pulumi.RunError(problem);
      target = tenantStackTarget(platform);
    } catch (err) {
      if (err instanceof pulumi.RunError) throw err;
      throw new pulumi.RunError((err as Error).message);
    }
    const tenant = new TenantStack(spec.slug, {
      slug: spec.slug,
      tier: spec.tier,
      region: spec.region,
      displayName: spec.displayName,
      connection: target.connection,
      database: target.database,
      databaseOid: target.databaseOid,
      // The admin password came out of the reference in plain text: secret again before it reaches the state.
      redis: pulumi.secret(target.redis),
    });
    return {
      slug: spec.slug,
      tier: spec.tier,
      region: spec.region,
      platform: spec.platform,
      tenantId: tenant.tenantId,
      placement: tenant.placement ? "dedicated" : "shared",
      schema: tenant.placement?.schema ?? "shared",
      cacheUser: tenant.cache.userName,
      cachePassword: tenant.cache.password,
      loginRole: tenant.loginRole?.role,
      loginPassword: tenant.loginRole?.password,
      database: target.database,
    };
  };
}
