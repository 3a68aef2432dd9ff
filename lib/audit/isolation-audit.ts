/**
 * The isolation audit: lints a live database for the ways the design leaks
 * (../shared/notes/isolation-threats.md). It reads the catalogs once into an `AuditSnapshot`
 * (`readAuditSnapshot`), then evaluates pure rules over it (`evaluateAudit`), so every rule is
 * testable with a hand-written snapshot and the live test only has to show the snapshot is right.
 *
 * What counts as tenant data: every table with a `tenant_id` column, in any schema (shared, the
 * dedicated `tenant_<hex>` schemas, partitions, TimescaleDB chunks, tables nobody told us about).
 * The one exception is the control plane, the `tenancy` schema: its tables (say, a log of tenant
 * moves) describe tenants rather than hold their data, are run by operators, and must simply be
 * out of reach of the RLS-subject roles instead.
 *
 * `auditDatabase(client)` returns the findings, worst first. Each names the object and the fix.
 */
import { TENANT_TABLES } from "../schema/catalogue";
import type { Queryable } from "../db/client";
import { fixedRelease, parseServerVersionNum, RLS_ADVISORIES, unfixedAdvisories } from "./rls-advisories";
import { ADVISORY_LOCK_FUNCTION_NAMES, RLS_SUBJECT_ROLES } from "../schema/roles";
import { SERVER_OBJECT_CLASSES, type ServerObjectClassId } from "../schema/server-objects";
import {
  DEDICATED_SCHEMA_PATTERN,
  normalizePolicyExpression,
  POLICY_NAMES,
  REGISTRY_SCHEMA,
  SHARED_SCHEMA,
  TENANT_PREDICATE,
  VERIFIED_TENANT_PREDICATE,
} from "../schema/planner";
import {
  checkVerifiedContext,
  isExpectedVerifier,
  readVerifiedContextFacts,
  type VerifiedContextCheckId,
  type VerifiedContextFacts,
} from "./verified-context";

export const SEVERITIES = ["critical", "high", "medium", "low"] as const;
export type Severity = (typeof SEVERITIES)[number];

export type CheckId =
  | "rls-disabled"
  | "rls-not-forced"
  | "tenant-policy-missing"
  | "tenant-policy-commands"
  | "tenant-policy-roles"
  | "tenant-policy-predicate"
  | "tenant-policy-with-check"
  | "permissive-policy-roles"
  | "policy-function-immutable"
  | "policy-function-volatile"
  | "control-plane-reachable"
  | "view-not-security-invoker"
  | "matview-over-tenant-data"
  | "security-definer-executable"
  | "foreign-key-without-tenant"
  | "grant-public"
  | "grant-dangerous"
  | "unique-index-global"
  | "sequence-default"
  | "role-missing"
  | "role-superuser"
  | "role-bypassrls"
  | "role-attributes"
  | "role-membership"
  | "role-owns-objects"
  | "role-create-schema"
  | "role-create-database"
  | "role-temporary"
  | "role-reads-activity"
  | "role-advisory-locks"
  | "role-signals-backends"
  | "role-large-objects"
  | "role-reads-locks"
  | "role-reads-object-stats"
  | "role-notifications"
  | "login-policy-unpinned"
  | "server-version"
  | "stats-ext-fix-missing"
  | VerifiedContextCheckId;

export interface Finding {
  check: CheckId;
  severity: Severity;
  /** The object at fault, e.g. "table shared.trades", "role app_user", "server 15.18". */
  object: string;
  message: string;
  /** What to do about it (a command or SQL). */
  fix: string;
}

// --- the snapshot ------------------------------------------------------------------------------

export type RelationKind = "table" | "partitioned table" | "view" | "materialized view" | "foreign table";

export interface RelationFacts {
  schema: string;
  name: string;
  kind: RelationKind;
  owner: string;
  /** "schema.name" of the partition or inheritance parent. */
  parent?: string;
  partition: boolean;
  /** A TimescaleDB chunk (a table of its own; the hypertable's policies do not follow it). */
  chunk: boolean;
  hasTenantId: boolean;
  rls: boolean;
  forceRls: boolean;
  /** reloptions, e.g. ["security_invoker=true"]. */
  options: string[];
  /** Explicit grants to anyone but the owner; grantee "PUBLIC" for PUBLIC; column grants as "SELECT (price)". */
  grants: { grantee: string; privilege: string }[];
  /** RLS-subject roles that can SELECT/INSERT/UPDATE/DELETE it by any path (own grant, PUBLIC, membership). */
  reachableBy: string[];
}

export type PolicyCommand = "ALL" | "SELECT" | "INSERT" | "UPDATE" | "DELETE";

export interface PolicyFunction {
  signature: string;
  volatility: "immutable" | "stable" | "volatile";
  language: string;
}

export interface PolicyFacts {
  /** "schema.name" of the table. */
  table: string;
  name: string;
  permissive: boolean;
  command: PolicyCommand;
  /** Role names; "PUBLIC" for PUBLIC. */
  roles: string[];
  using: string | null;
  withCheck: string | null;
  /** User-defined functions the policy's expressions call directly. */
  functions: PolicyFunction[];
}

export interface DefinerFunctionFacts {
  signature: string;
  owner: string;
  /** RLS-subject roles (and "PUBLIC") that may execute it. */
  executableBy: string[];
  searchPathPinned: boolean;
}

export interface ForeignKeyFacts {
  name: string;
  table: string;
  columns: string[];
  references: string;
  referencedColumns: string[];
}

export interface UniqueIndexFacts {
  name: string;
  table: string;
  /** Key columns in order; null for an expression. */
  columns: (string | null)[];
}

export interface SequenceDefaultFacts {
  table: string;
  column: string;
  expression: string;
}

export interface RoleFacts {
  name: string;
  exists: boolean;
  superuser: boolean;
  bypassRls: boolean;
  createRole: boolean;
  createDb: boolean;
  replication: boolean;
  /** Every role it is a member of, directly or through others. */
  memberOf: string[];
  /** Objects it owns in this database, e.g. "table shared.trades". */
  owns: string[];
  createOnSchemas: string[];
  databaseCreate: boolean;
  databaseTemporary: boolean;
  /**
   * Ways it can read other sessions' statements: pg_stat_activity, pg_stat_get_activity(),
   * pg_stat_get_backend_*(), and pg_stat_statements when the extension exists. Every tenant
   * connects as the same role, so these show one tenant's statements to another (running ones
   * with their literals; pg_stat_statements normalised).
   */
  readsActivity: string[];
  /**
   * Advisory lock functions it may execute. The tenant gates are advisory locks and RLS does not
   * cover them: with any of these one tenant's session can hold or probe another tenant's gate, or
   * hold the migrate lock's key. Tenants take their own gate only inside enter_tenant(), through
   * tenancy.take_tenant_gate() (lib/schema/roles.ts TENANT_GATE_LOCK_FUNCTION).
   */
  advisoryLocks: string[];
  /** Server-wide objects of lib/schema/server-objects.ts it can use, e.g. { class: "large-objects", object: "function pg_catalog.lo_get(oid)" }. */
  serverObjects: { class: ServerObjectClassId; object: string }[];
}

