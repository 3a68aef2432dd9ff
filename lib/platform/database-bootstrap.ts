/**
 * The superuser-only part of a regional cluster, as pure SQL renderers: what the node bootstrap
 * (lib/platform/cloud-init.ts, as `postgres` over the local socket) runs once the login roles exist,
 * so that everything else — `migrate`, tenants, dedicated placement, login roles — runs as the
 * executor's role, which is NOT a superuser (docs/aws.md "Who does what in the database").
 *
 *   cluster SQL (database `postgres`)
 *     - the roles only a superuser may create: alphapulse_maintenance (BYPASSRLS), and the owner
 *       role the executor must be a member of to run DDL as the owner (`SET ROLE`); the executor is
 *       granted both (what `migrate` needs), nothing else;
 *     - pg_signal_backend and pg_read_all_stats (finding and ending a suspended or offboarded
 *       tenant's sessions);
 *     - SET on the tenant setting, which a dedicated tenant's login role carries;
 *     - `alphapulse_bootstrap.pgbouncer_verifiers()`: SECURITY DEFINER over pg_authid, returning the
 *       SCRAM verifiers of the RLS-subject login roles only, executable by the executor only — how
 *       the data layer renders PgBouncer's auth file without reading pg_authid itself.
 *   template SQL (database `template1`: every database created later is a copy of it)
 *     - TimescaleDB, when the image has it (CREATE EXTENSION needs a superuser);
 *     - the pg_catalog privileges `migrate` would otherwise have to change and cannot as a
 *       non-superuser (pg_catalog belongs to the bootstrap superuser): PUBLIC loses session
 *       activity, the per-backend statistics functions, the advisory lock functions and the
 *       server-wide objects of lib/schema/server-objects.ts; their keepers get them. `migrate`,
 *       run by the executor in a database copied from template1, then finds them in posture and
 *       plans nothing (test/aws/database-bootstrap-pg.test.ts proves it on a real server).
 *
 * Every statement is idempotent: re-running the bootstrap converges. Identifiers go through
 * `ident()`, the patterns come from the same constants `migrate` and the audit use.
 */
import { ident, literal } from "../db/sql";
import { ADVISORY_LOCK_FUNCTION_NAMES, RLS_SUBJECT_ROLES, ROLES } from "../schema/roles";
import { SERVER_OBJECT_CLASSES, type Keeper } from "../schema/server-objects";

/** The login role the database executor connects as: CREATEDB CREATEROLE, not a superuser. */
export const EXECUTOR_ROLE = "alphapulse_executor";
/** Schema (in database `postgres`) of the superuser-owned functions the executor may call. */
export const BOOTSTRAP_SCHEMA = "alphapulse_bootstrap";
/** `SELECT name, scram_verifier FROM alphapulse_bootstrap.pgbouncer_verifiers()` in database `postgres`. */
export const PGBOUNCER_VERIFIERS_FUNCTION = `${BOOTSTRAP_SCHEMA}.pgbouncer_verifiers`;
/**
 * The tenant setting the policies read (lib/schema/planner.ts) and a dedicated tenant's login role
 * carries (lib/enterprise/dedicated.ts `ALTER ROLE ... IN DATABASE ... SET`): a custom placeholder,
 * which only a superuser, or a role granted SET on it, may attach to a role.
 */
export const TENANT_SETTING = "app.current_tenant_id";
/** The executor's role attributes (cloud-init roles.tsv): it creates the databases and the roles of the design. */
export const EXECUTOR_ROLE_ATTRIBUTES = "CREATEDB CREATEROLE";

export interface DatabaseBootstrapOptions {
  /** @default EXECUTOR_ROLE */
  executorRole?: string;
}

export interface DatabaseBootstrapSql {
  /** Run in database `postgres` as a superuser (cluster-wide roles, the verifier function). */
  cluster: string;
  /** Run in database `template1` as a superuser (what every new database inherits). */
  template: string;
}

/** Both scripts, deterministic for the same options. */
export function renderDatabaseBootstrapSql(options: DatabaseBootstrapOptions = {}): DatabaseBootstrapSql {
  const executor = options.executorRole ?? EXECUTOR_ROLE;
  return { cluster: renderClusterSql(executor), template: renderTemplateSql(executor) };
}

/** The roles that run operations (lib/schema/migrate.ts operatorRoles on a server where the executor is not a superuser). */
export function operatorRoles(executorRole: string = EXECUTOR_ROLE): string[] {
  return [ROLES.owner, ROLES.maintenance, executorRole];
}

const createRoleIfMissing = (name: string, attributes: string) =>
  `SELECT format('CREATE ROLE %I ${attributes}', ${literal(name)}) WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ${literal(name)}) \\gexec`;

