/**
 * Runs the shapes: every iteration runs every variant once, one transaction each, interleaved
 * (schedule.ts), for the same tenant with the same parameters. Every transaction has the same
 * round trips whatever the variant:
 *
 *   BEGIN · SELECT tenancy.enter_verified_tenant($1) · [SET LOCAL plan_cache_mode] · the query · COMMIT
 *
 * Every variant is entered through the verifier with a proof minted per transaction (ADR-005; it
 * works in the raw-setting mode too and sets what both kinds of policy read), so transactions differ
 * only by the variant's table copy and policy.
 * The query alone is timed ("query"), and so is the whole transaction ("tx"). Every variant's rows
 * are compared with the floor's rows of the same iteration.
 */
import { createHash } from "node:crypto";
import type pg from "pg";
import { REGISTRY_SCHEMA } from "../../lib/schema/planner";
import { ident, literal } from "../../lib/db/sql";
import {
  comparePlans,
  digestRows,
  summarizePlan,
  type PlanComparison,
  type PlanNode,
  type PlanSummary,
  type ResultChecker,
} from "./compare";
import type { Dataset } from "./dataset";
import { singleSchema, type Mode } from "./modes";
import { interleave, wholeBlocks } from "./schedule";
import { renderShape, type Fixture, type Protocol, type RenderedQuery, type Shape } from "./shapes";
import { prng, summarize, type LatencySummary } from "../stats";
import { createProofMinter } from "../../lib/tenant-context/proof";

export interface Variant {
  /** "b", or "b generic" / "b fresh" in a plan-cache unit. */
  key: string;
  mode: Mode;
  plan?: "generic" | "fresh";
}

export interface Unit {
  shape: Shape;
  protocol: Protocol;
  variants: Variant[];
}

export interface RepResult {
  /** Per variant, in unit.variants order. */
  query: LatencySummary[];
  tx: LatencySummary[];
}

export interface PlanReport {
  tenant: string;
  summaries: Record<string, PlanSummary>;
  /** Floor vs each candidate with the same table layout. */
  comparisons: Record<string, PlanComparison>;
  /** EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) text of the floor and of b. */
  text: Record<string, string>;
}

export interface UnitResult {
  unit: Unit;
  reps: RepResult[];
  plans: PlanReport[];
  /** Prepared statements: how often PostgreSQL chose the generic plan vs a custom one, per variant. */
  planChoices?: Record<string, { generic: number; custom: number }>;
}

/** The floor the candidates are compared with, in a unit. */
export const floorKey = (unit: Unit) => (unit.shape.planCache ? "a fresh" : "a");

export function buildUnits(shapes: readonly Shape[], modes: readonly Mode[], protocols: readonly Protocol[]): Unit[] {
  const units: Unit[] = [];
  for (const shape of shapes) {
    if (shape.planCache) {
      const variants = modes
        .filter((m) => m.layout === "shared" && m.key !== "a2")
        .flatMap((m) => (["generic", "fresh"] as const).map((plan) => ({ key: `${m.key} ${plan}`, mode: m, plan })));
      units.push({ shape, protocol: "prepared", variants });
    } else {
      for (const protocol of protocols) units.push({ shape, protocol, variants: modes.map((m) => ({ key: m.key, mode: m })) });
    }
  }
  return units;
}

const ENTER = `SELECT ${ident(REGISTRY_SCHEMA)}.enter_verified_tenant($1)`;
const now = () => Number(process.hrtime.bigint()) / 1e6;

export class Runner {
  private readonly rendered = new Map<string, RenderedQuery & { name: string }>();
  private sequence = 0;
  private readonly mintProof: (tenantId: string) => string;

  constructor(
    private readonly client: pg.ClientBase,
    private readonly dataset: Dataset,
    private readonly checker: ResultChecker,
  ) {
    this.mintProof = createProofMinter(dataset.contextKey);
  }

