/**
 * Isolation attacks by tenant A against tenant B, each a function that answers "did it leak?", and
 * the breakages that make each of them leak (the negative controls). isolation.test.ts runs every
 * attack against the real schema (expect no leak; one database, so an attack leaves the tenants as
 * it found them); isolation-controls.test.ts runs each against its breakage on a fresh database
 * (expect a leak).
 *
 * The attacker connects as app_user (or, for breakages that model "app_user was given more than it
 * should", as a throwaway role with exactly that) and knows B's ids: ids leak through logs, URLs and
 * support tickets, so the design must hold even when they do.
 */
import { execFile } from "node:child_process";
import pg from "pg";
import { auditDatabase, type CheckId } from "../../lib/audit/isolation-audit";
import { TENANT_TABLES, tenantTable } from "../../lib/schema/catalogue";
import { ROLES } from "../../lib/schema/roles";
import { foreignKeyName, indexName, TENANT_PREDICATE } from "../../lib/schema/planner";
import { createTenant, setTenantStatus } from "../../lib/tenant/registry";
import { DEDICATED_LOGIN_ROLE_PATTERN } from "../../lib/audit/isolation-audit";
import { ensureTenantLoginRole, provisionDedicatedSchema, tenantLoginRoleName } from "../../lib/enterprise/dedicated";
import { MIGRATE_LOCK } from "../../lib/db/locks";
import type { Tenant } from "../../lib/tenant/model";
import { B_SECRET, countByTenant, setTenant, sqlstate, type MigratedDatabase, type TwoTenants } from "./harness";

export interface Outcome {
  leaked: boolean;
  /** What happened, for the failure message. */
  evidence: string;
}

export interface AttackContext extends TwoTenants {
  m: MigratedDatabase;
  /** The login role the attacker has (app_user unless a breakage says otherwise). */
  attacker: string;
  /** A new session as the attacker. */
  connect(): Promise<pg.Client>;
}

export interface Breakage {
  name: string;
  description: string;
  /** False when the audit cannot see it (a function body's semantics); the attack test is what covers it. */
  auditSees?: boolean;
  /** The audit check that must report it (checked by isolation-controls.test.ts when given). */
  auditCheck?: CheckId;
  /** Breaks the schema; may hand the attack another login role to use. */
  apply(m: MigratedDatabase, t: TwoTenants): Promise<{ attacker?: string } | void>;
}

export interface Attack {
  name: string;
  /** The breakage under which this attack must leak (its negative control). */
  breakage: Breakage;
  run(ctx: AttackContext): Promise<Outcome>;
}

const SHARED_TABLES = TENANT_TABLES.map((t) => `shared.${t.name}`);
const FAIL_OPEN = `nullif(current_setting('app.current_tenant_id', true), '')`;

// --- breakages (negative controls) --------------------------------------------------------------

async function everyTable(m: MigratedDatabase, sql: (table: string) => string): Promise<void> {
  for (const t of SHARED_TABLES) await m.admin.query(sql(t));
}

