/**
 * Switching a database between the two tenant contexts (ADR-005), as a plan of statements `migrate`
 * runs: the tenant tables' policies are re-rendered by the catalogue planner (lib/schema/planner.ts
 * `planSchema(…, mode)`, which drops and recreates a policy whose definition differs); this module
 * plans the rest — the registry's own policies, who may still call the raw `enter_tenant(uuid)`,
 * and the recorded mode.
 *
 *   setting   (existing databases until switched) policies trust app.current_tenant_id as set.
 *   verified  (strict) policies trust the setting only under the seal enter_verified_tenant(proof) set
 *             for the current transaction; the raw enter_tenant(uuid) is no longer executable by the
 *             tenant roles, so a client without a key fails loudly instead of reading nothing.
 *
 * No downtime: deploy clients that send proofs first (enter_verified_tenant works in both modes), then
 * `tenancy migrate --tenant-context verified`. Rollback: `tenancy migrate --tenant-context setting`
 * (same statements in reverse; clients that send proofs keep working throughout).
 */
import type { Queryable } from "../db/client";
import { VERIFIED_TENANT_ID_EXPRESSION, type TenantContextMode } from "../schema/planner";

export const TENANT_CONTEXT_MODES: readonly TenantContextMode[] = ["setting", "verified"];

/** The mode recorded in tenancy.database_settings (migration 0012), or undefined before 0012. */
export async function recordedTenantContextMode(client: Queryable): Promise<TenantContextMode | undefined> {
  const { rows } = await client.query(
    `SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('tenancy.database_settings') AND attname = 'tenant_context' AND NOT attisdropped) AS present`,
  );
  if (!rows[0]?.present) return undefined;
  const { rows: settings } = await client.query(`SELECT tenant_context FROM tenancy.database_settings`);
  return settings[0]?.tenant_context as TenantContextMode;
}

/** Statements (run as the owner, in one transaction) that switch the registry and grants from `from` to `to`. Pure. */
export function planTenantContextMode(from: TenantContextMode, to: TenantContextMode): string[] {
  if (from === to) return [];
  const verified = `id = (SELECT ${VERIFIED_TENANT_ID_EXPRESSION})`;
  const registry = to === "verified" ? verified : "id = tenancy.setting_tenant_id()";
  return [
    `ALTER POLICY tenant_self ON tenancy.tenants USING (${registry})`,
    `ALTER POLICY tenant_self_lock ON tenancy.tenants USING (${registry}) WITH CHECK (false)`,
    to === "verified"
      ? `REVOKE EXECUTE ON FUNCTION tenancy.enter_tenant(uuid) FROM app_user, alphapulse_readonly`
      : `GRANT EXECUTE ON FUNCTION tenancy.enter_tenant(uuid) TO app_user, alphapulse_readonly`,
    `UPDATE tenancy.database_settings SET tenant_context = '${to}'`,
  ];
}
