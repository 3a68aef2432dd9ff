/**
 * ADR-005: "the key is never readable by app_user, readonly or a tenant login role". The audit's
 * `context-keys-readable` (lib/audit/verified-context.ts) on a real strict database with a key and two
 * tenants: the design as migrated is clean, and app_user indeed cannot read the pads. The attack: once
 * SELECT on tenancy_private.context_keys reaches app_user, it reads the pads and forges a proof that the
 * verifier accepts for a tenant it was never given — and the audit flags exactly that grant, and every
 * other path to it (PUBLIC, a role it inherits, membership of the owner, a column grant; for a
 * tenant login role as for app_user), until it is revoked. Cluster-wide changes (roles, memberships)
 * touch only roles this file creates: other files audit their databases meanwhile.
 */
import { createHash, randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditDatabase } from "../../lib/audit/isolation-audit";
import { withConnection } from "../../lib/db/client";
import { checkKeyTableAccess } from "../../lib/audit/verified-context";
import { migrate } from "../../lib/schema/migrate";
import { createTenant } from "../../lib/tenant/registry";
import type { Tenant } from "../../lib/tenant/model";
import { installTestContextKey } from "../support/context-key";
import { adminUrl, createTestDatabase, type TestDatabase } from "../support/postgres";

const TABLE = "table tenancy_private.context_keys";

/** A proof for `tenantId` MAC'd with the stored pads, as the verifier checks it (HMAC-SHA256 = H(outer ‖ H(inner ‖ m))). */
function forgeFromPads(pads: { kid: string; region: string; inner_pad: Buffer; outer_pad: Buffer }, tenantId: string): string {
  const expires = String(Math.floor(Date.now() / 1000) + 60).padStart(10, "0");
  const payload = `v1.${pads.kid}.${pads.region}.${tenantId}.${expires}.${randomBytes(12).toString("hex")}`;
  const inner = createHash("sha256")
    .update(Buffer.concat([pads.inner_pad, Buffer.from(payload)]))
    .digest();
  return `${payload}.${createHash("sha256")
    .update(Buffer.concat([pads.outer_pad, inner]))
    .digest("hex")}`;
}

let db: TestDatabase;
let admin: pg.Client;
let victim: Tenant;
/** Roles this file creates (roles are cluster-wide): dropped after. */
const created: string[] = [];

beforeAll(async () => {
  db = await createTestDatabase("cka");
  admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  await migrate(admin, { region: "eu", tenantContext: "verified" });
  await installTestContextKey(admin, { region: "eu" });
  await createTenant(admin, { slug: "attacker-capital", tier: "pro", region: "eu" });
  victim = await createTenant(admin, { slug: "victim-partners", tier: "pro", region: "eu" });
}, 120_000);

