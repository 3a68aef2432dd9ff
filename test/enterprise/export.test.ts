import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { graduateTenant } from "../../lib/enterprise/graduation";
import { SHARED_SCHEMA } from "../../lib/schema/planner";
import { dedicatedSchemaName, type Tenant } from "../../lib/tenant/model";
import { exportTenant } from "../../lib/enterprise/export";
import { CorruptExportError, recordText, verifyExportFile } from "../../lib/enterprise/export-file";
import { ImportConflictError, importTenant } from "../../lib/enterprise/import";
import { eraseTenant, findTenant, listTenants, ResidencyMismatchError, TenantExistsError } from "../../lib/tenant/registry";
import { readExportKeys } from "../../lib/enterprise/export-key";
import { checksums, migratedDatabase, seededTenant, TEST_CONTEXT_KEYS, type EnterpriseDb } from "./helpers";

let env: EnterpriseDb;
let dir: string;
let bystander: Tenant;
let bystanderBefore: Record<string, string>;

beforeAll(async () => {
  env = await migratedDatabase("eu");
  dir = mkdtempSync(path.join(os.tmpdir(), "tenant-export-"));
  bystander = await seededTenant(env.admin, "bystander", 120, "pro");
  bystanderBefore = await checksums(env.admin, bystander.id, SHARED_SCHEMA);
});

afterAll(async () => {
  expect(await checksums(env.admin, bystander.id, SHARED_SCHEMA)).toEqual(bystanderBefore);
  await env.close();
  rmSync(dir, { recursive: true, force: true });
});

const file = (name: string) => path.join(dir, name);

/** Awkward values for the text format and the checksum: quotes, commas, parens, backslashes, spaces, empty, NULL, unicode. */
async function addAwkwardTrades(tenant: Tenant, schema = SHARED_SCHEMA) {
  const ids = ['a "quoted", (parenthesised) \\ value', " leading space", "", "tab\there", "ünïcødé ✓", "new\nline"];
  for (const [i, id] of ids.entries()) {
    await env.admin.query(
      `INSERT INTO ${schema}.trades (tenant_id, symbol, side, quantity, price, venue, client_order_id) VALUES ($1, $2, 'buy', 1.5, 100.12345678, $3, $4)`,
      [tenant.id, `S${i}`, id === "" ? "x" : id, i === 0 ? null : `awkward-${i}-${id}`],
    );
  }
}

describe("recordText (PostgreSQL's record_out, for the checksum in JavaScript)", () => {
  it.each([
    [["a", "b"], "(a,b)"],
    [[null, "x"], "(,x)"],
    [[""], '("")'],
    [['say "hi"'], '("say ""hi""")'],
    [["a,b"], '("a,b")'],
    [["back\\slash"], '("back\\\\slash")'],
    [["(x)"], '("(x)")'],
    [["two words"], '("two words")'],
    [["ünï"], "(ünï)"],
  ])("%j → %s", (values, text) => {
    expect(recordText(values)).toBe(text);
  });

  it("agrees with PostgreSQL on the same values", async () => {
    const values = ['a "b", (c) \\ d', "", null, " x", "ünï\tz"];
    const { rows } = await env.admin.query(`SELECT ROW($1::text, $2::text, $3::text, $4::text, $5::text)::text AS t`, values);
    expect(recordText(values)).toBe(rows[0].t);
  });
});

