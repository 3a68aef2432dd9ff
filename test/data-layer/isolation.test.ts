/**
 * Tenant A attacks tenant B as app_user on the real schema, class by class; every attack also runs
 * against a deliberately broken schema (its negative control) and must leak there, which proves the
 * attack can see a leak at all. Each run gets a fresh database. The audit is checked alongside:
 * clean on the real schema, and it flags every breakage.
 */
import { afterEach, describe, expect, it } from "vitest";
import { auditDatabase } from "../../lib/audit";
import { ROLES } from "../../lib/roles";
import { ATTACKS, createBlotterView, type AttackContext, type Breakage } from "./attacks";
import { migratedDatabase, twoTenants, type MigratedDatabase } from "./harness";

const open: MigratedDatabase[] = [];
afterEach(async () => {
  for (const m of open.splice(0)) await m.close();
});

async function fixture(breakage?: Breakage): Promise<AttackContext> {
  const m = await migratedDatabase("iso");
  open.push(m);
  const tenants = await twoTenants(m.admin);
  await createBlotterView(m);
  const applied = breakage ? await breakage.apply(m, tenants) : undefined;
  const attacker = applied?.attacker ?? ROLES.app;
  return { ...tenants, m, attacker, connect: () => m.connectAs(attacker) };
}

/** Findings other than the server version (which depends on the machine, and is tested on its own). */
async function findings(ctx: AttackContext): Promise<string[]> {
  const subjectRoles = [...new Set([ROLES.app, ROLES.readonly, ctx.attacker])];
  return (await auditDatabase(ctx.m.admin, { subjectRoles }))
    .filter((f) => f.check !== "server-version")
    .map((f) => `${f.check}: ${f.object}`);
}

describe.each(ATTACKS.map((a) => [a.name, a] as const))("%s", (_name, attack) => {
  it("does not leak on the real schema (and the audit is clean)", async () => {
    const ctx = await fixture();
    const result = await attack.run(ctx);
    if (process.env.SHOW_EVIDENCE) console.log(`${attack.name} [${ctx.attacker}]: ${result.evidence}`);
    expect(result.leaked, result.evidence).toBe(false);
    expect(await findings(ctx)).toEqual([]);
  });

  it(`leaks under its negative control: ${attack.breakage.name} (and the audit flags it)`, async () => {
    const ctx = await fixture(attack.breakage);
    const result = await attack.run(ctx);
    if (process.env.SHOW_EVIDENCE) console.log(`${attack.name} [${ctx.attacker}]: ${result.evidence}`);
    expect(result.leaked, `${attack.breakage.description}: ${result.evidence}`).toBe(true);
    if (attack.breakage.auditSees !== false) expect(await findings(ctx)).not.toEqual([]);
  });
});
