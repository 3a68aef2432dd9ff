/**
 * The comparer the transport e2e relies on (test/support/database-snapshot.ts): two databases built
 * the same way compare equal although their tenants' ids differ; and it can fail — a dropped
 * policy, a revoked grant, a tenant on another tier are each reported, naming the object.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withConnection } from "../../lib/db/client";
import { migrate } from "../../lib/schema/migrate";
import { createTenant } from "../../lib/tenant/registry";
import { createTestDatabase, type TestDatabase } from "./postgres";
import { readDatabaseSnapshot, snapshotDifferences } from "./database-snapshot";

describe("database snapshots", () => {
  let a: TestDatabase;
  let b: TestDatabase;

  beforeAll(async () => {
    [a, b] = [await createTestDatabase("snap"), await createTestDatabase("snap")];
    for (const db of [a, b]) {
      await withConnection(db.url, async (c) => {
        await migrate(c, { region: "eu" });
        await createTenant(c, { slug: "alpha-fund", tier: "pro", region: "eu" });
        await createTenant(c, { slug: "beta-capital", tier: "starter", region: "eu" });
      });
    }
  }, 120_000);

  afterAll(async () => {
    await a?.drop();
    await b?.drop();
  });

  it("are equal for the same design and registry, whatever ids were generated", async () => {
    const [left, right] = [await withConnection(a.url, readDatabaseSnapshot), await withConnection(b.url, readDatabaseSnapshot)];
    expect(left.sections.registry.filter((l) => l.startsWith("tenant "))).toEqual([
      "tenant <tenant:alpha-fund> alpha-fund alpha-fund pro eu shared active offboarded:false export:-",
      "tenant <tenant:beta-capital> beta-capital beta-capital starter eu shared active offboarded:false export:-",
    ]);
    expect(left.sections.schema.some((l) => l.startsWith("CREATE POLICY"))).toBe(true);
    expect(snapshotDifferences(left, right)).toEqual([]);
  });

  it("report a dropped policy, a revoked grant and a changed tenant (negative controls)", async () => {
    const left = await withConnection(a.url, readDatabaseSnapshot);
    // The breakage inside a transaction that is rolled back: b stays as it was.
    const right = await withConnection(b.url, async (c) => {
      await c.query("BEGIN");
      try {
        const { rows } = await c.query<{ policyname: string; tablename: string }>(
          "SELECT policyname, tablename FROM pg_policies WHERE schemaname = 'shared' ORDER BY 1, 2 LIMIT 1",
        );
        await c.query(`DROP POLICY ${rows[0].policyname} ON shared.${rows[0].tablename}`);
        await c.query("REVOKE SELECT ON shared.trades FROM alphapulse_readonly");
        await c.query("UPDATE tenancy.tenants SET tier = 'enterprise' WHERE slug = 'beta-capital'");
        return { snapshot: await readDatabaseSnapshot(c), policy: rows[0] };
      } finally {
        await c.query("ROLLBACK");
      }
    });
    const differences = snapshotDifferences(left, right.snapshot, ["direct", "executor"]);
    expect(differences.some((d) => d.startsWith("schema: only in direct: CREATE POLICY " + right.policy.policyname))).toBe(true);
    expect(
      differences.some((d) => /^schema: only in (direct|executor): GRANT .* ON TABLE shared\.trades TO alphapulse_readonly/.test(d)),
    ).toBe(true);
    expect(differences).toContain(
      "registry: only in executor: tenant <tenant:beta-capital> beta-capital beta-capital enterprise eu shared active offboarded:false export:-",
    );
    // And b is unchanged: the comparison is equal again.
    expect(snapshotDifferences(left, await withConnection(b.url, readDatabaseSnapshot))).toEqual([]);
  });
});
