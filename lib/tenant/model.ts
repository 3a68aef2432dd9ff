/**
 * What a tenant is: identifiers and attributes, validated at every edge (CLI flags, files, stack
 * config, claims). The registry table (lib/tenant/registry.ts) stores exactly these.
 */
import { z } from "zod";
import { Tier } from "./tiers";

export { Tier, TIERS } from "./tiers";

/** Data residency regions. A region's data never leaves its stack (see lib/platform/residency.ts for AWS regions). */
export const RESIDENCY_REGIONS = ["eu", "us"] as const;
export const ResidencyRegion = z.enum(RESIDENCY_REGIONS);
export type ResidencyRegion = z.infer<typeof ResidencyRegion>;

/** Where a tenant's rows live: the shared RLS tables, or its own `tenant_<uuid>` schema. */
export const PLACEMENTS = ["shared", "dedicated"] as const;
export const Placement = z.enum(PLACEMENTS);
export type Placement = z.infer<typeof Placement>;

/** `offboarded`: retained after an offboarding until its purge date (docs/data-safety.md); never served. */
export const TENANT_STATUSES = ["active", "suspended", "offboarded"] as const;
export const TenantStatus = z.enum(TENANT_STATUSES);
export type TenantStatus = z.infer<typeof TenantStatus>;

/** Lower-case canonical uuid (any version); what `app.current_tenant_id` must hold. */
export const TENANT_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const TenantId = z
  .string()
  .transform((s) => s.toLowerCase())
  .refine((s) => TENANT_ID_PATTERN.test(s), { message: "must be a uuid like 0b5e8f3c-1d2a-4c8e-9f1a-2b3c4d5e6f70" });
export type TenantId = z.infer<typeof TenantId>;

/** A slug names a tenant for humans and stack names: 3–40 of a-z 0-9 and inner hyphens. */
export const SLUG_PATTERN = /^[a-z0-9](?:[a-z0-9-]{1,38})[a-z0-9]$/;
export const TenantSlug = z
  .string()
  .regex(SLUG_PATTERN, { message: "must be 3-40 characters of a-z, 0-9 and inner hyphens (e.g. acme-capital)" })
  .refine((s) => !s.includes("--"), { message: "must not contain consecutive hyphens" });
export type TenantSlug = z.infer<typeof TenantSlug>;

export const TenantDisplayName = z
  .string()
  .trim()
  .min(1, { message: "must not be empty" })
  .max(200, { message: "must be at most 200 characters" });

export interface Tenant {
  id: string;
  slug: string;
  displayName: string;
  tier: Tier;
  region: ResidencyRegion;
  placement: Placement;
  status: TenantStatus;
  /** Offboarded tenants: when, the earliest purge, and the export written first (null otherwise). */
  offboardedAt?: Date | null;
  purgeAfter?: Date | null;
  offboardingExport?: string | null;
  /** Opaque tag in application_name and the server log; maps to the tenant only through the registry. */
  logTag: string;
  createdAt: Date;
  updatedAt: Date;
}

/** The schema that holds a dedicated tenant's tables: `tenant_` + the uuid without hyphens (a valid identifier). */
export function dedicatedSchemaName(tenantId: string): string {
  const id = TenantId.parse(tenantId);
  return `tenant_${id.replace(/-/g, "")}`;
}
