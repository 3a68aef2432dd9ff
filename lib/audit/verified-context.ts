/**
 * The audit's rules for the verified tenant context (ADR-005), kept apart from isolation-audit.ts so
 * the two evolve without stepping on each other. The snapshot part is read once
 * (`readVerifiedContextFacts`), the rules are pure (`checkVerifiedContext`).
 *
 *   verifier-altered              tenancy.enter_verified_tenant(text) is not exactly migration 0012's:
 *                                 another body, owner, language, volatility, a SET clause, or other grants.
 *   verifier-missing              the database is strict but the verifier is gone.
 *   security-definer-unexpected   a SECURITY DEFINER function other than the verifier and the reviewed ones
 *                                 (isolation-audit.ts REVIEWED_SECURITY_DEFINER: 0009's take_tenant_gate())
 *                                 exists (even one the tenant roles cannot execute today: it is one GRANT away).
 *   tenant-policy-trusts-setting  in a strict database, a tenant policy (tenant tables or the registry)
 *                                 that trusts the raw setting: SQL can switch it (the attack).
 *   tenant-context-unverified     (only with `requireVerifiedContext`) the database is not strict.
 *   context-keys-readable         a tenant role (app_user, readonly, a dedicated tenant's login role) holds a
 *                                 privilege on tenancy_private.context_keys — by its own grant, PUBLIC's,
 *                                 an inherited role's, or membership of the table's owner. The table holds
 *                                 the HMAC pads of every key: whoever reads them mints a proof for any
 *                                 tenant of the region (ADR-005: "the key is never readable by app_user,
 *                                 readonly or a tenant login role").
 */
import { createHash } from "node:crypto";
import type { Queryable } from "../db/client";
import { MIGRATIONS } from "../schema/migrations";
import { normalizePolicyExpression, VERIFIED_TENANT_ID_EXPRESSION, type TenantContextMode } from "../schema/planner";
import { RLS_SUBJECT_ROLES, ROLES } from "../schema/roles";

export const VERIFIER_SIGNATURE = "tenancy.enter_verified_tenant(proof text)";
/** Who may execute the verifier besides its owner (the owner's implicit right is not listed). */
export const VERIFIER_GRANTEES: readonly string[] = [ROLES.readonly, ROLES.app];

export type VerifiedContextCheckId =
  | "verifier-altered"
  | "verifier-missing"
  | "security-definer-unexpected"
  | "tenant-policy-trusts-setting"
  | "tenant-context-unverified"
  | "context-keys-readable";

/** Where migration 0012 keeps the keys (the HMAC pads): owner only. */
export const CONTEXT_KEY_TABLE = "tenancy_private.context_keys";

/** A tenant role's access to the key table, by any path. */
export interface KeyTableAccess {
  role: string;
  /** Table privileges it holds (own grant, PUBLIC, inherited roles); `SELECT (columns)` for column grants only. */
  privileges: string[];
  /** Member of the table's owner (with or without INHERIT: SET ROLE gives it everything). */
  ownerMember: boolean;
  /** USAGE on the table's schema: without it the privileges are one GRANT away from use. */
  schemaUsage: boolean;
}

export interface VerifierFacts {
  owner: string;
  language: string;
  volatility: "i" | "s" | "v";
  securityDefiner: boolean;
  /** proconfig: a SET clause would undo the routing's transaction-local search_path. */
  config: string[] | null;
  /** sha256 of prosrc. */
  sourceSha256: string;
  /** Grantees of EXECUTE other than the owner ("PUBLIC" for PUBLIC), sorted. */
  grantees: string[];
}

export interface VerifiedContextFacts {
  /** Recorded mode; undefined before migration 0012. */
  mode: TenantContextMode | undefined;
  verifier: VerifierFacts | undefined;
  /** Every SECURITY DEFINER function outside the system schemas, as "schema.name(args)". */
  definers: string[];
  /** Tenant-context policies (tenant tables and the registry) as pg_policies prints them. */
  policies: { table: string; name: string; using: string | null; withCheck: string | null }[];
  /** Tenant roles with any access to CONTEXT_KEY_TABLE (empty when none has, or before migration 0012); absent in older snapshots. */
  keyTableAccess?: KeyTableAccess[];
}

/** The verifier's body exactly as migration 0012 creates it (applied migrations are frozen text). */
export function expectedVerifierSource(): string {
  const migration = MIGRATIONS.find((m) => m.version === "0012");
  const match = migration && /CREATE FUNCTION tenancy\.enter_verified_tenant\(proof text\)[^$]*\$\$([\s\S]*?)\$\$;/.exec(migration.sql);
  if (!match) throw new Error("migration 0012 no longer defines tenancy.enter_verified_tenant: the audit's expectation is stale");
  return match[1];
}

