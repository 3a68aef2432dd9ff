/**
 * The negative controls of isolation.test.ts: each attack runs against the breakage that must make
 * it leak, on a fresh database, and must leak there (proof that the attack can see a leak at all).
 * The audit must flag each breakage too, except the one it cannot see (a function body).
 */
import { afterEach, expect, it } from "vitest";
import { ROLES } from "../../lib/schema/roles";
import { ATTACKS, auditFindings, createBlotterView } from "./attacks";
import { migratedDatabase, twoTenants, type MigratedDatabase } from "./harness";

const open: MigratedDatabase[] = [];
afterEach(async () => {
  for (const m of open.splice(0)) await m.close();
});

it.each(ATTACKS.map((a) => [a.name, a.breakage.name, a] as const))("%s — leaks under: %s", async (_name, _breakage, attack) => {
  const m = await migratedDatabase("ctl");
  open.push(m);
  const tenants = await twoTenants(m.admin);
  await createBlotterView(m);
  const applied = await attack.breakage.apply(m, tenants);
  const attacker = applied?.attacker ?? ROLES.app;
  const ctx = { ...tenants, m, attacker, connect: () => m.connectAs(attacker) };
  const result = await attack.run(ctx);
  if (process.env.SHOW_EVIDENCE) console.log(`${attack.name} [${attacker}]: ${result.evidence}`);
  expect(result.leaked, `${attack.breakage.description}: ${result.evidence}`).toBe(true);
  if (attack.breakage.auditSees !== false) {
    const findings = await auditFindings(ctx);
    expect(findings).not.toEqual([]);
    const check = attack.breakage.auditCheck;
    if (check)
      expect(
        findings.filter((f) => f.startsWith(`${check}: `)),
        findings.join("\n"),
      ).not.toEqual([]);
  }
});
