/**
 * Server-wide objects every tenant shares, because every tenant connects as the same role
 * (app_user, or readonly) and RLS covers none of them. PostgreSQL grants them to PUBLIC; the
 * application needs none of them, so `migrate` (planServerObjects, every run) revokes them from
 * PUBLIC and hands them to the roles that do need them (monitoring, operators), and the audit
 * (lib/audit/isolation-audit.ts, the role-* checks named below) reports any RLS-subject role that
 * can still use one.
 *
 * pg_catalog belongs to the bootstrap superuser. On a managed server (RDS) the migrate role is not
 * one and such a REVOKE only warns ("no privileges could be revoked"): the audit keeps that visible.
 * What privileges cannot close (LISTEN/NOTIFY statements, planner statistics) is an accepted
 * residual in docs/data-layer.md.
 */
import type { Queryable } from "../db/client";
import { ident } from "../db/sql";

export type ServerObjectClassId = "signal-backends" | "large-objects" | "lock-status" | "object-statistics" | "notifications";

/** Who keeps a class once PUBLIC loses it. */
export type Keeper = "operators" | "monitoring" | "signallers";

export interface ServerObjectClass {
  id: ServerObjectClassId;
  /** pg_catalog functions: a name pattern (`proname ~`), and the identity arguments when only those overloads belong. */
  functions?: { name: string; args?: string };
  /** pg_catalog views, by name pattern (`relname ~`). */
  views?: string;
  keptBy: readonly Keeper[];
  /** What a tenant does with it, for the audit's message. */
  risk: string;
}

export const SERVER_OBJECT_CLASSES: readonly ServerObjectClass[] = [
  {
    id: "signal-backends",
    functions: { name: "^pg_(cancel|terminate)_backend$" },
    keptBy: ["operators", "signallers"],
    risk: "a role may cancel or terminate its own other sessions, and every tenant's sessions are this role's: one tenant cancels another's statements or drops its connections",
  },
  {
    id: "large-objects",
    functions: { name: "^(lo_.*|loread|lowrite)$" },
    keptBy: [],
    risk: "large objects are per database, outside RLS, and owned by the role that created them: one tenant writes one (lo_from_bytea), another lists and reads it",
  },
  {
    id: "lock-status",
    functions: { name: "^(pg_lock_status|pg_blocking_pids|pg_safe_snapshot_blocking_pids|pg_isolation_test_session_is_blocked)$" },
    views: "^pg_locks$",
    keptBy: ["monitoring"],
    risk: "shows every session's locks: other tenants' backend pids, tenant gate keys, the relations (dedicated schemas) they touch",
  },
  {
    id: "object-statistics",
    functions: { name: "^pg_stat_get_", args: "oid" },
    views: "^pg_stat(io)?_(all|user|sys|xact_all|xact_user|xact_sys)_(tables|indexes|sequences|functions)$|^pg_stat_database(_conflicts)?$",
    keptBy: ["monitoring"],
    risk: "per-table counters (rows inserted, live tuples, scans) of every schema: a dedicated tenant's row counts and activity, the shared tables' traffic",
  },
  {
    id: "notifications",
    functions: { name: "^(pg_notify|pg_listening_channels|pg_notification_queue_usage)$" },
    keptBy: [],
    risk: "notification channels are per database and unauthenticated: one tenant sends on (or fills the queue behind) a channel another listens on",
  },
];

export interface ServerObjectState {
  class: ServerObjectClassId;
  kind: "function" | "view";
  /** `lo_get(oid)` (regprocedure text) or `pg_locks`, always in pg_catalog. */
  name: string;
  publicHas: boolean;
  /** Roles holding the privilege explicitly. */
  grantees: string[];
}

/** The objects of every class in this database, with who holds them (one catalog query). */
export async function readServerObjects(client: Queryable): Promise<ServerObjectState[]> {
  const { rows } = await client.query(
    `SELECT k.id AS class, 'function' AS kind, p.oid::regprocedure::text AS name,
            EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a WHERE a.grantee = 0) AS "publicHas",
            ARRAY(SELECT pg_get_userbyid(a.grantee)::text FROM aclexplode(p.proacl) a WHERE a.grantee <> 0 ORDER BY 1) AS grantees
       FROM unnest($1::text[], $2::text[], $3::text[]) AS k(id, name, args)
       JOIN pg_proc p ON p.pronamespace = 'pg_catalog'::regnamespace AND p.proname ~ k.name
                     AND (k.args IS NULL OR pg_get_function_identity_arguments(p.oid) = k.args)
      WHERE k.name IS NOT NULL
     UNION ALL
     SELECT k.id, 'view', c.relname::text,
            EXISTS (SELECT 1 FROM aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a WHERE a.grantee = 0 AND a.privilege_type = 'SELECT'),
            ARRAY(SELECT pg_get_userbyid(a.grantee)::text FROM aclexplode(c.relacl) a WHERE a.grantee <> 0 AND a.privilege_type = 'SELECT' ORDER BY 1)
       FROM unnest($1::text[], $4::text[]) AS k(id, views)
       JOIN pg_class c ON c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'v' AND c.relname ~ k.views
      WHERE k.views IS NOT NULL
      ORDER BY 1, 2, 3`,
    [
      SERVER_OBJECT_CLASSES.map((c) => c.id),
      SERVER_OBJECT_CLASSES.map((c) => c.functions?.name ?? null),
      SERVER_OBJECT_CLASSES.map((c) => c.functions?.args ?? null),
      SERVER_OBJECT_CLASSES.map((c) => c.views ?? null),
    ],
  );
  return rows as ServerObjectState[];
}

const FUNCTION_NAME = /^[a-z_][a-z0-9_]*\(([a-z0-9_ ]+(\[\])?(,[a-z0-9_ ]+(\[\])?)*)?\)$/;
const VIEW_NAME = /^[a-z_][a-z0-9_]*$/;

/**
 * What brings the classes to their posture: PUBLIC loses each object, its keepers hold it. Pure.
 * `operators` are the roles that run operations (owner, maintenance, and the role running migrate
 * when it is not a superuser); monitoring is pg_read_all_stats, signalling pg_signal_backend.
 */
export function planServerObjects(state: readonly ServerObjectState[], operators: readonly string[]): string[] {
  const keepers: Record<Keeper, readonly string[]> = {
    operators,
    monitoring: ["pg_read_all_stats"],
    signallers: ["pg_signal_backend"],
  };
  const out: string[] = [];
  for (const cls of SERVER_OBJECT_CLASSES) {
    for (const kind of ["function", "view"] as const) {
      const objects = state.filter((s) => s.class === cls.id && s.kind === kind);
      for (const o of objects) {
        if (!(kind === "function" ? FUNCTION_NAME : VIEW_NAME).test(o.name)) throw new Error(`unexpected ${kind} pg_catalog.${o.name}`);
      }
      const on = (list: ServerObjectState[]) =>
        `${kind === "function" ? "EXECUTE ON FUNCTION" : "SELECT ON"} ${list.map((o) => `pg_catalog.${o.name}`).join(", ")}`;
      const revoke = objects.filter((o) => o.publicHas);
      if (revoke.length) out.push(`REVOKE ${on(revoke)} FROM PUBLIC`);
      for (const role of cls.keptBy.flatMap((k) => keepers[k])) {
        const missing = objects.filter((o) => !o.grantees.includes(role));
        if (missing.length) out.push(`GRANT ${on(missing)} TO ${ident(role)}`);
      }
    }
  }
  return out;
}
