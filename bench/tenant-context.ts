/**
 * What the tenant context costs per transaction (issues 4 and 21): a tenant-scoped request against
 * the same query with an explicit `tenant_id = $1` predicate in one round trip (the floor:
 * superuser, no RLS). Issue 4's goal: a single-query tenant-scoped request ≤ 1.15× the floor (met
 * by the mechanism through PgBouncer, not by the whole tenantQuery: docs/adr/ADR-003-tenant-transaction-cost.md).
 * Issue 21's: `tenantQuery { prepare: true }` ≤ 1.30× the prepared floor through PgBouncer and
 * unprepared `tenantQuery` ≤ 1.25× the unprepared floor, for today's prelude and the strict one
 * (ADR-005), which run side by side here on a copy of the database made from it as a template.
 *
 * Variants, each on its own connection, run one after another in a random order inside every
 * iteration (interleaved, never in separate runs: see ../shared/notes/performance.md), direct to
 * PostgreSQL and through PgBouncer:
 *   floor A, floor A′     the explicit-predicate query, one round trip (A/A′ = the noise floor)
 *   floor in a tx         BEGIN + the floor + COMMIT as one batch: what wrapping in a transaction costs
 *   session set_config    set_config(tenant, session) + the RLS query as one batch: RLS and the
 *                         cheapest possible context, no transaction (unsafe behind a pooler)
 *   setting only          set_config(tenant, local) + the RLS query, one batch (one implicit
 *                         transaction), the setting named as tenantQuery's prelude is: the issue's
 *                         mechanism, tenantQuery minus enter_tenant's work (gate, registry lookup,
 *                         routing, log tag, timeouts)
 *   tenantQuery           prelude (timeouts, enter_tenant) + query, one write, one Sync
 *                         (lib/db/batch.ts): one implicit transaction
 *   raw batch             the same two statements as one batch on a bare client (no pool, no
 *                         claims check): tenantQuery minus the library's own overhead
 *   raw batch, BEGIN…COMMIT  BEGIN + prelude + query + COMMIT as one batch: the shape tenantQuery
 *                         had before, what the explicit transaction block costs
 *   pg pipeline mode      those four statements through node-postgres' pipeline mode on a bare
 *                         client (one write, but a Sync per statement, so it needs the BEGIN): the
 *                         executor not chosen
 *   withTenant (1 stmt)   BEGIN + prelude + query in one write, then COMMIT: two round trips
 *   sequential            BEGIN, prelude, query, COMMIT awaited one by one: four round trips
 *   simple multi          prelude and query as one simple-protocol message (one implicit
 *                         transaction), tenant id and values inlined as literals
 *   floor prepared        the floor as a named prepared statement (node-postgres `name`)
 *   tenantQuery prepared  tenantQuery with `{ prepare: true }`: compare with "floor prepared"
 *   raw batch prepared    raw batch with the query named too: tenantQuery prepared minus the library
 *   tenantQuery strict, tenantQuery strict prepared, raw batch strict, raw batch strict prepared
 *                         the same on the strict copy: the prelude calls enter_verified_tenant with
 *                         a proof minted per request (the pool's context key)
 * So the distance from the floor splits into RLS with the cheapest context (session set_config),
 * the transaction-local setting (setting only), enter_tenant's work (raw batch), the verifier's
 * (raw batch strict), the library's own work (tenantQuery) and round trips (sequential, withTenant);
 * the "breakdown" lines print those ratios.
 * Every result is checked against the floor's (same rows, all of the tenant).
 *
 *   npm run bench:tenant-context -- --quick      about a minute
 *   npm run bench:tenant-context                 3 reps × 2,000 iterations
 *   flags: --json, --markdown, --reps n, --iterations n, --shape point|recent,
 *          --variants "floor prepared,tenantQuery strict prepared" (floor A always runs), --paths direct|pgbouncer
 *   profiling one variant's client side:
 *     node --cpu-prof --import tsx bench/tenant-context.ts --quick --paths direct --variants "tenantQuery strict prepared"
 * Exit code 1 when any result differed from the floor's; timing never fails the run.
 */
import pg from "pg";
import { runBatch, type Statement } from "../lib/db/batch";
import { TenantPool } from "../lib/tenant-context/client";
import { mintTenantProof, type ContextKey } from "../lib/tenant-context/proof";
import type { Tenant } from "../lib/tenant/model";
import { TIER_LIMITS } from "../lib/tenant/tiers";
import { positiveIntFlag, startBenchStack, type BenchStack } from "./pgbouncer-common";
import { median, prng, shuffle, summarize } from "./stats";
import { UsageError } from "../cli/output";
import { entryPoint, headerComment, runMain, type ParsedValues } from "../cli/runner";

