/**
 * Versioned migrations: hand-written SQL for what the catalogue planner (lib/schema/planner.ts) does not
 * express — the registry, the tenant-context functions, global market data, and any future change
 * that is not additive (renames, type changes, data moves). Ordered by version; each is recorded
 * with a checksum (sha256 of `sql`, lib/schema/migrate.ts), and `migrate` refuses to run when an
 * applied migration was edited.
 *
 * They run inside a transaction as the owner role (SET LOCAL ROLE), so every object they create is
 * owned by it.
 *
 * Frozen text. Each migration is a literal written with the `frozen` tag, which takes no `${…}`
 * (a type error, and refused at load): an applied migration must not change when a constant
 * elsewhere does, so role names (lib/schema/roles.ts), schema names (lib/schema/planner.ts,
 * catalogue.ts) and the id/slug patterns (lib/tenant/model.ts) are spelled out as they were when the
 * migration was written. test/data-layer/migration-checksums.test.ts pins every version's checksum
 * and asserts that those constants still have the values spelled here. Not even a comment inside
 * the SQL may change: 0003 and 0005 cite files by the paths they had then (lib/tenant-context.ts is
 * now lib/tenant-context/client.ts, lib/graduation.ts lib/enterprise/graduation.ts, lib/dedicated.ts
 * lib/enterprise/dedicated.ts).
 *
 * What the migrations add up to — enter_tenant() and the other functions as they are now, the
 * policies, the grants — is generated into lib/schema/current.sql: read it there, not here.
 *
 * Adding a migration:
 *   1. append `{ version: "NNNN", name: "…", sql: frozen`…` }` with the next version; write names
 *      and patterns literally (`tenancy`, `shared`, `app_user`, …). Backslashes are kept as
 *      written (the tag returns the raw text).
 *   2. `npx vitest run test/data-layer/migration-checksums.test.ts` fails naming the new version and
 *      its checksum: add that line to GOLDEN_CHECKSUMS there.
 *   3. `npm run schema:current` regenerates lib/schema/current.sql; commit it with the migration.
 * Never edit an applied migration (a fix is the next version), never reuse a version number.
 */

export interface Migration {
  version: string;
  name: string;
  sql: string;
}

/**
 * A migration's SQL exactly as written: no substitutions (`${…}` is a type error and throws), and the
 * raw text, so a backslash reaches PostgreSQL as typed.
 */
