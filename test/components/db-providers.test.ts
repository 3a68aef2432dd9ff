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
    expect(await tenantProvider.diff!(tenant.id, tenant.outs, { ...tenantInputs, slug: "gamma-two" })).toMatchObject({
      changes: true,
      replaces: ["slug"],
    });
    const pro = await tenantProvider.update!(tenant.id, tenant.outs, { ...tenantInputs, tier: "pro" });
    expect(pro.outs!.tier).toBe("pro");
    await tenantProvider.delete!(tenant.id, pro.outs);
    await tenantProvider.delete!(tenant.id, pro.outs); // already gone: still fine
    expect((await tenantProvider.read!(tenant.id, pro.outs)).id).toBe("");

    await databaseProvider.delete!(db.id, db.outs);
    expect(await rows(cluster.adminUrl, "SELECT 1 FROM pg_database WHERE datname = 'providers_t'")).toHaveLength(0);
    expect(await rows(cluster.adminUrl, "SELECT rolname FROM pg_roles WHERE rolname = ANY($1)", [Object.values(ROLES)])).toEqual([]);
    expect((await databaseProvider.read!(db.id, db.outs)).id).toBe("");
    // Resources inside a dropped database delete cleanly.
    await tenantProvider.delete!(tenant.id, pro.outs);
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

describe("components/db provider serialization", () => {
  const providers = { databaseProvider, databaseSchemaProvider, tenantProvider };

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
      expect(JSON.parse(out)).toEqual({ changes: true, replaces: ["region"], deleteBeforeReplace: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
