/**
 * The harness refuses to measure anything but the real thing: the benchmark role is app_user (not
 * a superuser, not BYPASSRLS, not the owner or a member of it, owns nothing), row_security is on,
 * the RLS copies have RLS enabled and forced, the floor copies have it off, and RLS really filters
 * (no tenant: no rows; a tenant: exactly its own rows).
 */
import { mintTenantProof } from "../../lib/tenant-context/proof";
import type pg from "pg";
import { ROLES } from "../../lib/schema/roles";
import { REGISTRY_SCHEMA } from "../../lib/schema/planner";
import { ident, qualified } from "../../lib/db/sql";
import type { Dataset } from "./dataset";
import type { Mode } from "./modes";

export interface Posture {
  role: string;
  superuser: boolean;
  bypassrls: boolean;
  ownerMember: boolean;
  rowSecurity: string;
}

export async function assertPosture(
  app: pg.ClientBase,
  modes: readonly Mode[],
  dataset: Pick<Dataset, "tenants" | "contextKey">,
): Promise<Posture> {
  const rls = modes.filter((m) => m.layout === "shared" && m.rls !== "off").map((m) => m.schema);
  const floors = modes.filter((m) => m.layout === "shared" && m.rls === "off").map((m) => m.schema);
  const { rows } = await app.query(
    `SELECT current_user AS role, r.rolsuper AS superuser, r.rolbypassrls AS bypassrls,
            pg_has_role(current_user, $1, 'MEMBER') AS owner_member, current_setting('row_security') AS row_security,
            (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname LIKE 'bench\\_%' AND pg_has_role(current_user, c.relowner, 'MEMBER'))::int AS owns,
            (SELECT bool_and(c.relrowsecurity AND c.relforcerowsecurity) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = ANY($2) AND c.relkind = 'r') AS rls_forced,
            (SELECT bool_or(c.relrowsecurity) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = ANY($3) AND c.relkind = 'r') AS floor_rls
       FROM pg_roles r WHERE r.rolname = current_user`,
    [ROLES.owner, rls, floors],
  );
  const p = rows[0];
  const problems: string[] = [];
  if (p.role !== ROLES.app) problems.push(`benchmark role is ${p.role}, not ${ROLES.app}`);
  if (p.superuser) problems.push("benchmark role is a superuser");
  if (p.bypassrls) problems.push("benchmark role has BYPASSRLS");
  if (p.owner_member) problems.push(`benchmark role is a member of ${ROLES.owner}`);
  if (p.owns) problems.push(`benchmark role owns ${p.owns} benchmark relations`);
  if (p.row_security !== "on") problems.push(`row_security is ${p.row_security}`);
  if (rls.length && p.rls_forced !== true) problems.push("an RLS copy has RLS disabled or not forced");
  if (floors.length && p.floor_rls !== false) problems.push("a floor copy has RLS enabled");
  // RLS really filters: no tenant context sees nothing; a tenant sees exactly its own rows.
  for (const schema of rls) {
    const none = await app.query(`SELECT count(*)::int AS n FROM ${qualified(schema, "trades")}`);
    if (none.rows[0].n !== 0) problems.push(`${schema}: ${none.rows[0].n} rows visible without a tenant`);
    const smallest = dataset.tenants[dataset.tenants.length - 1];
    await app.query("BEGIN");
    // Through the verifier, as the runner enters: the strict copy (s) trusts nothing else.
    await app.query(`SELECT ${ident(REGISTRY_SCHEMA)}.enter_verified_tenant($1)`, [mintTenantProof(dataset.contextKey, smallest.id)]);
    const own = await app.query(
      `SELECT count(*)::int AS n, count(*) FILTER (WHERE tenant_id <> $1)::int AS other FROM ${qualified(schema, "trades")}`,
      [smallest.id],
    );
    await app.query("ROLLBACK");
    if (own.rows[0].n !== smallest.trades || own.rows[0].other !== 0) {
      problems.push(
        `${schema}: tenant ${smallest.slug} sees ${own.rows[0].n} rows (${own.rows[0].other} of others), expected ${smallest.trades}`,
      );
    }
  }
  if (problems.length) throw new Error(`refusing to benchmark: ${problems.join("; ")}`);
  return { role: p.role, superuser: p.superuser, bypassrls: p.bypassrls, ownerMember: p.owner_member, rowSecurity: p.row_security };
}
