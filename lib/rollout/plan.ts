/**
 * The rollout's plan: for each wave in order, its platform stacks, then the tenant stacks whose
 * platform is in the wave — and the residency rule over all of it, checked before any stack is
 * touched. The same function plans a local rollout (local-eu → local-us) and an AWS one
 * (eu-staging → eu-prod → us-prod): only the stack files differ. runRollout (lib/rollout/run.ts)
 * refuses a plan with a residency problem; `npm run rollout -- --dry-run` prints the plan. Pure.
 */
import type { PlatformStack } from "../stack-config/platform-stacks";
import type { ResidencyRegion } from "../tenant/model";
import type { TenantStackSpec } from "../tenant-stacks/spec";
import type { Wave } from "./waves";

export interface PlannedWave {
  wave: string;
  platform: { stack: string; region?: ResidencyRegion }[];
  tenants: { stack: string; slug: string; region: ResidencyRegion; platform: string }[];
}

export interface RolloutPlan {
  waves: PlannedWave[];
  /** Every tenant whose residency differs from its platform stack's: the rollout refuses to start. */
  residencyProblems: string[];
}

/** A rollout refused before any stack operation (exit 2). */
export class RolloutRefusedError extends Error {
  constructor(readonly problems: string[]) {
    super(`refused before any stack was touched (${problems.length} residency problem(s)): ${problems.join("; ")}`);
    this.name = "RolloutRefusedError";
  }
}

export function planRollout(
  waves: readonly Wave[],
  tenants: readonly { stack: string; spec: TenantStackSpec }[],
  regions: ReadonlyMap<string, ResidencyRegion>,
): RolloutPlan {
  const residencyProblems: string[] = [];
  const planned = waves.map((w) => {
    const mine = tenants.filter((t) => w.stacks.includes(t.spec.platform));
    for (const t of mine) {
      const region = regions.get(t.spec.platform);
      if (region !== undefined && region !== t.spec.region)
        residencyProblems.push(
          `${t.stack}: tenant "${t.spec.slug}" has residency "${t.spec.region}" but platform stack ${t.spec.platform} serves "${region}"`,
        );
    }
    return {
      wave: w.name,
      platform: w.stacks.map((stack) => ({ stack, region: regions.get(stack) })),
      tenants: mine.map((t) => ({ stack: t.stack, slug: t.spec.slug, region: t.spec.region, platform: t.spec.platform })),
    };
  });
  return { waves: planned, residencyProblems };
}

/** The residency region of each platform stack, from the stack files. */
export function platformRegions(stacks: readonly PlatformStack[]): Map<string, ResidencyRegion> {
  return new Map(stacks.map((s) => [s.stack, s.region]));
}

/** `wave eu-prod: platform eu-prod (eu), then 3 tenant stack(s): tenant-a, …` per wave. */
export function planLines(plan: RolloutPlan): string[] {
  return plan.waves.map(
    (w, i) =>
      `${i + 1}. wave ${w.wave}: platform ${w.platform.map((p) => `${p.stack}${p.region ? ` (${p.region})` : ""}`).join(", ")}` +
      `, then ${w.tenants.length} tenant stack(s)${w.tenants.length ? `: ${w.tenants.map((t) => t.stack).join(", ")}` : ""}`,
  );
}