function renderClusterSql(executor: string): string {
  const e = ident(executor);
  const fn = `${ident(BOOTSTRAP_SCHEMA)}.${ident("pgbouncer_verifiers")}()`;
  const subjects = RLS_SUBJECT_ROLES.map(literal).join(", ");
  return [
    "-- AlphaPulse database bootstrap, cluster part (lib/platform/database-bootstrap.ts). Run as a superuser; idempotent.",
    "\\set ON_ERROR_STOP on",
    `SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ${literal(executor)}) AS executor_missing \\gset`,
    "\\if :executor_missing",
    `DO $$ BEGIN RAISE EXCEPTION 'role ${executor} missing: create the login roles (roles.tsv) first'; END $$;`,
    "\\endif",
    "-- Roles only a superuser may create (BYPASSRLS), with the posture of lib/schema/roles.ts; migrate keeps them so.",
    createRoleIfMissing(ROLES.owner, "NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"),
    createRoleIfMissing(ROLES.maintenance, "NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION BYPASSRLS"),
    `ALTER ROLE ${ident(ROLES.maintenance)} BYPASSRLS;`,
    "-- The executor runs DDL as the owner and operations as maintenance (SET ROLE), like the migrator.",
    `GRANT ${ident(ROLES.owner)}, ${ident(ROLES.maintenance)} TO ${e};`,
    "-- Offboarding and suspension find and end a tenant's open sessions (pg_stat_activity is monitoring-only).",
    `GRANT pg_signal_backend, pg_read_all_stats TO ${e};`,
    "-- Dedicated tenants' login roles carry the tenant setting (ALTER ROLE ... SET): a placeholder only a superuser may grant.",
    `GRANT SET ON PARAMETER ${TENANT_SETTING} TO ${e};`,
    "-- The SCRAM verifiers PgBouncer's auth file needs, without pg_authid for the executor: RLS-subject roles only.",
    `CREATE SCHEMA IF NOT EXISTS ${ident(BOOTSTRAP_SCHEMA)};`,
    `REVOKE ALL ON SCHEMA ${ident(BOOTSTRAP_SCHEMA)} FROM PUBLIC;`,
    `GRANT USAGE ON SCHEMA ${ident(BOOTSTRAP_SCHEMA)} TO ${e};`,
    `CREATE OR REPLACE FUNCTION ${fn}`,
    "  RETURNS TABLE (name text, scram_verifier text)",
    "  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog",
    "AS $fn$",
    "  SELECT a.rolname::text, a.rolpassword FROM pg_catalog.pg_authid a",
    `   WHERE a.rolname IN (${subjects}) AND a.rolcanlogin AND a.rolpassword LIKE 'SCRAM-SHA-256$%'`,
    "   ORDER BY a.rolname",
    "$fn$;",
    `REVOKE ALL ON FUNCTION ${fn} FROM PUBLIC;`,
    `GRANT EXECUTE ON FUNCTION ${fn} TO ${e};`,
    "",
  ].join("\n");
}

/** A DO block: for each pg_catalog function matching, REVOKE from PUBLIC and GRANT to the keepers. */
function functionPosture(what: string, where: string, keepers: readonly string[]): string {
  const grant = keepers.length ? `\n    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO ${keepers.map(ident).join(", ")}', f);` : "";
  return [
    `-- ${what}`,
    "DO $$ DECLARE f regprocedure; BEGIN",
    `  FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p WHERE p.pronamespace = 'pg_catalog'::regnamespace AND ${where} LOOP`,
    `    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);${grant}`,
    "  END LOOP;",
    "END $$;",
  ].join("\n");
}

/** The same for pg_catalog views (SELECT). */
function viewPosture(what: string, where: string, keepers: readonly string[]): string {
  const grant = keepers.length ? `\n    EXECUTE format('GRANT SELECT ON pg_catalog.%I TO ${keepers.map(ident).join(", ")}', v);` : "";
  return [
    `-- ${what}`,
    "DO $$ DECLARE v name; BEGIN",
    `  FOR v IN SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'v' AND ${where} LOOP`,
    `    EXECUTE format('REVOKE SELECT ON pg_catalog.%I FROM PUBLIC', v);${grant}`,
    "  END LOOP;",
    "END $$;",
  ].join("\n");
}

function renderTemplateSql(executor: string): string {
  const operators = operatorRoles(executor);
  const keepers: Record<Keeper, readonly string[]> = {
    operators,
    monitoring: ["pg_read_all_stats"],
    signallers: ["pg_signal_backend"],
  };
  const parts = [
    "-- AlphaPulse database bootstrap, template part (lib/platform/database-bootstrap.ts). Run as a superuser in template1; idempotent.",
    "-- Every database created afterwards (the executor's CREATE DATABASE) is a copy of template1 and inherits this.",
    "\\set ON_ERROR_STOP on",
    "-- TimescaleDB (CREATE EXTENSION needs a superuser), when the image has it.",
    "SELECT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'timescaledb') AS has_timescaledb \\gset",
    "\\if :has_timescaledb",
    "CREATE EXTENSION IF NOT EXISTS timescaledb;",
    "\\endif",
    "-- Session activity: monitoring only (lib/schema/migrate.ts planDatabase).",
    "REVOKE SELECT ON pg_catalog.pg_stat_activity FROM PUBLIC;",
    "GRANT SELECT ON pg_catalog.pg_stat_activity TO pg_read_all_stats;",
    functionPosture(
      "Activity and per-backend statistics functions: monitoring only.",
      "(p.proname = 'pg_stat_get_activity' OR p.proname LIKE 'pg\\_stat\\_get\\_backend\\_%')",
      keepers.monitoring,
    ),
    functionPosture(
      "Advisory lock functions: the operators only (lib/schema/migrate.ts planAdvisoryLocks).",
      `p.proname ~ ${literal(ADVISORY_LOCK_FUNCTION_NAMES)}`,
      operators,
    ),
  ];
  for (const cls of SERVER_OBJECT_CLASSES) {
    const who = cls.keptBy.flatMap((k) => keepers[k]);
    if (cls.functions) {
      const args =
        cls.functions.args !== undefined
          ? ` AND pg_catalog.pg_get_function_identity_arguments(p.oid) = ${literal(cls.functions.args)}`
          : "";
      parts.push(
        functionPosture(
          `Server objects "${cls.id}" (lib/schema/server-objects.ts).`,
          `p.proname ~ ${literal(cls.functions.name)}${args}`,
          who,
        ),
      );
    }
    if (cls.views) parts.push(viewPosture(`Server objects "${cls.id}" (views).`, `c.relname ~ ${literal(cls.views)}`, who));
  }
  return parts.join("\n") + "\n";
}