export interface AuditSnapshot {
  server: {
    versionNum: number;
    /** pg_stats_ext restricted to table owners (CVE-2024-4317 fix applied); null when the view does not exist. */
    statsExtRestricted: boolean | null;
  };
  /** The roles that must reach tenant data only through RLS (app_user, readonly). */
  subjectRoles: string[];
  roles: RoleFacts[];
  relations: RelationFacts[];
  policies: PolicyFacts[];
  /** Direct relation dependencies of views and materialized views. */
  viewDependencies: { view: string; references: string[] }[];
  definerFunctions: DefinerFunctionFacts[];
  foreignKeys: ForeignKeyFacts[];
  uniqueIndexes: UniqueIndexFacts[];
  sequenceDefaults: SequenceDefaultFacts[];
  /** The verified tenant context (lib/audit/verified-context.ts); absent in hand-written snapshots. */
  verifiedContext?: VerifiedContextFacts;
}

/** A dedicated tenant's own login role (lib/enterprise/dedicated.ts): `tenant_<32 hex>_login`, subject to RLS like app_user. */
export const DEDICATED_LOGIN_ROLE_PATTERN = new RegExp(DEDICATED_SCHEMA_PATTERN.source.replace(/\$$/, "_login$"));

export interface AuditOptions {
  /** Roles that must be subject to RLS; default app_user, the read-only role and every dedicated tenant login role. */
  subjectRoles?: readonly string[];
  /** SECURITY DEFINER functions reviewed as safe to execute for the subject roles (signature → reason). */
  reviewedSecurityDefiner?: Readonly<Record<string, string>>;
  /** Flag a database whose policies still trust the raw setting (not strict). @default false */
  requireVerifiedContext?: boolean;
}

/**
 * SECURITY DEFINER functions the subject roles may execute, each reviewed. The rule stays: nothing
 * here may return or change another tenant's rows. A reviewed function must still pin search_path.
 */
export const REVIEWED_SECURITY_DEFINER: Readonly<Record<string, string>> = {
  "tenancy.take_tenant_gate()":
    "migration 0009: takes, in shared mode until the transaction ends, only the gate of the tenant the transaction's own setting names; reads and returns nothing. It exists so that the tenant roles execute no advisory lock function themselves.",
};

// --- rules (pure) ------------------------------------------------------------------------------

const key = (r: Pick<RelationFacts, "schema" | "name">) => `${r.schema}.${r.name}`;
const isControlPlane = (r: RelationFacts) => r.schema === REGISTRY_SCHEMA;
const isTenantTable = (r: RelationFacts) => r.hasTenantId && (r.kind === "table" || r.kind === "partitioned table");
const isCatalogueTable = (r: RelationFacts) =>
  (r.schema === SHARED_SCHEMA || DEDICATED_SCHEMA_PATTERN.test(r.schema)) && TENANT_TABLES.some((t) => t.name === r.name);

function describe(r: RelationFacts): string {
  if (r.chunk) return `TimescaleDB chunk ${key(r)}${r.parent ? ` of ${r.parent}` : ""}`;
  if (r.partition) return `partition ${key(r)} of ${r.parent}`;
  if (r.parent) return `inheritance child ${key(r)} of ${r.parent}`;
  return `${r.kind} ${key(r)}`;
}

/** Why addressing this table directly matters, for partitions and chunks. */
function directNote(r: RelationFacts): string {
  if (r.chunk || r.partition || r.parent) return " (addressed directly, the parent's policies do not apply to it)";
  return "";
}

const reachSeverity = (r: RelationFacts): Severity => (r.reachableBy.length ? "critical" : "high");
const reachNote = (r: RelationFacts) => (r.reachableBy.length ? `; reachable by ${r.reachableBy.join(", ")}` : "");

/** `tenancy migrate` repairs catalogue tables; anything else gets SQL. */
function repair(r: RelationFacts, sql: string): string {
  return isCatalogueTable(r) ? `tenancy migrate (restores the catalogue's RLS); by hand: ${sql}` : sql;
}

const quoted = (r: RelationFacts) => `${quoteIdent(r.schema)}.${quoteIdent(r.name)}`;
function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

export function isSecurityInvoker(options: readonly string[]): boolean {
  return options.some((o) => /^security_invoker=(true|on|yes|1)$/i.test(o));
}

/** True when `expression` is exactly the design's tenant predicate (as PostgreSQL deparses it). */
export function isTenantPredicate(expression: string | null): boolean {
  if (expression === null) return false;
  const e = normalizePolicyExpression(expression);
  // Either mode's predicate (ADR-005); which one a database must use is verified-context.ts's rule.
  return e === normalizePolicyExpression(TENANT_PREDICATE) || e === normalizePolicyExpression(VERIFIED_TENANT_PREDICATE);
}

const COMMANDS = ["SELECT", "INSERT", "UPDATE", "DELETE"] as const;
type Command = (typeof COMMANDS)[number];
const NEEDS: Record<Command, { using: boolean; check: boolean }> = {
  SELECT: { using: true, check: false },
  INSERT: { using: false, check: true },
  UPDATE: { using: true, check: true },
  DELETE: { using: true, check: false },
};

/** What PostgreSQL checks new rows against: WITH CHECK, or USING when an ALL/UPDATE policy has none. */
export function effectiveCheck(p: Pick<PolicyFacts, "command" | "using" | "withCheck">): string | null {
  return p.withCheck ?? (p.command === "ALL" || p.command === "UPDATE" ? p.using : null);
}

/**
 * The tenant predicate calls built-ins only (current_setting, a regex match, a cast), which leave
 * no pg_depend entry. Any user-defined function in the policy — say a lookalike current_setting()
 * that was earlier on the search_path when the policy was created — runs code the text comparison
 * cannot vouch for.
 */
const callsOnlyBuiltins = (p: PolicyFacts) => p.functions.length === 0;

const mentionsTenant = (p: PolicyFacts) => /\btenant_id\b/.test(`${p.using ?? ""} ${p.withCheck ?? ""}`);
const appliesTo = (p: PolicyFacts, c: Command) => p.command === "ALL" || p.command === c;
const coversRoles = (p: PolicyFacts, subjectRoles: readonly string[]) =>
  p.roles.includes("PUBLIC") || subjectRoles.every((r) => p.roles.includes(r));

/** RLS enabled and forced on every table holding tenant data. */
export function checkRowSecurity(s: AuditSnapshot): Finding[] {
  const out: Finding[] = [];
  for (const r of s.relations.filter((r) => isTenantTable(r) && !isControlPlane(r))) {
    if (!r.rls) {
      out.push({
        check: "rls-disabled",
        severity: reachSeverity(r),
        object: describe(r),
        message: `has tenant_id but row-level security is disabled: every row is visible to anyone with a grant${directNote(r)}${reachNote(r)}`,
        fix: repair(r, `ALTER TABLE ${quoted(r)} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY; then create the tenant policies`),
      });
    }
    if (!r.forceRls) {
      const ownerIsSubject = s.subjectRoles.includes(r.owner);
      out.push({
        check: "rls-not-forced",
        severity: ownerIsSubject ? "critical" : "high",
        object: describe(r),
        message: `row-level security is not forced: its owner ${r.owner} and every member of it skip the policies${directNote(r)}`,
        fix: repair(r, `ALTER TABLE ${quoted(r)} FORCE ROW LEVEL SECURITY`),
      });
    }
  }
  return out;
}