const SHAPES = {
  point: {
    floor: "SELECT id, tenant_id, symbol, price FROM shared.trades WHERE tenant_id = $1 AND id = $2",
    candidate: "SELECT id, tenant_id, symbol, price FROM trades WHERE id = $1",
    qualified: "SELECT id, tenant_id, symbol, price FROM shared.trades WHERE id = $1",
  },
  recent: {
    floor:
      "SELECT id, tenant_id, symbol, price FROM shared.trades WHERE tenant_id = $1 AND $2::uuid IS NOT NULL ORDER BY executed_at DESC LIMIT 10",
    candidate: "SELECT id, tenant_id, symbol, price FROM trades WHERE $1::uuid IS NOT NULL ORDER BY executed_at DESC LIMIT 10",
    qualified: "SELECT id, tenant_id, symbol, price FROM shared.trades WHERE $1::uuid IS NOT NULL ORDER BY executed_at DESC LIMIT 10",
  },
} as const;
type Shape = keyof typeof SHAPES;

const VARIANTS = [
  "floor A",
  "floor A′",
  "floor in a tx",
  "session set_config",
  "setting only",
  "tenantQuery",
  "raw batch",
  "raw batch, BEGIN…COMMIT",
  "pg pipeline mode",
  "withTenant (1 stmt)",
  "sequential",
  "simple multi",
  "floor prepared",
  "tenantQuery prepared",
  "raw batch prepared",
  "tenantQuery strict",
  "tenantQuery strict prepared",
  "raw batch strict",
  "raw batch strict prepared",
] as const;
type Variant = (typeof VARIANTS)[number];
const TRIPS: Record<Variant, number> = {
  "floor A": 1,
  "floor A′": 1,
  "floor in a tx": 1,
  "session set_config": 1,
  "setting only": 1,
  tenantQuery: 1,
  "raw batch": 1,
  "raw batch, BEGIN…COMMIT": 1,
  "pg pipeline mode": 1,
  "withTenant (1 stmt)": 2,
  sequential: 4,
  "simple multi": 1,
  "floor prepared": 1,
  "tenantQuery prepared": 1,
  "raw batch prepared": 1,
  "tenantQuery strict": 1,
  "tenantQuery strict prepared": 1,
  "raw batch strict": 1,
  "raw batch strict prepared": 1,
};
const PATHS = ["direct", "pgbouncer"] as const;

/** Issue 21's limits on the fixed per-transaction cost (p50 against the floor of the same protocol). */
const FIXED_COST_GOALS: { candidate: Variant; floor: Variant; limit: number }[] = [
  { candidate: "tenantQuery prepared", floor: "floor prepared", limit: 1.3 },
  { candidate: "tenantQuery strict prepared", floor: "floor prepared", limit: 1.3 },
  { candidate: "tenantQuery", floor: "floor A", limit: 1.25 },
  { candidate: "tenantQuery strict", floor: "floor A", limit: 1.25 },
];
/** Ratios that split the distance from the floor (no limits). */
const BREAKDOWN: [Variant, Variant][] = [
  ["floor A′", "floor A"],
  ["setting only", "floor A"],
  ["raw batch prepared", "floor prepared"],
  ["tenantQuery prepared", "raw batch prepared"],
  ["raw batch strict prepared", "raw batch prepared"],
  ["tenantQuery strict prepared", "raw batch strict prepared"],
  ["tenantQuery", "raw batch"],
  ["tenantQuery strict", "raw batch strict"],
];
type Path = (typeof PATHS)[number];

type Row = { id: string; tenant_id: string };
type Run = (tenant: Tenant, id: string) => Promise<Row[]>;

function naivePool(url: string): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  pool.on("error", () => {});
  return pool;
}

/** Statements through node-postgres' pipeline mode, corked into one write (a Sync per statement). */
async function pipelined(client: pg.Client, statements: Statement[]): Promise<pg.QueryResult[]> {
  const socket = (client as unknown as { connection: { stream: { cork(): void; uncork(): void } } }).connection.stream;
  socket.cork();
  try {
    return Promise.all(
      statements.map((s) => client.query({ text: s.text, values: s.values, name: s.name, queryMode: "extended" } as pg.QueryConfig)),
    );
  } finally {
    socket.uncork();
  }
}

