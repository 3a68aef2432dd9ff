/**
 * The superuser part of the AWS data layer as rendered text (lib/platform/database-bootstrap.ts).
 * What it does on a real server is proven in database-bootstrap-pg.test.ts.
 */
import { describe, expect, it } from "vitest";
import { operatorRoles, renderDatabaseBootstrapSql } from "../../lib/platform/database-bootstrap";

describe("renderDatabaseBootstrapSql", () => {
  const sql = renderDatabaseBootstrapSql();

  it("is deterministic and stops on the first error", () => {
    expect(renderDatabaseBootstrapSql()).toEqual(sql);
    expect(sql.cluster).toContain("\\set ON_ERROR_STOP on\n");
    expect(sql.template).toContain("\\set ON_ERROR_STOP on\n");
  });

  it("cluster part: the BYPASSRLS role, the executor's memberships, the tenant setting, the verifier function for the executor only", () => {
    const lines = sql.cluster.split("\n");
    for (const line of [
      `SELECT format('CREATE ROLE %I NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION BYPASSRLS', 'alphapulse_maintenance') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'alphapulse_maintenance') \\gexec`,
      `ALTER ROLE "alphapulse_maintenance" BYPASSRLS;`,
      `GRANT "alphapulse_owner", "alphapulse_maintenance" TO "alphapulse_executor";`,
      `GRANT SET ON PARAMETER app.current_tenant_id TO "alphapulse_executor";`,
      `GRANT pg_signal_backend, pg_read_all_stats TO "alphapulse_executor";`,
      `   WHERE a.rolname IN ('app_user', 'alphapulse_readonly') AND a.rolcanlogin AND a.rolpassword LIKE 'SCRAM-SHA-256$%'`,
      `REVOKE ALL ON FUNCTION "alphapulse_bootstrap"."pgbouncer_verifiers"() FROM PUBLIC;`,
      `GRANT EXECUTE ON FUNCTION "alphapulse_bootstrap"."pgbouncer_verifiers"() TO "alphapulse_executor";`,
    ])
      expect(lines).toContain(line);
    // Never a superuser, never a password: those come from roles.tsv and Secrets Manager.
    expect(sql.cluster).not.toMatch(/SUPERUSER[^;]*TO|PASSWORD/);
  });

  it("template part: timescaledb when available, and every pg_catalog posture migrate checks", () => {
    for (const fragment of [
      "CREATE EXTENSION IF NOT EXISTS timescaledb;",
      "REVOKE SELECT ON pg_catalog.pg_stat_activity FROM PUBLIC;",
      `p.proname ~ '^pg_(try_)?advisory_'`,
      `EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO "alphapulse_owner", "alphapulse_maintenance", "alphapulse_executor"', f);`,
      `p.proname ~ '^pg_stat_get_' AND pg_catalog.pg_get_function_identity_arguments(p.oid) = 'oid'`,
      `EXECUTE format('GRANT SELECT ON pg_catalog.%I TO "pg_read_all_stats"', v);`,
    ])
      expect(sql.template).toContain(fragment);
  });

  it("operators are the owner, maintenance and the executor", () => {
    expect(operatorRoles()).toEqual(["alphapulse_owner", "alphapulse_maintenance", "alphapulse_executor"]);
  });

  it("refuses an executor role name outside the identifier allow-list", () => {
    expect(() => renderDatabaseBootstrapSql({ executorRole: 'x"; DROP ROLE postgres; --' })).toThrow("invalid SQL identifier");
  });
});