/**
 * For every command, some RESTRICTIVE policy that applies to every subject role must carry exactly
 * the tenant predicate (USING for SELECT/UPDATE/DELETE, WITH CHECK for INSERT/UPDATE). Restrictive
 * policies are ANDed with everything else, so a later permissive policy cannot widen them.
 */
export function checkTenantPolicies(s: AuditSnapshot): Finding[] {
  const out: Finding[] = [];
  for (const r of s.relations.filter((r) => isTenantTable(r) && !isControlPlane(r))) {
    const policies = s.policies.filter((p) => p.table === key(r));
    const restrictive = policies.filter((p) => !p.permissive && (mentionsTenant(p) || p.name === POLICY_NAMES.isolation));
    const fixSql = `CREATE POLICY tenant_isolation ON ${quoted(r)} AS RESTRICTIVE FOR ALL TO PUBLIC USING (${TENANT_PREDICATE}) WITH CHECK (${TENANT_PREDICATE})`;
    if (restrictive.length === 0) {
      const permissiveOnly = policies.some((p) => p.permissive && mentionsTenant(p));
      out.push({
        check: "tenant-policy-missing",
        severity: reachSeverity(r),
        object: describe(r),
        message: permissiveOnly
          ? `the tenant predicate is only in PERMISSIVE policies: permissive policies are ORed, so any other permissive policy (${policies
              .filter((p) => p.permissive)
              .map((p) => p.name)
              .join(", ")}) opens every tenant${directNote(r)}`
          : `no restrictive tenant policy${directNote(r)}${reachNote(r)}`,
        fix: repair(r, fixSql),
      });
      continue;
    }
    const gaps = new Map<CheckId, { commands: Command[]; policies: Set<string> }>();
    for (const c of COMMANDS) {
      const candidates = restrictive.filter((p) => appliesTo(p, c));
      const usable = candidates.filter((p) => coversRoles(p, s.subjectRoles));
      const ok = (p: PolicyFacts) =>
        callsOnlyBuiltins(p) &&
        (!NEEDS[c].using || isTenantPredicate(p.using)) &&
        (!NEEDS[c].check || isTenantPredicate(effectiveCheck(p)));
      if (usable.some(ok)) continue;
      let reason: CheckId;
      if (candidates.length === 0) reason = "tenant-policy-commands";
      else if (usable.length === 0) reason = "tenant-policy-roles";
      else if (usable.some((p) => callsOnlyBuiltins(p) && isTenantPredicate(p.using))) reason = "tenant-policy-with-check";
      else reason = "tenant-policy-predicate";
      const gap = gaps.get(reason) ?? { commands: [], policies: new Set<string>() };
      gap.commands.push(c);
      for (const p of reason === "tenant-policy-roles" ? candidates : usable) gap.policies.add(p.name);
      gaps.set(reason, gap);
    }
    for (const [check, gap] of gaps) {
      const commands = gap.commands.join(", ");
      const named = [...gap.policies].map((name) => policies.find((p) => p.name === name)!);
      const message = {
        "tenant-policy-commands": `no restrictive tenant policy covers ${commands} (the restrictive ones cover ${restrictive.map((p) => `${p.name}: ${p.command}`).join(", ")})`,
        "tenant-policy-roles": `the restrictive tenant policies for ${commands} (${named.map((p) => `${p.name} TO ${p.roles.join(", ")}`).join("; ")}) do not apply to every RLS-subject role (${s.subjectRoles.join(", ")}); use TO PUBLIC`,
        "tenant-policy-predicate": `the restrictive tenant policy for ${commands} is not the tenant predicate: ${named.map((p) => `${p.name} USING ${p.using ?? "(none)"}`).join("; ")}; expected ${TENANT_PREDICATE} (anything else may fail open when the setting is missing, empty or wrong)`,
        "tenant-policy-with-check": `the restrictive tenant policy does not check new rows for ${commands}: ${named.map((p) => `${p.name} WITH CHECK ${effectiveCheck(p) ?? "(none)"}`).join("; ")}: a tenant could write rows into, or move its rows to, another tenant`,
      }[check as "tenant-policy-commands"];
      out.push({
        check,
        severity: reachSeverity(r),
        object: describe(r),
        message: message + directNote(r),
        fix: repair(r, `DROP POLICY ...; ${fixSql}`),
      });
    }
  }
  return out;
}

/** A permissive policy for anyone but the subject roles lets that role in (up to the restrictive predicate). */
export function checkPermissivePolicies(s: AuditSnapshot): Finding[] {
  const tables = new Map(s.relations.filter((r) => isTenantTable(r) && !isControlPlane(r)).map((r) => [key(r), r]));
  return s.policies
    .filter((p) => p.permissive && tables.has(p.table))
    .flatMap((p): Finding[] => {
      const extra = p.roles.filter((role) => !s.subjectRoles.includes(role));
      if (!extra.length) return [];
      return [
        {
          check: "permissive-policy-roles",
          severity: "medium",
          object: `policy ${p.name} on ${p.table}`,
          message: `permissive policy grants ${extra.join(", ")} (beyond the RLS-subject roles ${s.subjectRoles.join(", ")}) USING ${p.using ?? "(none)"}`,
          fix: `DROP POLICY ${p.name} ON ${p.table}, or restrict it: ALTER POLICY ${p.name} ON ${p.table} TO ${s.subjectRoles.join(", ")}`,
        },
      ];
    });
}

/**
 * True when every call of the (argument-less) function `signature` in the policy's expressions is
 * the whole of a sub-select, `(SELECT f())`: PostgreSQL then evaluates it once per statement (an
 * InitPlan) and compares a parameter per row, whatever the function's language.
 */
export function calledOncePerStatement(p: Pick<PolicyFacts, "using" | "withCheck">, signature: string): boolean {
  const m = /^(?:([a-z_][a-z0-9_]*)\.)?([a-z_][a-z0-9_]*)\(\)$/.exec(signature);
  if (!m) return false;
  const schema = m[1] ? `(?:"?${m[1]}"?\\.)?` : "";
  const call = `(?<![\\w."])${schema}"?${m[2]}"?\\s*\\(\\s*\\)`;
  let calls = 0;
  for (const e of [p.using, p.withCheck]) {
    if (!e) continue;
    const all = e.match(new RegExp(call, "gi"))?.length ?? 0;
    const wrapped = e.match(new RegExp(`\\(\\s*select\\s+${call}(?:\\s+as\\s+"?\\w+"?)?\\s*\\)`, "gi"))?.length ?? 0;
    if (all !== wrapped) return false;
    calls += all;
  }
  return calls > 0;
}

/**
 * Functions in policies: IMMUTABLE bakes the first tenant into cached plans; VOLATILE, or non-SQL
 * called directly (not as `(SELECT f())`), runs per row.
 */
