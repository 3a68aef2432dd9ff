/**
 * Tenant A attacks tenant B as app_user on the real schema, class by class (test/data-layer/attacks.ts):
 * nothing leaks, and the audit of that database is clean. isolation-controls.test.ts runs the same
 * attacks against deliberately broken schemas, where each must leak.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROLES } from "../../lib/schema/roles";
import { ATTACKS, auditFindings, createBlotterView, type AttackContext } from "./attacks";
import { migratedDatabase, setTenant, twoTenants } from "./harness";

describe("on the real schema", () => {
  let ctx: AttackContext;
  beforeAll(async () => {
    const m = await migratedDatabase("iso");
    const tenants = await twoTenants(m.admin);
    await createBlotterView(m);
    ctx = { ...tenants, m, attacker: ROLES.app, connect: () => m.connectAs(ROLES.app) };
  });
  afterAll(async () => {
    await ctx?.m.close();
  });

  it.each(ATTACKS.map((a) => [a.name, a] as const))("%s", async (_name, attack) => {
    const result = await attack.run(ctx);
    if (process.env.SHOW_EVIDENCE) console.log(`${attack.name} [${ctx.attacker}]: ${result.evidence}`);
    expect(result.leaked, result.evidence).toBe(false);
  });

  it("a view without security_invoker owned by the owner role shows nothing at all (FORCE RLS, no permissive policy for the owner); the audit still flags it", async () => {
    const { admin } = ctx.m;
    await admin.query(`SET ROLE ${ROLES.owner}`);
    await admin.query(`CREATE VIEW shared.owner_view AS SELECT tenant_id, id FROM shared.trades`);
    await admin.query(`GRANT SELECT ON shared.owner_view TO ${ROLES.app}`);
    await admin.query(`RESET ROLE`);
    try {
      const c = await ctx.connect();
      await setTenant(c, ctx.a.id);
      // Not even A's own rows: the view reads as its owner, whom the restrictive policy binds and no permissive policy admits.
      expect((await c.query(`SELECT count(*)::int AS n FROM shared.owner_view`)).rows[0].n).toBe(0);
      expect(await auditFindings(ctx)).toEqual(["view-not-security-invoker: view shared.owner_view"]);
    } finally {
      await admin.query(`DROP VIEW shared.owner_view`);
    }
  });

  it("and the audit of the attacked database is clean", async () => {
    expect(await auditFindings(ctx)).toEqual([]);
  });
});