afterAll(async () => {
  await admin?.end();
  await db?.drop();
  if (created.length) {
    await withConnection(adminUrl(), async (c) => {
      for (const role of created) await c.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(role)}`);
    });
  }
});

/** The audit's context-keys-readable findings as [severity, object, the role named first in the message]. */
async function keyFindings(subjectRoles?: string[]): Promise<[string, string, string][]> {
  return (await auditDatabase(admin, subjectRoles ? { subjectRoles } : {}))
    .filter((f) => f.check === "context-keys-readable")
    .map((f) => [f.severity, f.object, f.message.split(" ")[0]]);
}

/** As `role`, in one transaction: read the pads, forge a proof for the victim, enter it, read the registry. */
async function attackAs(role: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: db.urlAs(role) });
  await client.connect();
  try {
    await client.query("BEGIN");
    const { rows } = await client.query(
      `SELECT kid, region, inner_pad, outer_pad FROM tenancy_private.context_keys WHERE state = 'active'`,
    );
    await client.query("SELECT tenancy.enter_verified_tenant($1)", [forgeFromPads(rows[0], victim.id)]);
    const seen = await client.query<{ slug: string }>("SELECT slug FROM tenancy.tenants");
    return seen.rows.map((r) => r.slug);
  } finally {
    await client.end();
  }
}

async function asAdmin(...statements: string[]): Promise<void> {
  for (const s of statements) await admin.query(s);
}

describe("context-keys-readable on a real strict database", () => {
  it("the design as migrated is clean, and app_user cannot read the pads", async () => {
    expect(await keyFindings()).toEqual([]);
    await expect(attackAs("app_user")).rejects.toThrow(/permission denied for schema tenancy_private/);
    await expect(attackAs("alphapulse_readonly")).rejects.toThrow(/permission denied/);
  });

  it("negative control: granted to app_user, the pads forge a proof for another tenant that the verifier accepts — and the audit flags it", async () => {
    await asAdmin("GRANT USAGE ON SCHEMA tenancy_private TO app_user", "GRANT SELECT ON tenancy_private.context_keys TO app_user");
    try {
      expect(await attackAs("app_user")).toEqual(["victim-partners"]);
      expect(await keyFindings()).toEqual([["critical", TABLE, "app_user"]]);
    } finally {
      await asAdmin("REVOKE SELECT ON tenancy_private.context_keys FROM app_user", "REVOKE USAGE ON SCHEMA tenancy_private FROM app_user");
    }
    expect(await keyFindings()).toEqual([]);
    await expect(attackAs("app_user")).rejects.toThrow(/permission denied/);
  });

  it("flags every path: PUBLIC, an inherited role, membership of the owner, a column grant — for a tenant login role too", async () => {
    const readers = `key_readers_${randomBytes(4).toString("hex")}`;
    // A dedicated tenant's login role stands in under a name outside the pattern the audit discovers
    // them by (`tenant_<hex>_login` with CONNECT), passed as a subject explicitly: roles are
    // cluster-wide, and a pattern-named one would join the audits other test files run meanwhile.
    const login = `cka_tenant_login_${randomBytes(4).toString("hex")}`;
    const subjects = ["app_user", "alphapulse_readonly", login];
    created.push(readers, login);
    await asAdmin(
      `CREATE ROLE ${readers} NOLOGIN`,
      `CREATE ROLE ${login} LOGIN`,
      `GRANT CONNECT ON DATABASE ${pg.escapeIdentifier(db.name)} TO ${login}`,
    );
    const cases: [string, string[], string[], [string, string, string][]][] = [
      [
        "PUBLIC",
        ["GRANT SELECT ON tenancy_private.context_keys TO PUBLIC"],
        ["REVOKE SELECT ON tenancy_private.context_keys FROM PUBLIC"],
        [
          ["high", TABLE, "alphapulse_readonly"],
          ["high", TABLE, "app_user"],
          ["high", TABLE, login],
        ].sort() as [string, string, string][],
      ],
      [
        "a role it inherits",
        [
          `GRANT SELECT ON tenancy_private.context_keys TO ${readers}`,
          `GRANT USAGE ON SCHEMA tenancy_private TO ${readers}`,
          `GRANT ${readers} TO ${login}`,
        ],
        [
          `REVOKE ${readers} FROM ${login}`,
          `REVOKE ALL ON tenancy_private.context_keys FROM ${readers}`,
          `REVOKE USAGE ON SCHEMA tenancy_private FROM ${readers}`,
        ],
        [["critical", TABLE, login]],
      ],
      [
        "membership of the owner",
        [`GRANT alphapulse_owner TO ${login}`],
        [`REVOKE alphapulse_owner FROM ${login}`],
        [["critical", TABLE, login]],
      ],
      [
        "a column grant",
        [`GRANT SELECT (outer_pad) ON tenancy_private.context_keys TO ${login}`],
        [`REVOKE SELECT (outer_pad) ON tenancy_private.context_keys FROM ${login}`],
        [["high", TABLE, login]],
      ],
    ];
    for (const [what, grant, revoke, expected] of cases) {
      await asAdmin(...grant);
      try {
        expect({ what, found: (await keyFindings(subjects)).sort() }).toEqual({ what, found: expected });
      } finally {
        await asAdmin(...revoke);
      }
      expect({ what, found: await keyFindings(subjects) }).toEqual({ what, found: [] });
    }
  });
});

describe("checkKeyTableAccess (pure)", () => {
  it("is critical when the role can use what it holds, high when it is one GRANT away; the fix revokes and rotates", () => {
    const [usable, away, owner] = checkKeyTableAccess([
      { role: "app_user", privileges: ["SELECT"], ownerMember: false, schemaUsage: true },
      { role: "alphapulse_readonly", privileges: ["SELECT (columns)"], ownerMember: false, schemaUsage: false },
      { role: "tenant_ab_login", privileges: ["SELECT", "INSERT"], ownerMember: true, schemaUsage: false },
    ]);
    expect([usable.severity, away.severity, owner.severity]).toEqual(["critical", "high", "critical"]);
    expect(usable.message).toMatch(/^app_user holds SELECT on the tenant-context keys/);
    expect(away.message).toMatch(/one GRANT away$/);
    expect(owner.message).toMatch(/holds SELECT, INSERT, membership of the owner alphapulse_owner/);
    expect(owner.fix).toMatch(
      /^REVOKE ALL ON tenancy_private.context_keys FROM tenant_ab_login, PUBLIC; REVOKE alphapulse_owner FROM tenant_ab_login; then rotate/,
    );
    expect(checkKeyTableAccess([])).toEqual([]);
  });
});
