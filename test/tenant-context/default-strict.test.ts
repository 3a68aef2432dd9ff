/**
 * Strict is the default (ADR-005): a database `migrate` (or `tenancy migrate`, or the stacks'
 * DatabaseSchema) creates trusts only verified contexts; an existing database keeps its mode until
 * `tenancy migrate --tenant-context verified` switches it, with no downtime for clients that send
 * proofs, and `--tenant-context setting` rolls it back. A switch no client could survive (tenants,
 * and no active key) is refused before anything changes.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../../lib/db/client";
import { migrate, TenantContextSwitchError } from "../../lib/schema/migrate";
import { ROLES } from "../../lib/schema/roles";
import { TenantPool } from "../../lib/tenant-context/client";
import { createTenant } from "../../lib/tenant/registry";
import type { Tenant } from "../../lib/tenant/model";
import { tenancy } from "../support/cli";
import { installTestContextKey } from "../support/context-key";
import { createTestDatabase, type TestDatabase } from "../support/postgres";

const modeOf = async (client: pg.Client) =>
  (await client.query("SELECT tenant_context FROM tenancy.database_settings")).rows[0].tenant_context as string;
const rawEntryGranted = async (client: pg.Client) =>
  (await client.query(`SELECT has_function_privilege($1, 'tenancy.enter_tenant(uuid)', 'EXECUTE') AS granted`, [ROLES.app])).rows[0]
    .granted as boolean;

const databases: TestDatabase[] = [];
const clients: pg.Client[] = [];
async function freshDatabase(): Promise<{ db: TestDatabase; admin: pg.Client }> {
  const db = await createTestDatabase("strict");
  databases.push(db);
  const admin = await connect(db.url);
  clients.push(admin);
  return { db, admin };
}
afterAll(async () => {
  for (const c of clients) await c.end().catch(() => {});
  for (const db of databases) await db.drop();
});

describe("a new database is strict", () => {
  it("migrate() with no option: verified policies, the raw entry revoked", async () => {
    const { admin } = await freshDatabase();
    const report = await migrate(admin, { region: "eu" });
    expect(report.tenantContext.mode).toBe("verified");
    expect(await modeOf(admin)).toBe("verified");
    expect(await rawEntryGranted(admin)).toBe(false);
    // A second run changes nothing, and keeps strict.
    const again = await migrate(admin, { region: "eu" });
    expect(again.unchanged).toBe(true);
    expect(again.tenantContext.mode).toBe("verified");
  });

  it("tenancy migrate --json: the same default, said in the report", async () => {
    const { db, admin } = await freshDatabase();
    const run = await tenancy("migrate", "--region", "eu", "--json", "--database-url", db.url);
    expect(run.code).toBe(0);
    expect(run.json.tenantContext.mode).toBe("verified");
    expect(await modeOf(admin)).toBe("verified");
  });

  it("a test or an operator pins the raw-setting design explicitly (negative control of the default)", async () => {
    const { admin } = await freshDatabase();
    expect((await migrate(admin, { region: "eu", tenantContext: "setting" })).tenantContext.mode).toBe("setting");
    expect(await modeOf(admin)).toBe("setting");
    expect(await rawEntryGranted(admin)).toBe(true);
    // An existing database keeps its recorded mode when migrate is run without the option.
    expect((await migrate(admin, { region: "eu" })).tenantContext).toEqual({ mode: "setting", statements: [] });
  });
});

describe("switching an existing database", () => {
  let db: TestDatabase;
  let admin: pg.Client;
  let tenants: Tenant[];
  beforeAll(async () => {
    ({ db, admin } = await freshDatabase());
    await migrate(admin, { region: "eu", tenantContext: "setting" });
    tenants = [
      await createTenant(admin, { slug: "switch-alpha", tier: "pro", region: "eu" }),
      await createTenant(admin, { slug: "switch-beta", tier: "starter", region: "eu" }),
    ];
    for (const t of tenants) {
      await admin.query(`INSERT INTO shared.positions (tenant_id, symbol, quantity, average_price) VALUES ($1, 'AAPL', 1, 1)`, [t.id]);
    }
  });

  it("is refused while it has tenants and no active key: exit 2 naming the flag, nothing changed", async () => {
    await expect(migrate(admin, { tenantContext: "verified" })).rejects.toThrow(TenantContextSwitchError);
    const run = await tenancy("migrate", "--tenant-context", "verified", "--json", "--database-url", db.url);
    expect(run.code).toBe(2);
    expect(run.stdout + run.stderr).toMatch(/--tenant-context/);
    expect(run.stdout + run.stderr).toMatch(/no active context key/);
    expect(await modeOf(admin)).toBe("setting");
    expect(await rawEntryGranted(admin)).toBe(true);
  });

  it("with a key: clients that send proofs keep working through the switch and the rollback (no downtime)", async () => {
    const key = await installTestContextKey(admin, { region: "eu" });
    const keyed = new TenantPool({ connectionString: db.urlAs(ROLES.app), max: 2, contextKey: key });
    const keyless = new TenantPool({ connectionString: db.urlAs(ROLES.app), max: 1 });
    try {
      const failures: unknown[] = [];
      let requests = 0;
      let stop = false;
      const traffic = (async () => {
        while (!stop) {
          for (const [i, t] of tenants.entries()) {
            try {
              const { rows } = await keyed.tenantQuery({ tenantId: t.id, tier: t.tier }, "SELECT tenant_id FROM positions", [], {
                prepare: i === 0,
              });
              if (rows.length !== 1 || rows[0].tenant_id !== t.id) failures.push(rows);
            } catch (err) {
              failures.push(err);
            }
            requests++;
          }
        }
      })();
      // Before: the raw client works too.
      expect((await keyless.tenantQuery({ tenantId: tenants[0].id, tier: "pro" }, "SELECT 1 FROM positions")).rows).toHaveLength(1);

      const run = await tenancy("migrate", "--tenant-context", "verified", "--json", "--database-url", db.url);
      expect(run.code).toBe(0);
      expect(run.json.tenantContext.mode).toBe("verified");
      expect(await modeOf(admin)).toBe("verified");
      // A client without a key now fails loudly, not silently empty.
      await expect(keyless.tenantQuery({ tenantId: tenants[0].id, tier: "pro" }, "SELECT 1 FROM positions")).rejects.toThrow(
        /permission denied for function enter_tenant/,
      );

      // The operator's rollback (ADR-005): the same statements in reverse.
      const back = await tenancy("migrate", "--tenant-context", "setting", "--json", "--database-url", db.url);
      expect(back.code).toBe(0);
      expect(await modeOf(admin)).toBe("setting");
      expect((await keyless.tenantQuery({ tenantId: tenants[0].id, tier: "pro" }, "SELECT 1 FROM positions")).rows).toHaveLength(1);

      // The last active key is not retired while tenants are active (exit 2 naming the kid).
      const retire = await tenancy("context-key", "retire", key.kid, "--json", "--database-url", db.url);
      expect(retire.code).toBe(2);
      expect(retire.json.error).toMatchObject({ field: "kid", message: expect.stringMatching(/last active key/) });

      const seen = requests;
      while (requests < seen + 4) await new Promise((r) => setTimeout(r, 10));
      stop = true;
      await traffic;
      expect(failures).toEqual([]);
      expect(requests).toBeGreaterThan(4);
    } finally {
      await keyed.end();
      await keyless.end();
    }
  });
});
