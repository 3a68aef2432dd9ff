/**
 * Rollout waves: which platform stacks are updated together, in which order. A wave is named by a
 * token of `--waves`:
 *   - an environment (`staging`): every platform stack of that environment;
 *   - a residency region (`eu`, `us`): the region's platform stacks in the target environment;
 *   - a platform stack's name (`local-eu`, `eu-prod`): that stack.
 * So `--env prod --waves staging,eu,us` is "staging first, then EU production, then US production",
 * and locally `--waves eu,us` is local-eu then local-us. Pure.
 */
import type { PlatformStack } from "../stack-config/platform-stacks";
import { RESIDENCY_REGIONS } from "../tenant/model";

export interface Wave {
  name: string;
  stacks: string[];
}

export class WaveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WaveError";
  }
}

function resolveToken(token: string, stacks: readonly PlatformStack[], environment: string): string[] {
  const byName = stacks.filter((s) => s.stack === token);
  if (byName.length) return byName.map((s) => s.stack);
  if ((RESIDENCY_REGIONS as readonly string[]).includes(token))
    return stacks.filter((s) => s.region === token && s.environment === environment).map((s) => s.stack);
  return stacks.filter((s) => s.environment === token).map((s) => s.stack);
}

/** The waves of `tokens`, in order. Every wave must name at least one stack, and no stack may be in two waves. */
export function resolveWaves(tokens: readonly string[], stacks: readonly PlatformStack[], environment: string): Wave[] {
  if (tokens.length === 0) throw new WaveError("no waves given");
  const seen = new Map<string, string>();
  return tokens.map((token) => {
    const names = resolveToken(token, stacks, environment);
    if (names.length === 0) {
      const known = [...new Set(stacks.map((s) => s.environment))].join(", ");
      throw new WaveError(
        `wave "${token}" names no platform stack (environment "${environment}"; a wave is a region, an environment (${known}) or a stack name)`,
      );
    }
    for (const name of names) {
      const earlier = seen.get(name);
      if (earlier !== undefined) throw new WaveError(`platform stack ${name} is in wave "${earlier}" and again in wave "${token}"`);
      seen.set(name, token);
    }
    return { name: token, stacks: names };
  });
}

/**
 * The default waves of an environment: its staging stacks first when it is not itself staging or
 * local (`staging,eu,us` for prod), then each region that has a stack in the environment.
 */
export function defaultWaveTokens(stacks: readonly PlatformStack[], environment: string): string[] {
  const staging =
    environment !== "staging" && environment !== "local" && stacks.some((s) => s.environment === "staging") ? ["staging"] : [];
  const regions = RESIDENCY_REGIONS.filter((region) => stacks.some((s) => s.environment === environment && s.region === region));
  return [...staging, ...regions];
}
