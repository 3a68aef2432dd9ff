/**
 * Applied migrations are frozen: every version's checksum is pinned here, and a database migrated
 * today records exactly these. Databases migrated before the lib/ re-layout recorded the same values
 * (tenancy.schema_migrations), so `migrate` on them stays a no-op. A new migration needs a new line
 * (the test names its checksum); an edited one fails and must become the next version instead.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MARKET_DATA_SCHEMA } from "../../lib/schema/catalogue";
import { migrate, migrationChecksum } from "../../lib/schema/migrate";
import { frozen, MIGRATIONS } from "../../lib/schema/migrations";
import { REGISTRY_SCHEMA, SHARED_SCHEMA } from "../../lib/schema/planner";
import { ROLES } from "../../lib/schema/roles";
import { createTestDatabase, type TestDatabase } from "../support/postgres";
import { connect } from "../../lib/db/client";
import type pg from "pg";

/** version → sha256 of its SQL. Append one line per new migration; never change a line. */
const GOLDEN_CHECKSUMS: Record<string, string> = {
  "0001": "1b0e66bdd0565e695d302381bfec5ed405ee187dd5fe2b0acc06298d53b44d3e",
  "0002": "b2a94bc66b1961d1449df0957672eaed51851fb85c7f83e40f61acaedb70e8f0",
  "0003": "717ee752691fc652ecf7b7f449c7fe6903d93966a9e36f5768b456c9953d026a",
  "0004": "401c438d43b3c04917e07850dd0940db75751b42e87ed05ebdc2913c093b5f61",
  "0005": "bf67b9e37129dafa3824aefd5673540db37ceb449b489f4fd3e65d54f1f6abef",
  "0006": "a304e4b121e056799e386b5e425e38e150a8ea3fbdd6a2d779eed76189823f34",
  "0007": "805290a15215f83988bf8c1166042110d6aecd67d745538d0d8407006564e531",
  "0008": "48b6b0c73eb67a819377082725fc2810955b0ff5f5029f703b8d0ea1eece4e25",
  "0009": "b4e765c4c51cb495f52082f226cccf8f9d3db921b50201e3765d1b297a62778e",
  "0010": "51e0c75d013ad926c9bbb225c921a87719c233920efa65ebfec6de45bd67faaa",
  "0012": "f0383e8e98dff3e5a452398a133d3097e6c5fe51fcf3621aa66a308561ffb810",
};

const golden = Object.entries(GOLDEN_CHECKSUMS).map(([version, checksum]) => `${version} ${checksum}`);
const current = () => MIGRATIONS.map((m) => `${m.version} ${migrationChecksum(m)}`);

describe("frozen migrations", () => {
  it("every migration has its golden checksum, and every golden checksum its migration (a new migration needs a new line)", () => {
    // On failure the diff shows the line to add for a new version, or the version that was edited.
    expect(current()).toEqual(golden);
  });

  it("versions are four digits, strictly increasing", () => {
    const versions = MIGRATIONS.map((m) => m.version);
    for (const v of versions) expect(v).toMatch(/^\d{4}$/);
    expect([...versions].sort()).toEqual(versions);
    expect(new Set(versions).size).toBe(versions.length);
  });

  it("no migration's SQL is built from a constant: migrations.ts has no ${…} inside a migration, and the tag refuses one", () => {
    const source = readFileSync(path.join(__dirname, "../../lib/schema/migrations.ts"), "utf8");
    const list = source.slice(source.indexOf("export const MIGRATIONS"));
    expect(list).not.toContain("${");
    expect(list).not.toMatch(/\bimport\b/);
    // Every migration is written with the tag (which refuses substitutions at compile time).
    expect(list.match(/\bsql: frozen`/g)?.length).toBe(MIGRATIONS.length);
    // Negative control: what a substitution would do at run time (tsc already refuses it).
    const call = frozen as unknown as (s: TemplateStringsArray, ...v: unknown[]) => string;
    expect(() => call(Object.assign(["a ", ""], { raw: ["a ", ""] }), "x")).toThrow(/frozen text/);
    expect(frozen`SELECT '\d'`).toBe("SELECT '\\d'");
  });

  it("the names the frozen SQL spells literally are still the constants' values", () => {
    // Changing one of these does not change an applied migration (they are frozen text): it needs
    // a new migration that renames the object in existing databases, and then this test's update.
    expect(ROLES).toEqual({
      owner: "alphapulse_owner",
      migrator: "alphapulse_migrator",
      maintenance: "alphapulse_maintenance",
      app: "app_user",
      readonly: "alphapulse_readonly",
    });
    expect({ REGISTRY_SCHEMA, SHARED_SCHEMA, MARKET_DATA_SCHEMA }).toEqual({
      REGISTRY_SCHEMA: "tenancy",
      SHARED_SCHEMA: "shared",
      MARKET_DATA_SCHEMA: "market_data",
    });
  });
});

describe("a migrated database", () => {
  let db: TestDatabase;
  let client: pg.Client;
  beforeAll(async () => {
    db = await createTestDatabase("checksums");
    client = await connect(db.url);
    await migrate(client, { region: "eu" });
  });
  afterAll(async () => {
    await client?.end().catch(() => {});
    await db?.drop();
  });

  it("records exactly the golden checksums in tenancy.schema_migrations", async () => {
    const { rows } = await client.query<{ line: string }>(
      `SELECT version || ' ' || checksum AS line FROM tenancy.schema_migrations ORDER BY version`,
    );
    expect(rows.map((r) => r.line)).toEqual(golden);
  });

  it("negative control: a recorded checksum that differs from the code's is refused by migrate", async () => {
    await client.query(`UPDATE tenancy.schema_migrations SET checksum = 'x' || checksum WHERE version = '0003'`);
    try {
      await expect(migrate(client, { region: "eu" })).rejects.toThrow(/migration 0003 was edited/);
    } finally {
      await client.query(`UPDATE tenancy.schema_migrations SET checksum = $1 WHERE version = '0003'`, [GOLDEN_CHECKSUMS["0003"]]);
    }
    expect((await migrate(client, { region: "eu" })).unchanged).toBe(true);
  });
});
