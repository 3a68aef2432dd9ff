/**
 * The interleaving schedule. Separate runs per variant are useless on a shared 2-core machine
 * (0.72–3.03× swings, shared/notes/performance.md), so every iteration runs every variant once,
 * one transaction each, back to back, for the same tenant and the same parameters. The order of
 * the variants rotates as a Latin square: over each block of k iterations every variant runs once
 * in every position, so "runs first, on a colder cache" or "runs right after the heavy one" is
 * spread evenly. Tenants are drawn as shuffled rounds, so each is used equally often.
 */
import { shuffle } from "../stats";

export interface Iteration {
  /** Index into the tenant list the caller passed. */
  tenant: number;
  /** Variant indices in the order they run in this iteration. */
  order: number[];
}

/** Latin-square orders: block b uses a fresh random base order, iteration j of the block rotates it by j. */
export function variantOrders(variants: number, iterations: number, random: () => number): number[][] {
  if (!Number.isInteger(variants) || variants < 1) throw new Error(`variants must be a positive integer, got ${variants}`);
  const identity = Array.from({ length: variants }, (_, i) => i);
  const orders: number[][] = [];
  let base = identity;
  for (let i = 0; i < iterations; i++) {
    const j = i % variants;
    if (j === 0) base = shuffle(identity, random);
    orders.push(base.map((_, p) => base[(p + j) % variants]));
  }
  return orders;
}

/** Tenant indices for each iteration: shuffled rounds over `tenants`, so counts differ by at most one. */
export function tenantRounds(tenants: number, iterations: number, random: () => number): number[] {
  if (!Number.isInteger(tenants) || tenants < 1) throw new Error(`tenants must be a positive integer, got ${tenants}`);
  const identity = Array.from({ length: tenants }, (_, i) => i);
  const out: number[] = [];
  while (out.length < iterations) out.push(...shuffle(identity, random));
  return out.slice(0, iterations);
}

export function interleave(variants: number, iterations: number, tenants: number, random: () => number): Iteration[] {
  const orders = variantOrders(variants, iterations, random);
  const picks = tenantRounds(tenants, iterations, random);
  return orders.map((order, i) => ({ tenant: picks[i], order }));
}

/** Iterations rounded up to whole Latin-square blocks, so every variant sees every position equally. */
export function wholeBlocks(iterations: number, variants: number): number {
  return Math.max(variants, Math.ceil(iterations / variants) * variants);
}