/** Statements as one batch (lib/db/batch.ts: one write, one Sync); throws the batch's error. */
async function batch(client: pg.Client, statements: Statement[], prepared?: Set<string>): Promise<pg.QueryResult[]> {
  const outcome = await runBatch(client, statements, prepared);
  if (outcome.error) throw outcome.error;
  return outcome.results;
}

async function connectedClient(url: string, closers: (() => Promise<void>)[], pipeline = false): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, pipeline });
  client.on("error", () => {});
  await client.connect();
  closers.push(() => client.end());
  return client;
}

async function variantsFor(
  url: { app: string; floor: string; strictApp: string },
  contextKey: ContextKey,
  shape: Shape,
  closers: (() => Promise<void>)[],
): Promise<Record<Variant, Run>> {
  const q = SHAPES[shape];
  const floorA = naivePool(url.floor);
  const floorB = naivePool(url.floor);
  const floorTx = await connectedClient(url.floor, closers);
  const sessionSet = await connectedClient(url.app, closers);
  const settingOnly = await connectedClient(url.app, closers);
  const settingOnlyPrepared = new Set<string>();
  const rawBatch = await connectedClient(url.app, closers);
  const rawPrepared = new Set<string>();
  const rawTx = await connectedClient(url.app, closers);
  const rawTxPrepared = new Set<string>();
  const pgPipeline = await connectedClient(url.app, closers, true);
  const tq = new TenantPool({ connectionString: url.app, max: 1 });
  const wt = new TenantPool({ connectionString: url.app, max: 1 });
  const floorPrepared = naivePool(url.floor);
  const tqPrepared = new TenantPool({ connectionString: url.app, max: 1 });
  const seq = naivePool(url.app);
  const multi = naivePool(url.app);
  const rawPreparedBoth = await connectedClient(url.app, closers);
  const rawPreparedBothSet = new Set<string>();
  const tqStrict = new TenantPool({ connectionString: url.strictApp, max: 1, contextKey });
  const tqStrictPrepared = new TenantPool({ connectionString: url.strictApp, max: 1, contextKey });
  const rawStrict = await connectedClient(url.strictApp, closers);
  const rawStrictPrepared = new Set<string>();
  const rawStrictBoth = await connectedClient(url.strictApp, closers);
  const rawStrictBothPrepared = new Set<string>();
  closers.push(
    () => tqStrict.end(),
    () => tqStrictPrepared.end(),
    () => floorA.end(),
    () => floorB.end(),
    () => tq.end(),
    () => floorPrepared.end(),
    () => tqPrepared.end(),
    () => wt.end(),
    () => seq.end(),
    () => multi.end(),
  );
  const claims = (t: Tenant) => ({ tenantId: t.id, tier: t.tier });
  const prelude =
    "SELECT current_setting('app.current_tenant_id', true) AS inherited, set_config('statement_timeout', $2, true), set_config('lock_timeout', $2, true), tenancy.enter_tenant($1::uuid)";
  const preludeFor = (t: Tenant): Statement => ({
    text: prelude,
    values: [t.id, String(TIER_LIMITS[t.tier].statementTimeoutMs)],
    name: "p",
  });
  // The strict prelude as tenantQuery sends it: a proof minted per request (lib/tenant-context/proof.ts).
  const verifiedPreludeFor = (t: Tenant): Statement => ({
    text: prelude.replace("tenancy.enter_tenant($1::uuid)", "tenancy.enter_verified_tenant($1::text)"),
    values: [mintTenantProof(contextKey, t.id), String(TIER_LIMITS[t.tier].statementTimeoutMs)],
    name: "pv",
  });
  const inTransaction = (t: Tenant, id: string): Statement[] => [
    { text: "BEGIN", name: "b" },
    preludeFor(t),
    { text: q.candidate, values: [id] },
    { text: "COMMIT", name: "c" },
  ];
  return {
    "floor A": async (t, id) => (await floorA.query(q.floor, [t.id, id])).rows,
    "floor A′": async (t, id) => (await floorB.query(q.floor, [t.id, id])).rows,
    "floor in a tx": async (t, id) =>
      (await batch(floorTx, [{ text: "BEGIN" }, { text: q.floor, values: [t.id, id] }, { text: "COMMIT" }]))[1].rows,
    "session set_config": async (t, id) =>
      (
        await batch(sessionSet, [
          { text: "SELECT set_config('app.current_tenant_id', $1, false)", values: [t.id] },
          { text: q.qualified, values: [id] },
        ])
      )[1].rows,
    "setting only": async (t, id) =>
      (
        await batch(
          settingOnly,
          [
            { text: "SELECT set_config('app.current_tenant_id', $1, true)", values: [t.id], name: "s" },
            { text: q.qualified, values: [id] },
          ],
          settingOnlyPrepared,
        )
      )[1].rows as Row[],
    tenantQuery: async (t, id) => (await tq.tenantQuery<Row>(claims(t), q.candidate, [id])).rows,
    "raw batch": async (t, id) =>
      (await batch(rawBatch, [preludeFor(t), { text: q.candidate, values: [id] }], rawPrepared))[1].rows as Row[],
    "raw batch, BEGIN…COMMIT": async (t, id) => (await batch(rawTx, inTransaction(t, id), rawTxPrepared))[2].rows as Row[],
    "pg pipeline mode": async (t, id) => (await pipelined(pgPipeline, inTransaction(t, id)))[2].rows,
    "withTenant (1 stmt)": (t, id) => wt.withTenant(claims(t), async (tx) => (await tx.query<Row>(q.candidate, [id])).rows),
    sequential: async (t, id) => {
      const c = await seq.connect();
      try {
        await c.query("BEGIN");
        await c.query(prelude, [t.id, String(TIER_LIMITS[t.tier].statementTimeoutMs)]);
        const { rows } = await c.query(q.candidate, [id]);
        await c.query("COMMIT");
        return rows;
      } finally {
        c.release();
      }
    },
    "simple multi": async (t, id) => {
      const lit = pg.escapeLiteral;
      const text =
        `SELECT set_config('statement_timeout', ${lit(String(TIER_LIMITS[t.tier].statementTimeoutMs))}, true), tenancy.enter_tenant(${lit(t.id)}::uuid); ` +
        q.candidate.replace("$1", `${lit(id)}::uuid`);
      const results = (await multi.query(text)) as unknown as pg.QueryResult<Row>[];
      return results[1].rows;
    },
    "floor prepared": async (t, id) => (await floorPrepared.query<Row>({ name: "floor", text: q.floor, values: [t.id, id] })).rows,
    "tenantQuery prepared": async (t, id) => (await tqPrepared.tenantQuery<Row>(claims(t), q.candidate, [id], { prepare: true })).rows,
    "raw batch prepared": async (t, id) =>
      (await batch(rawPreparedBoth, [preludeFor(t), { text: q.candidate, values: [id], name: "q" }], rawPreparedBothSet))[1].rows as Row[],
    "tenantQuery strict": async (t, id) => (await tqStrict.tenantQuery<Row>(claims(t), q.candidate, [id])).rows,
    "tenantQuery strict prepared": async (t, id) =>
      (await tqStrictPrepared.tenantQuery<Row>(claims(t), q.candidate, [id], { prepare: true })).rows,
    "raw batch strict": async (t, id) =>
      (await batch(rawStrict, [verifiedPreludeFor(t), { text: q.candidate, values: [id] }], rawStrictPrepared))[1].rows as Row[],
    "raw batch strict prepared": async (t, id) =>
      (await batch(rawStrictBoth, [verifiedPreludeFor(t), { text: q.candidate, values: [id], name: "q" }], rawStrictBothPrepared))[1]
        .rows as Row[],
  };
}

