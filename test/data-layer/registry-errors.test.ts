/**
 * createTenant maps database errors by SQLSTATE and constraint name, not by message text: a slug
 * clash and an id clash say which, a residency refusal is recognised, and any other unique or
 * check violation is passed on as it is (negative controls: constraints the mapping must not claim).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTenant, ResidencyMismatchError, TenantExistsError } from "../../lib/tenant/registry";
import { migratedDatabase, sqlstate, type MigratedDatabase } from "./harness";

let m: MigratedDatabase;

beforeAll(async () => {
  m = await migratedDatabase("regerr");
});

afterAll(async () => {
  await m?.close();
});

describe("createTenant errors", () => {
  it("a taken slug is TenantExistsError by slug", async () => {
    await createTenant(m.admin, { slug: "taken-slug", tier: "pro", region: "eu" });
    const err = await createTenant(m.admin, { slug: "taken-slug", tier: "pro", region: "eu" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TenantExistsError);
    expect(err).toMatchObject({ by: "slug", message: 'a tenant with slug "taken-slug" already exists' });
  });

  it("a taken id under a free slug is TenantExistsError by id, naming the id", async () => {
    const first = await createTenant(m.admin, { slug: "first-owner", tier: "pro", region: "eu" });
    const err = await createTenant(m.admin, { id: first.id, slug: "second-owner", tier: "pro", region: "eu" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TenantExistsError);
    expect(err).toMatchObject({ by: "id", message: `a tenant with id "${first.id}" already exists` });
  });

  it("a tenant of another residency region is ResidencyMismatchError", async () => {
    await expect(createTenant(m.admin, { slug: "us-tenant", tier: "pro", region: "us" })).rejects.toThrow(ResidencyMismatchError);
  });

  it("negative controls: another unique or check constraint is not mistaken for either", async () => {
    await m.admin.query(`CREATE UNIQUE INDEX tenants_test_display_key ON tenancy.tenants (display_name)`);
    await m.admin.query(`ALTER TABLE tenancy.tenants ADD CONSTRAINT tenants_test_check CHECK (slug <> 'forbidden-slug')`);
    try {
      await createTenant(m.admin, { slug: "display-one", displayName: "Same Name", tier: "pro", region: "eu" });
      const unique = await createTenant(m.admin, { slug: "display-two", displayName: "Same Name", tier: "pro", region: "eu" }).catch(
        (e: unknown) => e,
      );
      expect(unique).not.toBeInstanceOf(TenantExistsError);
      expect(unique).toMatchObject({ code: "23505", constraint: "tenants_test_display_key" });
      const check = await createTenant(m.admin, { slug: "forbidden-slug", tier: "pro", region: "eu" }).catch((e: unknown) => e);
      expect(check).not.toBeInstanceOf(ResidencyMismatchError);
      expect(check).toMatchObject({ code: "23514", constraint: "tenants_test_check" });
    } finally {
      await m.admin.query(`DROP INDEX tenancy.tenants_test_display_key`);
      await m.admin.query(`ALTER TABLE tenancy.tenants DROP CONSTRAINT tenants_test_check`);
    }
    expect(await sqlstate(() => createTenant(m.admin, { slug: "display-two", displayName: "Same Name", tier: "pro", region: "eu" }))).toBe(
      undefined,
    );
  });
});
