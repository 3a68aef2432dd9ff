/**
 * Who a re-rendered PgBouncer auth file admits (lib/pgbouncer/auth.ts reconcileAuthEntries, used by
 * `npm run local` on every run): the platform's roles, plus an entry an operator added while its role
 * can log in. An offboarded tenant's login role (NOLOGIN) leaves the file, and says so; nothing
 * appears that neither the platform nor the previous file names.
 */
import { describe, expect, it } from "vitest";
import { authFileUsers, newScramSalt, reconcileAuthEntries, renderAuthFile, scramSha256Verifier } from "../../lib/pgbouncer/auth";

const v = (password: string) => scramSha256Verifier(password, { salt: newScramSalt() });
const APP = "app_user";
const READONLY = "alphapulse_readonly";
const TENANT = "tenant_0b5e8f3c1d2a4c8e9f1a2b3c4d5e6f70_login";
const OTHER = "tenant_1c6f9a4d2e3b5d9f0a2b3c4d5e6f7081_login";

describe("reconcileAuthEntries", () => {
  const app = { canLogin: true, password: v("app-password-0001") };
  const readonly = { canLogin: true, password: v("readonly-password-1") };
  const tenant = { canLogin: true, password: v("tenant-password-01") };

  it("first render: the platform's roles, each reported as added", () => {
    const plan = reconcileAuthEntries(
      [],
      [APP, READONLY],
      new Map([
        [APP, app],
        [READONLY, readonly],
        [TENANT, tenant],
      ]),
    );
    expect(plan.users.map((u) => u.name)).toEqual([APP, READONLY]);
    expect(plan.added).toEqual([APP, READONLY]);
    expect(plan.removed).toEqual([]);
  });

  it("a tenant login an operator admitted is kept (with the verifier the server holds now), nothing added", () => {
    const rotated = { canLogin: true, password: v("tenant-password-02") };
    const plan = reconcileAuthEntries(
      [APP, READONLY, TENANT],
      [APP, READONLY],
      new Map([
        [APP, app],
        [READONLY, readonly],
        [TENANT, rotated],
      ]),
    );
    expect(plan.users).toEqual([
      { name: APP, scramVerifier: app.password },
      { name: READONLY, scramVerifier: readonly.password },
      { name: TENANT, scramVerifier: rotated.password },
    ]);
    expect(plan).toMatchObject({ added: [], removed: [] });
  });

  it.each([
    ["offboarded (NOLOGIN)", { canLogin: false, password: v("tenant-password-01") }, /NOLOGIN/],
    ["purged (role gone)", undefined, /no longer exists/],
    ["no SCRAM password", { canLogin: true, password: null }, /no SCRAM-SHA-256 password/],
  ])("a tenant login that is %s leaves the file, and the plan says so", (_case, state, reason) => {
    const roles = new Map([[APP, app], [READONLY, readonly], ...(state ? [[TENANT, state] as const] : [])]);
    const plan = reconcileAuthEntries([APP, READONLY, TENANT], [APP, READONLY], roles);
    expect(plan.users.map((u) => u.name)).toEqual([APP, READONLY]);
    expect(plan.removed).toEqual([{ name: TENANT, reason: expect.stringMatching(reason) }]);
  });

  it("a role that can log in but neither list names never appears (negative control: it is in the server's roles)", () => {
    const plan = reconcileAuthEntries(
      [APP],
      [APP],
      new Map([
        [APP, app],
        [OTHER, tenant],
      ]),
    );
    expect(plan.users.map((u) => u.name)).toEqual([APP]);
    expect(plan.added).toEqual([]);
    // ...and it would appear if the previous file named it: the filter is the previous file, not the roles.
    expect(
      reconcileAuthEntries(
        [APP, OTHER],
        [APP],
        new Map([
          [APP, app],
          [OTHER, tenant],
        ]),
      ).users.map((u) => u.name),
    ).toEqual([APP, OTHER]);
  });

  it("authFileUsers reads back what renderAuthFile wrote", () => {
    const text = renderAuthFile([
      { name: APP, scramVerifier: app.password },
      { name: TENANT, scramVerifier: tenant.password },
    ]);
    expect(authFileUsers(text)).toEqual([APP, TENANT]);
  });
});
