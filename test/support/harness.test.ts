import { describe, expect, it } from "vitest";
import pg from "pg";
import { createTestDatabase } from "./postgres";

describe("test harness", () => {
  it("creates a database on the test cluster", async () => {
    const db = await createTestDatabase();
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const { rows } = await client.query("SELECT current_database() AS name");
    await client.end();
    expect(rows[0].name).toBe(db.name);
    await db.drop();
  });
});