describe("export and import", () => {
  it("round trip: export, offboard, import → the same tenant with the same rows (checksums equal)", async () => {
    const t = await seededTenant(env.admin, "round-trip", 200);
    await addAwkwardTrades(t);
    const before = await checksums(env.admin, t.id, SHARED_SCHEMA);
    const exported = await exportTenant(env.admin, t.slug, file("round-trip.jsonl"));
    expect(exported.rows).toBe(Object.values(before).reduce((n, c) => n + Number(c.split(":")[0]), 0));
    expect(Object.fromEntries(exported.tables.map((s) => [s.table, `${s.rows}:${s.checksum}`]))).toEqual(before);

    const checked = await verifyExportFile(file("round-trip.jsonl"), { keys: await readExportKeys(env.admin) });
    expect(checked.header).toMatchObject({
      format: "alphapulse-tenant-export",
      version: 2,
      region: "eu",
      tenant: { id: t.id, slug: "round-trip" },
      signature: { alg: "HMAC-SHA256", kid: TEST_CONTEXT_KEYS.eu.kid, key: "alphapulse-export-v2" },
    });
    expect(checked.authenticity).toEqual({ signed: true, kid: TEST_CONTEXT_KEYS.eu.kid, keyState: "active" });

    await eraseTenant(env.admin, t.slug);
    const imported = await importTenant(env.admin, file("round-trip.jsonl"));
    expect(imported.tenant).toMatchObject({ id: t.id, slug: "round-trip", created: true, schema: SHARED_SCHEMA });
    expect(imported.tables.every((x) => x.verified === "checksum")).toBe(true);
    expect(await checksums(env.admin, t.id, SHARED_SCHEMA)).toEqual(before);
  });

  it("exports a dedicated tenant (gzip) and imports it --as a new tenant: new id, same content, foreign keys within the new tenant", async () => {
    const t = await seededTenant(env.admin, "dedicated-one", 150);
    await graduateTenant(env.admin, t.slug);
    const source = dedicatedSchemaName(t.id);
    await addAwkwardTrades(t, source);
    const before = await checksums(env.admin, t.id, source);
    const exported = await exportTenant(env.admin, t.slug, file("dedicated.jsonl.gz"));
    expect(exported.tenant.placement).toBe("dedicated");
    expect(
      gunzipSync(readFileSync(file("dedicated.jsonl.gz")))
        .toString()
        .split("\n")[0],
    ).toContain('"format":"alphapulse-tenant-export"');

    const imported = await importTenant(env.admin, file("dedicated.jsonl.gz"), { as: "dedicated-copy" });
    expect(imported.tenant.id).not.toBe(t.id);
    expect(imported.tenant).toMatchObject({ slug: "dedicated-copy", created: true, schema: SHARED_SCHEMA });
    // Content checksums leave tenant_id out, so the copy verifies against the source.
    expect(await checksums(env.admin, imported.tenant.id, SHARED_SCHEMA)).toEqual(before);
    expect(await checksums(env.admin, t.id, source)).toEqual(before);
    const { rows } = await env.admin.query(
      `SELECT count(*)::int AS linked, count(p.id)::int AS resolved FROM shared.trades tr
         LEFT JOIN shared.positions p ON p.tenant_id = tr.tenant_id AND p.id = tr.position_id
        WHERE tr.tenant_id = $1 AND tr.position_id IS NOT NULL`,
      [imported.tenant.id],
    );
    expect(rows[0].linked).toBeGreaterThan(0);
    expect(rows[0].resolved).toBe(rows[0].linked);
    // No row of the file went anywhere else.
    const { rows: stray } = await env.admin.query(`SELECT count(*)::int AS n FROM shared.trades WHERE tenant_id NOT IN ($1, $2)`, [
      imported.tenant.id,
      bystander.id,
    ]);
    const others = (await listTenants(env.admin)).filter(
      (x) => x.placement === "shared" && x.id !== imported.tenant.id && x.id !== bystander.id,
    );
    expect(stray[0].n).toBe(
      (await Promise.all(others.map((o) => checksums(env.admin, o.id, SHARED_SCHEMA)))).reduce(
        (n, c) => n + Number(c.trades.split(":")[0]),
        0,
      ),
    );
  });

  it("refuses to import into a tenant that has rows, and --as a slug that exists", async () => {
    const t = await seededTenant(env.admin, "occupied", 20);
    await exportTenant(env.admin, t.slug, file("occupied.jsonl"));
    await expect(importTenant(env.admin, file("occupied.jsonl"))).rejects.toThrow(ImportConflictError);
    await expect(importTenant(env.admin, file("occupied.jsonl"), { as: "bystander" })).rejects.toThrow(TenantExistsError);
  });

  it("replaces a tenant's rows with the file's (the restore path), holding only that tenant", async () => {
    const t = await seededTenant(env.admin, "restore-me", 50);
    const before = await checksums(env.admin, t.id, SHARED_SCHEMA);
    await exportTenant(env.admin, t.slug, file("restore.jsonl"));
    await env.admin.query(`DELETE FROM shared.trades WHERE tenant_id = $1 AND symbol = 'AAPL'`, [t.id]);
    await env.admin.query(`UPDATE shared.positions SET quantity = 0 WHERE tenant_id = $1`, [t.id]);
    const report = await importTenant(env.admin, file("restore.jsonl"), { replace: true, tenant: t.slug });
    expect(report.replacedRows).toBeGreaterThan(0);
    expect(await checksums(env.admin, t.id, SHARED_SCHEMA)).toEqual(before);
  });

  it("refuses a file from another residency region and writes nothing", async () => {
    const us = await migratedDatabase("us");
    try {
      const yankee = await seededTenant(us.admin, "yankee", 10, "enterprise", "us");
      await exportTenant(us.admin, yankee.slug, file("us.jsonl"));
      const tenantsBefore = (await listTenants(env.admin)).length;
      await expect(importTenant(env.admin, file("us.jsonl"))).rejects.toThrow(ResidencyMismatchError);
      await expect(importTenant(env.admin, file("us.jsonl"), { as: "yankee-eu" })).rejects.toThrow(
        /residency region "us"; this database serves "eu"/,
      );
      expect((await listTenants(env.admin)).length).toBe(tenantsBefore);
      // Negative control: the same file imports into a US database.
      const us2 = await migratedDatabase("us");
      try {
        expect((await importTenant(us2.admin, file("us.jsonl"))).rows).toBeGreaterThan(0);
      } finally {
        await us2.close();
      }
    } finally {
      await us.close();
    }
  });

  describe("corrupted files are refused before anything is written", () => {
    let lines: string[];
    let t: Tenant;
    beforeAll(async () => {
      t = await seededTenant(env.admin, "fragile", 40);
      await exportTenant(env.admin, t.slug, file("fragile.jsonl"));
      lines = readFileSync(file("fragile.jsonl"), "utf8").split("\n");
      await eraseTenant(env.admin, t.slug);
    });
    const rowLine = () => lines.findIndex((l) => l.startsWith('["'));
    const sha = (text: string) => createHash("sha256").update(text).digest("hex");

    it.each([
      [
        "one changed character in a row",
        (ls: string[]) => ls.map((l, i) => (i === rowLine() ? l.replace(/\d/, (d) => String((Number(d) + 1) % 10)) : l)),
        /sha256 of the rows/,
      ],
      ["a truncated file", (ls: string[]) => ls.slice(0, -3), /truncated/],
      [
        "a header edited to another region",
        (ls: string[]) => [ls[0].replaceAll('"region":"eu"', '"region":"us"'), ...ls.slice(1)],
        /sha256 does not match|regions? .*differ|residency/,
      ],
      [
        "an unknown format version",
        (ls: string[]) => [ls[0].replace('"version":2', '"version":3'), ...ls.slice(1)],
        /version 3 is not supported/,
      ],
      ["not an export at all", () => ['{"hello":"world"}'], /not an alphapulse-tenant-export header/],
      ["not JSON", () => ["hello"], /line 1 is not JSON/],
      ["a damaged gzip stream", null, /not a valid tenant export/],
    ] as const)("%s", async (_name, mutate, message) => {
      const target = file(mutate ? "mutated.jsonl" : "mutated.jsonl.gz");
      if (mutate) writeFileSync(target, mutate(lines).join("\n"));
      else writeFileSync(target, Buffer.concat([Buffer.from([0x1f, 0x8b, 0x08, 0x00]), Buffer.from("garbage garbage garbage")]));
      const err = await importTenant(env.admin, target).catch((e) => e);
      expect(err.message).toMatch(message);
      expect(err instanceof CorruptExportError || err instanceof ResidencyMismatchError).toBe(true);
      expect(await findTenant(env.admin, "fragile")).toBeUndefined();
    });

    it("a row dropped and every sha256 recomputed is still refused: the content checksum came from the source database", async () => {
      const drop = rowLine();
      const kept = lines.filter((_l, i) => i !== drop);
      // Rewrite the table end (rows, sha256) and the trailer (sha256) as a careful forger would.
      let table = "";
      let tableText = "";
      const out: string[] = [];
      for (const line of kept) {
        if (line === "") continue;
        const v = JSON.parse(line);
        if (v.table) {
          table = v.table;
          tableText = "";
        } else if (Array.isArray(v)) tableText += line + "\n";
        else if (v.end === table) {
          const rows = tableText.split("\n").filter(Boolean).length;
          out.push(JSON.stringify({ ...v, rows, sha256: sha(tableText) }));
          continue;
        } else if (v.trailer) {
          const ends = out.filter((l) => l.startsWith('{"end"')).map((l) => JSON.parse(l));
          const tables = Object.fromEntries(ends.map((e) => [e.end, { rows: e.rows, checksum: e.checksum }]));
          out.push(JSON.stringify({ ...v, tables, sha256: sha(out.map((l) => l + "\n").join("")) }));
          continue;
        }
        out.push(line);
      }
      writeFileSync(file("forged.jsonl"), out.join("\n") + "\n");
      const err = await importTenant(env.admin, file("forged.jsonl")).catch((e) => e);
      expect(err).toBeInstanceOf(CorruptExportError);
      expect(err.message).toMatch(/content checksum does not match/);
      expect(await findTenant(env.admin, "fragile")).toBeUndefined();
      // Negative control: the untouched file imports.
      writeFileSync(file("intact.jsonl"), lines.join("\n"));
      expect((await importTenant(env.admin, file("intact.jsonl"))).tenant.id).toBe(t.id);
    });
  });
});