export function frozen(strings: TemplateStringsArray, ...values: never[]): string {
  if (values.length || strings.raw.length !== 1) throw new Error("a migration's SQL is frozen text: no ${…} substitutions");
  return strings.raw[0];
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: "0001",
    name: "tenant registry and tenant context",
    sql: frozen`
CREATE TABLE "tenancy".database_settings (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  region text CHECK (region IN ('eu', 'us'))
);
INSERT INTO "tenancy".database_settings DEFAULT VALUES;

CREATE TABLE "tenancy".tenants (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  slug text NOT NULL CONSTRAINT tenants_slug_key UNIQUE CONSTRAINT tenants_slug_check CHECK (slug ~ '^[a-z0-9](?:[a-z0-9-]{1,38})[a-z0-9]$' AND slug NOT LIKE '%--%'),
  display_name text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
  tier text NOT NULL CHECK (tier IN ('starter', 'pro', 'enterprise')),
  region text NOT NULL CHECK (region IN ('eu', 'us')),
  placement text NOT NULL DEFAULT 'shared' CHECK (placement IN ('shared', 'dedicated')),
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE "tenancy".tenants IS 'Tenant registry. Services see only their own row (RLS); operators manage it as the owner.';

-- Residency: a database belongs to one region and refuses tenants of another.
CREATE FUNCTION "tenancy".enforce_tenant_region() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE database_region text := (SELECT region FROM "tenancy".database_settings);
BEGIN
  IF database_region IS NOT NULL AND NEW.region <> database_region THEN
    RAISE EXCEPTION 'tenant % has residency region %, but this database serves region %', NEW.slug, NEW.region, database_region
      USING ERRCODE = 'check_violation';
  END IF;
  NEW.updated_at := now();
  RETURN NEW;
END $$;
CREATE TRIGGER tenants_region BEFORE INSERT OR UPDATE ON "tenancy".tenants FOR EACH ROW EXECUTE FUNCTION "tenancy".enforce_tenant_region();

-- The tenant context. The setting is parsed without casting errors: anything that is not a
-- canonical uuid is NULL, and NULL matches no row (fail closed, never all rows).
CREATE FUNCTION "tenancy".setting_tenant_id() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN s ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN s::uuid END
    FROM (SELECT current_setting('app.current_tenant_id', true) AS s) AS setting
$$;
-- The active tenant: the setting, only if that tenant exists and is not suspended. STABLE and
-- wrapped as (SELECT ...) in policies, so it runs once per statement and its value goes into the
-- index condition. Never IMMUTABLE: plans would bake in the first tenant.
CREATE FUNCTION "tenancy".current_tenant_id() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT t.id FROM "tenancy".tenants t WHERE t.id = "tenancy".setting_tenant_id() AND t.status = 'active'
$$;

ALTER TABLE "tenancy".tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_self ON "tenancy".tenants FOR SELECT TO "app_user", "alphapulse_readonly" USING (id = "tenancy".setting_tenant_id());

GRANT USAGE ON SCHEMA "tenancy" TO "app_user", "alphapulse_readonly", "alphapulse_maintenance";
GRANT SELECT ON "tenancy".tenants TO "app_user", "alphapulse_readonly", "alphapulse_maintenance";
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA "tenancy" FROM PUBLIC;
GRANT EXECUTE ON FUNCTION "tenancy".setting_tenant_id(), "tenancy".current_tenant_id() TO "app_user", "alphapulse_readonly", "alphapulse_maintenance";
ALTER DEFAULT PRIVILEGES FOR ROLE "alphapulse_owner" REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE "alphapulse_owner" REVOKE ALL ON TABLES FROM PUBLIC;

CREATE SCHEMA IF NOT EXISTS "shared" AUTHORIZATION "alphapulse_owner";
`,
  },
  {
    version: "0002",
    name: "global market data (TimescaleDB hypertable when available)",
    sql: frozen`
CREATE SCHEMA "market_data" AUTHORIZATION "alphapulse_owner";
CREATE TABLE "market_data".ohlcv (
  symbol text NOT NULL,
  bucket_start timestamptz NOT NULL,
  bucket_width interval NOT NULL DEFAULT interval '1 minute',
  open numeric(20,8) NOT NULL,
  high numeric(20,8) NOT NULL,
  low numeric(20,8) NOT NULL,
  close numeric(20,8) NOT NULL,
  volume numeric(28,8) NOT NULL DEFAULT 0,
  PRIMARY KEY (symbol, bucket_start)
);
COMMENT ON TABLE "market_data".ohlcv IS 'Global market data: not tenant data, no tenant_id, readable by every service.';
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
    PERFORM create_hypertable('market_data.ohlcv', 'bucket_start');
  ELSE
    RAISE NOTICE 'timescaledb is not installed: market_data.ohlcv is a plain table';
  END IF;
END $$;
GRANT USAGE ON SCHEMA "market_data" TO "app_user", "alphapulse_readonly", "alphapulse_maintenance";
GRANT SELECT ON "market_data".ohlcv TO "app_user", "alphapulse_readonly";
GRANT SELECT, INSERT, UPDATE, DELETE ON "market_data".ohlcv TO "alphapulse_maintenance";
`,
  },
  {
    version: "0003",
    name: "enter_tenant: tenant context, routing and the per-tenant write gate in one call",
    sql: frozen`
-- Called first in every tenant transaction (lib/tenant-context.ts). In one round trip it
--  1. binds the transaction to the tenant (transaction-local, so nothing survives COMMIT/ROLLBACK),
--  2. takes the tenant's gate in shared mode: graduation/demotion take it exclusively to hold this
--     one tenant's transactions while its rows move (other tenants never wait),
--  3. routes: search_path = the schema the registry names for the tenant (read after the gate, so a
--     placement flip is atomic with respect to requests),
--  4. refuses unknown and suspended tenants.
-- SECURITY INVOKER: it can do nothing the caller could not do with set_config().
CREATE FUNCTION "tenancy".enter_tenant(tenant uuid) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  t record;
  target_schema text;
BEGIN
  IF tenant IS NULL THEN
    RAISE EXCEPTION 'enter_tenant: tenant id is required' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  PERFORM set_config('app.current_tenant_id', tenant::text, true);
  PERFORM pg_advisory_xact_lock_shared(hashtextextended('tenancy:tenant:' || tenant::text, 0));
  SELECT tn.id, tn.placement, tn.status INTO t FROM "tenancy".tenants tn WHERE tn.id = tenant;
  IF t.id IS NULL OR t.status <> 'active' THEN
    PERFORM set_config('app.current_tenant_id', '', true);
    RAISE EXCEPTION 'tenant % is unknown or suspended', tenant USING ERRCODE = 'insufficient_privilege';
  END IF;
  target_schema := CASE WHEN t.placement = 'dedicated' THEN 'tenant_' || replace(t.id::text, '-', '') ELSE 'shared' END;
  PERFORM set_config('search_path', quote_ident(target_schema), true);
  RETURN target_schema;
END $$;
REVOKE ALL ON FUNCTION "tenancy".enter_tenant(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION "tenancy".enter_tenant(uuid) TO "app_user", "alphapulse_readonly";
`,
  },
  {
    version: "0004",
    name: "opaque per-tenant log tag in application_name",
    sql: frozen`
-- Operators need to see which tenant a statement belongs to (pg_stat_activity, the server log);
-- tenants must not learn each other's identity from it. Every tenant gets a random tag, set as the
-- transaction's application_name by enter_tenant(): operators map tags to tenants through the
-- registry, a tenant can read only its own registry row.
ALTER TABLE "tenancy".tenants ADD COLUMN log_tag text NOT NULL DEFAULT substr(md5(gen_random_uuid()::text), 1, 12)
  CONSTRAINT tenants_log_tag_key UNIQUE;

CREATE OR REPLACE FUNCTION "tenancy".enter_tenant(tenant uuid) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  t record;
  target_schema text;
BEGIN
  IF tenant IS NULL THEN
    RAISE EXCEPTION 'enter_tenant: tenant id is required' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  PERFORM set_config('app.current_tenant_id', tenant::text, true);
  PERFORM pg_advisory_xact_lock_shared(hashtextextended('tenancy:tenant:' || tenant::text, 0));
  SELECT tn.id, tn.placement, tn.status, tn.log_tag INTO t FROM "tenancy".tenants tn WHERE tn.id = tenant;
  IF t.id IS NULL OR t.status <> 'active' THEN
    PERFORM set_config('app.current_tenant_id', '', true);
    RAISE EXCEPTION 'tenant % is unknown or suspended', tenant USING ERRCODE = 'insufficient_privilege';
  END IF;
  target_schema := CASE WHEN t.placement = 'dedicated' THEN 'tenant_' || replace(t.id::text, '-', '') ELSE 'shared' END;
  PERFORM set_config('search_path', quote_ident(target_schema), true);
  PERFORM set_config('application_name', 'tenant:' || t.log_tag, true);
  RETURN target_schema;
END $$;
`,
  },
  {
    version: "0005",
    name: "tenant moves (graduation/demotion state machine), gate fix for REPEATABLE READ, dedicated login roles",
    sql: frozen`
-- Graduation and demotion (lib/graduation.ts) record each step here, so a move interrupted at any
-- point (process or server killed) resumes from its last committed step. One open move per tenant.
CREATE TABLE "tenancy".tenant_moves (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id uuid NOT NULL REFERENCES "tenancy".tenants (id) ON DELETE CASCADE,
  direction text NOT NULL CHECK (direction IN ('graduate', 'demote')),
  source_schema text NOT NULL,
  target_schema text NOT NULL,
  step text NOT NULL DEFAULT 'planned' CHECK (step IN ('planned', 'target_ready', 'prefilled', 'flipped', 'done')),
  catalogue_fingerprint text NOT NULL,
  verification jsonb,
  rows_moved bigint,
  writes_held_ms numeric,
  attempts integer NOT NULL DEFAULT 1,
  started_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  CONSTRAINT tenant_moves_finished CHECK ((step = 'done') = (finished_at IS NOT NULL))
);
CREATE UNIQUE INDEX tenant_moves_one_open ON "tenancy".tenant_moves (tenant_id) WHERE finished_at IS NULL;
GRANT SELECT ON "tenancy".tenant_moves TO "alphapulse_maintenance";

-- The gate and REPEATABLE READ. A REPEATABLE READ or SERIALIZABLE transaction takes its snapshot
-- when its first statement starts: enter_tenant() itself, before it waits at the gate. Released
-- after a move, it would still read the old placement and write into the schema being emptied.
-- Such a transaction (read-write only: a read-only one reads a consistent snapshot that still
-- holds the rows) now locks its registry row FOR SHARE, which fails with serialization_failure
-- (40001, retry) when the flip updated the row after its snapshot. READ COMMITTED, the default,
-- pays nothing: each statement in the function takes a fresh snapshot after the gate.
-- SECURITY DEFINER because row locks need UPDATE privilege; it can only lock the session's tenant.
CREATE FUNCTION "tenancy".lock_current_tenant_row() RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM 1 FROM "tenancy".tenants tn WHERE tn.id = "tenancy".setting_tenant_id() FOR SHARE;
END $$;
REVOKE ALL ON FUNCTION "tenancy".lock_current_tenant_row() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION "tenancy".lock_current_tenant_row() TO "app_user", "alphapulse_readonly";

CREATE OR REPLACE FUNCTION "tenancy".enter_tenant(tenant uuid) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  t record;
  target_schema text;
BEGIN
  IF tenant IS NULL THEN
    RAISE EXCEPTION 'enter_tenant: tenant id is required' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  PERFORM set_config('app.current_tenant_id', tenant::text, true);
  PERFORM pg_advisory_xact_lock_shared(hashtextextended('tenancy:tenant:' || tenant::text, 0));
  IF current_setting('transaction_isolation') <> 'read committed' AND current_setting('transaction_read_only') = 'off' THEN
    PERFORM "tenancy".lock_current_tenant_row();
  END IF;
  SELECT tn.id, tn.placement, tn.status, tn.log_tag INTO t FROM "tenancy".tenants tn WHERE tn.id = tenant;
  IF t.id IS NULL OR t.status <> 'active' THEN
    PERFORM set_config('app.current_tenant_id', '', true);
    RAISE EXCEPTION 'tenant % is unknown or suspended', tenant USING ERRCODE = 'insufficient_privilege';
  END IF;
  target_schema := CASE WHEN t.placement = 'dedicated' THEN 'tenant_' || replace(t.id::text, '-', '') ELSE 'shared' END;
  PERFORM set_config('search_path', quote_ident(target_schema), true);
  PERFORM set_config('application_name', 'tenant:' || t.log_tag, true);
  RETURN target_schema;
END $$;

-- A dedicated tenant may have its own login role, tenant_<hex>_login (lib/dedicated.ts): it reaches
-- only its schema, still through RLS, so it must be able to read its own registry row for
-- current_tenant_id(). No other role's visibility changes (the name is derived from the row).
CREATE POLICY tenant_login_self ON "tenancy".tenants FOR SELECT TO PUBLIC
  USING (current_user = 'tenant_' || replace(id::text, '-', '') || '_login');
`,
  },
  {
    version: "0006",
    name: "tenant context functions planned once per session, not once per statement",
    sql: frozen`
-- Measured by the RLS benchmark (bench/rls-overhead.ts, docs/benchmarks.md). PostgreSQL 15 caches
-- no plan for a LANGUAGE sql function it cannot inline (a body with a FROM clause): it parses and
-- plans the body again in every statement that calls it. The policy's (SELECT current_tenant_id())
-- did that twice per statement and per table (current_tenant_id, and setting_tenant_id inside it):
-- a point lookup under RLS took 2-3x the explicit-predicate floor. Same meaning, cheaper form:
--  * setting_tenant_id() is one expression without FROM, so the planner inlines it (no call);
--  * current_tenant_id() is still the setting's tenant only if it is active in the registry,
--    looked up once per statement, but in plpgsql, which plans that lookup once per session.
--    STABLE, and called as (SELECT ...) by the policies: an InitPlan, never a per-row call.
CREATE OR REPLACE FUNCTION "tenancy".setting_tenant_id() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN current_setting('app.current_tenant_id', true) ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
              THEN current_setting('app.current_tenant_id', true)::uuid END
$$;
CREATE OR REPLACE FUNCTION "tenancy".current_tenant_id() RETURNS uuid LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
  setting_id uuid := "tenancy".setting_tenant_id();
  active_id uuid;
BEGIN
  IF setting_id IS NULL THEN
    RETURN NULL;
  END IF;
  SELECT t.id INTO active_id FROM "tenancy".tenants t WHERE t.id = setting_id AND t.status = 'active';
  RETURN active_id;
END $$;
`,
  },
  {
    version: "0007",
    name: "trades: index (tenant_id, position_id, executed_at) replaces (tenant_id, position_id)",
    sql: frozen`
-- Measured by the RLS benchmark (positions ⋈ trades of a 7-day window, largest tenant): with
-- (tenant_id, position_id) the planner read every trade of each position and filtered the window
-- afterwards (about 12,000 buffers and 27 ms, with or without RLS); with executed_at in the index
-- it reads the window only (about 250 buffers, 0.35 ms). The new index also serves the foreign key
-- to positions (its prefix). Replaced here in every tenant schema; the catalogue creates it in new ones.
DO $$
DECLARE s text;
BEGIN
  FOR s IN SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'i' AND c.relname = 'trades_tenant_position_id_idx'
              AND (n.nspname = 'shared' OR n.nspname ~ '^tenant_[0-9a-f]{32}$')
  LOOP
    EXECUTE format('CREATE INDEX IF NOT EXISTS trades_tenant_position_id_executed_at_idx ON %I.trades (tenant_id, position_id, executed_at)', s);
    EXECUTE format('DROP INDEX %I.trades_tenant_position_id_idx', s);
  END LOOP;
END $$;
`,
  },
  {
    version: "0008",
    name: "the REPEATABLE READ registry row lock without a SECURITY DEFINER function",
    sql: frozen`
-- 0005 locked the tenant's registry row FOR SHARE through a SECURITY DEFINER function, because a row
-- lock needs UPDATE privilege. No SECURITY DEFINER function is executable by the app roles (the
-- audit's rule), so the caller now holds what the lock needs and nothing more: UPDATE on one
-- column, through a policy that sees only the row of the session's own tenant setting and whose
-- WITH CHECK (false) refuses every actual update. A FOR SHARE lock is all it can do with it.
GRANT UPDATE (updated_at) ON "tenancy".tenants TO "app_user", "alphapulse_readonly";
CREATE POLICY tenant_self_lock ON "tenancy".tenants FOR UPDATE TO "app_user", "alphapulse_readonly"
  USING (id = "tenancy".setting_tenant_id()) WITH CHECK (false);

CREATE OR REPLACE FUNCTION "tenancy".enter_tenant(tenant uuid) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  t record;
  target_schema text;
BEGIN
  IF tenant IS NULL THEN
    RAISE EXCEPTION 'enter_tenant: tenant id is required' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  PERFORM set_config('app.current_tenant_id', tenant::text, true);
  PERFORM pg_advisory_xact_lock_shared(hashtextextended('tenancy:tenant:' || tenant::text, 0));
  -- REPEATABLE READ / SERIALIZABLE read-write transactions took their snapshot before the gate:
  -- the row lock fails with 40001 (retry) when a placement flip updated the row after it (0005).
  IF current_setting('transaction_isolation') <> 'read committed' AND current_setting('transaction_read_only') = 'off' THEN
    PERFORM 1 FROM "tenancy".tenants tn WHERE tn.id = tenant FOR SHARE;
  END IF;
  SELECT tn.id, tn.placement, tn.status, tn.log_tag INTO t FROM "tenancy".tenants tn WHERE tn.id = tenant;
  IF t.id IS NULL OR t.status <> 'active' THEN
    PERFORM set_config('app.current_tenant_id', '', true);
    RAISE EXCEPTION 'tenant % is unknown or suspended', tenant USING ERRCODE = 'insufficient_privilege';
  END IF;
  target_schema := CASE WHEN t.placement = 'dedicated' THEN 'tenant_' || replace(t.id::text, '-', '') ELSE 'shared' END;
  PERFORM set_config('search_path', quote_ident(target_schema), true);
  PERFORM set_config('application_name', 'tenant:' || t.log_tag, true);
  RETURN target_schema;
END $$;
DROP FUNCTION "tenancy".lock_current_tenant_row();
`,
  },
  {
    version: "0009",
    name: "the tenant gate only through enter_tenant: take_tenant_gate() locks the transaction's own tenant's gate",
    // Literal text, no interpolated constants: an applied migration's checksum must never move
    // because a constant was edited elsewhere.
    sql: frozen`
-- Until now the tenant roles executed pg_advisory_xact_lock_shared(bigint) themselves, because
-- enter_tenant() is SECURITY INVOKER and takes the gate with it: any tenant could hold any key —
-- another tenant's gate (its graduation fails at the gate timeout) or the migrate lock's key
-- (migrate and dedicated provisioning wait). Now the lock function is the owner's alone (migrate
-- revokes it from the tenant roles after this migration), and the gate is taken by this function,
-- which runs as the owner and can lock exactly one key: the gate of the tenant the transaction's
-- setting names, in shared mode, until the transaction ends. It reads nothing and returns nothing.
-- Reviewed in lib/audit/isolation-audit.ts (REVIEWED_SECURITY_DEFINER); search_path pinned.
CREATE FUNCTION tenancy.take_tenant_gate() RETURNS void LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  tenant uuid := tenancy.setting_tenant_id();
BEGIN
  IF tenant IS NULL THEN
    RAISE EXCEPTION 'take_tenant_gate: the transaction is bound to no tenant' USING ERRCODE = 'insufficient_privilege';
  END IF;
  PERFORM pg_catalog.pg_advisory_xact_lock_shared(pg_catalog.hashtextextended('tenancy:tenant:' || tenant::text, 0));
END $$;
REVOKE ALL ON FUNCTION tenancy.take_tenant_gate() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenancy.take_tenant_gate() TO app_user, alphapulse_readonly;

CREATE OR REPLACE FUNCTION tenancy.enter_tenant(tenant uuid) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  t record;
  target_schema text;
BEGIN
  IF tenant IS NULL THEN
    RAISE EXCEPTION 'enter_tenant: tenant id is required' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  PERFORM set_config('app.current_tenant_id', tenant::text, true);
  PERFORM tenancy.take_tenant_gate();
  -- REPEATABLE READ / SERIALIZABLE read-write transactions took their snapshot before the gate:
  -- the row lock fails with 40001 (retry) when a placement flip updated the row after it (0005).
  IF current_setting('transaction_isolation') <> 'read committed' AND current_setting('transaction_read_only') = 'off' THEN
    PERFORM 1 FROM tenancy.tenants tn WHERE tn.id = tenant FOR SHARE;
  END IF;
  SELECT tn.id, tn.placement, tn.status, tn.log_tag INTO t FROM tenancy.tenants tn WHERE tn.id = tenant;
  IF t.id IS NULL OR t.status <> 'active' THEN
    PERFORM set_config('app.current_tenant_id', '', true);
    RAISE EXCEPTION 'tenant % is unknown or suspended', tenant USING ERRCODE = 'insufficient_privilege';
  END IF;
  target_schema := CASE WHEN t.placement = 'dedicated' THEN 'tenant_' || replace(t.id::text, '-', '') ELSE 'shared' END;
  PERFORM set_config('search_path', quote_ident(target_schema), true);
  PERFORM set_config('application_name', 'tenant:' || t.log_tag, true);
  RETURN target_schema;
END $$;
`,
  },
  {
    version: "0010",
    name: "offboarded tenants are retained until a purge date",
    // Literal text, no interpolated constants: an applied migration's checksum must never move
    // because a constant was edited elsewhere.
    sql: frozen`
-- Offboarding (tenancy tenant delete, npm run tenant -- destroy) no longer deletes a tenant's rows:
-- after a verified export the tenant is marked offboarded with a purge date, and its rows, schema
-- and registry entry stay until tenancy tenant purge runs after that date (docs/data-safety.md).
-- An offboarded tenant is not active, so enter_tenant() and current_tenant_id() refuse it already.
ALTER TABLE tenancy.tenants DROP CONSTRAINT tenants_status_check;
ALTER TABLE tenancy.tenants ADD CONSTRAINT tenants_status_check CHECK (status IN ('active', 'suspended', 'offboarded'));
ALTER TABLE tenancy.tenants
  ADD COLUMN offboarded_at timestamptz,
  ADD COLUMN purge_after timestamptz,
  ADD COLUMN offboarding_export text;
ALTER TABLE tenancy.tenants ADD CONSTRAINT tenants_offboarding_check
  CHECK ((status = 'offboarded') = (offboarded_at IS NOT NULL AND purge_after IS NOT NULL));
COMMENT ON COLUMN tenancy.tenants.purge_after IS 'Offboarded tenants: tenancy tenant purge refuses before this time.';
`,
  },
  {
    version: "0012",
    name: "verified tenant context: a proof checked by the database, a seal the policies trust (ADR-005)",
    // Literal text, no interpolated constants: an applied migration's checksum must never move
    // because a constant was edited elsewhere.
    sql: frozen`
-- The tenant setting app.current_tenant_id is writable by any SQL running as app_user, so a policy
-- that trusts it lets injected SQL switch tenants. This migration adds what strict mode
-- (tenancy.database_settings.tenant_context = 'verified', switched by migrate) trusts instead:
--  * tenancy_private.context_keys: per-region HMAC keys (as the two HMAC pads), in a schema no app,
--    readonly or tenant login role can use. Any number of keys may be active (rotation).
--  * tenancy.enter_verified_tenant(proof): the one SECURITY DEFINER function besides 0009's
--    reviewed tenancy.take_tenant_gate(). It checks the proof
--    (v1.<kid>.<region>.<tenant>.<expires>.<nonce>.<hmac-sha256 hex>, minted by the service from the
--    request's verified claims), then does everything enter_tenant() does (the gate through
--    tenancy.take_tenant_gate() as 0009 takes it, registry, routing, log tag), and seals the context: it sets the session's temporary sequence
--    pg_temp.tenancy_context_seal (owned by the owner; callers may read it, never set it) to a hash
--    of the tenant and the transaction's start time. The strict policies accept the setting only
--    when it matches the seal of THIS transaction (lib/schema/planner.ts VERIFIED_TENANT_ID_EXPRESSION).
-- Nothing here changes a policy: existing databases keep trusting the setting until switched.
ALTER TABLE tenancy.database_settings ADD COLUMN tenant_context text NOT NULL DEFAULT 'setting'
  CHECK (tenant_context IN ('setting', 'verified'));

CREATE SCHEMA tenancy_private AUTHORIZATION alphapulse_owner;
REVOKE ALL ON SCHEMA tenancy_private FROM PUBLIC;
CREATE TABLE tenancy_private.context_keys (
  kid text PRIMARY KEY CHECK (kid ~ '^[a-z0-9_-]{1,32}$'),
  region text NOT NULL CHECK (region IN ('eu', 'us')),
  state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'retired')),
  inner_pad bytea NOT NULL CHECK (length(inner_pad) = 64),
  outer_pad bytea NOT NULL CHECK (length(outer_pad) = 64),
  created_at timestamptz NOT NULL DEFAULT now(),
  retired_at timestamptz,
  CONSTRAINT context_keys_retired CHECK ((state = 'retired') = (retired_at IS NOT NULL))
);
REVOKE ALL ON tenancy_private.context_keys FROM PUBLIC;
COMMENT ON TABLE tenancy_private.context_keys IS 'Tenant-context proof keys (HMAC-SHA256 pads). Owner only: never readable by app, readonly or tenant login roles.';

CREATE FUNCTION tenancy.enter_verified_tenant(proof text) RETURNS text
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER AS $$
DECLARE
  k record;
  t record;
  tenant uuid;
  payload text;
  target_schema text;
BEGIN
  -- No SET search_path clause: it would undo the transaction-local search_path routing sets at exit.
  -- Names resolve through the caller's path, which can hold nothing of the caller's own: the tenant
  -- roles may create nothing anywhere, temporary objects included (the audit checks both).
  -- The MAC is checked before anything in the proof is parsed: a proof that verifies was minted by
  -- the service, so its fields are well formed. (No regular expression: a regex in plpgsql cost
  -- about 150 us per transaction here, more than everything else in this function.)
  IF proof IS NULL OR length(proof) > 256 OR split_part(proof, '.', 1) <> 'v1' THEN
    RAISE EXCEPTION 'tenant context proof is malformed' USING ERRCODE = 'insufficient_privilege';
  END IF;
  payload := substr(proof, 1, length(proof) - 65);
  -- One statement finds an active key of this kid and checks the MAC with it (HMAC-SHA256 from
  -- core sha256 over the stored pads: no extension). A key belongs to one region, and only this
  -- database's region's keys are installed (lib/tenant-context/keys.ts), so another region's proof
  -- names an unknown kid or fails the MAC; its region field must also match the key's.
  SELECT ck.region INTO k
    FROM tenancy_private.context_keys ck
   WHERE ck.kid = split_part(proof, '.', 2) AND ck.state = 'active' AND ck.region = split_part(proof, '.', 3)
     AND encode(sha256(ck.outer_pad || sha256(ck.inner_pad || convert_to(payload, 'UTF8'))), 'hex') = right(proof, 64);
  IF NOT FOUND OR substr(proof, length(proof) - 64, 1) <> '.' THEN
    RAISE EXCEPTION 'tenant context proof is not valid here (unknown or retired key, another region, or altered)'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF split_part(proof, '.', 5)::bigint < date_part('epoch', statement_timestamp())
     OR split_part(proof, '.', 5)::bigint > date_part('epoch', statement_timestamp()) + 900 THEN
    RAISE EXCEPTION 'tenant context proof has expired (or claims more than 15 minutes)' USING ERRCODE = 'insufficient_privilege';
  END IF;
  tenant := split_part(proof, '.', 4)::uuid;
  PERFORM set_config('app.current_tenant_id', tenant::text, true);
  PERFORM tenancy.take_tenant_gate();
  -- REPEATABLE READ / SERIALIZABLE read-write transactions took their snapshot before the gate (0005).
  IF current_setting('transaction_isolation') <> 'read committed' AND current_setting('transaction_read_only') = 'off' THEN
    PERFORM 1 FROM tenancy.tenants tn WHERE tn.id = tenant FOR SHARE;
  END IF;
  SELECT tn.id, tn.placement, tn.status, tn.log_tag INTO t FROM tenancy.tenants tn WHERE tn.id = tenant;
  IF t.id IS NULL OR t.status <> 'active' THEN
    PERFORM set_config('app.current_tenant_id', '', true);
    RAISE EXCEPTION 'tenant % is unknown or suspended', tenant USING ERRCODE = 'insufficient_privilege';
  END IF;
  -- The seal: this session's own sequence, created by this function (the owner holds TEMPORARY;
  -- the tenant roles do not, so they can neither create one nor set this one).
  IF to_regclass('pg_temp.tenancy_context_seal') IS NULL THEN
    CREATE TEMPORARY SEQUENCE tenancy_context_seal MINVALUE -9223372036854775808 MAXVALUE 9223372036854775807;
    GRANT SELECT ON SEQUENCE pg_temp.tenancy_context_seal TO PUBLIC;
  END IF;
  PERFORM setval('pg_temp.tenancy_context_seal',
                 hashtextextended(tenant::text, (date_part('epoch', transaction_timestamp()) * 1000000)::bigint), true);
  target_schema := CASE WHEN t.placement = 'dedicated' THEN 'tenant_' || replace(t.id::text, '-', '') ELSE 'shared' END;
  PERFORM set_config('search_path', quote_ident(target_schema), true);
  PERFORM set_config('application_name', 'tenant:' || t.log_tag, true);
  RETURN target_schema;
END $$;
REVOKE ALL ON FUNCTION tenancy.enter_verified_tenant(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenancy.enter_verified_tenant(text) TO app_user, alphapulse_readonly;
`,
  },
];
