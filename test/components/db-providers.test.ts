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
import { tenantDataEffect, tenantProvider } from "../../components/db/tenant";
import { departedSlugs, tenantRosterProvider } from "../../components/db/tenant-roster";
import { dedicatedPlacementProvider } from "../../components/db/dedicated-placement";
import { tenantLoginRoleProvider } from "../../components/db/tenant-login-role";
import { objectMoveProblem } from "../../components/db/provider-checks";

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

  it("notices a recreated database by its oid instead of assuming: a wrong oid fails every check, a recreated one is replaced cleanly", async () => {
    const db = await databaseProvider.create({ connection, name: "providers_r" });
    const oid = db.outs.oid as number;
    const schemaInputs = {
      connection,
      database: "providers_r",
      databaseOid: oid,
      region: "eu",
      catalogue: [...TENANT_TABLES],
      fingerprint: schemaFingerprint(TENANT_TABLES),
    };
    const schema = await databaseSchemaProvider.create(schemaInputs);
    const tenantInputs = { connection, database: "providers_r", databaseOid: oid, slug: "rho-fund", tier: "enterprise", region: "eu" };
    const tenant = await tenantProvider.create(tenantInputs);
    const placementInputs = { connection, database: "providers_r", databaseOid: oid, tenantId: tenant.id };
    const roleInputs = { ...placementInputs, tier: "enterprise", schema: "tenant_x" };
    const checks: [string, pulumi.dynamic.ResourceProvider, Record<string, unknown>][] = [
      ["DatabaseSchema", databaseSchemaProvider, schemaInputs],
      ["Tenant", tenantProvider, tenantInputs],
      ["DedicatedPlacement", dedicatedPlacementProvider, placementInputs],
      ["TenantLoginRole", tenantLoginRoleProvider, roleInputs],
    ];
    const failuresWith = async (databaseOid: unknown) =>
      Object.fromEntries(
        await Promise.all(checks.map(async ([name, p, inputs]) => [name, (await p.check!(inputs, { ...inputs, databaseOid })).failures])),
      );

    // An oid that is not the database's (a stale or foreign platform output): every check refuses, naming both oids.
    const refused = {
      property: "databaseOid",
      reason: expect.stringMatching(
        new RegExp(`is oid ${oid}, but this stack is told it is ${oid + 100000} \\(it recorded ${oid}\\): it was not recreated`),
      ),
    };
    expect(await failuresWith(oid + 100000)).toEqual({
      DatabaseSchema: [refused],
      Tenant: [refused],
      DedicatedPlacement: [refused],
      TenantLoginRole: [refused],
    });
    // Unchanged, or not known yet in a preview (the database is being created): nothing to ask.
    const none = { DatabaseSchema: [], Tenant: [], DedicatedPlacement: [], TenantLoginRole: [] };
    expect(await failuresWith(oid)).toEqual(none);
    expect(await failuresWith("04da6b54-80e4-46f7-96ec-b56ff0331ba9")).toEqual(none);

    // The database is dropped and created again (a wiped cluster): its new oid passes, the design reads as gone.
    await rows(cluster.adminUrl, "DROP DATABASE providers_r WITH (FORCE)");
    await rows(cluster.adminUrl, "CREATE DATABASE providers_r");
    const [{ oid: newOid }] = await rows<{ oid: number }>(
      cluster.adminUrl,
      "SELECT oid::int FROM pg_database WHERE datname = 'providers_r'",
    );
    expect(await failuresWith(newOid)).toEqual(none);
    expect((await databaseSchemaProvider.read!(schema.id, schema.outs)).id).toBe("");

    // The replacement: the design and the tenant again in the new database, then the old halves deleted. They see
    // the new oid and keep or refuse nothing, although a served tenant is registered in the new database.
    const schema2 = await databaseSchemaProvider.create({ ...schemaInputs, databaseOid: newOid });
    const tenant2 = await tenantProvider.create({ ...tenantInputs, databaseOid: newOid });
    await tenantProvider.delete!(tenant.id, tenant.outs);
    await databaseSchemaProvider.delete!(schema.id, schema.outs);
    expect(await rows(cluster.urlFor("providers_r"), "SELECT slug, status FROM tenancy.tenants")).toEqual([
      { slug: "rho-fund", status: "active" },
    ]);
    // Negative control: the same deletes recorded with the current oid refuse (the tenant in it is served).
    await expect(databaseSchemaProvider.delete!(schema2.id, schema2.outs)).rejects.toThrow(/still holds 1 tenant/);
    await expect(tenantProvider.delete!(tenant2.id, tenant2.outs)).rejects.toThrow(/never deletes a tenant's data/);
    await rows(cluster.adminUrl, "DROP DATABASE providers_r WITH (FORCE)");
  });
});