interface Args {
  reps: number;
  iterations: number;
  warmup: number;
  tenants: number;
  trades: number;
  shape: Shape;
  /** The variants to run ("floor A", the reference of every ratio, always runs). */
  variants: Variant[];
  paths: Path[];
  json: boolean;
  markdown: boolean;
}

const OPTIONS = {
  quick: { type: "boolean", default: false },
  markdown: { type: "boolean", default: false },
  reps: { type: "string" },
  iterations: { type: "string" },
  shape: { type: "string", default: "point" },
  variants: { type: "string" },
  paths: { type: "string" },
} as const;

/** A comma-separated subset of `known`, in `known`'s order; all of them when not given. */
function subset<T extends string>(flag: string, value: string | undefined, known: readonly T[]): T[] {
  if (value === undefined) return [...known];
  const items = value.split(",").map((x) => x.trim());
  for (const item of items) if (!known.includes(item as T)) throw new UsageError(`unknown "${item}"; known: ${known.join(", ")}`, flag);
  return known.filter((k) => items.includes(k));
}

function parse(values: ParsedValues<typeof OPTIONS>): Args {
  if (!(values.shape in SHAPES)) throw new UsageError(`one of ${Object.keys(SHAPES).join(", ")}`, "--shape");
  return {
    reps: positiveIntFlag("reps", values.reps, 3),
    iterations: positiveIntFlag("iterations", values.iterations, values.quick ? 600 : 2000),
    warmup: values.quick ? 100 : 300,
    tenants: 10,
    trades: values.quick ? 2_000 : 10_000,
    shape: values.shape as Shape,
    variants: [...new Set<Variant>(["floor A", ...subset("--variants", values.variants, VARIANTS)])],
    paths: subset("--paths", values.paths, PATHS),
    json: values.json,
    markdown: values.markdown,
  };
}

