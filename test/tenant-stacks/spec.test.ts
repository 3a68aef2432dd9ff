import { describe, expect, it } from "vitest";
import { slugOfTenantStack, stackReferenceName, tenantStackName } from "../../lib/tenant-stacks/names";
import { assertUniqueSlugs, parseTenantArg, parseTenantFile, resolveEntry, TenantSpecError } from "../../lib/tenant-stacks/spec";
import { specFromTags, specToTags, tagChanges } from "../../lib/tenant-stacks/tags";

function specError(fn: () => unknown): TenantSpecError {
  try {
    fn();
  } catch (err) {
    if (err instanceof TenantSpecError) return err;
    throw err;
  }
  throw new Error("expected a TenantSpecError");
}

describe("stack names", () => {
  it.each([
    ["acme-capital", "tenant-acme-capital"],
    ["a1b", "tenant-a1b"],
  ])("%s → %s and back", (slug, stack) => {
    expect(tenantStackName(slug)).toBe(stack);
    expect(slugOfTenantStack(stack)).toBe(slug);
    expect(slugOfTenantStack(`organization/alphapulse-tenant/${stack}`)).toBe(slug);
  });

  it.each(["local-eu", "tenant-", "tenant-A", "tenant-x", "tenant-a--b", "tenants-abc"])("%s is not a tenant stack", (stack) => {
    expect(slugOfTenantStack(stack)).toBeUndefined();
  });

  it("names platform stacks and their references", () => {
    expect(stackReferenceName("local-us")).toBe("organization/alphapulse-platform/local-us");
    expect(stackReferenceName("acme/alphapulse-platform/prod-eu")).toBe("acme/alphapulse-platform/prod-eu");
  });
});

describe("tenant entries", () => {
  const local = (region: string) => `local-${region}`;

  it("fills the platform with the region's default unless the entry names one", () => {
    expect(resolveEntry({ slug: "acme", tier: "pro", region: "us" }, local)).toEqual({
      slug: "acme",
      tier: "pro",
      region: "us",
      platform: "local-us",
    });
    expect(resolveEntry({ slug: "acme", tier: "pro", region: "eu", platform: "eu-prod" }, local).platform).toBe("eu-prod");
  });

  it("names the entry when the region has no default platform stack", () => {
    const none = () => {
      throw new Error('no platform stack for region "eu" in environment "qa"');
    };
    expect(specError(() => resolveEntry({ slug: "acme", tier: "pro", region: "eu" }, none, "t"))).toMatchObject({
      field: "t.platform",
      message: 't.platform: no platform stack for region "eu" in environment "qa"',
    });
  });

  it.each([
    [{ slug: "Acme", tier: "pro", region: "eu" }, "t.slug"],
    [{ slug: "acme", tier: "gold", region: "eu" }, "t.tier"],
    [{ slug: "acme", tier: "pro", region: "ap" }, "t.region"],
    [{ slug: "acme", tier: "pro", region: "eu", platform: "local eu" }, "t.platform"],
    [{ slug: "acme", tier: "pro", region: "eu", colour: "red" }, "t.colour"],
  ])("refuses %j naming %s", (entry, field) => {
    expect(specError(() => resolveEntry(entry as never, local, "t")).field).toBe(field);
  });

  it("parses the compact slug:tier:region form", () => {
    expect(parseTenantArg("acme:enterprise:us")).toEqual({ slug: "acme", tier: "enterprise", region: "us" });
    expect(specError(() => parseTenantArg("acme:pro")).field).toBe("--tenant");
    expect(specError(() => parseTenantArg("acme:pro:mars")).field).toBe("--tenant acme:pro:mars.region");
  });

  it("refuses the same tenant twice in a batch", () => {
    expect(specError(() => assertUniqueSlugs([{ slug: "a" }, { slug: "b" }, { slug: "a" }])).field).toBe("tenants[2]");
    expect(() => assertUniqueSlugs([{ slug: "a" }, { slug: "b" }])).not.toThrow();
  });
});

describe("bulk files", () => {
  it("reads a YAML list, a JSON list and a { tenants } object", () => {
    const yaml = "- slug: acme\n  tier: pro\n  region: eu\n- slug: bravo\n  tier: starter\n  region: us\n  platform: local-us\n";
    expect(parseTenantFile(yaml, "t.yaml")).toEqual([
      { slug: "acme", tier: "pro", region: "eu" },
      { slug: "bravo", tier: "starter", region: "us", platform: "local-us" },
    ]);
    expect(parseTenantFile('[{"slug":"acme","tier":"pro","region":"eu"}]', "t.json")).toHaveLength(1);
    expect(parseTenantFile("tenants:\n  - { slug: acme, tier: pro, region: eu }\n", "t.yaml")).toHaveLength(1);
  });

  it.each([
    ["- slug: acme\n  tier: pro\n  region: eu\n- slug: bravo\n  tier: gold\n  region: eu\n", "f.yaml[1].tier"],
    ["slug: acme", "f.yaml"],
    ["[]", "f.yaml"],
    ["- [unclosed", "f.yaml"],
  ])("names the offending entry of %j", (text, field) => {
    expect(specError(() => parseTenantFile(text, "f.yaml")).field).toBe(field);
  });
});

describe("stack tags record the spec", () => {
  const spec = { slug: "acme", tier: "pro" as const, region: "eu" as const, platform: "local-eu", displayName: "Acme Capital GmbH" };

  it("round-trips", () => {
    expect(specFromTags(specToTags(spec), "tenant-acme")).toEqual(spec);
    const bare = { ...spec, displayName: undefined };
    expect(specFromTags(specToTags(bare), "tenant-acme")).toEqual(bare);
  });

  it("writes nothing when the tags already record the spec (a second up writes no tag)", () => {
    expect(tagChanges(spec, specToTags(spec))).toEqual({ set: {}, remove: [] });
  });

  it("writes only what changed, and removes a dropped display name", () => {
    const current = specToTags(spec);
    expect(
      tagChanges({ ...spec, displayName: undefined, tier: "enterprise" }, { ...current, "pulumi:project": "alphapulse-tenant" }),
    ).toEqual({
      set: { "alphapulse:tier": "enterprise" },
      remove: ["alphapulse:display-name"],
    });
  });

  it("names the tag at fault", () => {
    const tags = specToTags(spec);
    expect(specError(() => specFromTags({ ...tags, "alphapulse:tier": "gold" }, "tenant-acme")).field).toBe(
      "tenant-acme tag alphapulse:tier",
    );
    const missing = Object.fromEntries(Object.entries(tags).filter(([tag]) => tag !== "alphapulse:platform"));
    expect(specError(() => specFromTags(missing, "tenant-acme")).field).toBe("tenant-acme tag alphapulse:platform");
  });
});
