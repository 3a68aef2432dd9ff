-- current_tenant_id() as migration 0006 defines it, minus the registry lookup: the same plpgsql call,
-- returning the validated setting whatever the tenant's status. Not a design to adopt as is (it drops
-- the per-statement suspension check); it splits the design's cost into "a plpgsql call" and "the
-- registry lookup" (docs/benchmarks.md):
--   npm run bench -- --design-sql bench/rls/designs/no-registry-lookup.sql
CREATE OR REPLACE FUNCTION tenancy.current_tenant_id() RETURNS uuid LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
  RETURN tenancy.setting_tenant_id();
END $$;
