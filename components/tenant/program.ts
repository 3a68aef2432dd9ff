/**
 * The tenant program: what the stack `tenant-<slug>` of the project `alphapulse-tenant` declares. An
 * inline program run by the Automation API (lib/tenant-stacks/automation.ts); the spec is closed
 * over, and recorded as stack tags by the driver (lib/tenant-stacks/tags.ts).
 *
 * 1. Reads the regional platform stack through a StackReference (same backend).
 * 2. Refuses a tenant whose residency differs from the platform stack's, or a slug the platform
 *    stack declares itself, before declaring anything (the CLI checked already; this is the guard
 *    that holds for every caller, the rollout included).
 * 3. Declares the tenant (components/tenant/tenant-stack.ts).
 */
import * as pulumi from "@pulumi/pulumi";
import type { PulumiFn } from "@pulumi/pulumi/automation";
import { ownershipProblem, readPlatformConnections, readPlatformSummary, residencyProblem } from "../../lib/tenant-stacks/platform";
import { platformReference, type TenantStackSpec } from "../../lib/tenant-stacks/spec";
import { TenantStack } from "./tenant-stack";

/** The platform outputs the program reads (secret or not). */
export const PLATFORM_OUTPUT_NAMES = ["region", "tenants", "postgres", "redis", "adminUrl"] as const;

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

export function tenantProgram(spec: TenantStackSpec): PulumiFn {
  return async () => {
    const ref = new pulumi.StackReference("platform", { name: platformReference(spec) });
    const outputs = await readOutputs(ref, PLATFORM_OUTPUT_NAMES);
    let connections;
    try {
      const platform = readPlatformSummary(spec.platform, outputs);
      const problem = residencyProblem(spec, platform) ?? ownershipProblem(spec.slug, platform);
      if (problem) throw new pulumi.RunError(problem);
      connections = readPlatformConnections(spec.platform, outputs);
    } catch (err) {
      if (err instanceof pulumi.RunError) throw err;
      throw new pulumi.RunError((err as Error).message);
    }
    const tenant = new TenantStack(spec.slug, {
      slug: spec.slug,
      tier: spec.tier,
      region: spec.region,
      displayName: spec.displayName,
      connection: { host: connections.postgres.host, port: connections.postgres.port, user: connections.postgres.user },
      database: connections.postgres.database,
      databaseOid: connections.postgres.databaseOid,
      redis: {
        host: connections.redis.host,
        port: connections.redis.port,
        user: connections.redis.adminUser,
        passwordFile: connections.redis.adminPasswordFile,
      },
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
      database: connections.postgres.database,
    };
  };
}