export const BREAKAGES = {
  failOpenSetting: {
    name: "fail-open setting policy",
    description: "tenant_id = setting OR the setting is unset/empty (the 'unset OR match' policy of the notes)",
    apply: (m) =>
      everyTable(
        m,
        (t) =>
          `ALTER POLICY tenant_isolation ON ${t} USING (tenant_id = ${FAIL_OPEN}::uuid OR ${FAIL_OPEN} IS NULL) WITH CHECK (tenant_id = ${FAIL_OPEN}::uuid OR ${FAIL_OPEN} IS NULL)`,
      ),
  },
  permissiveOnly: {
    name: "permissive-only tenant policy",
    description: "the tenant predicate as a PERMISSIVE policy: ORed with tenant_access (USING true), it opens every tenant",
    apply: (m) =>
      everyTable(
        m,
        (t) =>
          `DROP POLICY tenant_isolation ON ${t}; CREATE POLICY tenant_isolation ON ${t} AS PERMISSIVE USING (${TENANT_PREDICATE}) WITH CHECK (${TENANT_PREDICATE})`,
      ),
  },
  noWithCheck: {
    name: "policy without WITH CHECK",
    description: "the restrictive policy checks rows read, not rows written: WITH CHECK (true)",
    apply: (m) => everyTable(m, (t) => `ALTER POLICY tenant_isolation ON ${t} WITH CHECK (true)`),
  },
  noForceOwnerMember: {
    name: "NO FORCE + app role member of the owner",
    description: "RLS not forced, and the app's role a member of the table owner: it skips every policy",
    async apply(m) {
      await everyTable(m, (t) => `ALTER TABLE ${t} NO FORCE ROW LEVEL SECURITY`);
      const attacker = await m.throwawayRole();
      await m.admin.query(`GRANT ${ROLES.owner} TO ${attacker}`);
      return { attacker };
    },
  },
  maintenanceMember: {
    name: "app role member of maintenance",
    description: "the app's role can SET ROLE to the BYPASSRLS maintenance role",
    async apply(m) {
      const attacker = await m.throwawayRole();
      await m.admin.query(`GRANT ${ROLES.maintenance} TO ${attacker}`);
      return { attacker };
    },
  },
  superuserAttacker: {
    name: "app role is a superuser",
    description: "the app connects as a superuser, which may SET SESSION AUTHORIZATION to anyone",
    async apply(m) {
      return { attacker: await m.throwawayRole("SUPERUSER") };
    },
  },
  fkWithoutTenant: {
    name: "foreign key without tenant_id",
    description: "trades.position_id references positions(id) alone (a global unique key)",
    async apply(m) {
      await m.admin.query(`ALTER TABLE shared.trades DROP CONSTRAINT ${foreignKeyName(tenantTable("trades"), ["position_id"])}`);
      await m.admin.query(`CREATE UNIQUE INDEX positions_id_key ON shared.positions (id)`);
      await m.admin.query(
        `ALTER TABLE shared.trades ADD CONSTRAINT trades_position_global_fkey FOREIGN KEY (position_id) REFERENCES shared.positions (id)`,
      );
    },
  },
  definerView: {
    name: "view without security_invoker",
    description: "the blotter view runs with its owner's rights (a superuser), not the caller's",
    apply: async (m) => void (await m.admin.query(`ALTER VIEW shared.trade_blotter RESET (security_invoker)`)),
  },
  truncateGrant: {
    name: "TRUNCATE granted to app_user",
    description: "TRUNCATE is not subject to RLS",
    apply: async (m) => void (await m.admin.query(`GRANT TRUNCATE ON shared.portfolio_history TO ${ROLES.app}`)),
  },
  immutableTenantFunction: {
    name: "IMMUTABLE tenant function in the policy",
    description: "the planner folds an IMMUTABLE function into the plan: a generic plan keeps the first tenant",
    async apply(m) {
      await m.admin.query(
        `CREATE FUNCTION shared.tenant_immutable() RETURNS uuid LANGUAGE sql IMMUTABLE AS $$ SELECT ${FAIL_OPEN}::uuid $$`,
      );
      await everyTable(
        m,
        (t) =>
          `ALTER POLICY tenant_isolation ON ${t} USING (tenant_id = shared.tenant_immutable()) WITH CHECK (tenant_id = shared.tenant_immutable())`,
      );
    },
  },
  globalUnique: {
    name: "global unique index",
    description: "client_order_id unique across all tenants instead of per tenant",
    async apply(m) {
      await m.admin.query(`DROP INDEX shared.${indexName(tenantTable("trades"), ["client_order_id"], true)}`);
      await m.admin.query(`CREATE UNIQUE INDEX trades_client_order_id_key ON shared.trades (client_order_id)`);
    },
  },
  ignoresSuspension: {
    name: "enter_tenant ignores suspension",
    description: "enter_tenant() binds the transaction to the tenant whatever its status",
    auditSees: false,
    apply: async (m) =>
      void (await m.admin.query(
        `CREATE OR REPLACE FUNCTION tenancy.enter_tenant(tenant uuid) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
         BEGIN PERFORM set_config('app.current_tenant_id', tenant::text, true); RETURN 'shared'; END $$`,
      )),
  },
  advisoryLocksToPublic: {
    name: "advisory locks executable by PUBLIC",
    description: "PostgreSQL's default: every role may take any advisory lock, the tenant gates included",
    apply: async (m) =>
      void (await m.admin.query(
        `GRANT EXECUTE ON FUNCTION pg_catalog.pg_advisory_lock(bigint), pg_catalog.pg_try_advisory_xact_lock(bigint) TO PUBLIC`,
      )),
  },
  signalsToPublic: {
    auditCheck: "role-signals-backends",
    name: "backend signals executable by PUBLIC",
    description: "PostgreSQL's default: a role may cancel or terminate its own other sessions, i.e. every tenant's",
    apply: async (m) =>
      void (await m.admin.query(
        `GRANT EXECUTE ON FUNCTION pg_catalog.pg_cancel_backend(integer), pg_catalog.pg_terminate_backend(integer, bigint) TO PUBLIC`,
      )),
  },
  loginPolicyUnpinned: {
    auditCheck: "login-policy-unpinned",
    name: "login role policy not pinned to its tenant",
    description: "the dedicated login role's permissive policy is USING (true) WITH CHECK (true): only the forgeable setting bounds it",
    async apply(m, t) {
      const d = await dedicatedTenantWithLogin(m, t);
      for (const table of TENANT_TABLES)
        await m.admin.query(`ALTER POLICY tenant_login ON ${d.schema}.${table.name} USING (true) WITH CHECK (true)`);
    },
  },
  gateLockToTenants: {
    auditCheck: "role-advisory-locks",
    name: "the gate's lock function executable by the tenant roles",
    description: "app_user and readonly execute pg_advisory_xact_lock_shared(bigint) themselves (the state before 0009): any key",
    apply: async (m) =>
      void (await m.admin.query(
        `GRANT EXECUTE ON FUNCTION pg_catalog.pg_advisory_xact_lock_shared(bigint) TO ${ROLES.app}, ${ROLES.readonly}`,
      )),
  },
  largeObjectsToPublic: {
    auditCheck: "role-large-objects",
    name: "large object functions executable by PUBLIC",
    description: "PostgreSQL's default: lo_from_bytea / lo_get for every role",
    apply: async (m) =>
      void (await m.admin.query(`GRANT EXECUTE ON FUNCTION pg_catalog.lo_from_bytea(oid, bytea), pg_catalog.lo_get(oid) TO PUBLIC`)),
  },
  lockStatusToPublic: {
    auditCheck: "role-reads-locks",
    name: "pg_locks readable by PUBLIC",
    description: "PostgreSQL's default: every session's locks, pids and gate keys",
    apply: async (m) =>
      void (await m.admin.query(
        `GRANT SELECT ON pg_catalog.pg_locks TO PUBLIC; GRANT EXECUTE ON FUNCTION pg_catalog.pg_lock_status() TO PUBLIC`,
      )),
  },
  objectStatisticsToPublic: {
    auditCheck: "role-reads-object-stats",
    name: "per-table statistics readable by PUBLIC",
    description: "PostgreSQL's default: pg_stat_user_tables and the pg_stat_get_*(oid) functions behind it",
    apply: async (m) =>
      void (await m.admin.query(
        `GRANT SELECT ON pg_catalog.pg_stat_user_tables TO PUBLIC;
         DO $$ DECLARE f regprocedure; BEGIN
           FOR f IN SELECT p.oid FROM pg_proc p WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname ~ '^pg_stat_get_'
                       AND pg_get_function_identity_arguments(p.oid) = 'oid'
           LOOP EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO PUBLIC', f); END LOOP; END $$`,
      )),
  },
  notifyToPublic: {
    auditCheck: "role-notifications",
    name: "pg_notify() executable by PUBLIC",
    description: "PostgreSQL's default: any role sends on any channel through the function",
    apply: async (m) => void (await m.admin.query(`GRANT EXECUTE ON FUNCTION pg_catalog.pg_notify(text, text) TO PUBLIC`)),
  },
  temporaryGrant: {
    name: "TEMPORARY granted to app_user",
    description: "app_user may create temp tables that shadow tenant tables on a pooled connection",
    apply: async (m) => void (await m.admin.query(`GRANT TEMPORARY ON DATABASE ${pg.escapeIdentifier(m.db.name)} TO ${ROLES.app}`)),
  },
} satisfies Record<string, Breakage>;

