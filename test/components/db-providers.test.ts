/**
 * The dynamic providers of components/db called directly against a real PostgreSQL cluster (their
 * own, because Database.delete drops the cluster-wide roles when nothing uses them any more), and
 * their serialization checked the way the engine does it. The same providers run through the real
 * engine in test/e2e/local-stack.test.ts.
 */
import * as pulumi from "@pulumi/pulumi";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { withConnection } from "../../lib/db/client";
import { unsafeSql } from "../../lib/db/sql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TENANT_TABLES } from "../../lib/schema/catalogue";
import { THROWAWAY_SETTINGS, startPostgres, type PostgresServer } from "../../lib/local/postgres-server";
import { REPO_ROOT } from "../../lib/pulumi/env";
import { ROLES } from "../../lib/schema/roles";
import { databaseProvider } from "../../components/db/database";
import { databaseSchemaProvider, schemaFingerprint } from "../../components/db/database-schema";
import { tenantProvider } from "../../components/db/tenant";
import { departedSlugs, tenantRosterProvider } from "../../components/db/tenant-roster";

async function rows<R = Record<string, unknown>>(url: string, text: string, params: unknown[] = []): Promise<R[]> {
  return withConnection(url, async (c) => (await c.query(text, params)).rows as R[]);
}

describe("components/db dynamic providers on a real cluster", () => {
  let cluster: PostgresServer;
  let connection: { host: string; port: number; user: string };
  beforeAll(async () => {
    cluster = await startPostgres({ settings: THROWAWAY_SETTINGS });
    connection = { host: "127.0.0.1", port: cluster.port, user: "postgres" };
  });
  afterAll(async () => cluster?.stop({ removeData: true, mode: "immediate" }));

  it("creates, diffs, updates and deletes a database, its schema and a tenant", async () => {
    const db = await databaseProvider.create({ connection, name: "providers_t" });
    expect(db.id).toBe(`127.0.0.1:${cluster.port}/providers_t`);
    await expect(databaseProvider.create({ connection, name: "providers_t" })).rejects.toThrow(/already exists/);

    const schemaInputs = {
      connection,
      database: "providers_t",
      databaseOid: db.outs.oid,
      region: "eu",
      catalogue: [...TENANT_TABLES],
      fingerprint: schemaFingerprint(TENANT_TABLES),
    };
    const schema = await databaseSchemaProvider.create(schemaInputs);
    expect(Object.keys(schema.outs.passwords).sort()).toEqual(["app", "migrator", "readonly"]);
    expect(await databaseSchemaProvider.diff!(schema.id, schema.outs, schemaInputs)).toEqual({ changes: false, replaces: [] });
    // A catalogue change is an update (a migration), not a replacement.
    const extended = TENANT_TABLES.map((t) =>
      t.name === "trades" ? { ...t, columns: [...t.columns, { name: "note", type: unsafeSql("text"), nullable: true }] } : t,
    );
    const changed = { ...schemaInputs, catalogue: extended, fingerprint: schemaFingerprint(extended) };
    expect(await databaseSchemaProvider.diff!(schema.id, schema.outs, changed)).toEqual({ changes: true, replaces: [] });
    const updated = await databaseSchemaProvider.update!(schema.id, schema.outs, changed);
    expect(updated.outs!.passwords).toEqual(schema.outs.passwords);
    expect(
      await rows(
        cluster.urlFor("providers_t"),
        "SELECT 1 FROM information_schema.columns WHERE table_name = 'trades' AND column_name = 'note'",
      ),
    ).toHaveLength(1);
    // Read finds no drift after the update, and reports drift when the database is behind.
    expect((await databaseSchemaProvider.read!(schema.id, updated.outs)).props.appliedFingerprint).toBe(changed.fingerprint);
    await rows(cluster.urlFor("providers_t"), "ALTER TABLE shared.trades NO FORCE ROW LEVEL SECURITY");
    expect((await databaseSchemaProvider.read!(schema.id, updated.outs)).props.appliedFingerprint).toBe("drift");
    await databaseSchemaProvider.update!(schema.id, updated.outs, changed);

    const tenantInputs = {
      connection,
      database: "providers_t",
      databaseOid: db.outs.oid,
      slug: "gamma-fund",
      tier: "starter",
      region: "eu",
    };
    const tenant = await tenantProvider.create(tenantInputs);
    expect(tenant.outs.tenantId).toBe(tenant.id);
    await expect(tenantProvider.create({ ...tenantInputs, slug: "delta-fund", region: "us" })).rejects.toThrow(/region/);
    expect(await tenantProvider.diff!(tenant.id, tenant.outs, tenantInputs)).toMatchObject({ changes: false, replaces: [] });
    expect(await tenantProvider.diff!(tenant.id, tenant.outs, { ...tenantInputs, tier: "pro" })).toMatchObject({
      changes: true,
      replaces: [],
    });
    // A slug change is a rename in place: same id, no replacement.
    expect(await tenantProvider.diff!(tenant.id, tenant.outs, { ...tenantInputs, slug: "gamma-two" })).toMatchObject({
      changes: true,
      replaces: [],
    });
    // A region or server change of an existing tenant fails its check (the preview), naming why.
    const moved = await tenantProvider.check!(tenantInputs, { ...tenantInputs, region: "us" });
    expect(moved.failures).toEqual([{ property: "region", reason: expect.stringMatching(/residency.*tenancy tenant delete gamma-fund/) }]);
    const elsewhere = await tenantProvider.check!(tenantInputs, { ...tenantInputs, connection: { ...connection, host: "10.1.2.3" } });
    expect(elsewhere.failures).toEqual([
      { property: "connection", reason: expect.stringMatching(/does not move a tenant between servers/) },
    ]);
    // Loopback spellings are one server: an update, not a refusal.
    expect(
      (await tenantProvider.check!(tenantInputs, { ...tenantInputs, connection: { ...connection, host: "localhost" } })).failures,
    ).toEqual([]);
    expect(await tenantProvider.check!({}, tenantInputs)).toEqual({ inputs: tenantInputs, failures: [] });

    const pro = await tenantProvider.update!(tenant.id, tenant.outs, { ...tenantInputs, tier: "pro" });
    expect(pro.outs!.tier).toBe("pro");
    const renamed = await tenantProvider.update!(tenant.id, pro.outs, { ...tenantInputs, tier: "pro", slug: "gamma-two" });
    expect(renamed.outs).toMatchObject({ slug: "gamma-two", tenantId: tenant.id, dataSafety: 1 });
    expect(await rows(cluster.urlFor("providers_t"), "SELECT id, slug FROM tenancy.tenants")).toEqual([
      { id: tenant.id, slug: "gamma-two" },
    ]);

    // Delete never deletes a served tenant: refused with the command; released once offboarded.
    await expect(tenantProvider.delete!(tenant.id, renamed.outs)).rejects.toThrow(
      /never deletes a tenant's data.*tenancy tenant delete gamma-two/,
    );
    // The database refuses its drop while a tenant is registered.
    await expect(databaseProvider.delete!(db.id, db.outs)).rejects.toThrow(/still holds 1 tenant\(s\): gamma-two \(active\)/);
    await expect(databaseSchemaProvider.delete!(schema.id, updated.outs)).rejects.toThrow(/still holds 1 tenant/);
    await rows(
      cluster.urlFor("providers_t"),
      "UPDATE tenancy.tenants SET status = 'offboarded', offboarded_at = now(), purge_after = now() + interval '30 days'",
    );
    await tenantProvider.delete!(tenant.id, renamed.outs);
    expect(await rows(cluster.urlFor("providers_t"), "SELECT slug FROM tenancy.tenants")).toEqual([{ slug: "gamma-two" }]);
    await expect(databaseProvider.delete!(db.id, db.outs)).rejects.toThrow(/gamma-two \(offboarded, purge after/);
    await rows(cluster.urlFor("providers_t"), "DELETE FROM tenancy.tenants");
    await tenantProvider.delete!(tenant.id, renamed.outs); // gone: fine
    expect((await tenantProvider.read!(tenant.id, renamed.outs)).id).toBe("");

    await databaseSchemaProvider.delete!(schema.id, updated.outs);
    await databaseProvider.delete!(db.id, db.outs);
    expect(await rows(cluster.adminUrl, "SELECT 1 FROM pg_database WHERE datname = 'providers_t'")).toHaveLength(0);
    expect(await rows(cluster.adminUrl, "SELECT rolname FROM pg_roles WHERE rolname = ANY($1)", [Object.values(ROLES)])).toEqual([]);
    expect((await databaseProvider.read!(db.id, db.outs)).id).toBe("");
    // Resources inside a dropped database delete cleanly.
    await tenantProvider.delete!(tenant.id, renamed.outs);
  });

  it("refuses a database rename or a move to another server in check; a loopback spelling is an update", async () => {
    const inputs = { connection, name: "providers_x" };
    expect((await databaseProvider.check!(inputs, { ...inputs, name: "providers_y" })).failures).toEqual([
      { property: "name", reason: expect.stringMatching(/would drop it with its tenants' data/) },
    ]);
    expect((await databaseProvider.check!(inputs, { ...inputs, connection: { ...connection, port: 1 } })).failures).toHaveLength(1);
    const spelled = { ...inputs, connection: { ...connection, host: "localhost" } };
    expect((await databaseProvider.check!(inputs, spelled)).failures).toEqual([]);
    const outs = { ...inputs, oid: 1, dataSafety: 1 };
    expect(await databaseProvider.diff!("id", outs, spelled)).toEqual({ changes: true, replaces: [] });
    expect(await databaseProvider.diff!("id", outs, inputs)).toEqual({ changes: false, replaces: [] });
    // Outputs written by older code (no dataSafety) are a change: the update rewrites the code the state keeps.
    expect(await databaseProvider.diff!("id", { ...inputs, oid: 1 }, inputs)).toEqual({ changes: true, replaces: [] });
  });

  it("keeps a role that another database still uses when a database is deleted", async () => {
    const inputs = (name: string, oid: number) => ({
      connection,
      database: name,
      databaseOid: oid,
      region: "eu",
      catalogue: [...TENANT_TABLES],
      fingerprint: "x",
    });
    const a = await databaseProvider.create({ connection, name: "keep_a" });
    const b = await databaseProvider.create({ connection, name: "keep_b" });
    await databaseSchemaProvider.create(inputs("keep_a", a.outs.oid));
    await databaseSchemaProvider.create(inputs("keep_b", b.outs.oid));
    await databaseProvider.delete!(a.id, a.outs);
    const left = await rows<{ rolname: string }>(cluster.adminUrl, "SELECT rolname FROM pg_roles WHERE rolname = ANY($1) ORDER BY 1", [
      Object.values(ROLES),
    ]);
    expect(left.map((r) => r.rolname)).toContain(ROLES.app);
    await databaseProvider.delete!(b.id, b.outs);
    expect(await rows(cluster.adminUrl, "SELECT rolname FROM pg_roles WHERE rolname = ANY($1)", [Object.values(ROLES)])).toEqual([]);
  });
});

describe("TenantRoster departedSlugs", () => {
  it.each([
    [[{ slug: "a-1" }, { slug: "b-1" }], [{ slug: "a-1" }, { slug: "b-1" }], []],
    [[{ slug: "a-1" }, { slug: "b-1" }], [{ slug: "a-1" }], ["b-1"]],
    [[{ slug: "a-1" }, { slug: "b-1" }], [{ slug: "a-1" }, { slug: "b-2" }], ["b-1"]],
    [[{ slug: "a-1" }, { slug: "b-1" }], [{ slug: "a-1" }, { slug: "b-2", renamedFrom: "b-1" }], []],
    [[{ slug: "b-2", renamedFrom: "b-1" }], [{ slug: "b-2" }], []],
    [[], [{ slug: "c-1" }], []],
  ])("%j -> %j departs %j", (olds, news, departed) => {
    expect(departedSlugs(olds, news)).toEqual(departed);
  });
});

describe("components/db provider serialization", () => {
  const providers = { databaseProvider, databaseSchemaProvider, tenantProvider, tenantRosterProvider };

  it.each(Object.entries(providers))("%s serializes without capturing the data layer", async (_name, provider) => {
    const serialized = await pulumi.runtime.serializeFunction(() => provider);
    expect(serialized.text).toContain('require("pg")');
    expect(serialized.text).toContain("tsx/cjs/api");
    expect(serialized.text).not.toMatch(/ZodObject|TENANT_TABLES|MIGRATIONS/);
  });

  it("runs in a plain Node process from its serialized text, as the provider host does", async () => {
    const serialized = await pulumi.runtime.serializeFunction(() => tenantProvider);
    const dir = mkdtempSync(path.join(os.tmpdir(), "alphapulse-serialized-"));
    try {
      const file = path.join(dir, "provider.js");
      writeFileSync(file, serialized.text);
      const olds = { connection: { host: "h", port: 1, user: "u" }, database: "d", databaseOid: 1, slug: "s-1", tier: "pro", region: "eu" };
      const script = `const p = require(${JSON.stringify(file)}).${serialized.exportName}();
        p.diff("id", ${JSON.stringify(olds)}, ${JSON.stringify({ ...olds, region: "us" })}).then((d) => console.log(JSON.stringify(d)));`;
      const out = execFileSync(process.execPath, ["-e", script], { cwd: REPO_ROOT, encoding: "utf8" });
      // A region change replaces nothing (check refuses it before diff runs in the engine).
      expect(JSON.parse(out)).toEqual({ changes: true, replaces: [], deleteBeforeReplace: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
