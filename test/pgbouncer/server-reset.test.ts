/**
 * Session pooling hands a server connection from one PgBouncer client to the next. With
 * server_reset_query = DISCARD ALL the next client starts clean; with the reset turned off
 * (negative control) it inherits the previous client's tenant.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bouncerFor, foreignRows, tenantDatabase, type Bouncer, type TenantDatabase } from "./helpers";

let db: TenantDatabase;
let safe: Bouncer;
let broken: Bouncer;

beforeAll(async () => {
  db = await tenantDatabase({ tiers: ["pro", "pro"] });
  // One server connection, so client 2 necessarily gets client 1's.
  const settings = { defaultPoolSize: 1, reservePoolSize: 0 };
  safe = await bouncerFor(db, { settings });
  broken = await bouncerFor(db, {
    settings,
    unsafeRewriteIni: (ini) => {
      expect(ini).toContain("\nserver_reset_query = DISCARD ALL\n");
      return ini.replace("\nserver_reset_query = DISCARD ALL\n", "\nserver_reset_query =\n");
    },
  });
});

afterAll(async () => {
  await safe?.stop({ removeDir: true });
  await broken?.stop({ removeDir: true });
  await db?.drop();
});

async function handOver(bouncer: Bouncer) {
  const [A] = db.tenants.map((t) => t.id);
  const client1 = new pg.Client({ connectionString: bouncer.appUrl });
  await client1.connect();
  const first = await client1.query(
    "SELECT pg_backend_pid() AS pid, set_config('app.current_tenant_id', $1, false), set_config('search_path', 'shared', false), set_config('statement_timeout', '0', false)",
    [A],
  );
  const own = await client1.query("SELECT tenant_id FROM trades");
  expect(own.rows.length).toBe(20);
  expect(foreignRows(own.rows, A)).toBe(0);
  await client1.end();

  const client2 = new pg.Client({ connectionString: bouncer.appUrl });
  await client2.connect();
  try {
    const { rows } = await client2.query(
      "SELECT pg_backend_pid() AS pid, current_setting('app.current_tenant_id', true) AS tenant, current_setting('search_path') AS search_path",
    );
    const trades = await client2.query("SELECT tenant_id FROM shared.trades");
    return { samePid: rows[0].pid === first.rows[0].pid, tenant: rows[0].tenant, searchPath: rows[0].search_path, rows: trades.rows, A };
  } finally {
    await client2.end();
  }
}

describe("PgBouncer session mode hands a server connection to the next client", () => {
  it("with DISCARD ALL the next client on the same server connection sees no tenant and no rows", async () => {
    const seen = await handOver(safe);
    expect(seen.samePid).toBe(true);
    expect([null, ""]).toContain(seen.tenant);
    expect(seen.searchPath).toBe('"$user", public');
    expect(seen.rows).toEqual([]);
  });

  it("negative control: with the reset turned off the next client inherits tenant A and reads A's rows", async () => {
    const seen = await handOver(broken);
    expect(seen.samePid).toBe(true);
    expect(seen.tenant).toBe(seen.A);
    expect(seen.searchPath).toBe("shared");
    expect(seen.rows.length).toBe(20);
    expect(foreignRows(seen.rows, seen.A)).toBe(0);
  });
});
