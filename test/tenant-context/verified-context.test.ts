/**
 * ADR-005: SQL injected into tenant A's request cannot reach tenant B. Every attack runs inside A's
 * legitimate scope, through a real PgBouncer (session mode), and is checked on the same statement
 * (where the attack is an expression), the next statement, and the connection's next request, with
 * the read run unprepared and prepared. Each runs twice: on a strict database (must read none of B's
 * rows) and on a database still in the raw-setting mode — the negative control, where the same
 * attack must read B's rows.
 *
 * Two attackers run the same table of attacks (ATTACKERS):
 *  - app_user, through the project's client (TenantPool), in a transaction it entered for A;
 *  - a dedicated tenant's own login role (tenant_<hex>_login), through node-postgres, in a
 *    transaction of its own on a pooled connection. Its schema holds rows of B (a misrouted write:
 *    what RLS in a dedicated schema is defence in depth against), and its permissive login policy is
 *    widened to USING (true) on both databases (the audit's login-policy-unpinned finding), so the
 *    tenant predicate alone stands between it and B's rows: on the raw design that predicate is the
 *    setting, which the role sets; on the strict one it is trusted for the role's own id only
 *    (VERIFIED_TENANT_ID_EXPRESSION's current_user branch). With the pinned policy as deployed it sees
 *    a subset of what it sees here, so strict holding here means it holds as deployed.
 */
import { createHash } from "node:crypto";
import pg from "pg";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TenantPool, withTenant, tenantQuery } from "../../lib/tenant-context/client";
import { migrate } from "../../lib/schema/migrate";
import { dropTenantLoginRole, ensureTenantLoginRole, LOGIN_POLICY, provisionDedicatedSchema } from "../../lib/enterprise/dedicated";
import { newScramSalt, scramSha256Verifier } from "../../lib/pgbouncer/auth";
import { TENANT_TABLES } from "../../lib/schema/catalogue";
import { ident, qualified } from "../../lib/db/sql";
import { dedicatedSchemaName, type Tenant } from "../../lib/tenant/model";
import { installContextKey, retireContextKey } from "../../lib/tenant-context/keys";
import { generateContextSecret, mintTenantProof, type ContextKey } from "../../lib/tenant-context/proof";
import { ROLES } from "../../lib/schema/roles";
import { withDatabase } from "../support/postgres";
import type { QueryResult } from "../../lib/db/client";
import { authUsers, bouncerFor, tenantDatabase, type Bouncer, type TenantDatabase } from "../pgbouncer/helpers";

const KEY: ContextKey = { kid: "eu-current", region: "eu", secret: generateContextSecret() };
const NEXT_KEY: ContextKey = { kid: "eu-next", region: "eu", secret: generateContextSecret() };
const RETIRED: ContextKey = { kid: "eu-retired", region: "eu", secret: generateContextSecret() };
const OTHER_REGION: ContextKey = { kid: "us-current", region: "us", secret: generateContextSecret() };

interface Side {
  db: TenantDatabase;
  bouncer: Bouncer;
  pool: TenantPool;
  /** The dedicated tenant D and its login role's connection pool (through PgBouncer, one connection). */
  login: { tenant: Tenant; role: string; pool: pg.Pool };
}
let strict: Side;
let raw: Side;
const pools: TenantPool[] = [];

async function side(mode: "verified" | "setting"): Promise<Side> {
  const db = await tenantDatabase({ tiers: ["starter", "pro", "enterprise"] });
  const admin = new pg.Client({ connectionString: db.url });
  const d = db.tenants[D];
  const loginPassword = generateContextSecret();
  let role: string;
  await admin.connect();
  try {
    // Keys first: a database with tenants is switched to strict only once a key is active.
    for (const key of [KEY, NEXT_KEY, RETIRED]) await installContextKey(admin, key);
    await retireContextKey(admin, RETIRED.kid);
    await migrate(admin, { tenantContext: mode, region: "eu" });
    role = await dedicatedWithLogin(admin, d, db.tenants[B], loginPassword);
  } finally {
    await admin.end();
  }
  const bouncer = await bouncerFor(db, {
    users: [...authUsers(), { name: role, scramVerifier: scramSha256Verifier(loginPassword, { salt: newScramSalt() }) }],
  });
  // One connection: the attack's connection is the next request's connection.
  const pool = new TenantPool({ connectionString: bouncer.appUrl, max: 1, contextKey: KEY });
  pools.push(pool);
  const loginPool = new pg.Pool({ connectionString: bouncer.urlFor(db.name, role, loginPassword), max: 1 });
  loginPool.on("error", () => {});
  return { db, bouncer, pool, login: { tenant: d, role, pool: loginPool } };
}