export function checkPolicyFunctions(s: AuditSnapshot): Finding[] {
  const tables = new Set(s.relations.filter((r) => r.hasTenantId).map(key));
  const out: Finding[] = [];
  for (const p of s.policies.filter((p) => tables.has(p.table))) {
    for (const f of p.functions) {
      const object = `function ${f.signature} in policy ${p.name} on ${p.table}`;
      if (f.volatility === "immutable") {
        out.push({
          check: "policy-function-immutable",
          severity: "critical",
          object,
          message:
            "is IMMUTABLE: the planner folds it into cached plans, so a statement planned for one tenant returns that tenant's rows to the next",
          fix: `ALTER FUNCTION ${f.signature} STABLE (and call it as (SELECT ${f.signature.replace(/\(.*$/, "()")}) in the policy)`,
        });
      } else if (f.volatility === "volatile" || (f.language !== "sql" && !calledOncePerStatement(p, f.signature))) {
        out.push({
          check: "policy-function-volatile",
          severity: f.volatility === "volatile" ? "high" : "medium",
          object,
          message: `is ${f.volatility.toUpperCase()} ${f.language}: it runs for every row instead of once per statement and keeps the tenant predicate out of index conditions`,
          fix: `make it LANGUAGE sql STABLE and call it as (SELECT ...) in the policy`,
        });
      }
    }
  }
  return out;
}

/** Control-plane tables with tenant_id (tenancy.*) are operators' business: no subject role may reach them. */
export function checkControlPlane(s: AuditSnapshot): Finding[] {
  return s.relations
    .filter((r) => isTenantTable(r) && isControlPlane(r) && r.reachableBy.length > 0 && !(r.rls && r.forceRls))
    .map((r) => ({
      check: "control-plane-reachable" as const,
      severity: "high" as const,
      object: describe(r),
      message: `control-plane table with tenant_id, without forced RLS, reachable by ${r.reachableBy.join(", ")}: every tenant's entries are visible`,
      fix: `REVOKE ALL ON ${quoted(r)} FROM ${r.reachableBy.join(", ")}, PUBLIC (or give it forced RLS and the tenant policies)`,
    }));
}

/** Relations (transitively, through views) that read tenant data. */
function tenantDataReaders(s: AuditSnapshot): Map<string, string> {
  const tenantTables = new Set(s.relations.filter((r) => r.hasTenantId && r.kind !== "view" && r.kind !== "materialized view").map(key));
  const deps = new Map(s.viewDependencies.map((d) => [d.view, d.references]));
  const memo = new Map<string, string | null>();
  const reaches = (rel: string, seen: Set<string>): string | null => {
    if (memo.has(rel)) return memo.get(rel)!;
    if (seen.has(rel)) return null;
    seen.add(rel);
    let found: string | null = null;
    for (const ref of deps.get(rel) ?? []) {
      if (tenantTables.has(ref)) found = ref;
      else found = reaches(ref, seen);
      if (found) break;
    }
    memo.set(rel, found);
    return found;
  };
  const out = new Map<string, string>();
  for (const view of deps.keys()) {
    const table = reaches(view, new Set());
    if (table) out.set(view, table);
  }
  return out;
}

/** Views run with their owner's rights unless security_invoker; materialized views cannot have RLS at all. */
export function checkViews(s: AuditSnapshot): Finding[] {
  const readers = tenantDataReaders(s);
  const out: Finding[] = [];
  for (const r of s.relations) {
    const table = readers.get(key(r));
    if (!table) continue;
    if (r.kind === "view" && !isSecurityInvoker(r.options)) {
      out.push({
        check: "view-not-security-invoker",
        severity: r.reachableBy.length ? "high" : "medium",
        object: describe(r),
        message: `reads tenant data (${table}) with the rights of its owner ${r.owner}, not the caller's: the caller's RLS does not apply${reachNote(r)}`,
        fix: `ALTER VIEW ${quoted(r)} SET (security_invoker = true)`,
      });
    }
    if (r.kind === "materialized view") {
      out.push({
        check: "matview-over-tenant-data",
        severity: r.reachableBy.length ? "critical" : "high",
        object: describe(r),
        message: `holds a copy of tenant data (${table}) and cannot have row-level security${r.reachableBy.length ? `; readable by ${r.reachableBy.join(", ")}: every tenant's rows` : ""}`,
        fix: `DROP MATERIALIZED VIEW ${quoted(r)}, or keep it per tenant in a table with tenant_id and the tenant policies`,
      });
    }
  }
  return out;
}

export function checkSecurityDefiner(s: AuditSnapshot, reviewed: Readonly<Record<string, string>> = REVIEWED_SECURITY_DEFINER): Finding[] {
  return s.definerFunctions.flatMap((f): Finding[] => {
    if (!f.executableBy.length) return [];
    if (isExpectedVerifier(f.signature, s.verifiedContext)) return [];
    const isReviewed = reviewed[f.signature] !== undefined;
    if (isReviewed && f.searchPathPinned) return [];
    return [
      {
        check: "security-definer-executable",
        severity: "high",
        object: `function ${f.signature}`,
        message: isReviewed
          ? `reviewed SECURITY DEFINER function without a pinned search_path: a caller's search_path can redirect what it runs as ${f.owner}`
          : `SECURITY DEFINER (runs as ${f.owner}, outside the caller's RLS) and executable by ${f.executableBy.join(", ")}`,
        fix: isReviewed
          ? `ALTER FUNCTION ${f.signature} SET search_path = pg_catalog, pg_temp`
          : `REVOKE EXECUTE ON FUNCTION ${f.signature} FROM ${f.executableBy.join(", ")}; or make it SECURITY INVOKER`,
      },
    ];
  });
}

/** A foreign key between tenant tables must pair tenant_id with tenant_id, or a row can point at another tenant's row. */
export function checkForeignKeys(s: AuditSnapshot): Finding[] {
  const tenant = new Set(s.relations.filter((r) => isTenantTable(r) && !isControlPlane(r)).map(key));
  return s.foreignKeys
    .filter((fk) => tenant.has(fk.table) && tenant.has(fk.references))
    .filter((fk) => {
      const i = fk.columns.indexOf("tenant_id");
      return i < 0 || fk.referencedColumns[i] !== "tenant_id";
    })
    .map((fk) => ({
      check: "foreign-key-without-tenant" as const,
      severity: "high" as const,
      object: `foreign key ${fk.name} on ${fk.table}`,
      message: `(${fk.columns.join(", ")}) → ${fk.references} (${fk.referencedColumns.join(", ")}) does not pair tenant_id: a row can reference another tenant's row, and the check is an existence oracle`,
      fix: `replace it with FOREIGN KEY (tenant_id, ${fk.columns.filter((c) => c !== "tenant_id").join(", ")}) REFERENCES ${fk.references} (tenant_id, ${fk.referencedColumns.filter((c) => c !== "tenant_id").join(", ")})`,
    }));
}

const DANGEROUS: Record<string, Severity> = { TRUNCATE: "critical", REFERENCES: "high", TRIGGER: "high" };
/** "SELECT (price)" → "SELECT". */
const privilegeName = (privilege: string) => privilege.split(" ")[0];

