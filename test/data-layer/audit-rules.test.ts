/**
 * The audit's rules over hand-written snapshots (pure): a snapshot shaped like a freshly migrated
 * database is clean, and each breakage produces exactly the finding it should.
 */
import { describe, expect, it } from "vitest";
import {
  checkSecurityDefiner,
  calledOncePerStatement,
  effectiveCheck,
  evaluateAudit,
  isSecurityInvoker,
  isTenantPredicate,
  type AuditSnapshot,
  type PolicyFacts,
  type RelationFacts,
  type RoleFacts,
} from "../../lib/audit/isolation-audit";
import { TENANT_TABLES } from "../../lib/schema/catalogue";
import { ROLES } from "../../lib/schema/roles";
import { TENANT_PREDICATE } from "../../lib/schema/planner";
import { DEPARSED_FUNCTION_PREDICATE as FUNCTION_PREDICATE, DEPARSED_TENANT_PREDICATE as DEPARSED } from "./harness";

const APP = ROLES.app;
const RO = ROLES.readonly;

function table(schema: string, name: string, patch: Partial<RelationFacts> = {}): RelationFacts {
  return {
    schema,
    name,
    kind: "table",
    owner: ROLES.owner,
    partition: false,
    chunk: false,
    hasTenantId: true,
    rls: true,
    forceRls: true,
    options: [],
    grants: [
      { grantee: APP, privilege: "SELECT" },
      { grantee: APP, privilege: "INSERT" },
      { grantee: APP, privilege: "UPDATE" },
      { grantee: APP, privilege: "DELETE" },
      { grantee: RO, privilege: "SELECT" },
    ],
    reachableBy: [RO, APP],
    ...patch,
  };
}

function tenantPolicies(tableKey: string): PolicyFacts[] {
  return [
    {
      table: tableKey,
      name: "tenant_isolation",
      permissive: false,
      command: "ALL",
      roles: ["PUBLIC"],
      using: DEPARSED,
      withCheck: DEPARSED,
      functions: [],
    },
    {
      table: tableKey,
      name: "tenant_access",
      permissive: true,
      command: "ALL",
      roles: [APP, RO],
      using: "true",
      withCheck: "true",
      functions: [],
    },
  ];
}

function role(name: string, patch: Partial<RoleFacts> = {}): RoleFacts {
  return {
    name,
    exists: true,
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
    ...patch,
  };
}

/** What a freshly migrated database looks like to the audit. */
function clean(): AuditSnapshot {
  const relations = TENANT_TABLES.map((t) => table("shared", t.name));
  relations.push(
    table("tenancy", "tenants", { hasTenantId: false, rls: true, forceRls: false, reachableBy: [RO, APP] }),
    table("tenancy", "tenant_moves", {
      rls: false,
      forceRls: false,
      reachableBy: [],
      grants: [{ grantee: ROLES.maintenance, privilege: "SELECT" }],
    }),
    table("market_data", "ohlcv", { hasTenantId: false, rls: false, forceRls: false }),
  );
  return {
    server: { versionNum: 150020, statsExtRestricted: true },
    subjectRoles: [APP, RO],
    roles: [role(APP), role(RO)],
    relations,
    policies: TENANT_TABLES.flatMap((t) => tenantPolicies(`shared.${t.name}`)),
    viewDependencies: [],
    definerFunctions: [],
    foreignKeys: [
      {
        name: "trades_position_id_fkey",
        table: "shared.trades",
        columns: ["tenant_id", "position_id"],
        references: "shared.positions",
        referencedColumns: ["tenant_id", "id"],
      },
      {
        name: "trades_tenant_fkey",
        table: "shared.trades",
        columns: ["tenant_id"],
        references: "tenancy.tenants",
        referencedColumns: ["id"],
      },
    ],
    uniqueIndexes: [
      { name: "trades_pkey", table: "shared.trades", columns: ["tenant_id", "id"] },
      { name: "tenant_moves_pkey", table: "tenancy.tenant_moves", columns: ["id"] },
    ],
    sequenceDefaults: [{ table: "tenancy.tenant_moves", column: "id", expression: "GENERATED AS IDENTITY" }],
  };
}