// --- helpers ------------------------------------------------------------------------------------

export interface DedicatedWithLogin {
  tenant: Tenant;
  schema: string;
  role: string;
}

const dedicatedTenants = new WeakMap<MigratedDatabase, Promise<DedicatedWithLogin>>();

/** A third, dedicated tenant D with its own login role (made once per database; the role is dropped on close). */
export function dedicatedTenantWithLogin(m: MigratedDatabase, _t: TwoTenants): Promise<DedicatedWithLogin> {
  let made = dedicatedTenants.get(m);
  if (!made) {
    made = (async () => {
      const tenant = await createTenant(m.admin, { slug: "tenant-d", tier: "enterprise", region: "eu" });
      const { schema } = await provisionDedicatedSchema(m.admin, tenant, { capacity: { memoryMiB: 16384 } });
      await m.admin.query(`UPDATE tenancy.tenants SET placement = 'dedicated' WHERE id = $1`, [tenant.id]);
      const role = tenantLoginRoleName(tenant.id);
      m.dropRoleOnClose(role);
      await ensureTenantLoginRole(m.admin, { ...tenant, placement: "dedicated" });
      return { tenant, schema, role };
    })();
    dedicatedTenants.set(m, made);
  }
  return made;
}

/**
 * Runs `SELECT pg_sleep(30)` as `role` bound to tenant B, lets `attack(pid)` signal it, and reports
 * whether the attack's signal landed (the statement failed or the connection dropped). Whatever
 * happens, the victim is cancelled by the superuser afterwards so nothing waits 30 s.
 */
async function signalled(
  ctx: AttackContext,
  role: string,
  attack: (pid: number) => Promise<string | undefined>,
): Promise<{ attack: string | undefined; victim: string | undefined }> {
  const victim = await ctx.m.connectAs(role);
  await victim.query("BEGIN");
  await victim.query("SELECT tenancy.enter_tenant($1)", [ctx.b.id]);
  const pid = (victim as unknown as { processID: number }).processID;
  let victimError: string | undefined = "still running";
  const running = victim.query("SELECT pg_sleep(30)").then(
    () => (victimError = undefined),
    (err: { code?: string; message: string }) => (victimError = err.code ?? err.message),
  );
  for (let i = 0; i < 100; i++) {
    const { rows } = await ctx.m.admin.query(`SELECT state FROM pg_stat_activity WHERE pid = $1`, [pid]);
    if (rows[0]?.state === "active") break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const attacked = await attack(pid);
  await new Promise((r) => setTimeout(r, 100));
  const hit = victimError !== "still running" ? victimError : undefined;
  await ctx.m.admin.query(`SELECT pg_cancel_backend($1)`, [pid]);
  await running;
  await victim.query("ROLLBACK").catch(() => {}); // B's gate, held by the aborted transaction
  await victim.end().catch(() => {});
  return { attack: attacked, victim: hit };
}

/** Rows of other tenants visible in each tenant table, as `table:n` for the evidence. */
async function foreignRows(client: pg.Client, ownTenant: string | null): Promise<string[]> {
  const seen: string[] = [];
  for (const t of SHARED_TABLES) {
    const { rows } = await client.query(`SELECT count(*)::int AS n FROM ${t} WHERE tenant_id IS DISTINCT FROM $1::uuid`, [ownTenant]);
    if (rows[0].n > 0) seen.push(`${t}:${rows[0].n}`);
  }
  return seen;
}

const outcome = (leaked: boolean, evidence: string): Outcome => ({ leaked, evidence });

async function psql(
  url: string,
  sql: string,
  options: { tenant?: string; stdin?: string } = {},
): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      "psql",
      ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
      { env: { ...process.env, PGOPTIONS: options.tenant ? `-c app.current_tenant_id=${options.tenant}` : "" }, timeout: 20_000 },
      (err, stdout, stderr) => resolve({ ok: !err, stdout, stderr }),
    );
    child.stdin?.end(options.stdin ?? "");
  });
}

// --- attacks ------------------------------------------------------------------------------------

