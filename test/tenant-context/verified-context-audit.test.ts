/**
 * The audit's verified-context rules (lib/audit/verified-context.ts): table-tested on facts, then on
 * a live strict database where each breakage, applied in a transaction that is rolled back after the
 * audit reads it, produces its finding — and the same breakage in a raw-setting database does not
 * produce the strict-only one (the negative control for the rule's scope).
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditDatabase, REVIEWED_SECURITY_DEFINER, type AuditOptions } from "../../lib/audit/isolation-audit";
import { createHash } from "node:crypto";
import {
  checkVerifiedContext,
  expectedVerifierSource,
  verifierDifferences,
  type VerifiedContextFacts,
  type VerifierFacts,
} from "../../lib/audit/verified-context";
import { migrate } from "../../lib/schema/migrate";
import { TENANT_PREDICATE } from "../../lib/schema/planner";
import { createTestDatabase, type TestDatabase } from "../support/postgres";

const GOOD: VerifierFacts = {
  owner: "alphapulse_owner",
  language: "plpgsql",
  volatility: "v",
  securityDefiner: true,
  config: null,
  sourceSha256: createHash("sha256").update(expectedVerifierSource()).digest("hex"),
  grantees: ["alphapulse_readonly", "app_user"],
};

describe("verifierDifferences (pure)", () => {
  const sha = verifierDifferences({ ...GOOD, sourceSha256: "x" })[0];
  it("names a body that is not 0012's", () => expect(sha).toMatch(/body is not migration 0012's/));
  it.each([
    [{ owner: "app_user" }, /owned by app_user/],
    [{ securityDefiner: false }, /not SECURITY DEFINER/],
    [{ config: ["search_path=public"] }, /SET clause/],
    [{ grantees: ["PUBLIC", "alphapulse_readonly", "app_user"] }, /executable by PUBLIC, alphapulse_readonly, app_user/],
    [{ volatility: "s" as const }, /not VOLATILE/],
  ])("names %o", (change, message) => {
    expect(verifierDifferences({ ...GOOD, ...change }, "h").join("; ")).toMatch(message);
  });
  it("is empty for the verifier as 0012 makes it", () => {
    expect(verifierDifferences({ ...GOOD, sourceSha256: "h" }, "h")).toEqual([]);
  });
});

describe("checkVerifiedContext (pure)", () => {
  const facts = (over: Partial<VerifiedContextFacts>): VerifiedContextFacts => ({
    mode: "verified",
    verifier: GOOD,
    definers: [],
    policies: [],
    ...over,
  });
  const rawPolicy = { table: "shared.trades", name: "tenant_isolation", using: TENANT_PREDICATE, withCheck: TENANT_PREDICATE };
  it("a raw-setting policy is flagged in a strict database only", () => {
    expect(checkVerifiedContext(facts({ policies: [rawPolicy] })).map((f) => f.check)).toEqual(["tenant-policy-trusts-setting"]);
    expect(checkVerifiedContext(facts({ mode: "setting", policies: [rawPolicy] }))).toEqual([]);
  });
  it("a database that is not strict is flagged only when required", () => {
    expect(checkVerifiedContext(facts({ mode: "setting" }), { requireVerifiedContext: true }).map((f) => f.check)).toEqual([
      "tenant-context-unverified",
    ]);
  });
  it("another SECURITY DEFINER function is flagged unless another rule already did", () => {
    const f = facts({ definers: ["tenancy.enter_verified_tenant(proof text)", "public.helper()"] });
    expect(checkVerifiedContext(f).map((x) => x.object)).toEqual(["function public.helper()"]);
    expect(checkVerifiedContext(f, {}, new Set(["public.helper()"]))).toEqual([]);
  });
  it("a reviewed SECURITY DEFINER function (0009's take_tenant_gate) is accepted, as the isolation audit accepts it", () => {
    const f = facts({ definers: ["tenancy.enter_verified_tenant(proof text)", "tenancy.take_tenant_gate()"] });
    expect(checkVerifiedContext(f).map((x) => x.object)).toEqual(["function tenancy.take_tenant_gate()"]);
    expect(checkVerifiedContext(f, {}, new Set(), REVIEWED_SECURITY_DEFINER)).toEqual([]);
  });
  it("a strict database without its verifier is flagged", () => {
    expect(checkVerifiedContext(facts({ verifier: undefined })).map((f) => f.check)).toEqual(["verifier-missing"]);
    expect(checkVerifiedContext(facts({}))).toEqual([]);
  });
});

describe("live", () => {
  let strict: TestDatabase;
  let raw: TestDatabase;
  let strictAdmin: pg.Client;
  let rawAdmin: pg.Client;

  beforeAll(async () => {
    [strict, raw] = await Promise.all([createTestDatabase("vca"), createTestDatabase("vca")]);
    strictAdmin = new pg.Client({ connectionString: strict.url });
    rawAdmin = new pg.Client({ connectionString: raw.url });
    await Promise.all([strictAdmin.connect(), rawAdmin.connect()]);
    await migrate(strictAdmin, { region: "eu", tenantContext: "verified" });
    await migrate(rawAdmin, { region: "eu", tenantContext: "setting" });
  }, 120_000);
  afterAll(async () => {
    await strictAdmin?.end();
    await rawAdmin?.end();
    await strict?.drop();
    await raw?.drop();
  });

  type Triple = [string, string, string];
  async function auditAfter(client: pg.Client, sql: string[], options: AuditOptions = {}): Promise<Triple[]> {
    await client.query("BEGIN");
    try {
      for (const statement of sql) await client.query(statement);
      return (await auditDatabase(client, options)).filter((f) => f.check !== "server-version").map((f) => [f.severity, f.check, f.object]);
    } finally {
      await client.query("ROLLBACK");
    }
  }

  it("a strict database is clean; a raw one is clean unless strictness is required", async () => {
    expect(await auditAfter(strictAdmin, [])).toEqual([]);
    expect(await auditAfter(rawAdmin, [])).toEqual([]);
    expect(await auditAfter(rawAdmin, [], { requireVerifiedContext: true })).toEqual([["high", "tenant-context-unverified", "database"]]);
  });

  it("flags the verifier altered: its body, or EXECUTE granted to PUBLIC", async () => {
    const body = (
      await strictAdmin.query<{ def: string }>(`SELECT pg_get_functiondef('tenancy.enter_verified_tenant(text)'::regprocedure) AS def`)
    ).rows[0].def;
    const altered = body.replace("IF NOT FOUND OR", "IF false AND");
    // Altered, it is no longer the one SECURITY DEFINER function allowed: the older rule reports it too.
    expect(await auditAfter(strictAdmin, ["SET LOCAL ROLE alphapulse_owner", altered])).toEqual([
      ["critical", "verifier-altered", "function tenancy.enter_verified_tenant(proof text)"],
      ["high", "security-definer-executable", "function tenancy.enter_verified_tenant(proof text)"],
    ]);
    expect(await auditAfter(strictAdmin, ["GRANT EXECUTE ON FUNCTION tenancy.enter_verified_tenant(text) TO PUBLIC"])).toEqual([
      ["critical", "verifier-altered", "function tenancy.enter_verified_tenant(proof text)"],
      ["high", "security-definer-executable", "function tenancy.enter_verified_tenant(proof text)"],
    ]);
  });

  it("flags a SECURITY DEFINER function other than the verifier, even one no tenant role can execute", async () => {
    expect(
      await auditAfter(strictAdmin, [
        "CREATE FUNCTION tenancy.helper() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'",
        "REVOKE ALL ON FUNCTION tenancy.helper() FROM PUBLIC",
      ]),
    ).toEqual([["high", "security-definer-unexpected", "function tenancy.helper()"]]);
  });

  it("accepts 0009's reviewed take_tenant_gate() in a strict database, even when no tenant role can execute it", async () => {
    expect(
      await auditAfter(strictAdmin, ["REVOKE EXECUTE ON FUNCTION tenancy.take_tenant_gate() FROM app_user, alphapulse_readonly"]),
    ).toEqual([]);
  });

  it("flags a tenant policy trusting the raw setting in a strict database, not in a raw one (negative control)", async () => {
    const rewrite = [
      "DROP POLICY tenant_isolation ON shared.trades",
      `CREATE POLICY tenant_isolation ON shared.trades AS RESTRICTIVE FOR ALL TO PUBLIC USING (${TENANT_PREDICATE}) WITH CHECK (${TENANT_PREDICATE})`,
    ];
    expect(await auditAfter(strictAdmin, rewrite)).toEqual([
      ["critical", "tenant-policy-trusts-setting", "policy tenant_isolation on shared.trades"],
    ]);
    expect(await auditAfter(rawAdmin, rewrite)).toEqual([]);
    expect(await auditAfter(strictAdmin, ["ALTER POLICY tenant_self ON tenancy.tenants USING (id = tenancy.setting_tenant_id())"])).toEqual(
      [["critical", "tenant-policy-trusts-setting", "policy tenant_self on tenancy.tenants"]],
    );
  });
});
