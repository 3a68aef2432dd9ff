/**
 * What a tenant stack is asked to be: slug, tier, residency region, display name and the regional
 * platform stack it hangs off. Parsed the same way from flags, from bulk files and from the tenant
 * stack's own config (lib/tenant-stacks/config.ts), so every edge refuses the same mistakes.
 *
 * Pure: no Pulumi, no I/O (callers read files and hand the text in).
 */
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { ResidencyRegion, TenantDisplayName, TenantSlug, Tier } from "../tenant/model";
import { ENVIRONMENT_PATTERN, stackReferenceName } from "./names";

/** Pulumi stack names: letters, digits, `-`, `_`, `.`; a fully qualified `org/project/stack` is allowed too. */
export const STACK_NAME_PATTERN = /^(?:[A-Za-z0-9_.-]+\/){0,2}[A-Za-z0-9_.-]{1,100}$/;
export const StackName = z.string().regex(STACK_NAME_PATTERN, { message: "must be a stack name like local-eu (letters, digits, - _ .)" });

export const Environment = z
  .string()
  .regex(ENVIRONMENT_PATTERN, { message: "must be 2-20 characters of a-z and 0-9, starting with a letter (e.g. local)" });

/** A tenant stack's complete input. */
export const TenantStackSpec = z
  .object({
    slug: TenantSlug,
    tier: Tier,
    region: ResidencyRegion,
    displayName: TenantDisplayName.optional(),
    /** The regional platform stack (name in the platform project, or fully qualified). */
    platform: StackName,
  })
  .strict();
export type TenantStackSpec = z.infer<typeof TenantStackSpec>;

/** One entry of a bulk file: like a spec, but the platform defaults from the environment and region. */
export const TenantEntry = TenantStackSpec.extend({ platform: StackName.optional() }).strict();
export type TenantEntry = z.input<typeof TenantEntry>;

/** Bad input that names where it came from: `--tier`, `tenants.yaml[3].region`. */
export class TenantSpecError extends Error {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(`${field}: ${message}`);
    this.name = "TenantSpecError";
  }
}

function fieldOf(prefix: string, path: readonly PropertyKey[]): string {
  return prefix + path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("");
}

/** Parses with `schema`, turning the first issue into a TenantSpecError named `<prefix><path>`. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, prefix: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = issue.code === "unrecognized_keys" ? [...issue.path, issue.keys[0]] : issue.path;
  throw new TenantSpecError(issue.message, fieldOf(prefix, path));
}

/** The default platform stack of a region (lib/stack-config/platform-stacks.ts `defaultPlatformStack` over the stack files). */
export type PlatformResolver = (region: ResidencyRegion) => string;

/** Fills the platform stack: the entry's own, else the region's default. */
export function resolveEntry(entry: TenantEntry, resolvePlatform: PlatformResolver, field = "tenant"): TenantStackSpec {
  const parsed = parseOrThrow(TenantEntry, entry, field);
  if (parsed.platform !== undefined) return { ...parsed, platform: parsed.platform };
  let platform: string;
  try {
    platform = resolvePlatform(parsed.region);
  } catch (err) {
    throw new TenantSpecError((err as Error).message, `${field}.platform`);
  }
  return { ...parsed, platform };
}

/**
 * Reads a bulk file: YAML or JSON, either a list of entries or `{ tenants: [...] }`.
 * `name` (the file name) prefixes every field in errors.
 */
export function parseTenantFile(text: string, name: string): TenantEntry[] {
  let doc: unknown;
  try {
    doc = parseYaml(text); // YAML is a superset of JSON
  } catch (err) {
    throw new TenantSpecError(`not valid YAML or JSON: ${(err as Error).message.split("\n")[0]}`, name);
  }
  const list = Array.isArray(doc) ? doc : (doc as { tenants?: unknown } | null)?.tenants;
  if (!Array.isArray(list)) throw new TenantSpecError("expected a list of tenants (or an object with a `tenants` list)", name);
  if (list.length === 0) throw new TenantSpecError("the list of tenants is empty", name);
  return list.map((entry, i) => parseOrThrow(TenantEntry, entry, `${name}[${i}]`));
}

/**
 * `acme:pro:eu` (slug:tier:region) → an entry; the compact form of a repeated `--tenant` flag.
 */
export function parseTenantArg(arg: string, field = "--tenant"): TenantEntry {
  const parts = arg.split(":");
  if (parts.length !== 3) throw new TenantSpecError(`"${arg}" must be <slug>:<tier>:<region>, e.g. acme-capital:pro:eu`, field);
  const [slug, tier, region] = parts;
  return parseOrThrow(TenantEntry, { slug, tier, region }, `${field} ${arg}`);
}

/** Refuses the same tenant twice in one batch (two stack operations on one stack would collide). */
export function assertUniqueSlugs(specs: readonly { slug: string }[], field = "tenants"): void {
  const seen = new Set<string>();
  for (const [i, spec] of specs.entries()) {
    if (seen.has(spec.slug)) throw new TenantSpecError(`tenant "${spec.slug}" is listed twice`, `${field}[${i}]`);
    seen.add(spec.slug);
  }
}

/** The stack reference name of a spec's platform (`organization/alphapulse-platform/local-eu`). */
export function platformReference(spec: Pick<TenantStackSpec, "platform">): string {
  return stackReferenceName(spec.platform);
}