export const ATTACKS: Attack[] = [
  {
    name: "missing setting: a session that never set the tenant sees no rows",
    breakage: BREAKAGES.failOpenSetting,
    async run(ctx) {
      const c = await ctx.connect();
      const seen = await foreignRows(c, null);
      return outcome(seen.length > 0, `visible without a tenant: ${seen.join(", ") || "none"}`);
    },
  },
  {
    name: "empty setting (set to '' or left '' after a transaction-local value ended) sees no rows",
    breakage: BREAKAGES.failOpenSetting,
    async run(ctx) {
      const c = await ctx.connect();
      await setTenant(c, "");
      const afterEmpty = await foreignRows(c, null);
      const d = await ctx.connect();
      await d.query("BEGIN");
      await d.query(`SELECT set_config('app.current_tenant_id', $1, true)`, [ctx.a.id]);
      await d.query("COMMIT");
      const afterTransaction = await foreignRows(d, null);
      const seen = [...afterEmpty, ...afterTransaction];
      return outcome(seen.length > 0, `visible with an empty setting: ${seen.join(", ") || "none"}`);
    },
  },
  {
    name: "garbage setting (not a uuid, injection text, an unknown tenant, padded id) sees no rows and never all rows",
    breakage: BREAKAGES.permissiveOnly,
    async run(ctx) {
      const seen: string[] = [];
      for (const value of [
        "not-a-uuid",
        "' OR '1'='1",
        "00000000-0000-0000-0000-000000000000",
        ` ${ctx.a.id}`,
        `${ctx.b.id.toUpperCase()}`,
      ]) {
        const c = await ctx.connect();
        await setTenant(c, value);
        const code = await sqlstate(async () => {
          const rows = await foreignRows(c, null);
          if (rows.length) seen.push(`${JSON.stringify(value)} → ${rows.join(", ")}`);
        });
        if (code) seen.push(`${JSON.stringify(value)} → error ${code} (expected no rows, not an error)`);
      }
      return outcome(seen.length > 0, seen.join("; ") || "no rows for any garbage value");
    },
  },
  {
    name: "read across tenants: by B's tenant_id, by B's row id, through a join, by aggregate",
    breakage: BREAKAGES.permissiveOnly,
    async run(ctx) {
      const c = await ctx.connect();
      await setTenant(c, ctx.a.id);
      const n: number[] = [];
      for (const [sql, param] of [
        [`SELECT count(*)::int AS n FROM shared.trades WHERE tenant_id = $1`, ctx.b.id],
        [`SELECT count(*)::int AS n FROM shared.trades WHERE id = $1`, ctx.bTradeId],
        [
          `SELECT count(*)::int AS n FROM shared.trades t JOIN shared.positions p ON p.tenant_id = t.tenant_id AND p.id = t.position_id WHERE t.tenant_id <> $1`,
          ctx.a.id,
        ],
        [`SELECT count(DISTINCT tenant_id)::int AS n FROM shared.risk_metrics WHERE tenant_id <> $1`, ctx.a.id],
      ]) {
        n.push((await c.query(sql, [param])).rows[0].n);
      }
      return outcome(
        n.some((x) => x > 0),
        `counts of B's rows seen: ${n.join(", ")}`,
      );
    },
  },
  {
    name: "update across tenants changes nothing",
    breakage: BREAKAGES.permissiveOnly,
    async run(ctx) {
      const c = await ctx.connect();
      await setTenant(c, ctx.a.id);
      const byTenant = await c.query(`UPDATE shared.trades SET fee = 99 WHERE tenant_id = $1`, [ctx.b.id]);
      const byId = await c.query(`UPDATE shared.trades SET price = 1 WHERE id = $1`, [ctx.bTradeId]);
      const { rows } = await ctx.m.admin.query(
        `SELECT price::text, (SELECT count(*)::int FROM shared.trades WHERE tenant_id = $2 AND fee = 99) AS touched FROM shared.trades WHERE id = $1`,
        [ctx.bTradeId, ctx.b.id],
      );
      const leaked = (byTenant.rowCount ?? 0) + (byId.rowCount ?? 0) > 0 || rows[0].price !== B_SECRET.price || rows[0].touched > 0;
      return outcome(
        leaked,
        `rowCounts ${byTenant.rowCount}/${byId.rowCount}, B's price now ${rows[0].price}, B rows with fee 99: ${rows[0].touched}`,
      );
    },
  },
  {
    name: "delete across tenants removes nothing",
    breakage: BREAKAGES.permissiveOnly,
    async run(ctx) {
      const before = await countByTenant(ctx.m.admin, "shared.trades", ctx.b.id);
      const c = await ctx.connect();
      await setTenant(c, ctx.a.id);
      const byId = await c.query(`DELETE FROM shared.trades WHERE id = $1`, [ctx.bTradeId]);
      const byTenant = await c.query(`DELETE FROM shared.portfolio_history WHERE tenant_id = $1`, [ctx.b.id]);
      const after = await countByTenant(ctx.m.admin, "shared.trades", ctx.b.id);
      const history = await countByTenant(ctx.m.admin, "shared.portfolio_history", ctx.b.id);
      return outcome(
        after !== before || history === 0,
        `rowCounts ${byId.rowCount}/${byTenant.rowCount}; B's trades ${before} → ${after}, B's history rows ${history}`,
      );
    },
  },
  {
    name: "insert a row into another tenant is refused",
    breakage: BREAKAGES.noWithCheck,
    async run(ctx) {
      const c = await ctx.connect();
      await setTenant(c, ctx.a.id);
      const code = await sqlstate(() =>
        c.query(
          `INSERT INTO shared.trades (tenant_id, symbol, side, quantity, price, client_order_id) VALUES ($1, 'MSFT', 'sell', 1, 1, 'planted-by-a')`,
          [ctx.b.id],
        ),
      );
      const { rows } = await ctx.m.admin.query(
        `SELECT count(*)::int AS n FROM shared.trades WHERE tenant_id = $1 AND client_order_id = 'planted-by-a'`,
        [ctx.b.id],
      );
      return outcome(rows[0].n > 0, `insert ${code ? `failed with ${code}` : "succeeded"}; rows planted in B: ${rows[0].n}`);
    },
  },
  {
    name: "move own rows to another tenant (UPDATE tenant_id) is refused",
    breakage: BREAKAGES.noWithCheck,
    async run(ctx) {
      const before = await countByTenant(ctx.m.admin, "shared.trades", ctx.a.id);
      const c = await ctx.connect();
      await setTenant(c, ctx.a.id);
      // With a WHERE clause PostgreSQL also checks the new row against the SELECT policies, so even a
      // policy without WITH CHECK stops this one; a statement that reads no column is checked by
      // WITH CHECK alone (position_id cleared so the composite FK is not what stops it).
      const one = await sqlstate(() => c.query(`UPDATE shared.trades SET tenant_id = $1 WHERE id = $2`, [ctx.b.id, ctx.aTradeId]));
      const all = await sqlstate(() => c.query(`UPDATE shared.trades SET tenant_id = $1, position_id = NULL`, [ctx.b.id]));
      const after = await countByTenant(ctx.m.admin, "shared.trades", ctx.a.id);
      const { rows } = await ctx.m.admin.query(`SELECT tenant_id FROM shared.trades WHERE id = $1`, [ctx.aTradeId]);
      return outcome(
        rows[0]?.tenant_id === ctx.b.id || after !== before,
        `by id: ${one ?? "succeeded"}; all rows: ${all ?? "succeeded"}; A's trades ${before} → ${after}; the marked row belongs to ${rows[0]?.tenant_id === ctx.b.id ? "B" : "A"}`,
      );
    },
  },
  {
    name: "cross-tenant foreign key: A's trade cannot reference B's position (and the error is no existence oracle)",
    breakage: BREAKAGES.fkWithoutTenant,
    async run(ctx) {
      const c = await ctx.connect();
      await setTenant(c, ctx.a.id);
      const insert = (positionId: string) =>
        sqlstate(() =>
          c.query(
            `INSERT INTO shared.trades (tenant_id, position_id, symbol, side, quantity, price) VALUES ($1, $2, 'AAPL', 'buy', 1, 1)`,
            [ctx.a.id, positionId],
          ),
        );
      const withB = await insert(ctx.bPositionId);
      const withRandom = await insert("7e57e57e-0000-4000-8000-000000000000");
      return outcome(
        withB === undefined || withB !== withRandom,
        `B's position → ${withB ?? "accepted"}; a random id → ${withRandom ?? "accepted"}`,
      );
    },
  },
  {
    name: "a view over tenant data (security_invoker) shows only the caller's rows",
    breakage: BREAKAGES.definerView,
    async run(ctx) {
      const c = await ctx.connect();
      await setTenant(c, ctx.a.id);
      const { rows } = await c.query(`SELECT count(*)::int AS n FROM shared.trade_blotter WHERE tenant_id <> $1`, [ctx.a.id]);
      return outcome(rows[0].n > 0, `other tenants' rows through the view: ${rows[0].n}`);
    },
  },
  {
    name: "COPY TO shows only the tenant's rows; COPY FROM is refused",
    breakage: BREAKAGES.noForceOwnerMember,
    async run(ctx) {
      const url = ctx.m.db.urlAs(ctx.attacker);
      const out = await psql(url, "COPY shared.trades (tenant_id, id) TO STDOUT", { tenant: ctx.a.id });
      const foreign = out.stdout.split("\n").filter((l) => l && !l.startsWith(ctx.a.id)).length;
      const into = await psql(url, "COPY shared.trades (tenant_id, symbol, side, quantity, price, client_order_id) FROM STDIN", {
        tenant: ctx.a.id,
        stdin: `${ctx.b.id}\tAAPL\tbuy\t1\t1\tcopied-by-a\n\\.\n`,
      });
      const { rows } = await ctx.m.admin.query(`SELECT count(*)::int AS n FROM shared.trades WHERE client_order_id = 'copied-by-a'`);
      return outcome(
        foreign > 0 || rows[0].n > 0,
        `COPY TO ${out.ok ? "ran" : `failed (${out.stderr.trim()})`}, other tenants' rows: ${foreign}; COPY FROM ${into.ok ? "ran" : `failed (${into.stderr.trim()})`}, rows written: ${rows[0].n}`,
      );
    },
  },
  {
    name: "TRUNCATE is refused (it ignores RLS)",
    breakage: BREAKAGES.truncateGrant,
    async run(ctx) {
      const c = await ctx.connect();
      await setTenant(c, ctx.a.id);
      const code = await sqlstate(() => c.query(`TRUNCATE shared.portfolio_history`));
      const left = await countByTenant(ctx.m.admin, "shared.portfolio_history", ctx.b.id);
      return outcome(left === 0, `TRUNCATE ${code ? `failed with ${code}` : "succeeded"}; B's history rows left: ${left}`);
    },
  },
  {
    name: "SET row_security = off errors instead of returning rows",
    breakage: BREAKAGES.noForceOwnerMember,
    async run(ctx) {
      const c = await ctx.connect();
      await setTenant(c, ctx.a.id);
      await c.query("SET row_security = off");
      let seen = 0;
      const code = await sqlstate(async () => {
        seen = (await c.query(`SELECT count(*)::int AS n FROM shared.trades WHERE tenant_id = $1`, [ctx.b.id])).rows[0].n;
      });
      return outcome(seen > 0, `query ${code ? `failed with ${code}` : "ran"}; B's rows seen: ${seen}`);
    },
  },
  {
    name: "SET ROLE to the owner, maintenance or migrator is denied",
    breakage: BREAKAGES.maintenanceMember,
    async run(ctx) {
      const results: string[] = [];
      let leaked = false;
      for (const role of [ROLES.owner, ROLES.maintenance, ROLES.migrator]) {
        const c = await ctx.connect();
        await setTenant(c, ctx.a.id);
        const code = await sqlstate(() => c.query(`SET ROLE ${role}`));
        if (code) {
          results.push(`${role}: ${code}`);
          continue;
        }
        const n = (await c.query(`SELECT count(*)::int AS n FROM shared.trades WHERE tenant_id = $1`, [ctx.b.id])).rows[0].n;
        results.push(`${role}: became it, saw ${n} of B's rows`);
        if (n > 0) leaked = true;
      }
      return outcome(leaked, results.join("; "));
    },
  },
  {
    name: "SET SESSION AUTHORIZATION is denied",
    breakage: BREAKAGES.superuserAttacker,
    async run(ctx) {
      const results: string[] = [];
      let leaked = false;
      for (const role of [ROLES.maintenance, ROLES.owner, "postgres"]) {
        const c = await ctx.connect();
        await setTenant(c, ctx.a.id);
        const code = await sqlstate(() => c.query(`SET SESSION AUTHORIZATION ${role}`));
        if (code) {
          results.push(`${role}: ${code}`);
          continue;
        }
        const n = (await c.query(`SELECT count(*)::int AS n FROM shared.trades WHERE tenant_id = $1`, [ctx.b.id])).rows[0].n;
        results.push(`${role}: became it, saw ${n} of B's rows`);
        if (n > 0) leaked = true;
      }
      return outcome(leaked, results.join("; "));
    },
  },
  {
    name: "a prepared statement planned while serving B returns A's rows after the switch (plan reuse does not leak)",
    breakage: BREAKAGES.immutableTenantFunction,
    async run(ctx) {
      const c = await ctx.connect();
      await c.query(`SET plan_cache_mode = force_generic_plan`);
      await setTenant(c, ctx.b.id);
      await c.query(`PREPARE blotter AS SELECT tenant_id FROM shared.trades ORDER BY created_at LIMIT 1000`);
      for (let i = 0; i < 3; i++) await c.query(`EXECUTE blotter`);
      // The same through the extended protocol (node-postgres named statements).
      const named = { name: "blotter_named", text: "SELECT tenant_id FROM shared.trades WHERE symbol = $1", values: ["AAPL"] };
      await c.query(named);
      await setTenant(c, ctx.a.id);
      const sql = (await c.query(`EXECUTE blotter`)).rows.filter((r) => r.tenant_id !== ctx.a.id).length;
      const extended = (await c.query(named)).rows.filter((r) => r.tenant_id !== ctx.a.id).length;
      return outcome(sql + extended > 0, `rows of another tenant returned to A after the switch: PREPARE ${sql}, named ${extended}`);
    },
  },
  {
    name: "error side channels: non-leakproof expressions never run on rows the tenant cannot see",
    breakage: BREAKAGES.permissiveOnly,
    async run(ctx) {
      const c = await ctx.connect();
      await setTenant(c, ctx.a.id);
      const division = await sqlstate(() =>
        c.query(`SELECT count(*) FROM shared.trades WHERE 1 / (price - $1::numeric) > 0`, [B_SECRET.price]),
      );
      const cast = await sqlstate(() =>
        c.query(`SELECT count(*) FROM shared.trades WHERE (CASE WHEN client_order_id = $1 THEN 'x' ELSE '1' END)::int = 1`, [
          B_SECRET.clientOrderId,
        ]),
      );
      return outcome(
        division !== undefined || cast !== undefined,
        `division by (price - B's price): ${division ?? "no error"}; cast on B's order id: ${cast ?? "no error"}`,
      );
    },
  },
  {
    name: "unique keys are per tenant: A may use a client_order_id that B uses (no existence oracle)",
    breakage: BREAKAGES.globalUnique,
    async run(ctx) {
      const c = await ctx.connect();
      await setTenant(c, ctx.a.id);
      await c.query("BEGIN");
      const plain = await sqlstate(() =>
        c.query(
          `INSERT INTO shared.trades (tenant_id, symbol, side, quantity, price, client_order_id) VALUES ($1, 'AAPL', 'buy', 1, 1, $2)`,
          [ctx.a.id, B_SECRET.clientOrderId],
        ),
      );
      await c.query("ROLLBACK");
      return outcome(plain !== undefined, `insert with B's client_order_id: ${plain ?? "accepted"}`);
    },
  },
  {
    name: "a suspended tenant reads and writes nothing: enter_tenant() refuses it",
    breakage: BREAKAGES.ignoresSuspension,
    async run(ctx) {
      await setTenantStatus(ctx.m.admin, ctx.a.id, "suspended");
      try {
        const c = await ctx.connect();
        await c.query("BEGIN");
        const enter = await sqlstate(() => c.query(`SELECT tenancy.enter_tenant($1)`, [ctx.a.id]));
        let own = 0;
        let insert: string | undefined = "not attempted";
        if (enter === undefined) {
          own = (await c.query(`SELECT count(*)::int AS n FROM shared.trades`)).rows[0].n;
          insert = await sqlstate(() =>
            c.query(`INSERT INTO shared.trades (tenant_id, symbol, side, quantity, price) VALUES ($1, 'AAPL', 'buy', 1, 1)`, [ctx.a.id]),
          );
        }
        await c.query("ROLLBACK");
        return outcome(
          enter === undefined || own > 0,
          `enter_tenant: ${enter ?? "accepted"}; rows visible while suspended: ${own}; insert: ${insert ?? "accepted"}`,
        );
      } finally {
        await setTenantStatus(ctx.m.admin, ctx.a.id, "active"); // the real-schema fixture is shared by every attack
      }
    },
  },
  {
    name: "another tenant's gate can be neither held nor probed (advisory locks are outside RLS)",
    breakage: BREAKAGES.advisoryLocksToPublic,
    async run(ctx) {
      // Held exclusively, B's gate makes every transaction of B wait and fail at lock_timeout; held
      // at session level it outlives A's request on a pooled connection; tried, it tells A when B is busy.
      const gate = `hashtextextended('tenancy:tenant:' || $1, 0)`;
      const c = await ctx.connect();
      const taken: string[] = [];
      for (const call of [`pg_try_advisory_xact_lock(${gate})`, `pg_advisory_lock(${gate})`]) {
        await c.query("BEGIN");
        await c.query("SELECT tenancy.enter_tenant($1)", [ctx.a.id]);
        const code = await sqlstate(() => c.query(`SELECT ${call}`, [ctx.b.id]));
        await c.query("ROLLBACK");
        if (code === undefined) taken.push(call.slice(0, call.indexOf("(")));
        else if (code !== "42501") taken.push(`${call.slice(0, call.indexOf("("))}: unexpected ${code}`);
      }
      await c.query("SELECT pg_advisory_unlock_all()").catch(() => {});
      return outcome(taken.length > 0, taken.length ? `took B's gate with ${taken.join(", ")}` : "permission denied for both");
    },
  },
  {
    name: "another tenant's running statement can be neither cancelled nor terminated (as app_user and as readonly)",
    breakage: BREAKAGES.signalsToPublic,
    async run(ctx) {
      const results: string[] = [];
      let leaked = false;
      for (const role of [...new Set([ctx.attacker, ROLES.readonly])]) {
        for (const fn of ["pg_cancel_backend", "pg_terminate_backend"]) {
          const c = await ctx.m.connectAs(role);
          await c.query("BEGIN");
          await c.query("SELECT tenancy.enter_tenant($1)", [ctx.a.id]);
          const r = await signalled(ctx, role, async (pid) => {
            const code = await sqlstate(() => c.query(`SELECT ${fn}($1)`, [pid]));
            return code;
          });
          await c.query("ROLLBACK").catch(() => {});
          results.push(`${role} ${fn}: ${r.attack ?? "allowed"}, B's statement ${r.victim ? `failed (${r.victim})` : "unharmed"}`);
          if (r.attack === undefined && r.victim !== undefined) leaked = true;
        }
      }
      return outcome(leaked, results.join("; "));
    },
  },
  {
    name: "a dedicated tenant's login role neither writes nor reads rows under another tenant's id in its own schema",
    breakage: BREAKAGES.loginPolicyUnpinned,
    async run(ctx) {
      const d = await dedicatedTenantWithLogin(ctx.m, ctx);
      const c = await ctx.m.connectAs(d.role);
      await c.query(`SET app.current_tenant_id = '${ctx.b.id}'`);
      const insert = await sqlstate(() =>
        c.query(
          `INSERT INTO trades (tenant_id, symbol, side, quantity, price, client_order_id) VALUES ($1, 'MSFT', 'sell', 1, 1, 'planted-by-d')`,
          [ctx.b.id],
        ),
      );
      const seen = (await c.query(`SELECT count(*)::int AS n FROM trades WHERE tenant_id <> $1`, [d.tenant.id])).rows[0].n;
      const { rows } = await ctx.m.admin.query(`SELECT count(*)::int AS n FROM ${d.schema}.trades WHERE tenant_id = $1`, [ctx.b.id]);
      await ctx.m.admin.query(`DELETE FROM ${d.schema}.trades WHERE tenant_id = $1`, [ctx.b.id]);
      return outcome(
        rows[0].n > 0 || seen > 0,
        `insert under B's id: ${insert ?? "accepted"}; rows under B's id in ${d.schema}: ${rows[0].n}; foreign rows visible: ${seen}`,
      );
    },
  },
  {
    name: "no advisory lock for tenants: neither the migrate lock's key nor another tenant's gate, while enter_tenant still takes the own gate",
    breakage: BREAKAGES.gateLockToTenants,
    async run(ctx) {
      const taken: string[] = [];
      for (const role of [...new Set([ctx.attacker, ROLES.readonly])]) {
        const c = await ctx.m.connectAs(role);
        for (const [what, key] of [
          ["migrate lock", MIGRATE_LOCK],
          ["B's gate", `tenancy:tenant:${ctx.b.id}`],
        ]) {
          await c.query("BEGIN");
          await c.query("SELECT tenancy.enter_tenant($1)", [ctx.a.id]);
          const code = await sqlstate(() => c.query(`SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0))`, [key]));
          await c.query("ROLLBACK");
          if (code === undefined) taken.push(`${role} held the ${what}`);
          else if (code !== "42501") taken.push(`${role}, ${what}: unexpected ${code}`);
        }
        // The gate itself still works: A's own transaction holds A's gate.
        await c.query("BEGIN");
        await c.query("SELECT tenancy.enter_tenant($1)", [ctx.a.id]);
        const { rows } = await ctx.m.admin.query(
          `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = $1 AND mode = 'ShareLock'`,
          [(c as unknown as { processID: number }).processID],
        );
        await c.query("ROLLBACK");
        if (rows[0].n !== 1) taken.push(`${role}: enter_tenant held ${rows[0].n} gate locks instead of 1`);
      }
      return outcome(taken.length > 0, taken.join("; ") || "permission denied for every key; enter_tenant holds the own gate");
    },
  },
  {
    name: "large objects: a tenant can neither create one nor read one another tenant left",
    breakage: BREAKAGES.largeObjectsToPublic,
    async run(ctx) {
      // One left behind by B (created before the fix), owned by the shared role as B's would be.
      const { rows } = await ctx.m.admin.query(`SELECT lo_from_bytea(0, convert_to($1, 'UTF8'))::bigint AS oid`, [B_SECRET.clientOrderId]);
      const oid = rows[0].oid;
      await ctx.m.admin.query(`ALTER LARGE OBJECT ${oid} OWNER TO ${ROLES.app}`);
      try {
        const b = await ctx.connect();
        await setTenant(b, ctx.b.id);
        const write = await sqlstate(() => b.query(`SELECT lo_from_bytea(0, 'b-data'::bytea)`));
        const a = await ctx.connect();
        await setTenant(a, ctx.a.id);
        let read = "";
        const code = await sqlstate(async () => {
          read = (await a.query(`SELECT convert_from(lo_get($1), 'UTF8') AS v`, [oid])).rows[0].v;
        });
        return outcome(
          write === undefined || read !== "",
          `B's lo_from_bytea: ${write ?? "allowed"}; A's lo_get: ${code ?? `read ${read}`}`,
        );
      } finally {
        await ctx.m.admin.query(`SELECT lo_unlink(oid) FROM pg_largeobject_metadata`);
      }
    },
  },
  {
    name: "pg_locks shows a tenant no other session's locks (pids, gate keys, relations)",
    breakage: BREAKAGES.lockStatusToPublic,
    async run(ctx) {
      const b = await ctx.connect();
      await b.query("BEGIN");
      await b.query("SELECT tenancy.enter_tenant($1)", [ctx.b.id]);
      const a = await ctx.connect();
      let n = 0;
      const code = await sqlstate(async () => {
        n = (await a.query(`SELECT count(*)::int AS n FROM pg_locks WHERE pid <> pg_backend_pid()`)).rows[0].n;
      });
      const fn = await sqlstate(() => a.query(`SELECT count(*) FROM pg_lock_status()`));
      await b.query("ROLLBACK");
      return outcome(n > 0 || fn === undefined, `pg_locks: ${code ?? `${n} foreign lock(s)`}; pg_lock_status(): ${fn ?? "allowed"}`);
    },
  },
  {
    name: "per-table statistics (pg_stat_user_tables, pg_stat_get_*) are out of reach",
    breakage: BREAKAGES.objectStatisticsToPublic,
    async run(ctx) {
      const c = await ctx.connect();
      await setTenant(c, ctx.a.id);
      const view = await sqlstate(() => c.query(`SELECT n_tup_ins, n_live_tup FROM pg_stat_user_tables WHERE relname = 'trades'`));
      const fn = await sqlstate(() => c.query(`SELECT pg_stat_get_tuples_inserted('shared.trades'::regclass)`));
      return outcome(
        view === undefined || fn === undefined,
        `pg_stat_user_tables: ${view ?? "readable"}; pg_stat_get_tuples_inserted: ${fn ?? "readable"}`,
      );
    },
  },
  {
    name: "pg_notify() cannot reach another tenant's listener",
    breakage: BREAKAGES.notifyToPublic,
    async run(ctx) {
      const b = await ctx.connect();
      const received: string[] = [];
      b.on("notification", (n) => received.push(n.payload ?? ""));
      await b.query("LISTEN tenant_b_events");
      const a = await ctx.connect();
      const code = await sqlstate(() => a.query(`SELECT pg_notify('tenant_b_events', 'spoofed-by-a')`));
      await b.query("SELECT 1");
      await new Promise((r) => setTimeout(r, 100));
      return outcome(received.length > 0, `pg_notify: ${code ?? "allowed"}; B received ${JSON.stringify(received)}`);
    },
  },
  {
    name: "no TEMP table can shadow a tenant table on a pooled connection",
    breakage: BREAKAGES.temporaryGrant,
    async run(ctx) {
      const c = await ctx.connect();
      const code = await sqlstate(() => c.query(`CREATE TEMP TABLE trades (tenant_id uuid, id uuid)`));
      return outcome(code === undefined, `CREATE TEMP TABLE: ${code ?? "allowed"}`);
    },
  },
];

/** The view an application would add over tenant data: security_invoker, owned by a superuser (the worst owner). */
export async function createBlotterView(m: MigratedDatabase): Promise<void> {
  await m.admin.query(
    `CREATE VIEW shared.trade_blotter WITH (security_invoker = true) AS SELECT tenant_id, id, symbol, price FROM shared.trades`,
  );
  await m.admin.query(`GRANT SELECT ON shared.trade_blotter TO ${ROLES.app}`);
}

/** The audit's findings for an attacked database, the attacker counted as an app role; the server version is tested on its own. */
export async function auditFindings(ctx: AttackContext): Promise<string[]> {
  const { rows } = await ctx.m.admin.query(
    `SELECT rolname::text AS name FROM pg_roles WHERE rolname ~ $1 AND has_database_privilege(oid, current_database(), 'CONNECT') ORDER BY 1`,
    [DEDICATED_LOGIN_ROLE_PATTERN.source],
  );
  const subjectRoles = [...new Set([ROLES.app, ROLES.readonly, ctx.attacker, ...rows.map((r: { name: string }) => r.name)])];
  return (await auditDatabase(ctx.m.admin, { subjectRoles }))
    .filter((f) => f.check !== "server-version")
    .map((f) => `${f.check}: ${f.object}`);
}