/**
 * D becomes dedicated (its schema rendered in the database's mode) with its own login role; its
 * schema gets D's trades and B's (planted by the superuser), and the login policy is widened (see
 * the module comment). Returns the role's name.
 */
async function dedicatedWithLogin(admin: pg.Client, d: Tenant, b: Tenant, password: string): Promise<string> {
  const { schema } = await provisionDedicatedSchema(admin, d, { capacity: { memoryMiB: 16384 } });
  await admin.query(`UPDATE tenancy.tenants SET placement = 'dedicated' WHERE id = $1`, [d.id]);
  const { role } = await ensureTenantLoginRole(admin, { ...d, placement: "dedicated" }, { password });
  const { rows } = await admin.query(
    `SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) AS columns FROM pg_attribute
      WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`,
    [qualified(schema, "trades")],
  );
  const columns = rows[0].columns as string;
  // Without their positions (position_id is nullable): only the trades are read.
  const values = columns.replace(/\bposition_id\b/, "NULL");
  await admin.query(
    `INSERT INTO ${qualified(schema, "trades")} (${columns}) SELECT ${values} FROM shared.trades WHERE tenant_id = ANY($1::uuid[])`,
    [[d.id, b.id]],
  );
  for (const table of TENANT_TABLES)
    await admin.query(`ALTER POLICY ${ident(LOGIN_POLICY)} ON ${qualified(schema, table.name)} USING (true) WITH CHECK (true)`);
  return role;
}

beforeAll(async () => {
  [strict, raw] = await Promise.all([side("verified"), side("setting")]);
}, 120_000);

afterAll(async () => {
  await Promise.all(pools.map((p) => p.end().catch(() => {})));
  for (const s of [strict, raw]) {
    await s?.login.pool.end().catch(() => {});
    await s?.bouncer.stop({ removeDir: true });
    if (s) {
      // Roles are cluster-wide: drop D's before its database.
      const admin = new pg.Client({ connectionString: s.db.url });
      await admin.connect();
      await dropTenantLoginRole(admin, s.login.tenant).finally(() => admin.end());
    }
    await s?.db.drop();
  }
});

const claimsOf = (s: Side, i: number) => ({ tenantId: s.db.tenants[i].id, tier: s.db.tenants[i].tier });
const A = 0;
const B = 1;
/** The dedicated tenant whose login role attacks (its schema holds B's planted rows). */
const D = 2;

interface Attack {
  name: string;
  /** Statements the attacker sends, in order (B's id given). */
  statements: (b: string) => string[];
  /** The attack as one expression, for the same-statement check (a materialized CTE runs it first). */
  expression?: (b: string) => string;
}

const expired = (b: string) => mintTenantProof(KEY, b, { ttlSeconds: -5 });
const alteredToB = (a: string, b: string) => {
  const proof = mintTenantProof(KEY, a);
  return proof.replace(a, b);
};

