/**
 * The statistics of every benchmark in bench/, as pure functions: percentiles, per-repetition
 * ratios and their spread, a seeded PRNG and shuffle (runs are repeatable), and the skewed tenant
 * sizes. One definition of a percentile, so numbers from different benchmarks compare.
 */

/** Percentile of an ascending-sorted sample, linear interpolation between closest ranks (R type 7). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new Error("percentile of an empty sample");
  if (!(p >= 0 && p <= 1)) throw new Error(`percentile rank must be within [0, 1], got ${p}`);
  const rank = (sorted.length - 1) * p;
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
}

export interface LatencySummary {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  mean: number;
  /** Sum of the samples (for throughput: executions per second of time spent in this variant). */
  total: number;
}

export function summarize(samples: readonly number[]): LatencySummary {
  const sorted = [...samples].sort((x, y) => x - y);
  const total = sorted.reduce((s, x) => s + x, 0);
  return {
    n: sorted.length,
    p50: percentile(sorted, 0.5),
    p95: percentile(sorted, 0.95),
    p99: percentile(sorted, 0.99),
    mean: total / sorted.length,
    total,
  };
}

export function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((x, y) => x - y),
    0.5,
  );
}

/** A statistic across repetitions: its median and its range. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  values: number[];
}

export function spread(values: readonly number[]): Spread {
  if (values.length === 0) throw new Error("spread of no values");
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), values: [...values] };
}

/**
 * Ratio candidate/floor of one statistic, computed per repetition (both measured in the same
 * interleaved run) and then summarised across repetitions. Ratios of per-run medians are what the
 * notes call fair; a ratio of pooled samples would let one noisy repetition dominate.
 */
export function ratioSpread(reps: readonly { candidate: LatencySummary; floor: LatencySummary }[], stat: "p50" | "p95" | "mean"): Spread {
  return spread(reps.map((r) => r.candidate[stat] / r.floor[stat]));
}

/** Executions per second if the variant ran alone: samples divided by the time spent in them. */
export function throughput(summary: LatencySummary): number {
  return summary.total > 0 ? (summary.n * 1000) / summary.total : 0;
}

/** mulberry32: a small, fast, seeded PRNG in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher–Yates with the given PRNG; returns a new array. */
export function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/**
 * Zipf-like tenant sizes: tenant k (1-based) gets a share proportional to 1/k^exponent, at least
 * `minimum`, summing exactly to `total`, largest first. With exponent 1 and 50 tenants the largest
 * holds about 22% of the rows and the smallest about 0.5%: a few whales and a long tail.
 */
export function zipfSizes(total: number, tenants: number, exponent = 1, minimum = 1): number[] {
  if (!Number.isInteger(tenants) || tenants < 1) throw new Error(`tenants must be a positive integer, got ${tenants}`);
  if (!Number.isInteger(total) || total < tenants * minimum)
    throw new Error(`total ${total} cannot give ${tenants} tenants at least ${minimum} each`);
  const weights = Array.from({ length: tenants }, (_, k) => 1 / Math.pow(k + 1, exponent));
  const sum = weights.reduce((s, w) => s + w, 0);
  const spare = total - tenants * minimum;
  const sizes = weights.map((w) => minimum + Math.floor((spare * w) / sum));
  // Hand out the rounding remainder one row at a time, largest tenants first.
  let remainder = total - sizes.reduce((s, x) => s + x, 0);
  for (let k = 0; remainder > 0; k = (k + 1) % tenants, remainder--) sizes[k]++;
  return sizes;
}
