-- The tenant functions as migration 0001 defined them, before migration 0006: LANGUAGE sql bodies
-- with a FROM clause, which PostgreSQL 15 cannot inline and plans again in every statement.
-- Measure the old design against the current one (docs/benchmarks.md, "before 0006"):
--   npm run bench -- --design-sql bench/rls/designs/tenant-functions-0001.sql
CREATE OR REPLACE FUNCTION tenancy.setting_tenant_id() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN s ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN s::uuid END
    FROM (SELECT current_setting('app.current_tenant_id', true) AS s) AS setting
$$;
CREATE OR REPLACE FUNCTION tenancy.current_tenant_id() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT t.id FROM tenancy.tenants t WHERE t.id = tenancy.setting_tenant_id() AND t.status = 'active'
$$;
