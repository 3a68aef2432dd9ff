/**
 * What every stack's configuration shares, whatever its kind (lib/stack-config/local.ts,
 * lib/stack-config/aws.ts): the project's config namespace, the stack kinds, key paths in errors
 * (`alphapulse-platform:tenants[1].region: ...`), decoding the values Pulumi hands a program, and
 * reading a stack file straight from stacks/ for the scripts that run before Pulumi.
 *
 * No Pulumi import: pure, tested without the engine.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { ResidencyRegion, TenantDisplayName, TenantSlug, Tier } from "../tenant/model";
import { KEY_ID_PATTERN } from "../tenant-context/proof";

/** The config namespace of this project (Pulumi.yaml `name`). */
export const CONFIG_NAMESPACE = "alphapulse-platform";

/** Stack kinds: `local` (lib/stack-config/local.ts) or `aws` (components/aws, issue 7). */
export const STACK_KINDS = ["local", "aws"] as const;
export const StackKind = z.enum(STACK_KINDS);
export type StackKind = z.infer<typeof StackKind>;

/** A tenant declared in a stack's config. */
/**
 * A stack's tenant-context key ids (ADR-005), oldest first; services sign with the last. Rotate: add
 * the next id and deploy (both verify), move the services to it, then remove the old id (docs/aws.md
 * for the AWS stacks' extra step). Default: [`<region>-1`] (components/db RegionalDatabase).
 */
export const ContextKeyIds = z
  .array(z.string().regex(KEY_ID_PATTERN, { message: "must be 1-32 characters of a-z, 0-9, _ and -" }))
  .min(1)
  .refine((ids) => new Set(ids).size === ids.length, { message: "duplicate key id" });

export const SampleTenant = z
  .object({
    slug: TenantSlug,
    tier: Tier,
    region: ResidencyRegion,
    displayName: TenantDisplayName.optional(),
    /**
     * The tenant's previous slug, when this entry renames it: the stack updates the registry entry
     * in place (same tenant id, same rows) instead of seeing one tenant removed and another added.
     */
    renamedFrom: TenantSlug.optional(),
  })
  .strict();
export type SampleTenant = z.infer<typeof SampleTenant>;

/** A config value that names the key path it came from, like `alphapulse-platform:tenants[1].region`. */
export class StackConfigError extends Error {
  constructor(
    /** What is wrong with the value, without the key. */
    readonly reason: string,
    readonly key: string,
  ) {
    super(`${key}: ${reason}`);
    this.name = "StackConfigError";
  }
}

/** `["tenants", 1, "region"]` → `alphapulse-platform:tenants[1].region`. */
export function configKeyPath(segments: readonly PropertyKey[]): string {
  const [head, ...rest] = segments;
  const tail = rest.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("");
  return `${CONFIG_NAMESPACE}:${head === undefined ? "" : String(head)}${tail}`;
}

/** The stack's kind, from the same values; "local" or "aws". */
export function parseStackKind(values: Record<string, unknown>): StackKind {
  const result = StackKind.safeParse(values.kind);
  if (!result.success) throw new StackConfigError(`must be one of ${STACK_KINDS.join(", ")}`, configKeyPath(["kind"]));
  return result.data;
}

/**
 * Pulumi hands config values to a program as strings (structured values JSON-encoded); this
 * decodes them back. A plain string that is not JSON (`local`, `eu`) stays a string.
 */
export function decodeConfigValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/** The project-namespace entries of `pulumi.runtime.allConfig()`-shaped input (`"ns:key" → string`). */
export function projectConfigValues(all: Record<string, string>): Record<string, unknown> {
  const prefix = `${CONFIG_NAMESPACE}:`;
  return Object.fromEntries(
    Object.entries(all)
      .filter(([key]) => key.startsWith(prefix))
      .map(([key, value]) => [key.slice(prefix.length), decodeConfigValue(value)]),
  );
}

/** The stack file of `stack` under stacks/. */
export function stackFilePath(repoRoot: string, stack: string): string {
  return path.join(repoRoot, "stacks", `Pulumi.${stack}.yaml`);
}

/** The names among `stacks` that have no stack file (a typo in `--stack`). */
export function stacksWithoutFile(repoRoot: string, stacks: readonly string[]): string[] {
  return stacks.filter((stack) => !existsSync(stackFilePath(repoRoot, stack)));
}

/** The project-namespace entries of a stack file, read straight from its YAML (keys without the namespace). */
export function readStackFileValues(repoRoot: string, stack: string): Record<string, unknown> {
  const doc = (parseYaml(readFileSync(stackFilePath(repoRoot, stack), "utf8")) ?? {}) as { config?: Record<string, unknown> };
  const prefix = `${CONFIG_NAMESPACE}:`;
  return Object.fromEntries(
    Object.entries(doc.config ?? {})
      .filter(([key]) => key.startsWith(prefix))
      .map(([key, value]) => [key.slice(prefix.length), value]),
  );
}
