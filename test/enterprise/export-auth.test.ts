/**
 * Authenticated exports (issue 18, finding 4): an operator handed a crafted file must not be able to
 * overwrite the wrong tenant. Each attack is paired with its negative control — the same file with
 * the MAC check out of the way (an unsigned file, accepted with allowUnsigned) does the damage — so
 * the tests prove it is the MAC, and the named target, that stop it.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exportTenant } from "../../lib/enterprise/export";
import { UnauthenticatedExportError } from "../../lib/enterprise/export-file";
import {
  EXPORT_KEY_LABEL,
  ExportKeyMissingError,
  exportKeyFromSecret,
  exportKeysQuery,
  readExportKeys,
} from "../../lib/enterprise/export-key";
import { checkImportTarget, importTenant, ImportTargetError } from "../../lib/enterprise/import";
import { graduateTenant } from "../../lib/enterprise/graduation";
import { ensureTenantLoginRole, tenantLoginRoleName } from "../../lib/enterprise/dedicated";
import { SHARED_SCHEMA } from "../../lib/schema/planner";
import { installContextKey, retireContextKey } from "../../lib/tenant-context/keys";
import { generateContextSecret } from "../../lib/tenant-context/proof";
import type { Tenant } from "../../lib/tenant/model";
import { findTenant, requireTenant } from "../../lib/tenant/registry";
import {
  checksums,
  claimingTenant as as,
  forgeExport as forge,
  migratedDatabase,
  ROLES,
  seededTenant,
  TEST_CONTEXT_KEYS,
  unsignedHeader as unsigned,
  type Checksums,
  type EnterpriseDb,
} from "./helpers";

let env: EnterpriseDb;
let dir: string;
let alpha: Tenant;
let victim: Tenant;
let alphaRows: Checksums;
let victimRows: Checksums;

beforeAll(async () => {
  env = await migratedDatabase("eu");
  dir = mkdtempSync(path.join(os.tmpdir(), "export-auth-"));
  alpha = await seededTenant(env.admin, "alpha", 40);
  victim = await seededTenant(env.admin, "victim", 30);
  alphaRows = await checksums(env.admin, alpha.id, SHARED_SCHEMA);
  victimRows = await checksums(env.admin, victim.id, SHARED_SCHEMA);
  expect(victimRows).not.toEqual(alphaRows);
  // The victim's own export, taken before any attack, to undo the negative control.
  await exportTenant(env.admin, victim.slug, file("victim-original.jsonl"));
});

afterAll(async () => {
  await env?.close();
  rmSync(dir, { recursive: true, force: true });
});

const file = (name: string) => path.join(dir, name);
const lines = (name: string) => readFileSync(file(name), "utf8").split("\n").filter(Boolean);

describe("the export key is derived in the database from the region's context key", () => {
  it("HMAC-SHA256(context secret, label), computed in SQL from the stored pads, equals the same HMAC in JavaScript", async () => {
    const keys = await readExportKeys(env.admin);
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ kid: TEST_CONTEXT_KEYS.eu.kid, region: "eu", state: "active" });
    expect(keys[0].key.equals(exportKeyFromSecret(TEST_CONTEXT_KEYS.eu.secret))).toBe(true);
    // Not the context key itself: a leaked export key mints no tenant proof.
    expect(keys[0].key.equals(Buffer.from(TEST_CONTEXT_KEYS.eu.secret, "hex"))).toBe(false);
  });

  it("app_user, readonly and a dedicated tenant's login role can neither read the pads nor derive the key; the owner can (control)", async () => {
    const dedicated = await seededTenant(env.admin, "key-snoop", 5);
    await graduateTenant(env.admin, dedicated.slug);
    await ensureTenantLoginRole(env.admin, await requireTenant(env.admin, dedicated.id));
    const attempt = async (role: string, sql: string, params: unknown[] = []) => {
      await env.admin.query("BEGIN");
      try {
        await env.admin.query(`SET LOCAL ROLE ${role}`);
        return await env.admin.query(sql, params);
      } finally {
        await env.admin.query("ROLLBACK");
      }
    };
    for (const role of [ROLES.app, ROLES.readonly, tenantLoginRoleName(dedicated.id), ROLES.maintenance]) {
      await expect(attempt(role, exportKeysQuery(), [EXPORT_KEY_LABEL]), role).rejects.toMatchObject({ code: "42501" });
      await expect(attempt(role, `SELECT inner_pad FROM tenancy_private.context_keys`), role).rejects.toMatchObject({ code: "42501" });
    }
    const owner = await attempt(ROLES.owner, exportKeysQuery(), [EXPORT_KEY_LABEL]);
    expect(owner.rows).toHaveLength(1);
  });
});

describe("the issue's attack: an export of alpha, edited to claim the victim, imported with --replace", () => {
  beforeAll(async () => {
    await exportTenant(env.admin, alpha.slug, file("alpha.jsonl"));
  });

  it("header id and slug changed to the victim's, checksums recomputed → refused by the MAC; the victim's rows untouched", async () => {
    writeFileSync(file("forged-victim.jsonl"), forge(lines("alpha.jsonl"), { header: as(victim) }));
    const err = await importTenant(env.admin, file("forged-victim.jsonl"), { replace: true, tenant: victim.slug }).catch((e) => e);
    expect(err).toBeInstanceOf(UnauthenticatedExportError);
    expect(err.message).toMatch(/MAC does not verify with key "eu-test"/);
    expect(await checksums(env.admin, victim.id, SHARED_SCHEMA)).toEqual(victimRows);
  });

  it("negative control: the same forgery without a MAC, accepted as unsigned, replaces the victim's rows with alpha's", async () => {
    writeFileSync(file("forged-unsigned.jsonl"), forge(lines("alpha.jsonl"), { header: (h) => unsigned(as(victim)(h)) }, true));
    // Without --allow-unsigned the downgrade is refused too.
    await expect(importTenant(env.admin, file("forged-unsigned.jsonl"), { replace: true, tenant: victim.slug })).rejects.toThrow(
      /not signed.*--allow-unsigned/,
    );
    expect(await checksums(env.admin, victim.id, SHARED_SCHEMA)).toEqual(victimRows);
    const report = await importTenant(env.admin, file("forged-unsigned.jsonl"), {
      replace: true,
      tenant: victim.slug,
      allowUnsigned: true,
    });
    expect(report.tenant.id).toBe(victim.id);
    expect(await checksums(env.admin, victim.id, SHARED_SCHEMA)).toEqual(alphaRows); // the damage
    await restoreVictim();
  });

  it("only the header id changed (the issue's exact edit): the target no longer follows the id — refused whichever tenant is named", async () => {
    const edited = forge(lines("alpha.jsonl"), { header: (h) => unsigned(as(victim, ["id"])(h)) }, true);
    writeFileSync(file("id-only.jsonl"), edited);
    // Even accepted as unsigned (no MAC to stop it), the header's slug and id name different tenants here.
    for (const tenant of [alpha.slug, victim.slug, victim.id, alpha.id]) {
      const err = await importTenant(env.admin, file("id-only.jsonl"), { replace: true, tenant, allowUnsigned: true }).catch((e) => e);
      expect(err, tenant).toBeInstanceOf(ImportTargetError);
    }
    // Without a replace (into an empty tenant) too: the id no longer picks the target alone.
    await expect(importTenant(env.admin, file("id-only.jsonl"), { allowUnsigned: true })).rejects.toMatchObject({
      field: "tenant.slug",
    });
    expect(await checksums(env.admin, victim.id, SHARED_SCHEMA)).toEqual(victimRows);
    expect(await checksums(env.admin, alpha.id, SHARED_SCHEMA)).toEqual(alphaRows);
  });

  it("a genuine export of alpha replaces only alpha, and only when --tenant names alpha", async () => {
    await expect(importTenant(env.admin, file("alpha.jsonl"), { replace: true })).rejects.toMatchObject({ field: "tenant" });
    await expect(importTenant(env.admin, file("alpha.jsonl"), { replace: true, tenant: victim.slug })).rejects.toMatchObject({
      field: "tenant",
      message: expect.stringMatching(/export of alpha .*not of "victim"/),
    });
    expect(await checksums(env.admin, victim.id, SHARED_SCHEMA)).toEqual(victimRows);
    // Control: named correctly (slug or id), it restores alpha.
    await env.admin.query(`DELETE FROM shared.trades WHERE tenant_id = $1 AND symbol = 'AAPL'`, [alpha.id]);
    const report = await importTenant(env.admin, file("alpha.jsonl"), { replace: true, tenant: alpha.id });
    expect(report.authenticity).toEqual({ signed: true, kid: "eu-test", keyState: "active" });
    expect(await checksums(env.admin, alpha.id, SHARED_SCHEMA)).toEqual(alphaRows);
  });

  it("a row edited and every checksum recomputed → refused by the MAC; control: the same edit unsigned is accepted", async () => {
    const editRow = (table: string, r: (string | null)[]) =>
      table === "positions" ? r.map((v) => (v !== null && /^\d+\.\d+$/.test(v) ? "999999.00000000" : v)) : r;
    writeFileSync(file("edited-row.jsonl"), forge(lines("alpha.jsonl"), { row: editRow }));
    const err = await importTenant(env.admin, file("edited-row.jsonl"), { replace: true, tenant: alpha.slug }).catch((e) => e);
    expect(err).toBeInstanceOf(UnauthenticatedExportError);
    expect(await checksums(env.admin, alpha.id, SHARED_SCHEMA)).toEqual(alphaRows);
    // Control: checksums alone do not catch it.
    writeFileSync(file("edited-row-unsigned.jsonl"), forge(lines("alpha.jsonl"), { header: unsigned, row: editRow }, true));
    await importTenant(env.admin, file("edited-row-unsigned.jsonl"), { replace: true, tenant: alpha.slug, allowUnsigned: true });
    expect(await checksums(env.admin, alpha.id, SHARED_SCHEMA)).not.toEqual(alphaRows);
    await importTenant(env.admin, file("alpha.jsonl"), { replace: true, tenant: alpha.slug });
    expect(await checksums(env.admin, alpha.id, SHARED_SCHEMA)).toEqual(alphaRows);
  });

  it("the file swapped between the check and the write: the second pass's MAC fails and the transaction rolls back", async () => {
    const swapped = forge(lines("alpha.jsonl"), {
      row: (table, r) => (table === "positions" ? r.map((v) => (v !== null && /^\d+\.\d+$/.test(v) ? "1.00000000" : v)) : r),
    });
    writeFileSync(file("swap.jsonl"), readFileSync(file("alpha.jsonl")));
    const swapAfterCheck = (m: string) => {
      if (m.startsWith("checked ")) writeFileSync(file("swap.jsonl"), swapped);
    };
    const err = await importTenant(env.admin, file("swap.jsonl"), { replace: true, tenant: alpha.slug, onProgress: swapAfterCheck }).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(UnauthenticatedExportError);
    expect(await checksums(env.admin, alpha.id, SHARED_SCHEMA)).toEqual(alphaRows);
  });

  it("a signed file with its MAC line cut off, or a MAC of another key with the same kid, is refused", async () => {
    writeFileSync(file("no-mac.jsonl"), lines("alpha.jsonl").slice(0, -1).join("\n") + "\n");
    await expect(importTenant(env.admin, file("no-mac.jsonl"), { replace: true, tenant: alpha.slug })).rejects.toThrow(/no MAC line/);
    // Same kid and region, another secret: another database's key (or a guess).
    const other = await migratedDatabase("eu", undefined, 16_384, { ...TEST_CONTEXT_KEYS.eu, secret: generateContextSecret() });
    try {
      const t = await seededTenant(other.admin, "elsewhere", 5);
      await exportTenant(other.admin, t.slug, file("elsewhere.jsonl"));
      await expect(importTenant(env.admin, file("elsewhere.jsonl"))).rejects.toThrow(/MAC does not verify/);
      expect(await findTenant(env.admin, "elsewhere")).toBeUndefined();
    } finally {
      await other.close();
    }
  });
});

describe("keys: missing, rotated, retired", () => {
  it("a database without a key refuses to export unless allowUnsigned; the unsigned file imports only with allowUnsigned", async () => {
    const bare = await migratedDatabase("eu", undefined, 16_384, false);
    try {
      const t = await seededTenant(bare.admin, "keyless", 5);
      const err = await exportTenant(bare.admin, t.slug, file("keyless.jsonl")).catch((e) => e);
      expect(err).toBeInstanceOf(ExportKeyMissingError);
      expect(err.message).toMatch(/tenancy context-key install <kid> --region eu/);
      expect(() => readFileSync(file("keyless.jsonl"))).toThrow(); // nothing written, no .partial either
      expect(() => readFileSync(file("keyless.jsonl.partial"))).toThrow();
      const report = await exportTenant(bare.admin, t.slug, file("keyless.jsonl"), { allowUnsigned: true });
      expect(report.signedWith).toBeNull();
      expect(JSON.parse(lines("keyless.jsonl")[0]).signature).toBeNull();
      await expect(importTenant(env.admin, file("keyless.jsonl"))).rejects.toThrow(/not signed.*--allow-unsigned/);
      expect(await findTenant(env.admin, "keyless")).toBeUndefined();
      expect((await importTenant(env.admin, file("keyless.jsonl"), { allowUnsigned: true })).authenticity).toEqual({ signed: false });
    } finally {
      await bare.close();
    }
  });

  it("a version 1 file (no MAC) is refused unless allowUnsigned", async () => {
    const t = await seededTenant(env.admin, "old-format", 5);
    await exportTenant(env.admin, t.slug, file("v2.jsonl"));
    const v1 = forge(
      lines("v2.jsonl"),
      {
        header: (h) => {
          const rest: Record<string, unknown> = { ...h, version: 1 };
          delete rest.signature;
          return rest;
        },
      },
      true,
    );
    writeFileSync(file("v1.jsonl"), v1);
    await env.admin.query(`DELETE FROM shared.trades WHERE tenant_id = $1`, [t.id]);
    await expect(importTenant(env.admin, file("v1.jsonl"), { replace: true, tenant: t.slug })).rejects.toThrow(
      /version 1 export, which carries no MAC.*--allow-unsigned/,
    );
    const report = await importTenant(env.admin, file("v1.jsonl"), { replace: true, tenant: t.slug, allowUnsigned: true });
    expect(report.source.version).toBe(1);
    expect(report.authenticity).toEqual({ signed: false });
  });

  it("rotation: new exports use the newest key; a retired key verifies old exports only with allowRetiredKey", async () => {
    const db = await migratedDatabase("us"); // its own region: the rotation does not disturb the other tests' key
    try {
      const t = await seededTenant(db.admin, "rotating", 10, "enterprise", "us");
      await exportTenant(db.admin, t.slug, file("before-rotation.jsonl"));
      await installContextKey(db.admin, { kid: "us-next", region: "us", secret: generateContextSecret() });
      expect((await exportTenant(db.admin, t.slug, file("after-rotation.jsonl"))).signedWith).toBe("us-next");
      expect(await retireContextKey(db.admin, TEST_CONTEXT_KEYS.us.kid)).toBe(true);
      await expect(importTenant(db.admin, file("before-rotation.jsonl"), { replace: true, tenant: t.slug })).rejects.toThrow(
        /key "us-test", which is retired here: .*--allow-retired-key/,
      );
      const old = await importTenant(db.admin, file("before-rotation.jsonl"), { replace: true, tenant: t.slug, allowRetiredKey: true });
      expect(old.authenticity).toEqual({ signed: true, kid: "us-test", keyState: "retired" });
      expect((await importTenant(db.admin, file("after-rotation.jsonl"), { replace: true, tenant: t.slug })).authenticity).toMatchObject({
        kid: "us-next",
      });
      // A key unknown here (never installed) is refused, naming the fix.
      await db.admin.query(`DELETE FROM tenancy_private.context_keys WHERE kid = 'us-next'`);
      await expect(importTenant(db.admin, file("after-rotation.jsonl"), { replace: true, tenant: t.slug })).rejects.toThrow(
        /key "us-next", which is not installed in this database: .*tenancy context-key install us-next --region us/,
      );
    } finally {
      await db.close();
    }
  });
});

describe("checkImportTarget (pure)", () => {
  const header = { tenant: { id: "11111111-1111-4111-8111-111111111111", slug: "alpha" } } as Parameters<typeof checkImportTarget>[0];
  const alphaRow = { id: header.tenant.id, slug: "alpha" };
  const other = { id: "22222222-2222-4222-8222-222222222222", slug: "victim" };
  it.each<[string, Parameters<typeof checkImportTarget>[1], Parameters<typeof checkImportTarget>[2], string | null]>([
    ["replace without a named tenant", { replace: true }, { byId: alphaRow, bySlug: alphaRow }, "tenant"],
    ["replace naming the file's slug", { replace: true, tenant: "alpha" }, { byId: alphaRow, bySlug: alphaRow }, null],
    ["replace naming the file's id (any case)", { replace: true, tenant: header.tenant.id.toUpperCase() }, { byId: alphaRow }, null],
    ["replace naming another tenant", { replace: true, tenant: "victim" }, { byId: alphaRow, bySlug: alphaRow }, "tenant"],
    ["the header's id is another tenant's here", { tenant: "alpha" }, { byId: { ...other, id: header.tenant.id } }, "tenant.slug"],
    ["the header's slug is another tenant's here", {}, { bySlug: { ...other, slug: "alpha" } }, "tenant.id"],
    ["renamed since the export, accepted only by PITR", { acceptRenamed: true }, { byId: { id: header.tenant.id, slug: "alpha-2" } }, null],
    ["a new tenant (neither id nor slug here)", {}, {}, null],
  ])("%s", (_name, options, registry, field) => {
    let thrown: unknown;
    try {
      checkImportTarget(header, options, registry);
    } catch (err) {
      thrown = err;
    }
    if (field === null) expect(thrown).toBeUndefined();
    else expect(thrown).toMatchObject({ name: "ImportTargetError", field });
  });
});

/** Puts the victim's original rows back (they were replaced by the negative control). */
async function restoreVictim(): Promise<void> {
  await importTenant(env.admin, file("victim-original.jsonl"), { replace: true, tenant: victim.slug });
  expect(await checksums(env.admin, victim.id, SHARED_SCHEMA)).toEqual(victimRows);
}