export function checkGrants(s: AuditSnapshot): Finding[] {
  const out: Finding[] = [];
  for (const r of s.relations.filter(isTenantTable)) {
    const toPublic = r.grants.filter((g) => g.grantee === "PUBLIC").map((g) => g.privilege);
    if (toPublic.length) {
      out.push({
        check: "grant-public",
        severity: "high",
        object: describe(r),
        message: `grants ${toPublic.join(", ")} to PUBLIC: every role, present and future, gets it`,
        fix: `REVOKE ALL ON ${quoted(r)} FROM PUBLIC`,
      });
    }
    for (const g of r.grants.filter((g) => s.subjectRoles.includes(g.grantee) && DANGEROUS[privilegeName(g.privilege)])) {
      const privilege = privilegeName(g.privilege);
      const why = {
        TRUNCATE: "TRUNCATE ignores RLS and empties every tenant",
        REFERENCES: "lets it build foreign keys that probe other tenants' keys",
        TRIGGER: "lets it attach triggers that see every tenant's rows",
      }[privilege];
      out.push({
        check: "grant-dangerous",
        severity: DANGEROUS[privilege],
        object: describe(r),
        message: `grants ${g.privilege} to ${g.grantee}: ${why}`,
        fix: `REVOKE ${g.privilege} ON ${quoted(r)} FROM ${g.grantee}`,
      });
    }
  }
  return out;
}

/** Tables tenants reach: tenant tables outside the control plane. */
const dataTables = (s: AuditSnapshot) => new Set(s.relations.filter((r) => isTenantTable(r) && !isControlPlane(r)).map(key));

export function checkUniqueIndexes(s: AuditSnapshot): Finding[] {
  const tenant = dataTables(s);
  return s.uniqueIndexes
    .filter((i) => tenant.has(i.table) && i.columns[0] !== "tenant_id")
    .map((i) => ({
      check: "unique-index-global" as const,
      severity: "medium" as const,
      object: `index ${i.name} on ${i.table}`,
      message: `unique over (${i.columns.map((c) => c ?? "<expression>").join(", ")}) across tenants: a duplicate-key error or ON CONFLICT tells a tenant that another tenant holds the value`,
      fix: `make it unique per tenant: (tenant_id, ${i.columns.map((c) => c ?? "<expression>").join(", ")})`,
    }));
}

export function checkSequenceDefaults(s: AuditSnapshot): Finding[] {
  const tenant = dataTables(s);
  return s.sequenceDefaults
    .filter((d) => tenant.has(d.table))
    .map((d) => ({
      check: "sequence-default" as const,
      severity: "low" as const,
      object: `column ${d.table}.${d.column}`,
      message: `takes its default from a sequence shared by all tenants (${d.expression}): the gaps between a tenant's ids tell it how busy the others are`,
      fix: `use gen_random_uuid() (ALTER TABLE ... ALTER COLUMN ${d.column} SET DEFAULT gen_random_uuid(), or a per-tenant counter)`,
    }));
}

/** The subject roles: not superuser, not BYPASSRLS, member of nothing, own nothing, create nothing. */
export function checkRolePosture(s: AuditSnapshot): Finding[] {
  const out: Finding[] = [];
  for (const name of s.subjectRoles) {
    const r = s.roles.find((x) => x.name === name);
    const object = `role ${name}`;
    if (!r || !r.exists) {
      out.push({
        check: "role-missing",
        severity: "medium",
        object,
        message: "does not exist",
        fix: "tenancy migrate (creates the roles)",
      });
      continue;
    }
    if (r.superuser)
      out.push({
        check: "role-superuser",
        severity: "critical",
        object,
        message: "is a superuser: RLS does not apply to it",
        fix: `ALTER ROLE ${name} NOSUPERUSER`,
      });
    if (r.bypassRls)
      out.push({
        check: "role-bypassrls",
        severity: "critical",
        object,
        message: "has BYPASSRLS: RLS does not apply to it",
        fix: `ALTER ROLE ${name} NOBYPASSRLS`,
      });
    const attributes = [r.createRole && "CREATEROLE", r.createDb && "CREATEDB", r.replication && "REPLICATION"].filter(Boolean) as string[];
    if (attributes.length) {
      out.push({
        check: "role-attributes",
        severity: r.createRole ? "critical" : "high",
        object,
        message: `has ${attributes.join(", ")}${r.createRole ? " (it can grant itself membership of the owner)" : ""}`,
        fix: `ALTER ROLE ${name} ${attributes.map((a) => `NO${a}`).join(" ")}`,
      });
    }
    if (r.memberOf.length) {
      out.push({
        check: "role-membership",
        severity: "critical",
        object,
        message: `is a member of ${r.memberOf.join(", ")}: it inherits their privileges (a member of a table owner skips non-forced RLS; of a BYPASSRLS role after SET ROLE, all of it)`,
        fix: `REVOKE ${r.memberOf.join(", ")} FROM ${name}`,
      });
    }
    if (r.owns.length) {
      out.push({
        check: "role-owns-objects",
        severity: "high",
        object,
        message: `owns ${r.owns.slice(0, 10).join(", ")}${r.owns.length > 10 ? `, … (${r.owns.length})` : ""}: an owner can disable RLS, change policies and grants`,
        fix: `REASSIGN OWNED BY ${name} TO alphapulse_owner (in this database)`,
      });
    }
    if (r.createOnSchemas.length) {
      out.push({
        check: "role-create-schema",
        severity: "high",
        object,
        message: `may CREATE in schema ${r.createOnSchemas.join(", ")}: it can add objects (functions, operators, tables) that shadow ours or run as their caller`,
        fix: r.createOnSchemas.map((n) => `REVOKE CREATE ON SCHEMA ${quoteIdent(n)} FROM ${name}, PUBLIC`).join("; "),
      });
    }
    if (r.databaseCreate) {
      out.push({
        check: "role-create-database",
        severity: "high",
        object,
        message: "may CREATE schemas in this database",
        fix: `REVOKE CREATE ON DATABASE <db> FROM ${name}, PUBLIC`,
      });
    }
    if (r.databaseTemporary) {
      out.push({
        check: "role-temporary",
        severity: "medium",
        object,
        message:
          "may create TEMPORARY tables: a temp table named like a tenant table shadows it for the next request on the same connection",
        fix: `REVOKE TEMPORARY ON DATABASE <db> FROM ${name}, PUBLIC (tenancy migrate revokes it from PUBLIC)`,
      });
    }
    if (r.readsActivity.length) {
      out.push({
        check: "role-reads-activity",
        severity: "high",
        object,
        message: `can read other sessions' statements through ${r.readsActivity.join(", ")}: every tenant connects as this role, so it shows one tenant's statements to another (running ones with their literals)`,
        fix: "tenancy migrate (revokes them from PUBLIC and grants them to pg_read_all_stats)",
      });
    }
    if (r.advisoryLocks.length) {
      out.push({
        check: "role-advisory-locks",
        severity: "medium",
        object,
        message: `may take any advisory lock through ${r.advisoryLocks.join(", ")}: the tenant gates are advisory locks, so one tenant's session can hold another tenant's gate (its transactions wait and its graduation fails at the gate timeout), hold the migrate lock's key (migrate and dedicated provisioning wait), or probe a gate to see when that tenant is busy`,
        fix: `tenancy migrate (revokes them from PUBLIC and from the tenant roles, which take their own gate through enter_tenant() → tenancy.take_tenant_gate())`,
      });
    }
  }
  return out;
}

const SERVER_OBJECT_CHECKS: Record<ServerObjectClassId, { check: CheckId; severity: Severity }> = {
  "signal-backends": { check: "role-signals-backends", severity: "high" },
  "large-objects": { check: "role-large-objects", severity: "high" },
  "lock-status": { check: "role-reads-locks", severity: "medium" },
  "object-statistics": { check: "role-reads-object-stats", severity: "medium" },
  notifications: { check: "role-notifications", severity: "low" },
};

