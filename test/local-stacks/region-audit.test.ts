/**
 * The local job's audit: residency rules (pure) and the live isolation probe, with its negative
 * control — the same probe on a database whose RLS was switched off must report the leak.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { crossRegionFindings, isolationProbe, pooledProbe, residencyFindings } from "../../lib/local/region-audit";
import { migrate } from "../../lib/schema/migrate";
import { createTenant, listTenants } from "../../lib/tenant/registry";
import { createTestDatabase, type TestDatabase } from "../support/postgres";

describe("residency findings", () => {
  const a = { id: "00000000-0000-4000-8000-000000000001", slug: "alpha-one", region: "eu" as const };
  const b = { id: "00000000-0000-4000-8000-000000000002", slug: "beta-two", region: "us" as const };

  it.each([
    ["clean", "eu", [a], { "alpha-one": a.id }, []],
    ["wrong database region", "us", [a], {}, ['residency: the database records region "us", the stack serves "eu"']],
    ["foreign tenant", "eu", [a, b], {}, [`residency: tenant beta-two (${b.id}) is of region "us" in the "eu" database`]],
    [
      "declared but missing",
      "eu",
      [],
      { "alpha-one": a.id },
      [`registry: tenant alpha-one (${a.id}) declared by the stack is not registered`],
    ],
  ])("%s", (_name, dbRegion, tenants, expected, findings) => {
    expect(residencyFindings({ region: "eu", expectedTenants: expected }, dbRegion, tenants)).toEqual(findings);
  });

  it("finds a tenant registered in two regions", () => {
    expect(
      crossRegionFindings([
        { stack: "local-eu", tenants: [a] },
        { stack: "local-us", tenants: [b] },
      ]),
    ).toEqual([]);
    expect(
      crossRegionFindings([
        { stack: "local-eu", tenants: [a] },
        { stack: "local-us", tenants: [{ ...b, slug: a.slug }] },
      ]),
    ).toEqual(["residency: tenant slug alpha-one is registered in both local-eu and local-us"]);
  });
});

// Strict (the default for a new database: a probe key lives inside the rolled-back probe) and the raw-setting design.
describe.each(["verified", "setting"] as const)("isolation probe (%s)", (tenantContext) => {
  let db: TestDatabase;
  let client: pg.Client;
  beforeAll(async () => {
    db = await createTestDatabase("probe");
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await migrate(client, { region: "eu", tenantContext });
    await createTenant(client, { slug: "probe-one", tier: "pro", region: "eu" });
    await createTenant(client, { slug: "probe-two", tier: "starter", region: "eu" });
  });
  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  it("is clean on the design and leaves no row (nor key) behind", async () => {
    expect(await isolationProbe(client, await listTenants(client))).toEqual([]);
    expect((await client.query("SELECT count(*)::int AS n FROM shared.positions")).rows[0].n).toBe(0);
    expect((await client.query("SELECT count(*)::int AS n FROM tenancy_private.context_keys")).rows[0].n).toBe(0);
  });

  it("reports the leak when RLS is off (negative control)", async () => {
    await client.query("ALTER TABLE shared.positions NO FORCE ROW LEVEL SECURITY");
    await client.query("ALTER TABLE shared.positions DISABLE ROW LEVEL SECURITY");
    try {
      const findings = await isolationProbe(client, await listTenants(client));
      expect(findings).toEqual([
        "isolation: tenant probe-one sees 1 row(s) of other tenants in positions",
        "isolation: tenant probe-two sees 1 row(s) of other tenants in positions",
      ]);
    } finally {
      await client.query("ALTER TABLE shared.positions ENABLE ROW LEVEL SECURITY");
      await client.query("ALTER TABLE shared.positions FORCE ROW LEVEL SECURITY");
    }
  });
});

describe("probe through PgBouncer", () => {
  it("reports a connection that fails instead of throwing", async () => {
    const findings = await pooledProbe("postgres://app_user:wrong-password-123@127.0.0.1:1/none", [
      { id: "00000000-0000-4000-8000-000000000001", slug: "alpha-one", status: "active" },
    ]);
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatch(/^pgbouncer: app_user cannot connect through PgBouncer/);
  });
});
