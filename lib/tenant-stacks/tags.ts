/**
 * A tenant stack records its own input as stack tags in the backend (`alphapulse:tier` = `pro`, ...),
 * next to its state. So the stack is self-describing: `npm run tenant -- list` and the rollout read
 * the tags back and re-apply the current tenant program to every tenant stack with no other source
 * of truth, and the workspace directory of an operation is disposable (a fresh one per operation,
 * which is also what keeps concurrent operations apart). Tags are written before the first update,
 * so a tenant whose first `up` failed is still known to `list` and to the rollout.
 *
 * Pure.
 */
import { TenantSpecError, TenantStackSpec } from "./spec";

/** Tag names by spec field. */
export const SPEC_TAGS = {
  slug: "alphapulse:slug",
  tier: "alphapulse:tier",
  region: "alphapulse:region",
  platform: "alphapulse:platform",
  displayName: "alphapulse:display-name",
} as const satisfies Record<keyof TenantStackSpec, string>;

/** Pulumi refuses longer tag values. */
export const MAX_TAG_VALUE_LENGTH = 256;

/** The tags of a spec (an absent display name has no tag). */
export function specToTags(spec: TenantStackSpec): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const [field, tag] of Object.entries(SPEC_TAGS) as [keyof TenantStackSpec, string][]) {
    const value = spec[field];
    if (value !== undefined) tags[tag] = value;
  }
  return tags;
}

export interface TagChanges {
  set: Record<string, string>;
  remove: string[];
}

/** What to write so that `current` records `spec`; nothing when it already does (a second `up` writes no tag). */
export function tagChanges(spec: TenantStackSpec, current: Record<string, string>): TagChanges {
  const wanted = specToTags(spec);
  const set = Object.fromEntries(Object.entries(wanted).filter(([tag, value]) => current[tag] !== value));
  const remove = Object.values(SPEC_TAGS).filter((tag) => tag in current && !(tag in wanted));
  return { set, remove };
}

/** The spec recorded in a stack's tags; a TenantSpecError naming the tag when it is missing or invalid. */
export function specFromTags(tags: Record<string, string>, stack: string): TenantStackSpec {
  const values: Record<string, string> = {};
  for (const [field, tag] of Object.entries(SPEC_TAGS)) if (tags[tag] !== undefined) values[field] = tags[tag];
  const result = TenantStackSpec.safeParse(values);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = String(issue.path[0] ?? "") as keyof TenantStackSpec;
  throw new TenantSpecError(issue.message, `${stack} tag ${SPEC_TAGS[field] ?? field}`);
}