/**
 * Server-wide objects every tenant shares (lib/schema/server-objects.ts): one finding per subject
 * role and class it can still use. On a managed server, where migrate's REVOKE on pg_catalog only
 * warns, this is what keeps the gap visible.
 */
export function checkServerObjects(s: AuditSnapshot): Finding[] {
  const out: Finding[] = [];
  for (const r of s.roles.filter((r) => r.exists && s.subjectRoles.includes(r.name))) {
    for (const cls of SERVER_OBJECT_CLASSES) {
      const objects = r.serverObjects.filter((o) => o.class === cls.id).map((o) => o.object);
      if (!objects.length) continue;
      const { check, severity } = SERVER_OBJECT_CHECKS[cls.id];
      out.push({
        check,
        severity,
        object: `role ${r.name}`,
        message: `can use ${objects.slice(0, 6).join(", ")}${objects.length > 6 ? `, … (${objects.length})` : ""}: ${cls.risk}`,
        fix: `tenancy migrate (revokes them from PUBLIC${cls.keptBy.length ? ", keeps them for monitoring/operators" : ""}); by hand, as a superuser: REVOKE ... FROM PUBLIC, ${r.name}`,
      });
    }
  }
  return out;
}

/** `tenant_<hex>_login` → its tenant's uuid. */
function loginRoleTenant(role: string): string {
  const h = role.slice("tenant_".length, "tenant_".length + 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * A dedicated tenant's login role reaches its schema through a permissive policy of its own. The
 * restrictive tenant policy reads the session's setting, which the role can set to any tenant: its
 * own policy must pin it to its own tenant, for rows read (USING) and written (WITH CHECK), and it
 * may exist only in its own schema.
 */
export function checkLoginPolicies(s: AuditSnapshot): Finding[] {
  const tables = new Set(s.relations.filter((r) => isTenantTable(r) && !isControlPlane(r)).map(key));
  const out: Finding[] = [];
  for (const p of s.policies.filter((p) => p.permissive && tables.has(p.table))) {
    for (const role of p.roles.filter((r) => DEDICATED_LOGIN_ROLE_PATTERN.test(r))) {
      const tenant = loginRoleTenant(role);
      const pinned = normalizePolicyExpression(`tenant_id = '${tenant}'::uuid`);
      const is = (e: string | null) => e !== null && normalizePolicyExpression(e) === pinned;
      const ownSchema = p.table.startsWith(`${role.slice(0, -"_login".length)}.`);
      const problems = [
        !ownSchema && `it is on a table outside the role's schema ${role.slice(0, -"_login".length)}`,
        !is(p.using) && `USING ${p.using ?? "(none)"} does not pin reads to tenant ${tenant}`,
        !is(effectiveCheck(p)) && `WITH CHECK ${effectiveCheck(p) ?? "(none)"} does not pin writes to tenant ${tenant}`,
        p.roles.length > 1 && `it also applies to ${p.roles.filter((r) => r !== role).join(", ")}`,
      ].filter(Boolean);
      if (!problems.length) continue;
      out.push({
        check: "login-policy-unpinned",
        severity: "high",
        object: `policy ${p.name} on ${p.table}`,
        message: `the permissive policy of login role ${role}: ${problems.join("; ")}. The role may set app.current_tenant_id to any tenant, so it could read or write rows under another tenant's id (and block that tenant's offboarding)`,
        fix: ownSchema
          ? `tenancy migrate (repairs it); by hand: ALTER POLICY ${p.name} ON ${p.table} TO ${role} USING (tenant_id = '${tenant}'::uuid) WITH CHECK (tenant_id = '${tenant}'::uuid)`
          : `DROP POLICY ${p.name} ON ${p.table}`,
      });
    }
  }
  return out;
}

export function checkServerVersion(s: AuditSnapshot): Finding[] {
  const version = parseServerVersionNum(s.server.versionNum);
  const out: Finding[] = unfixedAdvisories(s.server.versionNum).map((a) => {
    const fixed = fixedRelease(a, version.major);
    return {
      check: "server-version" as const,
      severity: "high" as const,
      object: `server ${version.text}`,
      message: `${a.id}: ${a.summary}${a.note ? ` (${a.note})` : ""}`,
      fix: fixed ? `upgrade to ${fixed} or later` : `upgrade to a supported major release (no fix on the ${version.major} branch)`,
    };
  });
  if (s.server.statsExtRestricted === false && version.major >= 14) {
    const advisory = RLS_ADVISORIES.find((a) => a.id === "CVE-2024-4317")!;
    out.push({
      check: "stats-ext-fix-missing",
      severity: "high",
      object: "view pg_catalog.pg_stats_ext",
      message: `${advisory.id}: extended statistics are visible beyond the table owner (cluster created before the fix; upgrading the binaries alone does not change the view)`,
      fix: "run share/fix-CVE-2024-4317.sql (from the server's share directory) as a superuser in every database, template0 and template1 included",
    });
  }
  return out;
}

export const RULES: readonly ((s: AuditSnapshot, options: AuditOptions) => Finding[])[] = [
  checkRowSecurity,
  checkTenantPolicies,
  checkPermissivePolicies,
  checkPolicyFunctions,
  checkControlPlane,
  checkViews,
  (s, o) => checkSecurityDefiner(s, o.reviewedSecurityDefiner),
  checkForeignKeys,
  checkGrants,
  checkUniqueIndexes,
  checkSequenceDefaults,
  checkRolePosture,
  checkServerObjects,
  checkLoginPolicies,
  checkServerVersion,
  (s, o) =>
    checkVerifiedContext(
      s.verifiedContext,
      o,
      new Set(s.definerFunctions.filter((f) => f.executableBy.length).map((f) => f.signature)),
      o.reviewedSecurityDefiner ?? REVIEWED_SECURITY_DEFINER,
    ),
];

/** Every finding for a snapshot, worst first. */
export function evaluateAudit(snapshot: AuditSnapshot, options: AuditOptions = {}): Finding[] {
  const findings = RULES.flatMap((rule) => rule(snapshot, options));
  const rank = (f: Finding) => SEVERITIES.indexOf(f.severity);
  return findings.sort((a, b) => rank(a) - rank(b) || a.check.localeCompare(b.check) || a.object.localeCompare(b.object));
}

// --- reading the live database -----------------------------------------------------------------

const SYSTEM_SCHEMAS = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'`;
const HAS_TENANT_ID = (rel: string) =>
  `EXISTS (SELECT 1 FROM pg_attribute ta WHERE ta.attrelid = ${rel} AND ta.attname = 'tenant_id' AND ta.attnum > 0 AND NOT ta.attisdropped)`;
const KINDS: Record<string, RelationKind> = { r: "table", p: "partitioned table", v: "view", m: "materialized view", f: "foreign table" };
const COMMAND_CODES: Record<string, PolicyCommand> = { "*": "ALL", r: "SELECT", a: "INSERT", w: "UPDATE", d: "DELETE" };
const VOLATILITY: Record<string, PolicyFunction["volatility"]> = { i: "immutable", s: "stable", v: "volatile" };
const CHUNK_PATTERN = /^(compress)?_hyper_\d+_\d+_chunk$/;

/** Reads everything the rules need, in a handful of catalog queries. */
export async function readAuditSnapshot(client: Queryable, options: AuditOptions = {}): Promise<AuditSnapshot> {
  const subjectRoles = [...(options.subjectRoles ?? RLS_SUBJECT_ROLES)];
  if (!options.subjectRoles) {
    // Roles are cluster-wide: only the login roles that can connect to this database are its subjects.
    const { rows } = await client.query(
      `SELECT rolname::text AS name FROM pg_roles WHERE rolname ~ $1 AND has_database_privilege(oid, current_database(), 'CONNECT') ORDER BY 1`,
      [DEDICATED_LOGIN_ROLE_PATTERN.source],
    );
    subjectRoles.push(...rows.map((r: { name: string }) => r.name));
  }

  const server = (
    await client.query(
      `SELECT current_setting('server_version_num')::int AS "versionNum",
              CASE WHEN to_regclass('pg_catalog.pg_stats_ext') IS NULL THEN NULL
                   ELSE pg_get_viewdef('pg_catalog.pg_stats_ext'::regclass) LIKE '%pg_has_role%' END AS "statsExtRestricted"`,
    )
  ).rows[0];

  const relations = (
    await client.query(
      `SELECT n.nspname AS schema, c.relname AS name, c.relkind AS kind, pg_get_userbyid(c.relowner) AS owner,
              c.relispartition AS partition,
              (SELECT pn.nspname || '.' || p.relname FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
                 JOIN pg_namespace pn ON pn.oid = p.relnamespace WHERE i.inhrelid = c.oid LIMIT 1) AS parent,
              ${HAS_TENANT_ID("c.oid")} AS "hasTenantId",
              c.relrowsecurity AS rls, c.relforcerowsecurity AS "forceRls", coalesce(c.reloptions, '{}') AS options,
              coalesce((SELECT json_agg(json_build_object('grantee', g.grantee, 'privilege', g.privilege) ORDER BY g.grantee, g.privilege)
                          FROM (SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END AS grantee, a.privilege_type AS privilege
                                  FROM aclexplode(c.relacl) a WHERE a.grantee <> c.relowner
                                UNION ALL -- column grants, as "SELECT (price)"
                                SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END, a.privilege_type || ' (' || att.attname || ')'
                                  FROM pg_attribute att, aclexplode(att.attacl) a
                                 WHERE att.attrelid = c.oid AND att.attnum > 0 AND NOT att.attisdropped AND a.grantee <> c.relowner) g), '[]') AS grants,
              ARRAY(SELECT r.rolname::text FROM pg_roles r
                     WHERE r.rolname = ANY($1) AND has_table_privilege(r.oid, c.oid, 'SELECT, INSERT, UPDATE, DELETE') ORDER BY 1) AS "reachableBy"
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND ${SYSTEM_SCHEMAS}
        ORDER BY 1, 2`,
      [subjectRoles],
    )
  ).rows.map((r): RelationFacts => ({
    ...r,
    kind: KINDS[r.kind],
    parent: r.parent ?? undefined,
    chunk: r.schema === "_timescaledb_internal" || CHUNK_PATTERN.test(r.name),
  }));

  const policies = (
    await client.query(
      `SELECT n.nspname || '.' || c.relname AS table, pol.polname AS name, pol.polpermissive AS permissive, pol.polcmd AS command,
              ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(r)::text END FROM unnest(pol.polroles) r) AS roles,
              pg_get_expr(pol.polqual, pol.polrelid) AS using, pg_get_expr(pol.polwithcheck, pol.polrelid) AS "withCheck",
              coalesce((SELECT json_agg(DISTINCT jsonb_build_object(
                                 'signature', pn.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
                                 'volatility', p.provolatile, 'language', l.lanname))
                          FROM pg_depend d JOIN pg_proc p ON p.oid = d.refobjid JOIN pg_namespace pn ON pn.oid = p.pronamespace
                          JOIN pg_language l ON l.oid = p.prolang
                         WHERE d.classid = 'pg_policy'::regclass AND d.objid = pol.oid AND d.refclassid = 'pg_proc'::regclass), '[]') AS functions
         FROM pg_policy pol JOIN pg_class c ON c.oid = pol.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        ORDER BY 1, 2`,
    )
  ).rows.map((p): PolicyFacts => ({
    ...p,
    command: COMMAND_CODES[p.command],
    functions: p.functions.map((f: { signature: string; volatility: string; language: string }) => ({
      ...f,
      volatility: VOLATILITY[f.volatility],
    })),
  }));

  const viewDependencies = (
    await client.query(
      `SELECT vn.nspname || '.' || v.relname AS view, array_agg(DISTINCT rn.nspname || '.' || rc.relname) AS references
         FROM pg_rewrite rw JOIN pg_class v ON v.oid = rw.ev_class JOIN pg_namespace vn ON vn.oid = v.relnamespace
         JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> v.oid
         JOIN pg_class rc ON rc.oid = d.refobjid JOIN pg_namespace rn ON rn.oid = rc.relnamespace
        WHERE v.relkind IN ('v', 'm') AND vn.nspname NOT IN ('pg_catalog', 'information_schema')
        GROUP BY 1`,
    )
  ).rows;

  const definerFunctions = (
    await client.query(
      `SELECT n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS signature,
              pg_get_userbyid(p.proowner) AS owner,
              ARRAY(SELECT r.rolname::text FROM pg_roles r WHERE r.rolname = ANY($1) AND has_function_privilege(r.oid, p.oid, 'EXECUTE') ORDER BY 1)
                || CASE WHEN EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                                      WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE') THEN ARRAY['PUBLIC'] ELSE '{}'::text[] END AS "executableBy",
              EXISTS (SELECT 1 FROM unnest(coalesce(p.proconfig, '{}')) cfg WHERE cfg LIKE 'search_path=%') AS "searchPathPinned"
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE p.prosecdef AND ${SYSTEM_SCHEMAS}
        ORDER BY 1`,
      [subjectRoles],
    )
  ).rows;

  const columnNames = (keys: string, rel: string) =>
    `ARRAY(SELECT a.attname::text FROM unnest(${keys}) WITH ORDINALITY u(attnum, i) JOIN pg_attribute a ON a.attrelid = ${rel} AND a.attnum = u.attnum ORDER BY u.i)`;
  const foreignKeys = (
    await client.query(
      `SELECT k.conname AS name, n.nspname || '.' || c.relname AS table, ${columnNames("k.conkey", "k.conrelid")} AS columns,
              fn.nspname || '.' || f.relname AS references, ${columnNames("k.confkey", "k.confrelid")} AS "referencedColumns"
         FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_class f ON f.oid = k.confrelid JOIN pg_namespace fn ON fn.oid = f.relnamespace
        WHERE k.contype = 'f' AND k.conparentid = 0 AND ${SYSTEM_SCHEMAS}
        ORDER BY 2, 1`,
    )
  ).rows;

  const uniqueIndexes = (
    await client.query(
      `SELECT i.relname AS name, n.nspname || '.' || t.relname AS table,
              ARRAY(SELECT CASE WHEN u.attnum = 0 THEN NULL ELSE a.attname::text END
                      FROM unnest(x.indkey::int2[]) WITH ORDINALITY u(attnum, k)
                      LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = u.attnum
                     WHERE u.k <= x.indnkeyatts ORDER BY u.k) AS columns
         FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE x.indisunique AND ${HAS_TENANT_ID("t.oid")} AND ${SYSTEM_SCHEMAS}
        ORDER BY 2, 1`,
    )
  ).rows;

  const sequenceDefaults = (
    await client.query(
      `SELECT n.nspname || '.' || c.relname AS table, a.attname AS column,
              CASE WHEN a.attidentity <> '' THEN 'GENERATED AS IDENTITY' ELSE pg_get_expr(d.adbin, d.adrelid) END AS expression
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND ${SYSTEM_SCHEMAS} AND ${HAS_TENANT_ID("c.oid")}
          AND (a.attidentity <> '' OR pg_get_expr(d.adbin, d.adrelid) ~* 'nextval\\(')
        ORDER BY 1, 2`,
    )
  ).rows;

  const roleRows = (
    await client.query(
      `SELECT r.rolname AS name, r.rolsuper AS superuser, r.rolbypassrls AS "bypassRls", r.rolcreaterole AS "createRole",
              r.rolcreatedb AS "createDb", r.rolreplication AS replication,
              ARRAY(WITH RECURSIVE up(oid) AS (
                      SELECT m.roleid FROM pg_auth_members m WHERE m.member = r.oid
                      UNION SELECT m.roleid FROM pg_auth_members m JOIN up ON m.member = up.oid)
                    SELECT pg_get_userbyid(up.oid)::text FROM up ORDER BY 1) AS "memberOf",
              ARRAY(SELECT o.what FROM (
                      SELECT CASE c.relkind WHEN 'S' THEN 'sequence ' WHEN 'v' THEN 'view ' WHEN 'm' THEN 'materialized view ' ELSE 'table ' END
                             || n.nspname || '.' || c.relname AS what
                        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE c.relowner = r.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
                      UNION ALL SELECT 'schema ' || n.nspname FROM pg_namespace n WHERE n.nspowner = r.oid
                      UNION ALL SELECT 'function ' || n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
                        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.proowner = r.oid
                      UNION ALL SELECT 'type ' || n.nspname || '.' || t.typname
                        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                       WHERE t.typowner = r.oid AND t.typrelid = 0 AND t.typcategory <> 'A'
                      UNION ALL SELECT 'database ' || d.datname FROM pg_database d WHERE d.datdba = r.oid AND d.datname = current_database()
                    ) o ORDER BY 1) AS owns,
              ARRAY(SELECT n.nspname::text FROM pg_namespace n
                     WHERE has_schema_privilege(r.oid, n.oid, 'CREATE') AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)' ORDER BY 1) AS "createOnSchemas",
              has_database_privilege(r.oid, current_database(), 'CREATE') AS "databaseCreate",
              has_database_privilege(r.oid, current_database(), 'TEMPORARY') AS "databaseTemporary",
              ARRAY(SELECT what FROM (
                      SELECT 'view pg_catalog.pg_stat_activity' AS what WHERE has_table_privilege(r.oid, 'pg_catalog.pg_stat_activity', 'SELECT')
                      UNION ALL
                      SELECT 'function pg_catalog.' || p.oid::regprocedure::text
                        FROM pg_proc p
                       WHERE p.pronamespace = 'pg_catalog'::regnamespace
                         AND (p.proname = 'pg_stat_get_activity' OR p.proname LIKE 'pg\\_stat\\_get\\_backend\\_%')
                         AND has_function_privilege(r.oid, p.oid, 'EXECUTE')
                      UNION ALL
                      SELECT 'view ' || n.nspname || '.' || c.relname
                        FROM pg_extension e JOIN pg_depend d ON d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid AND d.deptype = 'e'
                        JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE e.extname = 'pg_stat_statements' AND c.relname = 'pg_stat_statements' AND has_table_privilege(r.oid, c.oid, 'SELECT')
                      UNION ALL
                      SELECT 'function ' || n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
                        FROM pg_extension e JOIN pg_depend d ON d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid AND d.deptype = 'e'
                        JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid JOIN pg_namespace n ON n.oid = p.pronamespace
                       WHERE e.extname = 'pg_stat_statements' AND p.proname = 'pg_stat_statements' AND has_function_privilege(r.oid, p.oid, 'EXECUTE')
                    ) AS a ORDER BY 1) AS "readsActivity",
              ARRAY(SELECT 'function pg_catalog.' || p.oid::regprocedure::text
                      FROM pg_proc p
                     WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname ~ $2
                       AND has_function_privilege(r.oid, p.oid, 'EXECUTE')
                     ORDER BY 1) AS "advisoryLocks",
              coalesce((SELECT json_agg(json_build_object('class', o.class, 'object', o.object) ORDER BY o.class, o.object) FROM (
                      SELECT k.id AS class, 'function pg_catalog.' || p.oid::regprocedure::text AS object
                        FROM unnest($3::text[], $4::text[], $5::text[]) AS k(id, name, args)
                        JOIN pg_proc p ON p.pronamespace = 'pg_catalog'::regnamespace AND p.proname ~ k.name
                                      AND (k.args IS NULL OR pg_get_function_identity_arguments(p.oid) = k.args)
                       WHERE k.name IS NOT NULL AND has_function_privilege(r.oid, p.oid, 'EXECUTE')
                      UNION ALL
                      SELECT k.id, 'view pg_catalog.' || c.relname
                        FROM unnest($3::text[], $6::text[]) AS k(id, views)
                        JOIN pg_class c ON c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'v' AND c.relname ~ k.views
                       WHERE k.views IS NOT NULL AND has_table_privilege(r.oid, c.oid, 'SELECT')) o), '[]') AS "serverObjects"
         FROM pg_roles r WHERE r.rolname = ANY($1)`,
      [
        subjectRoles,
        ADVISORY_LOCK_FUNCTION_NAMES,
        SERVER_OBJECT_CLASSES.map((c) => c.id),
        SERVER_OBJECT_CLASSES.map((c) => c.functions?.name ?? null),
        SERVER_OBJECT_CLASSES.map((c) => c.functions?.args ?? null),
        SERVER_OBJECT_CLASSES.map((c) => c.views ?? null),
      ],
    )
  ).rows;
  const roles: RoleFacts[] = subjectRoles.map((name) => {
    const row = roleRows.find((r: { name: string }) => r.name === name);
    return row
      ? { ...row, exists: true }
      : {
          name,
          exists: false,
          superuser: false,
          bypassRls: false,
          createRole: false,
          createDb: false,
          replication: false,
          memberOf: [],
          owns: [],
          createOnSchemas: [],
          databaseCreate: false,
          databaseTemporary: false,
          readsActivity: [],
          advisoryLocks: [],
          serverObjects: [],
        };
  });

  return {
    server,
    subjectRoles,
    roles,
    relations,
    policies,
    viewDependencies,
    definerFunctions,
    foreignKeys,
    uniqueIndexes,
    sequenceDefaults,
    verifiedContext: await readVerifiedContextFacts(client, subjectRoles),
  };
}

/** Lints the database `client` is connected to; an empty list means clean. */
export async function auditDatabase(client: Queryable, options: AuditOptions = {}): Promise<Finding[]> {
  return evaluateAudit(await readAuditSnapshot(client, options), options);
}
