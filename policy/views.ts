/**
 * Builds the rules' `ResourceView`s from the two sources: the synth JSON (lib/synth/mocks.ts)
 * and @pulumi/policy's StackValidation resources during a real preview.
 */
import type { PolicyResource } from "@pulumi/policy";
import { ResidencyRegion } from "../lib/tenant/model";
import type { ResourceView } from "./rules";

/** Views of the synth JSON's resources (a SynthResource carries every field of a view, and more). */
export function viewsFromSynth(resources: readonly ResourceView[]): ResourceView[] {
  return resources.map((r) => ({
    urn: r.urn,
    type: r.type,
    name: r.name,
    parent: r.parent,
    provider: r.provider,
    protect: r.protect,
    inputs: r.inputs,
    propertyDependencies: r.propertyDependencies,
  }));
}

/**
 * Views of a preview's resources. Provider resources are added from the resources' `provider`
 * references when the engine does not list them (default providers are named `default_<version>`).
 */
export function viewsFromPolicy(resources: readonly PolicyResource[]): ResourceView[] {
  const views = new Map<string, ResourceView>();
  for (const r of resources) {
    views.set(r.urn, {
      urn: r.urn,
      type: r.type,
      name: r.name,
      parent: r.parent?.urn,
      provider: r.provider?.urn,
      protect: r.opts.protect,
      inputs: r.props,
      propertyDependencies: Object.fromEntries(Object.entries(r.propertyDependencies).map(([k, deps]) => [k, deps.map((d) => d.urn)])),
    });
  }
  for (const r of resources) {
    const p = r.provider;
    if (p !== undefined && !views.has(p.urn)) {
      views.set(p.urn, { urn: p.urn, type: p.type, name: p.name, protect: false, inputs: p.props, propertyDependencies: {} });
    }
  }
  return [...views.values()];
}

/** The residency the stack's AWS providers declare in their default tags, when they agree on one. */
export function residencyFromProviders(views: readonly ResourceView[]): ResidencyRegion | undefined {
  const found = new Set<string>();
  for (const v of views.filter((x) => x.type === "pulumi:providers:aws")) {
    const raw = v.inputs.defaultTags;
    const tags = (typeof raw === "string" ? JSON.parse(raw) : raw)?.tags ?? {};
    if (typeof tags["alphapulse:residency"] === "string") found.add(tags["alphapulse:residency"]);
  }
  if (found.size !== 1) return undefined;
  const parsed = ResidencyRegion.safeParse([...found][0]);
  return parsed.success ? parsed.data : undefined;
}
