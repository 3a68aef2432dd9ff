/**
 * What a tenant stack takes from its regional platform stack, and the residency rule between them:
 * a tenant's data lives only in a platform stack of its own residency region. The rule is checked
 * twice: here, by the CLI and the rollout before any stack operation starts (so a mismatch changes
 * nothing), and again inside the tenant program against the stack reference it actually resolved.
 *
 * Pure: outputs come in as plain values (the Automation API's `{ value, secret }` map is unwrapped by
 * `unwrapOutputs`).
 */
import { z } from "zod";
import { ResidencyError } from "../platform/residency";
import { ResidencyRegion } from "../tenant/model";

/** The outputs of a platform stack that tenant stacks rely on. Extra outputs are ignored. */
export const PlatformOutputs = z.looseObject({
  /** The stack's residency region. */
  region: ResidencyRegion,
  /** Tenants the platform stack declares itself (its sample tenants): id by slug. */
  tenants: z.record(z.string(), z.string()).optional(),
});
export type PlatformOutputs = z.infer<typeof PlatformOutputs>;

/**
 * What the tenant program declares its resources against: the regional database (components/db
 * `DatabaseConnection` + database name and oid) and the regional Redis as an administrator.
 */
export const PlatformConnections = z.object({
  postgres: z.object({
    host: z.string().min(1),
    port: z.number().int().positive(),
    database: z.string().min(1),
    /** The database's oid (components/db `Database.oid`): tenants follow a recreated database. */
    databaseOid: z.number().int().positive(),
    /** The admin role; the local stacks use trust authentication on loopback (no password). */
    user: z.string().min(1),
  }),
  redis: z.object({
    host: z.string().min(1),
    port: z.number().int().positive(),
    adminUser: z.string().min(1),
    /** File holding the admin password; read by the provider at call time, never an input value. */
    adminPasswordFile: z.string().min(1),
  }),
});
export type PlatformConnections = z.infer<typeof PlatformConnections>;

/** The connections a tenant stack needs, named by the output at fault when one is missing. */
export function readPlatformConnections(stack: string, outputs: Record<string, unknown>): PlatformConnections {
  const postgres = (outputs.postgres ?? {}) as Record<string, unknown>;
  // The admin user: explicit, or the user of the stack's admin URL (local stacks export `adminUrl`).
  const adminUser =
    postgres.user ??
    (typeof outputs.adminUrl === "string" ? decodeURIComponent(new URL(outputs.adminUrl).username) || undefined : undefined);
  const parsed = PlatformConnections.safeParse({ ...outputs, postgres: { ...postgres, user: adminUser } });
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new PlatformStackError(
    `platform stack ${stack}: output \`${issue.path.join(".")}\` ${issue.message} (tenant stacks need it)`,
    stack,
  );
}

/** A platform stack as the residency check sees it. */
export interface PlatformSummary {
  stack: string;
  region: ResidencyRegion;
  /** Slugs the platform stack registers itself; a tenant stack must not claim them. */
  declaredTenants: string[];
}

/** A platform stack that cannot serve tenants yet (missing, never deployed, or without the outputs). */
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

/** Validates a platform stack's outputs, naming the stack and the output at fault. */
export function readPlatformSummary(stack: string, outputs: Record<string, unknown>): PlatformSummary {
  if (Object.keys(outputs).length === 0) {
    throw new PlatformStackError(
      `platform stack ${stack} has no outputs: it has not been deployed yet (run \`npm run pulumi -- up --stack ${stack}\`)`,
      stack,
    );
  }
  const parsed = PlatformOutputs.safeParse(outputs);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new PlatformStackError(`platform stack ${stack}: output \`${issue.path.join(".") || "?"}\` ${issue.message}`, stack);
  }
  return { stack, region: parsed.data.region, declaredTenants: Object.keys(parsed.data.tenants ?? {}).sort() };
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