const ATTACKS = (a: string): Attack[] => [
  {
    name: "set_config, transaction-local",
    statements: (b) => [`SELECT set_config('app.current_tenant_id', '${b}', true)`],
    expression: (b) => `set_config('app.current_tenant_id', '${b}', true)`,
  },
  {
    name: "set_config, session-level",
    statements: (b) => [`SELECT set_config('app.current_tenant_id', '${b}', false)`],
    expression: (b) => `set_config('app.current_tenant_id', '${b}', false)`,
  },
  { name: "SET", statements: (b) => [`SET app.current_tenant_id = '${b}'`] },
  { name: "SET LOCAL", statements: (b) => [`SET LOCAL app.current_tenant_id = '${b}'`] },
  { name: "RESET, then SET", statements: (b) => [`RESET app.current_tenant_id`, `SET app.current_tenant_id = '${b}'`] },
  {
    name: "enter_tenant with B's id",
    statements: (b) => [`SELECT tenancy.enter_tenant('${b}')`],
    expression: (b) => `tenancy.enter_tenant('${b}')`,
  },
  { name: "DO block", statements: (b) => [`DO $$ BEGIN PERFORM set_config('app.current_tenant_id', '${b}', true); END $$`] },
  {
    // The client refuses SAVEPOINT statements; a plpgsql exception block is the same subtransaction.
    name: "subtransaction rolled back (SAVEPOINT + ROLLBACK TO)",
    statements: (b) => [
      `DO $$ BEGIN BEGIN PERFORM set_config('app.current_tenant_id', '${b}', true); RAISE EXCEPTION 'roll back'; ` +
        `EXCEPTION WHEN raise_exception THEN PERFORM set_config('app.current_tenant_id', '${b}', true); END; END $$`,
    ],
  },
  ...proofAttacks(a),
];

/** On the raw-setting design a proof is not needed at all: its negative control is enter_tenant with B's id. */
function proofAttacks(a: string): Attack[] {
  const viaProof = (name: string, proof: (b: string) => string): Attack => ({
    name,
    statements: (b) => [`SELECT tenancy.enter_verified_tenant('${proof(b)}')`],
    expression: (b) => `tenancy.enter_verified_tenant('${proof(b)}')`,
  });
  return [
    viaProof("B's proof replayed after expiry", expired),
    viaProof("A's proof altered to B", (b) => alteredToB(a, b)),
    viaProof("B's proof signed with a retired key", (b) => mintTenantProof(RETIRED, b)),
    viaProof("B's proof signed with another region's key", (b) => mintTenantProof(OTHER_REGION, b)),
    viaProof("B's proof of another region's key under this region's kid", (b) =>
      mintTenantProof({ ...OTHER_REGION, kid: KEY.kid, region: "eu" }, b),
    ),
  ];
}

/** One statement of the attacker's request: unnamed, or a named prepared statement of the connection. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Query = (text: string, params?: unknown[], prepare?: boolean) => Promise<QueryResult<any>>;

/** Who runs the attacks: its own tenant, how it runs a request, and what the raw design accepts from it in place of an attack that design has no use for. */
interface Attacker {
  label: string;
  /** The attacker's tenant (index into db.tenants). */
  own: number;
  /** One request of the attacker's tenant: `fn`'s statements in one transaction on the side's pooled connection. */
  request<T>(s: Side, fn: (query: Query) => Promise<T>): Promise<T>;
  /** Attacks replaced on the raw design (they need something it does not have), and their replacement there. */
  substitutedOnRaw(attack: Attack): boolean;
  rawEntry(b: string): string;
  /** Starts the next attack on a clean connection. */
  reset(s: Side): Promise<void>;
  /** The next request must still see its tenant's rows (false: only that it sees nobody else's). */
  recovers: boolean;
}

const isProofAttack = (attack: Attack) => attack.name.includes("proof");