  /** The variant's statement for this shape and tenant (cached; the name is stable for prepared statements). */
  statement(shape: Shape, mode: Mode, tenant: Fixture): RenderedQuery & { name: string } {
    const schema = mode.layout === "single" ? singleSchema(tenant.index) : mode.schema;
    const cacheKey = `${shape.key}|${mode.key}|${schema}`;
    let r = this.rendered.get(cacheKey);
    if (!r) {
      const q = renderShape(shape, { schema, tenantColumn: mode.layout === "shared", explicitTenant: mode.explicitTenant });
      // One named statement per shape, even where two shapes share a text, so their plan choices are counted apart.
      r = { ...q, name: `rls_${createHash("sha1").update(`${shape.key}\n${q.text}`).digest("hex").slice(0, 24)}` };
      this.rendered.set(cacheKey, r);
    }
    return r;
  }

  private async execute(
    unit: Unit,
    variant: Variant,
    tenant: Fixture,
    params: unknown[],
  ): Promise<{ query: number; tx: number; digest: string }> {
    const s = this.statement(unit.shape, variant.mode, tenant);
    const values = s.usesTenant ? [...params, tenant.id] : params;
    const config: pg.QueryConfig = unit.protocol === "prepared" ? { name: s.name, text: s.text, values } : { text: s.text, values };
    const tx0 = now();
    await this.client.query("BEGIN");
    try {
      await this.client.query(ENTER, [this.mintProof(tenant.id)]);
      if (variant.plan)
        await this.client.query(`SET LOCAL plan_cache_mode = ${variant.plan === "generic" ? "force_generic_plan" : "force_custom_plan"}`);
      const q0 = now();
      const result = await this.client.query(config);
      const q1 = now();
      await this.client.query("COMMIT");
      const tx1 = now();
      return { query: q1 - q0, tx: tx1 - tx0, digest: digestRows(result.rows) };
    } catch (err) {
      await this.client.query("ROLLBACK").catch(() => {});
      throw new Error(`${unit.shape.key}/${unit.protocol}/${variant.key} for ${tenant.slug}: ${(err as Error).message}\n${s.text}`, {
        cause: err,
      });
    }
  }

  /** Runs one unit for `iterations` (rounded up to whole Latin-square blocks); returns per-variant summaries. */
  async run(unit: Unit, iterations: number, seed: number, label: string): Promise<RepResult> {
    const random = prng(seed);
    const tenants = unit.shape.tenants === "largest" ? [this.dataset.largest] : this.dataset.tenants;
    const schedule = interleave(unit.variants.length, wholeBlocks(iterations, unit.variants.length), tenants.length, random);
    const query: number[][] = unit.variants.map(() => []);
    const tx: number[][] = unit.variants.map(() => []);
    const floor = unit.variants.findIndex((v) => v.key === floorKey(unit));
    for (const [i, it] of schedule.entries()) {
      const tenant = tenants[it.tenant];
      const params = unit.shape.params({ tenant, random, anchor: this.dataset.anchor, sequence: this.sequence++ });
      const digests: string[] = [];
      for (const v of it.order) {
        const r = await this.execute(unit, unit.variants[v], tenant, params);
        query[v].push(r.query);
        tx[v].push(r.tx);
        digests[v] = r.digest;
      }
      if (floor >= 0) {
        for (const [v, variant] of unit.variants.entries()) {
          if (v === floor) continue;
          this.checker.check({
            unit: label,
            variant: variant.key,
            tenant: tenant.slug,
            iteration: i,
            floor: digests[floor],
            candidate: digests[v],
          });
        }
      }
    }
    return { query: query.map(summarize), tx: tx.map(summarize) };
  }

  /**
   * Warm-up before measuring: prepares the statements, touches every tenant and, for a plan-cache unit, builds the cached
   * generic plan while the smallest tenant is the current one (the trap: a plan made for a small
   * tenant, reused for the largest).
   */
  async warm(unit: Unit, iterations: number, seed: number): Promise<void> {
    if (unit.shape.planCache) {
      const smallest = this.dataset.tenants[this.dataset.tenants.length - 1];
      const random = prng(seed);
      const params = unit.shape.params({ tenant: smallest, random, anchor: this.dataset.anchor, sequence: this.sequence++ });
      for (const v of unit.variants) await this.execute(unit, v, smallest, params);
    }
    // At least one round over all tenants: the single-tenant reference has one statement (and one
    // relation) per tenant, and its first use in a backend must not land in the measurement.
    const rounds = unit.shape.tenants === "largest" ? 1 : this.dataset.tenants.length;
    await this.run(unit, Math.max(iterations, rounds), seed, `${unit.shape.key}/warm-up`);
  }

