/**
 * The regional platform stacks of this repository, as their stack files describe them
 * (stacks/Pulumi.<stack>.yaml): which residency region each serves and which environment it belongs
 * to. `local` stacks (kind local) are the environment `local`; AWS stacks say
 * `alphapulse-platform:environment` (staging, prod). Names are not parsed (local-eu, eu-staging and
 * us-prod follow different conventions): the config is what counts.
 *
 * Used to find the default platform stack of a tenant (`--region eu` in environment `local` →
 * local-eu) and to resolve rollout waves (`staging,eu,us`). Pure, except `readPlatformStacks`.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { CONFIG_NAMESPACE } from "./common";
import { RESIDENCY_REGIONS, type ResidencyRegion } from "../tenant/model";

export interface PlatformStack {
  stack: string;
  kind: string;
  region: ResidencyRegion;
  environment: string;
}

const STACK_FILE = /^Pulumi\.([A-Za-z0-9_.-]+)\.yaml$/;

/** A stack file's config → its place; undefined for a file that is not a regional platform stack. */
export function describePlatformStack(stack: string, config: Record<string, unknown>): PlatformStack | undefined {
  const get = (key: string) => config[`${CONFIG_NAMESPACE}:${key}`];
  const region = get("region");
  const kind = get("kind");
  if (typeof region !== "string" || !(RESIDENCY_REGIONS as readonly string[]).includes(region) || typeof kind !== "string")
    return undefined;
  const environment = kind === "local" ? "local" : get("environment");
  if (typeof environment !== "string") return undefined;
  return { stack, kind, region: region as ResidencyRegion, environment };
}

/** Every platform stack described in `<repo>/stacks`, sorted by name. */
export function readPlatformStacks(repoRoot: string): PlatformStack[] {
  const dir = path.join(repoRoot, "stacks");
  const out: PlatformStack[] = [];
  for (const file of readdirSync(dir).sort()) {
    const match = STACK_FILE.exec(file);
    if (!match) continue;
    const doc = (parseYaml(readFileSync(path.join(dir, file), "utf8")) ?? {}) as { config?: Record<string, unknown> };
    const described = describePlatformStack(match[1], doc.config ?? {});
    if (described) out.push(described);
  }
  return out;
}

export class PlatformLookupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PlatformLookupError";
  }
}

/** The one platform stack of `region` in `environment`; an error listing what exists otherwise. */
export function defaultPlatformStack(stacks: readonly PlatformStack[], environment: string, region: ResidencyRegion): string {
  const matches = stacks.filter((s) => s.environment === environment && s.region === region);
  if (matches.length === 1) return matches[0].stack;
  const known = stacks.map((s) => `${s.stack} (${s.environment}, ${s.region})`).join(", ") || "none";
  if (matches.length === 0)
    throw new PlatformLookupError(
      `no platform stack for region "${region}" in environment "${environment}" (stacks: ${known}); name one with --platform`,
    );
  throw new PlatformLookupError(
    `several platform stacks for region "${region}" in environment "${environment}": ${matches.map((s) => s.stack).join(", ")}; name one with --platform`,
  );
}