/** True when `signature` is the verifier exactly as migration 0012 made it (the one SECURITY DEFINER function allowed). */
export function isExpectedVerifier(signature: string, facts: VerifiedContextFacts | undefined): boolean {
  return signature === VERIFIER_SIGNATURE && !!facts?.verifier && verifierDifferences(facts.verifier).length === 0;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/**
 * `subjectRoles`: the tenant roles whose access to the key table is checked (the isolation audit
 * passes its subjects: app_user, readonly and the dedicated tenants' login roles).
 */
export async function readVerifiedContextFacts(
  client: Queryable,
  subjectRoles: readonly string[] = RLS_SUBJECT_ROLES,
): Promise<VerifiedContextFacts> {
  const { rows: modeRows } = await client.query(
    `SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('tenancy.database_settings') AND attname = 'tenant_context' AND NOT attisdropped)
                 THEN (SELECT to_jsonb(s) ->> 'tenant_context' FROM tenancy.database_settings s) END AS mode`,
  );
  const { rows: verifierRows } = await client.query(
    `SELECT pg_get_userbyid(p.proowner) AS owner, l.lanname AS language, p.provolatile AS volatility, p.prosecdef AS "securityDefiner",
            p.proconfig AS config, p.prosrc AS source,
            ARRAY(SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END
                    FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                   WHERE a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner ORDER BY 1) AS grantees
       FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
      WHERE p.oid = to_regprocedure('tenancy.enter_verified_tenant(text)')`,
  );
  const { rows: definers } = await client.query(
    `SELECT n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS signature
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
      ORDER BY 1`,
  );
  const { rows: policies } = await client.query(
    `SELECT schemaname || '.' || tablename AS table, policyname AS name, qual AS using, with_check AS "withCheck"
       FROM pg_policies
      WHERE (schemaname = 'tenancy' AND tablename = 'tenants' AND policyname IN ('tenant_self', 'tenant_self_lock'))
         OR (schemaname <> 'tenancy' AND permissive = 'RESTRICTIVE')
      ORDER BY 1, 2`,
  );
  const { rows: keyTableAccess } = await client.query(
    `SELECT r.rolname::text AS role,
            ARRAY(SELECT p FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) AS p
                   WHERE has_table_privilege(r.oid, t.oid, p))
              || CASE WHEN NOT has_table_privilege(r.oid, t.oid, 'SELECT') AND has_any_column_privilege(r.oid, t.oid, 'SELECT')
                      THEN ARRAY['SELECT (columns)'] ELSE '{}'::text[] END AS privileges,
            pg_has_role(r.oid, t.relowner, 'MEMBER') AS "ownerMember",
            has_schema_privilege(r.oid, t.relnamespace, 'USAGE') AS "schemaUsage"
       FROM pg_class t, pg_roles r
      WHERE t.oid = to_regclass($1) AND r.rolname = ANY($2)
        AND (has_any_column_privilege(r.oid, t.oid, 'SELECT, INSERT, UPDATE, REFERENCES')
             OR has_table_privilege(r.oid, t.oid, 'DELETE, TRUNCATE, TRIGGER')
             OR pg_has_role(r.oid, t.relowner, 'MEMBER'))
      ORDER BY 1`,
    [CONTEXT_KEY_TABLE, [...subjectRoles]],
  );
  const v = verifierRows[0] as (Omit<VerifierFacts, "sourceSha256"> & { source: string }) | undefined;
  return {
    mode: modeRows[0]?.mode ?? undefined,
    verifier: v && {
      owner: v.owner,
      language: v.language,
      volatility: v.volatility,
      securityDefiner: v.securityDefiner,
      config: v.config,
      sourceSha256: sha256(v.source),
      grantees: v.grantees,
    },
    definers: definers.map((r: { signature: string }) => r.signature),
    policies: policies as VerifiedContextFacts["policies"],
    keyTableAccess: keyTableAccess as KeyTableAccess[],
  };
}

interface VerifiedContextFinding {
  check: VerifiedContextCheckId;
  severity: "critical" | "high" | "medium" | "low";
  object: string;
  message: string;
  fix: string;
}

/** How the verifier differs from migration 0012's; empty when it does not. Pure. */
export function verifierDifferences(v: VerifierFacts, expectedSourceSha256 = sha256(expectedVerifierSource())): string[] {
  const out: string[] = [];
  if (v.sourceSha256 !== expectedSourceSha256) out.push("its body is not migration 0012's");
  if (v.owner !== ROLES.owner) out.push(`it is owned by ${v.owner}, not ${ROLES.owner}`);
  if (!v.securityDefiner) out.push("it is not SECURITY DEFINER (it cannot read the keys or set the seal)");
  if (v.language !== "plpgsql") out.push(`its language is ${v.language}`);
  if (v.volatility !== "v") out.push("it is not VOLATILE");
  if (v.config?.length) out.push(`it has a SET clause (${v.config.join(", ")})`);
  const want = [...VERIFIER_GRANTEES].sort().join(", ");
  const have = [...v.grantees].sort().join(", ");
  if (have !== want) out.push(`it is executable by ${have || "nobody but its owner"}, not exactly ${want}`);
  return out;
}

/**
 * A policy trusts the raw setting when it reads the tenant context — the setting itself, or a
 * function over it such as tenancy.setting_tenant_id() — without the seal check of the verified
 * expression around it.
 */
export function trustsRawSetting(expression: string | null): boolean {
  if (expression === null) return false;
  const e = normalizePolicyExpression(expression);
  const readsContext = e.includes("app.current_tenant_id") || /tenant_id\(\)/.test(expression);
  return readsContext && !e.includes(normalizePolicyExpression(VERIFIED_TENANT_ID_EXPRESSION));
}

/**
 * The rules. `alreadyFlagged`: SECURITY DEFINER functions another rule reported already (the
 * isolation audit's security-definer-executable, for those the tenant roles can execute).
 * `reviewed`: SECURITY DEFINER functions reviewed as part of the design besides the verifier — the
 * same list the isolation audit's security-definer-executable accepts (REVIEWED_SECURITY_DEFINER,
 * passed in by isolation-audit.ts), so the two rules agree on what may exist.
 */
export function checkVerifiedContext(
  facts: VerifiedContextFacts | undefined,
  options: { requireVerifiedContext?: boolean } = {},
  alreadyFlagged: ReadonlySet<string> = new Set(),
  reviewed: Readonly<Record<string, string>> = {},
): VerifiedContextFinding[] {
  if (!facts) return [];
  const out: VerifiedContextFinding[] = [];
  if (facts.verifier) {
    const differences = verifierDifferences(facts.verifier);
    if (differences.length)
      out.push({
        check: "verifier-altered",
        severity: "critical",
        object: `function ${VERIFIER_SIGNATURE}`,
        message: `the one SECURITY DEFINER function differs from the reviewed one: ${differences.join("; ")}`,
        fix: "restore it from migration 0012 (CREATE OR REPLACE with its exact text, owner alphapulse_owner, EXECUTE to app_user and alphapulse_readonly only); find out who changed it",
      });
  } else if (facts.mode === "verified") {
    out.push({
      check: "verifier-missing",
      severity: "critical",
      object: `function ${VERIFIER_SIGNATURE}`,
      message: "the database is strict but its verifier is missing: no tenant transaction can be entered",
      fix: "restore it from migration 0012, or roll back with `tenancy migrate --tenant-context setting`",
    });
  }
  for (const signature of facts.definers) {
    if (signature === VERIFIER_SIGNATURE || alreadyFlagged.has(signature) || reviewed[signature] !== undefined) continue;
    out.push({
      check: "security-definer-unexpected",
      severity: "high",
      object: `function ${signature}`,
      message:
        "SECURITY DEFINER: runs as its owner, outside the caller's RLS. Only the verifier and the reviewed functions (REVIEWED_SECURITY_DEFINER) of the design may be one",
      fix: `ALTER FUNCTION ${signature} SECURITY INVOKER, or DROP it`,
    });
  }
  out.push(...checkKeyTableAccess(facts.keyTableAccess ?? []));
  if (facts.mode === "verified") {
    for (const p of facts.policies) {
      if (!trustsRawSetting(p.using) && !trustsRawSetting(p.withCheck)) continue;
      out.push({
        check: "tenant-policy-trusts-setting",
        severity: "critical",
        object: `policy ${p.name} on ${p.table}`,
        message:
          "the database is strict, but this policy trusts app.current_tenant_id as set: SQL running as app_user can switch it (set_config, SET, a DO block) and read another tenant's rows",
        fix: "run `tenancy migrate` (it renders the verified predicate)",
      });
    }
  } else if (options.requireVerifiedContext) {
    out.push({
      check: "tenant-context-unverified",
      severity: "high",
      object: "database",
      message: `the tenant policies trust the raw setting (mode ${facts.mode ?? "before migration 0012"}): injected SQL can switch tenants`,
      fix: "deploy clients with a context key, then `tenancy migrate --tenant-context verified`",
    });
  }
  return out;
}

/**
 * The key table is the owner's alone. Critical when the role can use what it holds today (USAGE on
 * the schema, or it may act as the owner), high when it is one GRANT away. In either mode: the keys
 * exist, and are installed, before a database is switched to strict. Pure.
 */
export function checkKeyTableAccess(access: readonly KeyTableAccess[]): VerifiedContextFinding[] {
  return access.map((a) => {
    const holds = [...a.privileges, ...(a.ownerMember ? [`membership of the owner ${ROLES.owner}`] : [])];
    const usable = a.ownerMember || a.schemaUsage;
    return {
      check: "context-keys-readable" as const,
      severity: usable ? ("critical" as const) : ("high" as const),
      object: `table ${CONTEXT_KEY_TABLE}`,
      message:
        `${a.role} holds ${holds.join(", ")} on the tenant-context keys (the HMAC pads of every key: with them it mints a proof for any tenant of the region)` +
        (usable ? "" : `; without USAGE on schema tenancy_private it cannot use them yet: one GRANT away`),
      fix:
        `REVOKE ALL ON ${CONTEXT_KEY_TABLE} FROM ${a.role}, PUBLIC` +
        (a.ownerMember ? `; REVOKE ${ROLES.owner} FROM ${a.role}` : "") +
        (a.privileges.length && !a.ownerMember ? ` (and from any role it inherits them through)` : "") +
        "; then rotate the region's keys (docs/aws.md, ADR-005): they may have been read",
    };
  });
}
