/**
 * Tenant A attacks tenant B as app_user on the real schema, class by class (test/data-layer/attacks.ts):
 * nothing leaks, and the audit of that database is clean. isolation-controls.test.ts runs the same
 * attacks against deliberately broken schemas, where each must leak.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROLES } from "../../lib/roles";
import { ATTACKS, auditFindings, createBlotterView, type AttackContext } from "./attacks";
import { migratedDatabase, twoTenants } from "./harness";

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

  it("and the audit of the attacked database is clean", async () => {
    expect(await auditFindings(ctx)).toEqual([]);
  });
});
