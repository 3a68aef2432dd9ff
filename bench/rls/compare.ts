/**
 * What makes a comparison fair, checked rather than assumed: every variant returns exactly the
 * floor's rows, and the floor and the candidate run the same plan over the same buffers. Pure
 * functions over node-postgres rows and EXPLAIN (FORMAT JSON) output.
 */

/** A canonical text of a result: row order kept (every shape orders its rows), keys sorted, dates as ISO. */
export function digestRows(rows: readonly Record<string, unknown>[]): string {
  return JSON.stringify(
    rows.map((row) =>
      Object.fromEntries(
        Object.keys(row)
          .sort()
          .map((k) => [k, canonicalValue(row[k])]),
      ),
    ),
  );
}

function canonicalValue(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value)) return value.toString("hex");
  if (typeof value === "bigint") return value.toString();
  return value;
}

export interface Mismatch {
  unit: string;
  variant: string;
  tenant: string;
  iteration: number;
  floor: string;
  candidate: string;
}

/** Collects mismatches against the floor's digest of the same iteration (keeps the first few in full). */
export class ResultChecker {
  readonly mismatches: Mismatch[] = [];
  count = 0;
  compared = 0;

  check(m: Mismatch): boolean {
    this.compared++;
    if (m.floor === m.candidate) return true;
    this.count++;
    if (this.mismatches.length < 10) this.mismatches.push({ ...m, floor: m.floor.slice(0, 300), candidate: m.candidate.slice(0, 300) });
    return false;
  }
}

// --- plans ---------------------------------------------------------------------------------------

/** The subset of an EXPLAIN (FORMAT JSON) node we read. */
export interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Index Name"?: string;
  "Parent Relationship"?: string;
  "Subplan Name"?: string;
  "One-Time Filter"?: string;
  "Shared Hit Blocks"?: number;
  "Shared Read Blocks"?: number;
  "Actual Rows"?: number;
  "Index Cond"?: string;
  "Recheck Cond"?: string;
  Filter?: string;
  Plans?: PlanNode[];
}

export interface PlanSummary {
  /** One line per node of the main plan (InitPlans left out), indented by depth. */
  nodes: string[];
  /** Index names the main plan scans, in plan order. */
  indexes: string[];
  /** InitPlans (the policy's once-per-statement tenant lookups). */
  initPlans: number;
  /** Shared buffers (hit + read) of the main plan, and of the InitPlans. */
  buffers: number;
  initPlanBuffers: number;
  rows: number | undefined;
}

const blocks = (n: PlanNode) => (n["Shared Hit Blocks"] ?? 0) + (n["Shared Read Blocks"] ?? 0);

export function summarizePlan(root: PlanNode): PlanSummary {
  const nodes: string[] = [];
  const indexes: string[] = [];
  let initPlans = 0;
  let initPlanBuffers = 0;
  const walk = (node: PlanNode, depth: number): void => {
    const children = (node.Plans ?? []).filter((c) => c["Parent Relationship"] !== "InitPlan");
    // A join of two RLS tables compares their two InitPlan results in a Result node
    // ("One-Time Filter: ($1 = $0)") above the join: bookkeeping of the policy, not a plan choice.
    if (node["Node Type"] === "Result" && node["One-Time Filter"] && children.length === 1) {
      countInitPlans(node);
      return walk(children[0], depth);
    }
    const index = node["Index Name"];
    if (index) indexes.push(index);
    nodes.push(
      `${"  ".repeat(depth)}${node["Node Type"]}${index ? ` using ${index}` : ""}${node["Relation Name"] && !index ? ` on ${node["Relation Name"]}` : ""}`,
    );
    countInitPlans(node);
    for (const child of children) walk(child, depth + 1);
  };
  const countInitPlans = (node: PlanNode) => {
    for (const child of node.Plans ?? []) {
      if (child["Parent Relationship"] !== "InitPlan") continue;
      initPlans++;
      initPlanBuffers += blocks(child);
    }
  };
  walk(root, 0);
  return { nodes, indexes, initPlans, buffers: blocks(root) - initPlanBuffers, initPlanBuffers, rows: root["Actual Rows"] };
}

export interface PlanComparison {
  samePlan: boolean;
  sameBuffers: boolean;
  floor: PlanSummary;
  candidate: PlanSummary;
}

/** Same node tree (ignoring the policy's InitPlans) and the same main-plan buffers. */
export function comparePlans(floor: PlanNode, candidate: PlanNode): PlanComparison {
  const f = summarizePlan(floor);
  const c = summarizePlan(candidate);
  return { samePlan: f.nodes.join("\n") === c.nodes.join("\n"), sameBuffers: f.buffers === c.buffers, floor: f, candidate: c };
}