const rel = (s: AuditSnapshot, key: string) => s.relations.find((r) => `${r.schema}.${r.name}` === key)!;
const policy = (s: AuditSnapshot, key: string, name: string) => s.policies.find((p) => p.table === key && p.name === name)!;
/** A second restrictive policy on shared.trades (one of ours might add, say, a region check): where function rules are tried. */
const extraPolicy = (s: AuditSnapshot, using = FUNCTION_PREDICATE): PolicyFacts => {
  const p: PolicyFacts = { ...policy(s, "shared.trades", "tenant_isolation"), name: "extra_check", using, withCheck: using, functions: [] };
  s.policies.push(p);
  return p;
};
const D_ID = "0b5e8f3c-1d2a-4c8e-9f1a-2b3c4d5e6f70";
const D_SCHEMA = "tenant_0b5e8f3c1d2a4c8e9f1a2b3c4d5e6f70";
const D_ROLE = `${D_SCHEMA}_login`;
const loginPolicy = (predicate: string): PolicyFacts => ({
  table: `${D_SCHEMA}.trades`,
  name: "tenant_login",
  permissive: true,
  command: "ALL",
  roles: [D_ROLE],
  using: predicate,
  withCheck: predicate,
  functions: [],
});
/** A dedicated tenant with its login role, as migrate leaves it but for the login policy's predicate. */
const addLoginRole = (s: AuditSnapshot, predicate: string): PolicyFacts => {
  s.subjectRoles.push(D_ROLE);
  s.roles.push(role(D_ROLE));
  s.relations.push(table(D_SCHEMA, "trades"));
  s.policies.push(...tenantPolicies(`${D_SCHEMA}.trades`));
  const p = loginPolicy(predicate);
  s.policies.push(p);
  return p;
};
const findings = (s: AuditSnapshot) => evaluateAudit(s).map((f) => [f.severity, f.check, f.object]);

