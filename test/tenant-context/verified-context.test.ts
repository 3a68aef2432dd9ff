/**
 * ADR-005: SQL injected into tenant A's request cannot reach tenant B. Every attack runs inside A's
 * legitimate scope, through the project's client and a real PgBouncer (session mode), and is checked
 * on the same statement (where the attack is an expression), the next statement, and the connection's
 * next request. Each runs twice: on a strict database (must read none of B's rows) and on a database
 * still in the raw-setting mode — the negative control, where the same attack must read B's rows.
 */
import pg from "pg";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TenantPool, withTenant, tenantQuery, type TenantScope } from "../../lib/tenant-context/client";
import { migrate } from "../../lib/schema/migrate";
import { installContextKey, retireContextKey } from "../../lib/tenant-context/keys";
import { generateContextSecret, mintTenantProof, type ContextKey } from "../../lib/tenant-context/proof";
import { ROLES } from "../../lib/schema/roles";
import { withDatabase } from "../support/postgres";
import { bouncerFor, tenantDatabase, type Bouncer, type TenantDatabase } from "../pgbouncer/helpers";

const KEY: ContextKey = { kid: "eu-current", region: "eu", secret: generateContextSecret() };
const NEXT_KEY: ContextKey = { kid: "eu-next", region: "eu", secret: generateContextSecret() };
const RETIRED: ContextKey = { kid: "eu-retired", region: "eu", secret: generateContextSecret() };
const OTHER_REGION: ContextKey = { kid: "us-current", region: "us", secret: generateContextSecret() };

interface Side {
  db: TenantDatabase;
  bouncer: Bouncer;
  pool: TenantPool;
}
let strict: Side;
let raw: Side;
const pools: TenantPool[] = [];

async function side(mode: "verified" | "setting"): Promise<Side> {
  const db = await tenantDatabase({ tiers: ["starter", "pro"] });
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  try {
    // Keys first: a database with tenants is switched to strict only once a key is active.
    for (const key of [KEY, NEXT_KEY, RETIRED]) await installContextKey(admin, key);
    await retireContextKey(admin, RETIRED.kid);
    await migrate(admin, { tenantContext: mode, region: "eu" });
  } finally {
    await admin.end();
  }
  const bouncer = await bouncerFor(db);
  // One connection: the attack's connection is the next request's connection.
  const pool = new TenantPool({ connectionString: bouncer.appUrl, max: 1, contextKey: KEY });
  pools.push(pool);
  return { db, bouncer, pool };
}

beforeAll(async () => {
  [strict, raw] = await Promise.all([side("verified"), side("setting")]);
}, 120_000);

afterAll(async () => {
  await Promise.all(pools.map((p) => p.end().catch(() => {})));
  for (const s of [strict, raw]) {
    await s?.bouncer.stop({ removeDir: true });
    await s?.db.drop();
  }
});

const claimsOf = (s: Side, i: number) => ({ tenantId: s.db.tenants[i].id, tier: s.db.tenants[i].tier });
const A = 0;
const B = 1;

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

interface Outcome {
  sameStatement?: number;
  nextStatement: number;
  nextRequest: number;
  /** The next request for A still works and sees only A's rows. */
  nextRequestOk: boolean;
}

/** Counts B's rows the attacker reaches, at each point. Errors count as zero rows (the attack was refused). */
async function run(s: Side, attack: Attack, rawNegativeControl: boolean): Promise<Outcome> {
  const a = s.db.tenants[A].id;
  const b = s.db.tenants[B].id;
  // On the raw design the proof attacks are replaced by what that design accepts: B's bare id.
  const statements = rawNegativeControl && attack.name.includes("proof") ? [`SELECT tenancy.enter_tenant('${b}')`] : attack.statements(b);
  const expression = rawNegativeControl && attack.name.includes("proof") ? `tenancy.enter_tenant('${b}')` : attack.expression?.(b);
  const countB = async (scope: TenantScope, cte = "") =>
    Number(
      (await scope.query(`${cte}SELECT count(*) FILTER (WHERE t.tenant_id = $1) AS n FROM ${cte ? "attack, " : ""}trades t`, [b])).rows[0]
        .n,
    );
  const outcome: Outcome = { nextStatement: 0, nextRequest: 0, nextRequestOk: false };
  if (expression) {
    // A materialized CTE that the scan joins runs first: the attack and the read are one statement.
    outcome.sameStatement = await withTenant(s.pool, claimsOf(s, A), (scope) =>
      countB(scope, `WITH attack AS MATERIALIZED (SELECT ${expression} AS x) `).catch(() => 0),
    ).catch(() => 0);
  }
  outcome.nextStatement = await withTenant(s.pool, claimsOf(s, A), async (scope) => {
    for (const statement of statements) await scope.query(statement);
    return countB(scope);
  }).catch(() => 0);
  const next = await tenantQuery<{ tenant_id: string }>(s.pool, claimsOf(s, A), `SELECT tenant_id FROM trades`).catch(() => undefined);
  outcome.nextRequest = next ? next.rows.filter((r) => r.tenant_id === b).length : 0;
  outcome.nextRequestOk = !!next && next.rows.length > 0 && next.rows.every((r) => r.tenant_id === a);
  return outcome;
}

describe("attacks inside A's scope (through PgBouncer, the project client)", () => {
  // Names only here: the tenants exist once beforeAll ran.
  const names = ATTACKS("00000000-0000-4000-8000-000000000000").map((x) => x.name);
  for (const [i, name] of names.entries()) {
    it(`${name}: strict reads none of B's rows; the raw-setting design does (negative control)`, async () => {
      const strictAttack = ATTACKS(strict.db.tenants[A].id)[i];
      const rawAttack = ATTACKS(raw.db.tenants[A].id)[i];
      const onStrict = await run(strict, strictAttack, false);
      expect(onStrict).toMatchObject({ nextStatement: 0, nextRequest: 0, nextRequestOk: true });
      if (onStrict.sameStatement !== undefined) expect(onStrict.sameStatement).toBe(0);

      const onRaw = await run(raw, rawAttack, true);
      expect(onRaw.nextRequestOk).toBe(true);
      // The negative control: the same attack reaches B on the raw-setting design.
      expect(Math.max(onRaw.nextStatement, onRaw.sameStatement ?? 0)).toBeGreaterThan(0);
    });
  }
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
  it("strict: zero of B's rows after any sequence; raw: some sequence reaches B (negative control)", async () => {
    const count = (s: Side) => ATTACKS(s.db.tenants[A].id).length;
    const check = async (s: Side, rawNegativeControl: boolean, picks: number[]) => {
      const b = s.db.tenants[B].id;
      const attacks = ATTACKS(s.db.tenants[A].id);
      return withTenant(s.pool, claimsOf(s, A), async (scope) => {
        for (const p of picks) {
          const attack = attacks[p];
          const statements =
            rawNegativeControl && attack.name.includes("proof") ? [`SELECT tenancy.enter_tenant('${b}')`] : attack.statements(b);
          for (const statement of statements) await scope.query(statement);
        }
        return Number(
          (await scope.query("SELECT count(*) FILTER (WHERE tenant_id = $1) AS n FROM trades", [b], { prepare: true })).rows[0].n,
        );
      }).catch(() => 0);
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
});