const ATTACKERS: Attacker[] = [
  {
    label: "app_user (TenantPool)",
    own: A,
    request: (s, fn) =>
      withTenant(s.pool, claimsOf(s, A), (scope) => fn((text, params, prepare) => scope.query(text, params, { prepare }))),
    // The raw design has no proof: B's bare id is what it takes.
    substitutedOnRaw: isProofAttack,
    rawEntry: (b) => `SELECT tenancy.enter_tenant('${b}')`,
    // The pool destroys a connection that carries a session-level tenant (the prelude trips).
    reset: async () => {},
    // Every request is entered afresh by the client.
    recovers: true,
  },
  {
    label: "a dedicated tenant's login role",
    own: D,
    async request(s, fn) {
      const c = await s.login.pool.connect();
      let committed = false;
      try {
        await c.query("BEGIN");
        const result = await fn((text, values, prepare) =>
          c.query(prepare ? { text, values, name: `q_${createHash("sha256").update(text).digest("hex").slice(0, 16)}` } : { text, values }),
        );
        await c.query("COMMIT");
        committed = true;
        return result;
      } finally {
        if (!committed) await c.query("ROLLBACK").catch(() => {});
        // Released, not destroyed: whatever the attack left in the session meets the next request.
        c.release();
      }
    },
    // It has EXECUTE on neither entry function (enter_tenant, enter_verified_tenant): its context is
    // its setting, a role default it may change. That is what the raw design trusts.
    substitutedOnRaw: (attack) => isProofAttack(attack) || attack.name.startsWith("enter_tenant"),
    rawEntry: (b) => `SELECT set_config('app.current_tenant_id', '${b}', true)`,
    async reset(s) {
      const c = await s.login.pool.connect();
      c.release(true); // PgBouncer (session mode) resets the server connection for the next client
    },
    // A session-level setting changed by the attacker leaves its own later requests without a tenant
    // on the strict design (nothing matches), which is its own doing.
    recovers: false,
  },
];

interface Outcome {
  sameStatement?: number;
  nextStatement: number;
  nextRequest: number;
  /** Rows of the attacker's own tenant and of anybody else, in the connection's next request. */
  nextRequestOwn: number;
  nextRequestForeign: number;
  /** Errors that refused the attack (shown when an expectation fails). */
  refusals: string[];
}

/** Counts B's rows the attacker reaches, at each point. Errors count as zero rows (the attack was refused). */
async function run(s: Side, who: Attacker, attack: Attack, rawNegativeControl: boolean, prepare: boolean): Promise<Outcome> {
  const own = s.db.tenants[who.own].id;
  const b = s.db.tenants[B].id;
  const substituted = rawNegativeControl && who.substitutedOnRaw(attack);
  const statements = substituted ? [who.rawEntry(b)] : attack.statements(b);
  const expression = substituted ? who.rawEntry(b).replace(/^SELECT /, "") : attack.expression?.(b);
  const countB = async (query: Query, cte = "") =>
    Number(
      (await query(`${cte}SELECT count(*) FILTER (WHERE t.tenant_id = $1) AS n FROM ${cte ? "attack, " : ""}trades t`, [b], prepare))
        .rows[0].n,
    );
  const outcome: Outcome = { nextStatement: 0, nextRequest: 0, nextRequestOwn: 0, nextRequestForeign: 0, refusals: [] };
  const refused = (err: Error) => (outcome.refusals.push(err.message), 0);
  try {
    if (expression) {
      // A materialized CTE that the scan joins runs first: the attack and the read are one statement.
      outcome.sameStatement = await who
        .request(s, (query) => countB(query, `WITH attack AS MATERIALIZED (SELECT ${expression} AS x) `).catch(refused))
        .catch(refused);
      await who.reset(s);
    }
    outcome.nextStatement = await who
      .request(s, async (query) => {
        for (const statement of statements) await query(statement);
        return countB(query);
      })
      .catch(refused);
    const next = await who.request(s, (query) => query(`SELECT tenant_id FROM trades`, [], prepare)).catch(() => undefined);
    const rows = (next?.rows ?? []) as { tenant_id: string }[];
    outcome.nextRequest = rows.filter((r) => r.tenant_id === b).length;
    outcome.nextRequestOwn = rows.filter((r) => r.tenant_id === own).length;
    outcome.nextRequestForeign = rows.length - outcome.nextRequestOwn;
  } finally {
    await who.reset(s);
  }
  return outcome;
}

