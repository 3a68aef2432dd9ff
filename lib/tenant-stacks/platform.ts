/**
 * What a tenant stack takes from its regional platform stack, and the residency rule between them:
 * a tenant's data lives only in a platform stack of its own residency region. The rule is checked
 * twice: here, by the CLI and the rollout before any stack operation starts (so a mismatch changes
 * nothing), and again inside the tenant program against the stack reference it actually resolved.
 *
 * The platform stack's outputs are read only through the platform contract (lib/platform/contract.ts
 * `parsePlatformContract`): a missing or mistyped output fails naming the output and the stack.
 * Pure: outputs come in as plain values (the Automation API's `{ value, secret }` map is unwrapped by
 * `unwrapOutputs`).
 */
import type { DatabaseConnection } from "../../components/db/provider-runtime";
import { parsePlatformContract, type LocalPlatformContract, type PlatformContract } from "../platform/contract";
import { ResidencyError } from "../platform/residency";
import type { ResidencyRegion } from "../tenant/model";

/** The local region's database and Redis admin, for the tenant program (its password is secret: the program wraps it). */
export interface LocalTenantTarget {
  connection: DatabaseConnection;
  database: string;
  databaseOid: number;
  redis: { host: string; port: number; user: string; password: string };
}

/** What a tenant stack on a local platform declares its resources against. */
export function localTenantTarget(platform: LocalPlatformContract): LocalTenantTarget {
  return {
    connection: platform.database.connection,
    database: platform.database.name,
    databaseOid: platform.database.oid,
    redis: { host: platform.redis.host, port: platform.redis.port, user: platform.redis.adminUser, password: platform.redis.adminPassword },
  };
}

/** A platform stack as the residency check sees it. */
export interface PlatformSummary {
  stack: string;
  region: ResidencyRegion;
  /** Slugs the platform stack registers itself; a tenant stack must not claim them. */
  declaredTenants: string[];
}

/** A platform stack that cannot serve tenants (missing from the backend, or of the wrong kind). */
export class PlatformStackError extends Error {
  constructor(
    message: string,
    readonly stack: string,
  ) {
    super(message);
    this.name = "PlatformStackError";
  }
}

/** `{ region: { value: "eu", secret: false } }` → `{ region: "eu" }`. */
export function unwrapOutputs(outputs: Record<string, { value: unknown; secret?: boolean }>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(outputs).map(([key, output]) => [key, output.value]));
}

/** The residency view of a platform contract. */
export function platformSummary(platform: PlatformContract): PlatformSummary {
  return { stack: platform.stack, region: platform.region, declaredTenants: Object.keys(platform.database.tenantIds).sort() };
}

/** Parses a platform stack's outputs (PlatformContractError naming the output and the stack) and summarises them. */
export function readPlatformSummary(stack: string, outputs: Record<string, unknown>): PlatformSummary {
  return platformSummary(parsePlatformContract(outputs, stack));
}

/** Why `tenant` may not be placed on `platform`, or undefined when it may. */
export function residencyProblem(tenant: { slug: string; region: ResidencyRegion }, platform: PlatformSummary): string | undefined {
  if (tenant.region === platform.region) return undefined;
  return (
    `tenant "${tenant.slug}" has residency "${tenant.region}" but platform stack ${platform.stack} serves "${platform.region}": ` +
    `its data may not be stored there (use --region ${platform.region}, or --platform with a "${tenant.region}" stack)`
  );
}

/** Why a tenant stack may not manage `slug` on `platform` (the platform stack declares it), or undefined. */
export function ownershipProblem(slug: string, platform: PlatformSummary): string | undefined {
  if (!platform.declaredTenants.includes(slug)) return undefined;
  return `tenant "${slug}" is declared by platform stack ${platform.stack} itself (its stack config); manage it there, or pick another slug`;
}

/** Throws a ResidencyError (lib/platform/residency.ts) unless the tenant and the platform share a residency region. */
export function assertResidency(tenant: { slug: string; region: ResidencyRegion }, platform: PlatformSummary): void {
  const problem = residencyProblem(tenant, platform);
  if (problem) throw new ResidencyError(problem);
}

/** Every residency or ownership problem of a batch, in input order (the CLI refuses the whole batch on any). */
export function placementProblems(
  tenants: readonly { slug: string; region: ResidencyRegion; platform: string }[],
  platforms: ReadonlyMap<string, PlatformSummary>,
): string[] {
  return tenants.flatMap((t) => {
    const platform = platforms.get(t.platform);
    if (!platform) return [`tenant "${t.slug}": platform stack ${t.platform} was not read`];
    return [residencyProblem(t, platform), ownershipProblem(t.slug, platform)].filter((p): p is string => p !== undefined);
  });
}