  /** generic_plans / custom_plans of this session's prepared statements, per variant. */
  async planChoices(unit: Unit): Promise<Record<string, { generic: number; custom: number }>> {
    const { rows } = await this.client.query(
      `SELECT name, generic_plans::int AS generic, custom_plans::int AS custom FROM pg_prepared_statements`,
    );
    const byName = new Map<string, { generic: number; custom: number }>(
      rows.map((r: { name: string; generic: number; custom: number }) => [r.name, r]),
    );
    const out: Record<string, { generic: number; custom: number }> = {};
    for (const v of unit.variants) {
      const tenants = v.mode.layout === "single" ? this.dataset.tenants : [this.dataset.tenants[0]];
      const total = { generic: 0, custom: 0 };
      for (const t of tenants) {
        const c = byName.get(this.statement(unit.shape, v.mode, t).name);
        total.generic += c?.generic ?? 0;
        total.custom += c?.custom ?? 0;
      }
      out[v.key] = total;
    }
    return out;
  }

  /**
   * EXPLAIN of every variant for one tenant (ANALYZE and BUFFERS for reads; writes are explained
   * without running them). A plan-cache unit explains its generic variants through a SQL PREPARE
   * under force_generic_plan.
   */
  async explain(unit: Unit, tenant: Fixture, seed: number): Promise<PlanReport> {
    const random = prng(seed);
    const params = unit.shape.params({ tenant, random, anchor: this.dataset.anchor, sequence: this.sequence++ });
    const analyze = unit.shape.write ? "" : "ANALYZE, BUFFERS, ";
    const summaries: Record<string, PlanSummary> = {};
    const roots: Record<string, PlanNode> = {};
    const text: Record<string, string> = {};
    for (const v of unit.variants) {
      const s = this.statement(unit.shape, v.mode, tenant);
      const values = s.usesTenant ? [...params, tenant.id] : params;
      let prepared = false;
      await this.client.query("BEGIN");
      try {
        await this.client.query(ENTER, [this.mintProof(tenant.id)]);
        const explain = async (options: string): Promise<pg.QueryResult> => {
          if (v.plan !== "generic") return this.client.query(`EXPLAIN (${options}) ${s.text}`, values);
          // A SQL-level prepared statement under force_generic_plan shows the cached generic plan.
          await this.client.query(`SET LOCAL plan_cache_mode = force_generic_plan`);
          if (!prepared) await this.client.query(`PREPARE rls_explain AS ${s.text}`);
          prepared = true;
          // EXECUTE takes no protocol parameters: the values go in as literals (ours, not input).
          const args = values.map((x) => literal(x instanceof Date ? x.toISOString() : String(x))).join(", ");
          return this.client.query(`EXPLAIN (${options}) EXECUTE rls_explain(${args})`);
        };
        const json = await explain(`${analyze}FORMAT JSON`);
        roots[v.key] = json.rows[0]["QUERY PLAN"][0].Plan as PlanNode;
        summaries[v.key] = summarizePlan(roots[v.key]);
        if (["a", "b", "a fresh", "b generic", "b fresh"].includes(v.key)) {
          const plain = await explain(`${analyze}COSTS OFF${analyze ? ", TIMING OFF" : ""}`);
          text[v.key] = plain.rows.map((r: Record<string, string>) => r["QUERY PLAN"]).join("\n");
        }
      } catch (err) {
        throw new Error(`EXPLAIN ${unit.shape.key}/${v.key}: ${(err as Error).message}\n${s.text}`, { cause: err });
      } finally {
        await this.client.query("ROLLBACK");
        // PREPARE is not transactional: the statement outlives the rollback.
        if (prepared) await this.client.query("DEALLOCATE rls_explain");
      }
    }
    const comparisons: Record<string, PlanComparison> = {};
    const floor = floorKey(unit);
    for (const v of unit.variants) {
      if (v.key !== floor && v.mode.layout === "shared" && roots[floor]) comparisons[v.key] = comparePlans(roots[floor], roots[v.key]);
    }
    return { tenant: tenant.slug, summaries, comparisons, text };
  }
}