describe("attacks inside the attacker's own scope (through PgBouncer), the read unprepared and prepared", () => {
  // Names only here: the tenants exist once beforeAll ran.
  const names = ATTACKS("00000000-0000-4000-8000-000000000000").map((x) => x.name);
  for (const who of ATTACKERS) {
    for (const [i, name] of names.entries()) {
      it(`${who.label}: ${name}: strict reads none of B's rows; the raw-setting design does (negative control)`, async () => {
        for (const prepare of [false, true]) {
          const onStrict = await run(strict, who, ATTACKS(strict.db.tenants[who.own].id)[i], false, prepare);
          expect(onStrict, `strict, prepare: ${prepare}`).toMatchObject({ nextStatement: 0, nextRequest: 0, nextRequestForeign: 0 });
          if (onStrict.sameStatement !== undefined) expect(onStrict.sameStatement, `strict, prepare: ${prepare}`).toBe(0);
          if (who.recovers) expect(onStrict.nextRequestOwn, `strict, prepare: ${prepare}`).toBe(20);

          const onRaw = await run(raw, who, ATTACKS(raw.db.tenants[who.own].id)[i], true, prepare);
          if (who.recovers) expect(onRaw).toMatchObject({ nextRequestOwn: 20, nextRequestForeign: 0 });
          // The negative control: the same attack reaches B on the raw-setting design.
          expect(Math.max(onRaw.nextStatement, onRaw.sameStatement ?? 0), `raw, prepare: ${prepare}`).toBeGreaterThan(0);
        }
      });
    }
  }

  it("the login role reads its own tenant's rows in its schema, and B's rows are there to be read (the attacks are not vacuous)", async () => {
    const who = ATTACKERS[1];
    for (const s of [strict, raw]) {
      const own = s.login.tenant.id;
      const rows = await who.request(
        s,
        async (query) => (await query("SELECT tenant_id FROM trades", [], true)).rows as { tenant_id: string }[],
      );
      expect(rows.length).toBe(20);
      expect(rows.every((r) => r.tenant_id === own)).toBe(true);
      const admin = new pg.Client({ connectionString: s.db.url });
      await admin.connect();
      const planted = await admin
        .query(`SELECT count(*)::int AS n FROM ${qualified(dedicatedSchemaName(own), "trades")} WHERE tenant_id = $1`, [s.db.tenants[B].id])
        .finally(() => admin.end());
      expect(planted.rows[0].n).toBe(20);
    }
  });
});