async function main(args: Args): Promise<number> {
  const log = (m: string) => process.stderr.write(`${m}\n`);
  log(`starting PostgreSQL + PgBouncer, ${args.tenants} tenants…`);
  const stack: BenchStack = await startBenchStack({ tenants: args.tenants, trades: args.trades, log, strict: true });
  const strict = stack.strict!;
  const closers: (() => Promise<void>)[] = [];
  try {
    const ids = new Map<string, string[]>();
    const admin = new pg.Client({ connectionString: stack.directFloorUrl });
    await admin.connect();
    for (const t of stack.tenants)
      ids.set(
        t.id,
        (await admin.query("SELECT id FROM shared.trades WHERE tenant_id = $1 ORDER BY id LIMIT 500", [t.id])).rows.map((r) => r.id),
      );
    await admin.end();

    const runs: Record<Path, Record<Variant, Run>> = {
      direct: await variantsFor(
        { app: stack.directAppUrl, floor: stack.directFloorUrl, strictApp: strict.directAppUrl },
        strict.contextKey,
        args.shape,
        closers,
      ),
      pgbouncer: await variantsFor(
        { app: stack.bouncerAppUrl, floor: stack.bouncerFloorUrl, strictApp: strict.bouncerAppUrl },
        strict.contextKey,
        args.shape,
        closers,
      ),
    };
    const combos = args.paths.flatMap((p) => args.variants.map((v) => [p, v] as const));
    const perRep: Record<string, number[]>[] = [];
    let mismatches = 0;

    for (let rep = 0; rep < args.reps; rep++) {
      const random = prng(1000 + rep);
      const samples: Record<string, number[]> = Object.fromEntries(combos.map(([p, v]) => [`${p}|${v}`, []]));
      for (let it = 0; it < args.warmup + args.iterations; it++) {
        const tenant = stack.tenants[Math.floor(random() * stack.tenants.length)];
        const list = ids.get(tenant.id)!;
        const id = list[Math.floor(random() * list.length)];
        const expected = new Map<Path, string>();
        // A fresh random order every iteration: a fixed rotation keeps the same neighbours, and the
        // variant that runs right after another on the same row finds warmer caches (A′ after A).
        const order = shuffle(combos, random);
        for (const [path, variant] of order) {
          const started = performance.now();
          const rows = await runs[path][variant](tenant, id);
          const elapsed = performance.now() - started;
          const key = rows.map((r) => r.id).join(",");
          if (rows.length === 0 || rows.some((r) => r.tenant_id !== tenant.id)) mismatches++;
          if (!expected.has(path)) expected.set(path, key);
          else if (expected.get(path) !== key) mismatches++;
          if (it >= args.warmup) samples[`${path}|${variant}`].push(elapsed * 1000);
        }
      }
      perRep.push(samples);
      log(`rep ${rep + 1}/${args.reps} done`);
    }

    const report = combos.map(([path, variant]) => {
      const all = perRep.flatMap((r) => r[`${path}|${variant}`]);
      const ratios = perRep.map((r) => median(r[`${path}|${variant}`]) / median(r[`${path}|floor A`]));
      const s = summarize(all);
      return {
        path,
        variant,
        trips: TRIPS[variant],
        p50Us: s.p50,
        p95Us: s.p95,
        p99Us: s.p99,
        ratio: median(ratios),
        ratioMin: Math.min(...ratios),
        ratioMax: Math.max(...ratios),
      };
    });
    /** candidate/floor of per-repetition p50s: the median across repetitions and the range. */
    const ratioOf = (path: Path, candidate: Variant, floor: Variant) => {
      const ratios = perRep.map((r) => median(r[`${path}|${candidate}`]) / median(r[`${path}|${floor}`]));
      return { ratio: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) };
    };
    // Issue 21: the fixed per-transaction cost of a tenant request, today's prelude and the strict
    // one, against the floor of the same protocol (the limits are the issue's; through PgBouncer is
    // what production runs, direct is reported alongside).
    const ran = (...variants: Variant[]) => variants.every((v) => args.variants.includes(v));
    const goals = args.paths.flatMap((path) =>
      FIXED_COST_GOALS.filter((g) => ran(g.candidate, g.floor))
        .map((g) => ({ path, ...g, ...ratioOf(path, g.candidate, g.floor) }))
        .map((g) => ({ ...g, met: g.ratio <= g.limit })),
    );
    // Where the distance goes: the mechanism (setting only), the library (tenantQuery vs the same
    // statements on a bare client) and the verifier (strict vs today's).
    const breakdown = args.paths.flatMap((path) =>
      BREAKDOWN.filter(([candidate, floor]) => ran(candidate, floor)).map(([candidate, floor]) => ({
        path,
        candidate,
        floor,
        ...ratioOf(path, candidate, floor),
      })),
    );
    const meta = { shape: args.shape, reps: args.reps, iterations: args.iterations, tenants: args.tenants, mismatches };

    if (args.json) process.stdout.write(JSON.stringify({ ...meta, report, goals, breakdown }, null, 2) + "\n");
    else if (args.markdown) {
      const lines = [
        `| path | variant | round trips | p50 µs | p95 µs | × floor A, p50 (median of ${args.reps} reps, range) |`,
        "|---|---|---:|---:|---:|---|",
        ...report.map(
          (r) =>
            `| ${r.path} | ${r.variant} | ${r.trips} | ${r.p50Us.toFixed(0)} | ${r.p95Us.toFixed(0)} | ${r.ratio.toFixed(2)} (${r.ratioMin.toFixed(2)}–${r.ratioMax.toFixed(2)}) |`,
        ),
        "",
        "| path | ratio (p50) | goal | measured (range) | |",
        "|---|---|---:|---|---|",
        ...goals.map(
          (g) =>
            `| ${g.path} | ${g.candidate} / ${g.floor} | ≤ ${g.limit.toFixed(2)} | ${g.ratio.toFixed(2)} (${g.min.toFixed(2)}–${g.max.toFixed(2)}) | ${g.met ? "met" : "**not met**"} |`,
        ),
        ...breakdown.map(
          (b) => `| ${b.path} | ${b.candidate} / ${b.floor} | | ${b.ratio.toFixed(2)} (${b.min.toFixed(2)}–${b.max.toFixed(2)}) | |`,
        ),
      ];
      process.stdout.write(lines.join("\n") + "\n");
    } else {
      const lines = [
        `shape ${args.shape}: ${args.iterations} iterations × ${args.reps} reps, ${args.tenants} tenants, variants interleaved in random order`,
        "path       variant                        trips   p50 µs   p95 µs   p99 µs   × floor A [range]",
        ...report.map(
          (r) =>
            `${r.path.padEnd(10)} ${r.variant.padEnd(30)} ${String(r.trips).padStart(5)} ${r.p50Us.toFixed(0).padStart(8)} ${r.p95Us.toFixed(0).padStart(8)} ${r.p99Us.toFixed(0).padStart(8)}   ${r.ratio.toFixed(2)} [${r.ratioMin.toFixed(2)}–${r.ratioMax.toFixed(2)}]`,
        ),
        ...goals.map(
          (g) =>
            `goal (${g.path}): ${g.candidate} / ${g.floor} = ${g.ratio.toFixed(2)} [${g.min.toFixed(2)}–${g.max.toFixed(2)}], target ≤ ${g.limit.toFixed(2)} → ${g.met ? "met" : "NOT met"}`,
        ),
        ...breakdown.map(
          (b) => `breakdown (${b.path}): ${b.candidate} / ${b.floor} = ${b.ratio.toFixed(2)} [${b.min.toFixed(2)}–${b.max.toFixed(2)}]`,
        ),
        `results that differed from the floor or held a foreign row: ${mismatches}`,
      ];
      process.stdout.write(lines.join("\n") + "\n");
    }
    return mismatches === 0 ? 0 : 1;
  } finally {
    for (const close of closers) await close().catch(() => {});
    await stack.stop();
  }
}

runMain(
  entryPoint({
    program: "bench/tenant-context",
    usage:
      "usage: npm run bench:tenant-context -- [--quick] [--reps n] [--iterations n] [--shape point|recent] [--variants a,b] [--paths direct,pgbouncer] [--json] [--markdown]",
    help: () => headerComment(__filename),
    options: OPTIONS,
    run: ({ values }) => main(parse(values)),
  }),
);
