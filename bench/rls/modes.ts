/**
 * The variants measured side by side. Each has its own physically identical copy of the tenant
 * tables (same rows, same physical order, same indexes, rendered from the catalogue), and each gets
 * exactly the same traffic, so no copy is warmer than another.
 *
 *   a   floor: no RLS on the copy, the query carries `tenant_id = $n` (what the owner without RLS runs)
 *   a2  A′: a second floor copy. |a2/a − 1| is the noise floor: an effect smaller than it is not one
 *   b   the design: RLS as app_user, no tenant predicate in the query
 *   c   RLS plus the explicit predicate
 *   d   reference: one schema per tenant, tables without tenant_id (what a single-tenant system runs)
 *   e   RLS with the previous design's policy (migrations 0006–0008): `(SELECT tenancy.current_tenant_id())`,
 *       a plpgsql function that also looked the tenant up in the registry per statement (suspension);
 *       what the design change of docs/benchmarks.md ("migration 0009") bought is e/b
 *   f   RLS with the cheapest policy there is: the raw setting, cast (no validation, no registry, no
 *       function): what RLS itself costs, whatever the policy's functions do, is f/a
 *   s   RLS with strict mode's policy (ADR-005): the setting trusted only under the seal of this
 *       transaction (VERIFIED_TENANT_PREDICATE); what strict costs per statement over today's design
 *       is s/a − b/a (issue 21: at most 0.03 on p50 of every prepared hot shape)
 */
import { REGISTRY_SCHEMA, VERIFIED_TENANT_PREDICATE } from "../../lib/schema/planner";

export type ModeKey = "a" | "a2" | "b" | "c" | "d" | "e" | "f" | "s";

export interface Mode {
  key: ModeKey;
  /** Short column label. */
  label: string;
  description: string;
  layout: "shared" | "single";
  /** The copy's schema (shared layout); single-layout schemas are per tenant (singleSchema()). */
  schema: string;
  /** RLS on the copy: off, the catalogue's policies as rendered by lib/schema/planner.ts, or a variant. */
  rls: "off" | "catalogue" | "variant";
  /** The isolation policy's predicate when rls is "variant" (a trusted fragment). */
  policy?: string;
  /** The query carries `tenant_id = $n` itself. */
  explicitTenant: boolean;
}

/** The previous design's policy: a plpgsql function with a registry lookup (migration 0006). */
export const FUNCTION_PREDICATE = `tenant_id = (SELECT ${REGISTRY_SCHEMA}.current_tenant_id())`;
/** The reference policy: the raw setting, no validation (a garbage value raises an error), no function. */
export const RAW_SETTING_PREDICATE = `tenant_id = (SELECT nullif(current_setting('app.current_tenant_id', true), '')::uuid)`;

export const MODES: readonly Mode[] = [
  {
    key: "a",
    label: "a floor",
    description: "no RLS, explicit tenant_id = $n",
    layout: "shared",
    schema: "bench_floor",
    rls: "off",
    explicitTenant: true,
  },
  {
    key: "a2",
    label: "a′ floor",
    description: "identical second floor copy (A/A′ control)",
    layout: "shared",
    schema: "bench_floor2",
    rls: "off",
    explicitTenant: true,
  },
  {
    key: "b",
    label: "b RLS",
    description: "RLS as app_user, no tenant predicate",
    layout: "shared",
    schema: "bench_rls",
    rls: "catalogue",
    explicitTenant: false,
  },
  {
    key: "c",
    label: "c RLS+pred",
    description: "RLS plus explicit tenant_id = $n",
    layout: "shared",
    schema: "bench_rls_pred",
    rls: "catalogue",
    explicitTenant: true,
  },
  {
    key: "d",
    label: "d single",
    description: "schema per tenant, no tenant_id",
    layout: "single",
    schema: "bench_single",
    rls: "off",
    explicitTenant: false,
  },
  {
    key: "e",
    label: "e RLS 0006",
    description: "RLS, the previous design's policy: (SELECT tenancy.current_tenant_id()), plpgsql with a registry lookup",
    layout: "shared",
    schema: "bench_rls_function",
    rls: "variant",
    policy: FUNCTION_PREDICATE,
    explicitTenant: false,
  },
  {
    key: "f",
    label: "f RLS raw",
    description: "RLS, policy on the raw setting cast (reference: no validation, no registry, no function)",
    layout: "shared",
    schema: "bench_rls_raw",
    rls: "variant",
    policy: RAW_SETTING_PREDICATE,
    explicitTenant: false,
  },
  {
    key: "s",
    label: "s RLS strict",
    description: "RLS, strict mode's policy (ADR-005): the setting only under this transaction's seal (VERIFIED_TENANT_PREDICATE)",
    layout: "shared",
    schema: "bench_rls_strict",
    rls: "variant",
    policy: VERIFIED_TENANT_PREDICATE,
    explicitTenant: false,
  },
];

export function mode(key: ModeKey): Mode {
  const m = MODES.find((x) => x.key === key);
  if (!m) throw new Error(`unknown mode "${key}"`);
  return m;
}

/** The single-tenant schema of tenant number `index` (0-based). */
export function singleSchema(index: number): string {
  return `bench_single_${String(index).padStart(3, "0")}`;
}

/** Every schema the benchmark creates for these modes and this many tenants. */
export function benchSchemas(modes: readonly Mode[], tenants: number): string[] {
  return modes.flatMap((m) => (m.layout === "single" ? Array.from({ length: tenants }, (_, i) => singleSchema(i)) : [m.schema]));
}