describe("the legitimate paths in strict mode", () => {
  it("tenantQuery and withTenant, prepared and not, see exactly the tenant's rows", async () => {
    for (const i of [A, B]) {
      const id = strict.db.tenants[i].id;
      for (const prepare of [false, true]) {
        const { rows } = await tenantQuery(strict.pool, claimsOf(strict, i), "SELECT tenant_id FROM trades", [], { prepare });
        expect(rows.length).toBe(20);
        expect(rows.every((r) => r.tenant_id === id)).toBe(true);
        const inScope = await withTenant(strict.pool, claimsOf(strict, i), async (scope) => {
          const first = await scope.query("SELECT tenant_id FROM trades", [], { prepare });
          const second = await scope.query("SELECT count(*)::int AS n FROM trades", [], { prepare });
          return { first: first.rows, n: second.rows[0].n as number };
        });
        expect(inScope.n).toBe(20);
        expect(inScope.first.every((r) => r.tenant_id === id)).toBe(true);
      }
    }
  });

  it("a pool without a key is refused by a strict database (the raw entry is revoked), and works on the raw one", async () => {
    const keyless = new TenantPool({ connectionString: strict.bouncer.appUrl, max: 1 });
    pools.push(keyless);
    await expect(tenantQuery(keyless, claimsOf(strict, A), "SELECT 1")).rejects.toThrow(/permission denied for function enter_tenant/);
    const keylessRaw = new TenantPool({ connectionString: raw.bouncer.appUrl, max: 1 });
    pools.push(keylessRaw);
    expect((await tenantQuery(keylessRaw, claimsOf(raw, A), "SELECT count(*)::int AS n FROM trades")).rows[0].n).toBe(20);
  });

  it("rotation: two keys verify at once; a retired one is refused from the next transaction on", async () => {
    const next = new TenantPool({ connectionString: strict.bouncer.appUrl, max: 1, contextKey: NEXT_KEY });
    pools.push(next);
    expect((await tenantQuery(next, claimsOf(strict, A), "SELECT count(*)::int AS n FROM trades")).rows[0].n).toBe(20);
    expect((await tenantQuery(strict.pool, claimsOf(strict, A), "SELECT count(*)::int AS n FROM trades")).rows[0].n).toBe(20);
    const admin = new pg.Client({ connectionString: strict.db.url });
    await admin.connect();
    try {
      await retireContextKey(admin, NEXT_KEY.kid);
      await expect(tenantQuery(next, claimsOf(strict, A), "SELECT 1")).rejects.toThrow(/not valid here/);
      await installContextKey(admin, NEXT_KEY); // re-activated with the same secret
      expect((await tenantQuery(next, claimsOf(strict, A), "SELECT count(*)::int AS n FROM trades")).rows[0].n).toBe(20);
    } finally {
      await admin.end();
    }
  });

  it("the keys are readable by no tenant role (app_user, readonly), directly", async () => {
    for (const role of [ROLES.app, ROLES.readonly]) {
      const c = new pg.Client({ connectionString: withDatabase(strict.db.url, strict.db.name, role) });
      await c.connect();
      try {
        await expect(c.query("SELECT * FROM tenancy_private.context_keys")).rejects.toThrow(/permission denied for schema tenancy_private/);
      } finally {
        await c.end();
      }
    }
  });

  it("readonly: a verified proof reads its tenant; a forged setting reads nothing (raw design: B's rows)", async () => {
    for (const [s, strictSide] of [
      [strict, true],
      [raw, false],
    ] as const) {
      const pool = new TenantPool({ connectionString: withDatabase(s.db.url, s.db.name, ROLES.readonly), max: 1, contextKey: KEY });
      pools.push(pool);
      const b = s.db.tenants[B].id;
      const n = await withTenant(pool, claimsOf(s, A), async (scope) => {
        const own = Number((await scope.query("SELECT count(*) AS n FROM trades")).rows[0].n);
        expect(own).toBe(20);
        await scope.query(`SELECT set_config('app.current_tenant_id', $1, true)`, [b]);
        return Number(
          (await scope.query("SELECT count(*) FILTER (WHERE tenant_id = $1) AS n FROM trades", [b], { prepare: true })).rows[0].n,
        );
      });
      if (strictSide) expect(n).toBe(0);
      else expect(n).toBe(20);
    }
  });
});

describe("property: random sequences of the attacks never reach B in strict mode", () => {
  for (const who of ATTACKERS) {
    it(`${who.label}: strict: zero of B's rows after any sequence; raw: some sequence reaches B (negative control)`, async () => {
      const count = (s: Side) => ATTACKS(s.db.tenants[who.own].id).length;
      const check = async (s: Side, rawNegativeControl: boolean, picks: number[]) => {
        const b = s.db.tenants[B].id;
        const attacks = ATTACKS(s.db.tenants[who.own].id);
        try {
          return await who.request(s, async (query) => {
            for (const p of picks) {
              const attack = attacks[p];
              const statements = rawNegativeControl && who.substitutedOnRaw(attack) ? [who.rawEntry(b)] : attack.statements(b);
              for (const statement of statements) await query(statement);
            }
            return Number((await query("SELECT count(*) FILTER (WHERE tenant_id = $1) AS n FROM trades", [b], true)).rows[0].n);
          });
        } catch {
          return 0;
        } finally {
          await who.reset(s);
        }
      };
      await fc.assert(
        fc.asyncProperty(fc.array(fc.nat({ max: count(strict) - 1 }), { minLength: 1, maxLength: 5 }), async (picks) => {
          expect(await check(strict, false, picks)).toBe(0);
        }),
        { numRuns: 25 },
      );
      let leaked = false;
      await fc.assert(
        fc.asyncProperty(fc.array(fc.nat({ max: count(raw) - 1 }), { minLength: 1, maxLength: 5 }), async (picks) => {
          if ((await check(raw, true, picks)) > 0) leaked = true;
        }),
        { numRuns: 25 },
      );
      expect(leaked).toBe(true);
    });
  }
});