describe("evaluateAudit", () => {
  it("a freshly migrated database is clean", () => {
    expect(evaluateAudit(clean())).toEqual([]);
  });

  it.each<[string, (s: AuditSnapshot) => void, [string, string, string][]]>([
    ["RLS disabled", (s) => (rel(s, "shared.trades").rls = false), [["critical", "rls-disabled", "table shared.trades"]]],
    [
      "RLS disabled on a table no subject role reaches",
      (s) => Object.assign(rel(s, "shared.trades"), { rls: false, reachableBy: [] }),
      [["high", "rls-disabled", "table shared.trades"]],
    ],
    ["RLS not forced", (s) => (rel(s, "shared.trades").forceRls = false), [["high", "rls-not-forced", "table shared.trades"]]],
    [
      "RLS not forced on a table app_user owns",
      (s) => Object.assign(rel(s, "shared.trades"), { forceRls: false, owner: APP }),
      [["critical", "rls-not-forced", "table shared.trades"]],
    ],
    [
      "an unknown table with tenant_id and nothing else",
      (s) => s.relations.push(table("public", "audit_log", { rls: false, forceRls: false, owner: "postgres" })),
      [
        ["critical", "rls-disabled", "table public.audit_log"],
        ["critical", "tenant-policy-missing", "table public.audit_log"],
        ["high", "rls-not-forced", "table public.audit_log"],
      ],
    ],
    [
      "a dedicated schema's table not forced",
      (s) => {
        s.relations.push(table("tenant_0b5e8f3c1d2a4c8e9f1a2b3c4d5e6f70", "trades", { forceRls: false }));
        s.policies.push(...tenantPolicies("tenant_0b5e8f3c1d2a4c8e9f1a2b3c4d5e6f70.trades"));
      },
      [["high", "rls-not-forced", "table tenant_0b5e8f3c1d2a4c8e9f1a2b3c4d5e6f70.trades"]],
    ],
    [
      "a partition without RLS",
      (s) => {
        s.relations.push(
          table("shared", "fills", { kind: "partitioned table" }),
          table("shared", "fills_2026", { partition: true, parent: "shared.fills", rls: false, forceRls: false, reachableBy: [] }),
        );
        s.policies.push(...tenantPolicies("shared.fills"));
      },
      [
        ["high", "rls-disabled", "partition shared.fills_2026 of shared.fills"],
        ["high", "rls-not-forced", "partition shared.fills_2026 of shared.fills"],
        ["high", "tenant-policy-missing", "partition shared.fills_2026 of shared.fills"],
      ],
    ],
    [
      "a TimescaleDB chunk without RLS, readable by app_user",
      (s) =>
        s.relations.push(
          table("_timescaledb_internal", "_hyper_1_1_chunk", {
            chunk: true,
            parent: "shared.fills",
            rls: false,
            forceRls: false,
            reachableBy: [APP],
          }),
        ),
      [
        ["critical", "rls-disabled", "TimescaleDB chunk _timescaledb_internal._hyper_1_1_chunk of shared.fills"],
        ["critical", "tenant-policy-missing", "TimescaleDB chunk _timescaledb_internal._hyper_1_1_chunk of shared.fills"],
        ["high", "rls-not-forced", "TimescaleDB chunk _timescaledb_internal._hyper_1_1_chunk of shared.fills"],
      ],
    ],
    [
      "the tenant predicate only permissive (ORed with the access policy)",
      (s) => (policy(s, "shared.trades", "tenant_isolation").permissive = true),
      [
        ["critical", "tenant-policy-missing", "table shared.trades"],
        ["medium", "permissive-policy-roles", "policy tenant_isolation on shared.trades"],
      ],
    ],
    [
      "a fail-open predicate",
      (s) =>
        (policy(s, "shared.trades", "tenant_isolation").using =
          `(${DEPARSED} OR (current_setting('app.current_tenant_id'::text, true) IS NULL))`),
      [["critical", "tenant-policy-predicate", "table shared.trades"]],
    ],
    [
      "WITH CHECK (true)",
      (s) => (policy(s, "shared.trades", "tenant_isolation").withCheck = "true"),
      [["critical", "tenant-policy-with-check", "table shared.trades"]],
    ],
    [
      "no WITH CHECK on a FOR ALL policy (USING is used): clean",
      (s) => (policy(s, "shared.trades", "tenant_isolation").withCheck = null),
      [],
    ],
    [
      "the restrictive policy only FOR SELECT",
      (s) => (policy(s, "shared.trades", "tenant_isolation").command = "SELECT"),
      [["critical", "tenant-policy-commands", "table shared.trades"]],
    ],
    [
      "the restrictive policy only TO app_user",
      (s) => (policy(s, "shared.trades", "tenant_isolation").roles = [APP]),
      [["critical", "tenant-policy-roles", "table shared.trades"]],
    ],
    [
      "split per command and complete: clean",
      (s) => {
        s.policies = s.policies.filter((p) => !(p.table === "shared.trades" && p.name === "tenant_isolation"));
        for (const command of ["SELECT", "DELETE"] as const)
          s.policies.push({ ...tenantPolicies("shared.trades")[0], name: `iso_${command}`, command, withCheck: null });
        s.policies.push({ ...tenantPolicies("shared.trades")[0], name: "iso_insert", command: "INSERT", using: null });
        s.policies.push({ ...tenantPolicies("shared.trades")[0], name: "iso_update", command: "UPDATE" });
      },
      [],
    ],
    [
      "a support policy TO PUBLIC",
      (s) =>
        s.policies.push({
          table: "shared.trades",
          name: "support_read",
          permissive: true,
          command: "SELECT",
          roles: ["PUBLIC"],
          using: "true",
          withCheck: null,
          functions: [],
        }),
      [["medium", "permissive-policy-roles", "policy support_read on shared.trades"]],
    ],
    [
      "an IMMUTABLE function in a policy",
      (s) =>
        extraPolicy(s).functions.push({
          signature: "shared.tenant_immutable()",
          volatility: "immutable",
          language: "sql",
        }),
      [["critical", "policy-function-immutable", "function shared.tenant_immutable() in policy extra_check on shared.trades"]],
    ],
    [
      "a VOLATILE plpgsql function in a policy",
      (s) =>
        extraPolicy(s).functions.push({
          signature: "shared.who()",
          volatility: "volatile",
          language: "plpgsql",
        }),
      [["high", "policy-function-volatile", "function shared.who() in policy extra_check on shared.trades"]],
    ],
    [
      "a STABLE plpgsql function in a policy",
      (s) =>
        extraPolicy(s).functions.push({
          signature: "shared.who()",
          volatility: "stable",
          language: "plpgsql",
        }),
      [["medium", "policy-function-volatile", "function shared.who() in policy extra_check on shared.trades"]],
    ],
    [
      "the tenant predicate's text, but calling a lookalike current_setting() from another schema",
      (s) =>
        (policy(s, "shared.trades", "tenant_isolation").functions = [
          { signature: "public.current_setting(text, boolean)", volatility: "stable", language: "sql" },
        ]),
      [["critical", "tenant-policy-predicate", "table shared.trades"]],
    ],
    [
      "the 0006–0008 tenant predicate, a function call, in place of the inline one",
      (s) => {
        for (const p of s.policies.filter((x) => x.name === "tenant_isolation" && x.table === "shared.trades")) {
          p.using = p.withCheck = FUNCTION_PREDICATE;
          p.functions = [{ signature: "tenancy.current_tenant_id()", volatility: "stable", language: "plpgsql" }];
        }
      },
      [["critical", "tenant-policy-predicate", "table shared.trades"]],
    ],
    [
      "a STABLE plpgsql function called as (SELECT ...) in another policy: once per statement, clean",
      (s) => extraPolicy(s).functions.push({ signature: "tenancy.current_tenant_id()", volatility: "stable", language: "plpgsql" }),
      [],
    ],
    [
      "a STABLE plpgsql function called per row (not wrapped in a sub-select) in another policy",
      (s) =>
        extraPolicy(s, "(tenant_id = tenancy.current_tenant_id())").functions.push({
          signature: "tenancy.current_tenant_id()",
          volatility: "stable",
          language: "plpgsql",
        }),
      [["medium", "policy-function-volatile", "function tenancy.current_tenant_id() in policy extra_check on shared.trades"]],
    ],
    [
      "a STABLE sql function in another policy: clean",
      (s) => extraPolicy(s).functions.push({ signature: "tenancy.current_tenant_id()", volatility: "stable", language: "sql" }),
      [],
    ],
    [
      "a control-plane table readable by app_user",
      (s) => (rel(s, "tenancy.tenant_moves").reachableBy = [APP]),
      [["high", "control-plane-reachable", "table tenancy.tenant_moves"]],
    ],
    [
      "a view over a view over trades, without security_invoker, readable by app_user",
      (s) => {
        s.relations.push(
          table("public", "v1", { kind: "view", hasTenantId: true, reachableBy: [] }),
          table("public", "v2", { kind: "view", hasTenantId: false, reachableBy: [APP] }),
        );
        s.viewDependencies.push({ view: "public.v1", references: ["shared.trades"] }, { view: "public.v2", references: ["public.v1"] });
      },
      [
        ["high", "view-not-security-invoker", "view public.v2"],
        ["medium", "view-not-security-invoker", "view public.v1"],
      ],
    ],
    [
      "a security_invoker view: clean",
      (s) => {
        s.relations.push(table("public", "v1", { kind: "view", options: ["security_invoker=true"] }));
        s.viewDependencies.push({ view: "public.v1", references: ["shared.trades"] });
      },
      [],
    ],
    [
      "a view over market data only: clean",
      (s) => {
        s.relations.push(table("public", "prices", { kind: "view", hasTenantId: false }));
        s.viewDependencies.push({ view: "public.prices", references: ["market_data.ohlcv"] });
      },
      [],
    ],
    [
      "a materialized view over trades readable by app_user",
      (s) => {
        s.relations.push(table("public", "mv", { kind: "materialized view" }));
        s.viewDependencies.push({ view: "public.mv", references: ["shared.trades"] });
      },
      [["critical", "matview-over-tenant-data", "materialized view public.mv"]],
    ],
    [
      "a SECURITY DEFINER function executable by PUBLIC",
      (s) =>
        s.definerFunctions.push({
          signature: "public.peek(uuid)",
          owner: "postgres",
          executableBy: [APP, RO, "PUBLIC"],
          searchPathPinned: false,
        }),
      [["high", "security-definer-executable", "function public.peek(uuid)"]],
    ],
    [
      "a SECURITY DEFINER function nobody subject to RLS may execute: clean",
      (s) => s.definerFunctions.push({ signature: "tenancy.admin()", owner: "postgres", executableBy: [], searchPathPinned: false }),
      [],
    ],
    [
      "a foreign key between tenant tables without tenant_id",
      (s) => (s.foreignKeys[0] = { ...s.foreignKeys[0], columns: ["position_id"], referencedColumns: ["id"] }),
      [["high", "foreign-key-without-tenant", "foreign key trades_position_id_fkey on shared.trades"]],
    ],
    [
      "a foreign key pairing tenant_id with the wrong column",
      (s) => (s.foreignKeys[0] = { ...s.foreignKeys[0], columns: ["tenant_id", "position_id"], referencedColumns: ["id", "tenant_id"] }),
      [["high", "foreign-key-without-tenant", "foreign key trades_position_id_fkey on shared.trades"]],
    ],
    [
      "SELECT to PUBLIC",
      (s) => rel(s, "shared.trades").grants.push({ grantee: "PUBLIC", privilege: "SELECT" }),
      [["high", "grant-public", "table shared.trades"]],
    ],
    [
      "TRUNCATE to app_user",
      (s) => rel(s, "shared.trades").grants.push({ grantee: APP, privilege: "TRUNCATE" }),
      [["critical", "grant-dangerous", "table shared.trades"]],
    ],
    [
      "REFERENCES to the read-only role",
      (s) => rel(s, "shared.trades").grants.push({ grantee: RO, privilege: "REFERENCES" }),
      [["high", "grant-dangerous", "table shared.trades"]],
    ],
    [
      "a global unique index",
      (s) => s.uniqueIndexes.push({ name: "trades_coid_key", table: "shared.trades", columns: ["client_order_id"] }),
      [["medium", "unique-index-global", "index trades_coid_key on shared.trades"]],
    ],
    [
      "a unique expression index",
      (s) => s.uniqueIndexes.push({ name: "trades_lower_key", table: "shared.trades", columns: [null] }),
      [["medium", "unique-index-global", "index trades_lower_key on shared.trades"]],
    ],
    [
      "a bigserial on a tenant table",
      (s) => s.sequenceDefaults.push({ table: "shared.trades", column: "seq", expression: "nextval('shared.trades_seq_seq'::regclass)" }),
      [["low", "sequence-default", "column shared.trades.seq"]],
    ],
    ["app_user superuser", (s) => (s.roles[0].superuser = true), [["critical", "role-superuser", "role app_user"]]],
    ["app_user BYPASSRLS", (s) => (s.roles[0].bypassRls = true), [["critical", "role-bypassrls", "role app_user"]]],
    ["app_user CREATEROLE", (s) => (s.roles[0].createRole = true), [["critical", "role-attributes", "role app_user"]]],
    ["app_user CREATEDB", (s) => (s.roles[0].createDb = true), [["high", "role-attributes", "role app_user"]]],
    ["app_user member of the owner", (s) => (s.roles[0].memberOf = [ROLES.owner]), [["critical", "role-membership", "role app_user"]]],
    ["app_user owns a table", (s) => (s.roles[0].owns = ["table public.notes"]), [["high", "role-owns-objects", "role app_user"]]],
    ["app_user may create in shared", (s) => (s.roles[0].createOnSchemas = ["shared"]), [["high", "role-create-schema", "role app_user"]]],
    ["app_user may create schemas", (s) => (s.roles[0].databaseCreate = true), [["high", "role-create-database", "role app_user"]]],
    ["app_user may create temp tables", (s) => (s.roles[0].databaseTemporary = true), [["medium", "role-temporary", "role app_user"]]],
    [
      "app_user may read other sessions' activity",
      (s) => (s.roles[0].readsActivity = ["function pg_catalog.pg_stat_get_backend_activity(integer)"]),
      [["high", "role-reads-activity", "role app_user"]],
    ],
    [
      "app_user may take any advisory lock",
      (s) => (s.roles[0].advisoryLocks = ["function pg_catalog.pg_try_advisory_xact_lock(bigint)"]),
      [["medium", "role-advisory-locks", "role app_user"]],
    ],
    [
      "the read-only role may still take the gate's lock function itself (the state before 0009)",
      (s) => (s.roles[1].advisoryLocks = ["function pg_catalog.pg_advisory_xact_lock_shared(bigint)"]),
      [["medium", "role-advisory-locks", `role ${RO}`]],
    ],
    [
      "app_user and the read-only role may cancel and terminate backends",
      (s) => {
        for (const r of s.roles)
          r.serverObjects = [
            { class: "signal-backends", object: "function pg_catalog.pg_cancel_backend(integer)" },
            { class: "signal-backends", object: "function pg_catalog.pg_terminate_backend(integer,bigint)" },
          ];
      },
      [
        ["high", "role-signals-backends", `role ${RO}`],
        ["high", "role-signals-backends", "role app_user"],
      ],
    ],
    [
      "app_user may use large objects",
      (s) => (s.roles[0].serverObjects = [{ class: "large-objects", object: "function pg_catalog.lo_get(oid)" }]),
      [["high", "role-large-objects", "role app_user"]],
    ],
    [
      "app_user may read pg_locks",
      (s) => (s.roles[0].serverObjects = [{ class: "lock-status", object: "view pg_catalog.pg_locks" }]),
      [["medium", "role-reads-locks", "role app_user"]],
    ],
    [
      "app_user may read per-table statistics",
      (s) => (s.roles[0].serverObjects = [{ class: "object-statistics", object: "view pg_catalog.pg_stat_user_tables" }]),
      [["medium", "role-reads-object-stats", "role app_user"]],
    ],
    [
      "app_user may call pg_notify()",
      (s) => (s.roles[0].serverObjects = [{ class: "notifications", object: "function pg_catalog.pg_notify(text,text)" }]),
      [["low", "role-notifications", "role app_user"]],
    ],
    ["a dedicated login role's policy pinned to its tenant: clean", (s) => addLoginRole(s, `(tenant_id = '${D_ID}'::uuid)`), []],
    [
      "a dedicated login role's policy USING (true) WITH CHECK (true)",
      (s) => addLoginRole(s, "true"),
      [["high", "login-policy-unpinned", `policy tenant_login on ${D_SCHEMA}.trades`]],
    ],
    [
      "a dedicated login role's policy that pins reads but not writes",
      (s) => (addLoginRole(s, `(tenant_id = '${D_ID}'::uuid)`).withCheck = "true"),
      [["high", "login-policy-unpinned", `policy tenant_login on ${D_SCHEMA}.trades`]],
    ],
    [
      "a dedicated login role's policy pinned to another tenant",
      (s) => addLoginRole(s, "(tenant_id = '0b5e8f3c-7777-4bbb-8bbb-bbbbbbbbbbbb'::uuid)"),
      [["high", "login-policy-unpinned", `policy tenant_login on ${D_SCHEMA}.trades`]],
    ],
    [
      "a dedicated login role's pinned policy on a shared table",
      (s) => {
        s.subjectRoles.push(D_ROLE);
        s.roles.push(role(D_ROLE));
        s.policies.push({ ...loginPolicy(`(tenant_id = '${D_ID}'::uuid)`), table: "shared.trades" });
      },
      [["high", "login-policy-unpinned", "policy tenant_login on shared.trades"]],
    ],
    [
      "the reviewed SECURITY DEFINER gate function, search_path pinned: clean",
      (s) =>
        s.definerFunctions.push({
          signature: "tenancy.take_tenant_gate()",
          owner: ROLES.owner,
          executableBy: [APP, RO],
          searchPathPinned: true,
        }),
      [],
    ],
    ["the read-only role missing", (s) => (s.roles[1].exists = false), [["medium", "role-missing", `role ${RO}`]]],
    ["server 15.18", (s) => (s.server.versionNum = 150018), [["high", "server-version", "server 15.18"]]],
    [
      "pg_stats_ext not restricted (CVE-2024-4317 fix script not run)",
      (s) => (s.server.statsExtRestricted = false),
      [["high", "stats-ext-fix-missing", "view pg_catalog.pg_stats_ext"]],
    ],
  ])("%s", (_name, breakIt, expected) => {
    const s = clean();
    breakIt(s);
    expect(findings(s)).toEqual(expected);
  });

  it("every finding names its object and a fix", () => {
    const s = clean();
    s.relations.push(table("public", "audit_log", { rls: false, forceRls: false }));
    s.roles[0] = role(APP, { superuser: true, memberOf: ["x"], owns: ["table y"], createOnSchemas: ["public"], databaseTemporary: true });
    s.server.versionNum = 150002;
    for (const f of evaluateAudit(s)) {
      expect(f.object.length).toBeGreaterThan(3);
      expect(f.message.length).toBeGreaterThan(10);
      expect(f.fix.length).toBeGreaterThan(5);
    }
  });

  it("orders findings worst first", () => {
    const s = clean();
    s.sequenceDefaults.push({ table: "shared.trades", column: "seq", expression: "nextval('x')" });
    s.roles[0].superuser = true;
    s.roles[0].databaseTemporary = true;
    expect(evaluateAudit(s).map((f) => f.severity)).toEqual(["critical", "medium", "low"]);
  });
});

