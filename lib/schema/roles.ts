/**
 * The database roles of the design and the posture each must have. Roles are cluster-wide; the
 * grants on objects are per database (lib/schema/planner.ts renders them).
 *
 *   owner        NOLOGIN, owns every object. Tenant tables FORCE RLS, so even the owner sees no rows.
 *   migrator     LOGIN, member of owner (runs DDL as owner) and of maintenance.
 *   maintenance  NOLOGIN BYPASSRLS: the only role that reads across tenants, for operations
 *                (offboarding, export, graduation, seeding) that always filter by tenant_id explicitly
 *                and verify what they touched. Nothing else may bypass RLS.
 *   app_user     LOGIN, what services connect as: no superuser, no BYPASSRLS, owns nothing,
 *                member of nothing, no CREATE anywhere, no TEMPORARY, no advisory lock function
 *                (its own tenant's gate only through enter_tenant()), none of the server-wide
 *                objects tenants would share (lib/schema/server-objects.ts).
 *   readonly     LOGIN, SELECT only, subject to RLS like app_user (reporting, support tooling).
 */
import type { Queryable } from "../db/client";
import { ident, literal } from "../db/sql";

export const ROLES = {
  owner: "alphapulse_owner",
  migrator: "alphapulse_migrator",
  maintenance: "alphapulse_maintenance",
  app: "app_user",
  readonly: "alphapulse_readonly",
} as const;

export type RoleKey = keyof typeof ROLES;

interface RolePosture {
  login: boolean;
  bypassRls: boolean;
  /** Roles this role must be a member of (exactly: other memberships are revoked). */
  memberOf: RoleKey[];
}

export const ROLE_POSTURE: Record<RoleKey, RolePosture> = {
  owner: { login: false, bypassRls: false, memberOf: [] },
  maintenance: { login: false, bypassRls: true, memberOf: [] },
  migrator: { login: true, bypassRls: false, memberOf: ["owner", "maintenance"] },
  app: { login: true, bypassRls: false, memberOf: [] },
  readonly: { login: true, bypassRls: false, memberOf: [] },
};

/** The roles that reach tenant data through RLS (never bypassing it). */
export const RLS_SUBJECT_ROLES = [ROLES.app, ROLES.readonly] as const;

/**
 * The lock function of the tenant gate: enter_tenant() takes the tenant's gate with it (shared, until
 * the transaction ends) through tenancy.take_tenant_gate(), a SECURITY DEFINER function of the owner
 * that locks only the gate of the transaction's own tenant setting (migration 0009). The RLS subject
 * roles execute no advisory lock function themselves: with this one they could hold any key (another
 * tenant's gate, the migrate lock). Every advisory lock function is the operators'
 * (lib/schema/migrate.ts planAdvisoryLocks; the audit's role-advisory-locks).
 */
export const TENANT_GATE_LOCK_FUNCTION = "pg_advisory_xact_lock_shared(bigint)";

/** The advisory lock functions of pg_catalog, by name (a regular expression for `proname ~`). */
export const ADVISORY_LOCK_FUNCTION_NAMES = "^pg_(try_)?advisory_";

export interface RoleState {
  name: string;
  login: boolean;
  superuser: boolean;
  bypassRls: boolean;
  createRole: boolean;
  createDb: boolean;
  replication: boolean;
  memberOf: string[];
}

export async function readRoles(client: Queryable): Promise<Map<string, RoleState>> {
  const { rows } = await client.query(
    `SELECT r.rolname AS name, r.rolcanlogin AS login, r.rolsuper AS superuser, r.rolbypassrls AS "bypassRls",
            r.rolcreaterole AS "createRole", r.rolcreatedb AS "createDb", r.rolreplication AS replication,
            coalesce(array_agg(g.rolname::text ORDER BY g.rolname) FILTER (WHERE g.rolname IS NOT NULL), '{}') AS "memberOf"
       FROM pg_roles r
       LEFT JOIN pg_auth_members m ON m.member = r.oid
       LEFT JOIN pg_roles g ON g.oid = m.roleid
      WHERE r.rolname = ANY($1)
      GROUP BY r.rolname, r.rolcanlogin, r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolcreatedb, r.rolreplication`,
    [Object.values(ROLES)],
  );
  return new Map(rows.map((r: RoleState) => [r.name, r]));
}

/** Statements that bring the roles to their posture; empty when they already are (so a second run is a no-op). */
export function planRoles(current: Map<string, RoleState>, passwords: Partial<Record<RoleKey, string>> = {}): string[] {
  const statements: string[] = [];
  const order: RoleKey[] = ["owner", "maintenance", "migrator", "app", "readonly"];
  for (const key of order) {
    const name = ROLES[key];
    const want = ROLE_POSTURE[key];
    const have = current.get(name);
    const attributes = [
      want.login ? "LOGIN" : "NOLOGIN",
      "NOSUPERUSER",
      "NOCREATEDB",
      "NOCREATEROLE",
      "NOREPLICATION",
      want.bypassRls ? "BYPASSRLS" : "NOBYPASSRLS",
    ].join(" ");
    const password = passwords[key] !== undefined ? ` PASSWORD ${literal(passwords[key])}` : "";
    if (!have) {
      statements.push(`CREATE ROLE ${ident(name)} ${attributes}${password}`);
    } else {
      // Only what differs: a role that creates roles but is not a superuser (the AWS executor,
      // docs/aws.md) may not even name SUPERUSER, REPLICATION or BYPASSRLS in an ALTER ROLE, so a
      // password change must not restate them. A superuser gets the same, smaller statement.
      const differs = [
        have.login !== want.login ? (want.login ? "LOGIN" : "NOLOGIN") : "",
        have.superuser ? "NOSUPERUSER" : "",
        have.createDb ? "NOCREATEDB" : "",
        have.createRole ? "NOCREATEROLE" : "",
        have.replication ? "NOREPLICATION" : "",
        have.bypassRls !== want.bypassRls ? (want.bypassRls ? "BYPASSRLS" : "NOBYPASSRLS") : "",
      ].filter(Boolean);
      if (differs.length || password) statements.push(`ALTER ROLE ${ident(name)}${differs.map((a) => ` ${a}`).join("")}${password}`);
    }
    const memberships = have?.memberOf ?? [];
    const wanted: string[] = want.memberOf.map((k) => ROLES[k]);
    for (const group of wanted.filter((g) => !memberships.includes(g))) statements.push(`GRANT ${ident(group)} TO ${ident(name)}`);
    for (const group of memberships.filter((g) => !wanted.includes(g))) statements.push(`REVOKE ${ident(group)} FROM ${ident(name)}`);
  }
  return statements;
}

/**
 * Creates missing roles and corrects their posture. Roles are cluster-wide and several databases
 * may be migrated at once, so a concurrent creation (duplicate_object / unique_violation /
 * "tuple concurrently updated") is retried after reading the roles again.
 */
export async function ensureRoles(client: Queryable, passwords: Partial<Record<RoleKey, string>> = {}): Promise<string[]> {
  for (let attempt = 1; ; attempt++) {
    const statements = planRoles(await readRoles(client), passwords);
    try {
      for (const statement of statements) await client.query(statement);
      return statements;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (attempt >= 5 || !(code === "42710" || code === "23505" || code === "XX000")) throw err;
      await new Promise((r) => setTimeout(r, 50 * attempt));
    }
  }
}