describe("tenantDataEffect: what the preview says an accepted Tenant change does to the data", () => {
  const olds = {
    connection: { host: "127.0.0.1", port: 5432, user: "postgres" },
    database: "d",
    databaseOid: 7,
    slug: "acme-fund",
    tier: "pro" as const,
    region: "eu" as const,
  };
  it.each([
    ["a new tenant", {}, olds, undefined],
    ["nothing changed", olds, olds, undefined],
    ["another admin user", olds, { ...olds, connection: { ...olds.connection, user: "admin" } }, undefined],
    ["a rename", olds, { ...olds, slug: "acme-capital" }, /renamed in place "acme-fund" -> "acme-capital": same tenant id, every row kept/],
    ["a tier change", olds, { ...olds, tier: "starter" as const }, /^tier pro -> starter: new limits$/],
    ["becoming Enterprise", olds, { ...olds, tier: "enterprise" as const }, /graduates it: its rows move to its own schema/],
    ["leaving Enterprise", { ...olds, tier: "enterprise" as const }, olds, /demotes it: its rows move from its dedicated schema back/],
    ["a recreated database", olds, { ...olds, databaseOid: 8 }, /registered again in the recreated database "d"/],
  ])("%s", (_case, before, after, effect) => {
    const said = tenantDataEffect(before, after);
    if (effect === undefined) expect(said).toBeUndefined();
    else expect(said).toMatch(effect);
  });

  it("check adds it to the inputs (so the preview lists it), and only when the data is touched", async () => {
    expect((await tenantProvider.check!(olds, { ...olds, slug: "acme-capital" })).inputs).toMatchObject({
      slug: "acme-capital",
      dataEffect: expect.stringMatching(/renamed in place/),
    });
    expect((await tenantProvider.check!(olds, olds)).inputs).not.toHaveProperty("dataEffect");
  });
});

describe("objectMoveProblem (DedicatedPlacement and TenantLoginRole check)", () => {
  const at = (host: string, port = 5432) => ({ host, port, user: "postgres" });
  const olds = { connection: at("127.0.0.1"), database: "alphapulse", databaseOid: 7, tenantId: "t-1" };
  it.each([
    ["a new resource", {}, olds, undefined],
    ["nothing changed", olds, olds, undefined],
    ["a loopback spelling", olds, { ...olds, connection: at("localhost") }, undefined],
    ["another admin user", olds, { ...olds, connection: { ...at("127.0.0.1"), user: "admin" } }, undefined],
    ["another server", olds, { ...olds, connection: at("10.1.2.3") }, "connection"],
    ["another port", olds, { ...olds, connection: at("127.0.0.1", 6543) }, "connection"],
    ["another database", olds, { ...olds, database: "other" }, "database"],
    ["another tenant in the same database", olds, { ...olds, tenantId: "t-2" }, "tenantId"],
    ["another tenant with a new database oid (recreationFailure decides)", olds, { ...olds, tenantId: "t-2", databaseOid: 8 }, undefined],
    ["a tenant id not known yet", olds, { ...olds, tenantId: "04da6b54-80e4-46f7-96ec-b56ff0331ba9" }, undefined],
  ])("%s", (_case, before, after, property) => {
    expect(objectMoveProblem("the thing", before, after)?.property).toBe(property);
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
  const providers = {
    databaseProvider,
    databaseSchemaProvider,
    tenantProvider,
    tenantRosterProvider,
    dedicatedPlacementProvider,
    tenantLoginRoleProvider,
  };

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