describe("helpers", () => {
  it.each([
    [["security_invoker=true"], true],
    [["security_invoker=on"], true],
    [["security_barrier=true"], false],
    [["security_invoker=false"], false],
    [[], false],
  ])("isSecurityInvoker(%j) = %s", (options, expected) => {
    expect(isSecurityInvoker(options)).toBe(expected);
  });

  it("recognises the tenant predicate as written and as deparsed, and nothing else", () => {
    expect(isTenantPredicate(TENANT_PREDICATE)).toBe(true);
    expect(isTenantPredicate(DEPARSED)).toBe(true);
    expect(isTenantPredicate(null)).toBe(false);
    expect(isTenantPredicate(`${DEPARSED} OR true`)).toBe(false);
    expect(isTenantPredicate(FUNCTION_PREDICATE)).toBe(false);
    // A validation that lets anything through would raise on garbage instead of matching nothing.
    expect(isTenantPredicate(DEPARSED.replace(/'\^\[0-9a-f\][^']*'/, "'.*'"))).toBe(false);
  });

  it.each<[string, string | null, string | null, boolean]>([
    ["deparsed, both expressions", FUNCTION_PREDICATE, FUNCTION_PREDICATE, true],
    ["deparsed without the schema (on the search_path)", "(tenant_id = ( SELECT current_tenant_id() AS current_tenant_id))", null, true],
    ["called directly", "(tenant_id = tenancy.current_tenant_id())", null, false],
    ["wrapped in USING, direct in WITH CHECK", FUNCTION_PREDICATE, "(tenant_id = tenancy.current_tenant_id())", false],
    ["wrapped once, direct once", `(${FUNCTION_PREDICATE} OR (tenant_id = tenancy.current_tenant_id()))`, null, false],
    ["a lookalike from another schema", "(tenant_id = ( SELECT other.current_tenant_id() AS current_tenant_id))", null, false],
    ["not called at all", "true", "true", false],
  ])("calledOncePerStatement: %s → %s", (_name, using, withCheck, expected) => {
    expect(calledOncePerStatement({ using, withCheck }, "tenancy.current_tenant_id()")).toBe(expected);
  });

  it("effectiveCheck: a FOR ALL / UPDATE policy without WITH CHECK checks new rows with USING", () => {
    expect(effectiveCheck({ command: "ALL", using: "a", withCheck: null })).toBe("a");
    expect(effectiveCheck({ command: "UPDATE", using: "a", withCheck: null })).toBe("a");
    expect(effectiveCheck({ command: "SELECT", using: "a", withCheck: null })).toBeNull();
    expect(effectiveCheck({ command: "ALL", using: "a", withCheck: "b" })).toBe("b");
  });

  it("a reviewed SECURITY DEFINER function passes only with a pinned search_path (the list is empty: none is reviewed today)", () => {
    const fn = { signature: "tenancy.reviewed()", owner: ROLES.owner, executableBy: [APP], searchPathPinned: true };
    const reviewed = { "tenancy.reviewed()": "test" };
    const snapshot = { ...clean(), definerFunctions: [fn] };
    expect(checkSecurityDefiner(snapshot, reviewed)).toEqual([]);
    expect(
      checkSecurityDefiner({ ...snapshot, definerFunctions: [{ ...fn, searchPathPinned: false }] }, reviewed).map((f) => f.check),
    ).toEqual(["security-definer-executable"]);
    expect(checkSecurityDefiner(snapshot).map((f) => f.check)).toEqual(["security-definer-executable"]);
  });
});
