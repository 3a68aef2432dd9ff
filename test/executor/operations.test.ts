/**
 * The transport-neutral half of the executor: what "the same server" means for both connection
 * kinds (pure, table-driven), and lib/executor/operations.ts run by name on a real PostgreSQL the
 * way `callDatabase` runs it locally — bad input refused naming the field before anything is
 * written, results as JSON carries them. Lib is loaded through dataLayer(), as the providers load it. The executor half: handler.test.ts, lambda-client.test.ts.
 */
import * as pulumi from "@pulumi/pulumi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  callDatabase,
  dataLayer,
  describeConnection,
  isExecutorConnection,
  sameServer,
  serverId,
  type DatabaseConnection,
  type DirectConnection,
} from "../../components/db/provider-runtime";
import { withConnection } from "../../lib/db/client";
import { createTestDatabase, type TestDatabase } from "../support/postgres";
import { databaseProvider } from "../../components/db/database";
import { databaseSchemaProvider } from "../../components/db/database-schema";
import { tenantProvider } from "../../components/db/tenant";
import { tenantRosterProvider } from "../../components/db/tenant-roster";
import { dedicatedPlacementProvider } from "../../components/db/dedicated-placement";
import { tenantLoginRoleProvider } from "../../components/db/tenant-login-role";

const direct = (host: string, port = 5432): DirectConnection => ({ host, port, user: "postgres" });
const executor = (server: string): DatabaseConnection => ({
  kind: "executor",
  functionName: "eu-prod-db-executor",
  region: "eu-central-1",
  server,
});

describe("connections", () => {
  it.each([
    [direct("127.0.0.1"), "127.0.0.1:5432"],
    [direct("localhost"), "127.0.0.1:5432"],
    [direct("::1"), "127.0.0.1:5432"],
    [direct("[::1]"), "127.0.0.1:5432"],
    [direct("127.0.0.2", 6000), "127.0.0.1:6000"],
    [direct("DB.Internal"), "db.internal:5432"],
    [{ ...direct("10.0.1.5"), kind: "direct" as const }, "10.0.1.5:5432"],
    [executor("eu-prod/pg"), "eu-prod/pg"],
  ])("serverId(%j) = %s", (c, id) => {
    expect(serverId(c)).toBe(id);
  });

  it.each([
    [direct("localhost"), direct("127.0.0.1"), true],
    [direct("127.0.0.1", 5432), direct("127.0.0.1", 5433), false],
    [direct("10.0.1.5"), direct("db.internal"), false],
    [executor("eu-prod/pg"), executor("eu-prod/pg"), true],
    [executor("eu-prod/pg"), executor("us-prod/pg"), false],
    // A local executor names its server by the direct connection's id: switching transport is not a move.
    [direct("localhost", 6000), executor("127.0.0.1:6000"), true],
    [direct("10.0.1.5"), executor("eu-prod/pg"), false],
  ])("sameServer(%j, %j) = %s", (a, b, same) => {
    expect(sameServer(a, b)).toBe(same);
    expect(sameServer(b, a)).toBe(same);
  });

  it("treats a connection without kind (older state) as direct, and describes both kinds", () => {
    expect(isExecutorConnection(direct("h"))).toBe(false);
    expect(isExecutorConnection(executor("s"))).toBe(true);
    expect(isExecutorConnection(undefined)).toBe(false);
    expect(sameServer(undefined, direct("h"))).toBe(false);
    expect(describeConnection(direct("127.0.0.1"))).toBe("127.0.0.1:5432");
    expect(describeConnection(executor("eu-prod/pg"))).toBe("executor eu-prod-db-executor (eu-central-1)");
  });
});

describe("operations on a real PostgreSQL (the direct transport)", () => {
  let db: TestDatabase;
  let connection: DirectConnection;
  beforeAll(async () => {
    db = await createTestDatabase("ops");
    const url = new URL(db.url);
    connection = { host: url.hostname, port: Number(url.port), user: decodeURIComponent(url.username) };
    await callDatabase(connection, db.name, "migrate", { region: "eu" });
  });
  afterAll(async () => db?.drop());

  // Loaded the way providers load it (the vitest process must not also load lib/redis natively: ioredis
  // cannot be loaded twice into one process).
  const { runOperation, executorOperations } = dataLayer();
  const registry = () => withConnection(db.url, async (c) => (await c.query("SELECT slug FROM tenancy.tenants ORDER BY slug")).rows);
  const ctx = () => ({ database: db.name, withDatabase: () => Promise.reject(new Error("not used")) });

  it("refuses an unknown operation, naming the known ones", async () => {
    await withConnection(db.url, async (client) => {
      await expect(runOperation("dropEverything", client, {}, ctx())).rejects.toThrow(
        /unknown operation "dropEverything": one of .*\bmigrate\b.*\bgraduateTenant\b/,
      );
      await expect(runOperation("__proto__", client, {}, ctx())).rejects.toThrow(/unknown operation/);
      await expect(runOperation("toString", client, {}, ctx())).rejects.toThrow(/unknown operation/);
    });
    expect(Object.keys(executorOperations)).toContain("graduateTenant");
  });

  it.each([
    ["createTenant", { slug: "Not A Slug", tier: "pro", region: "eu" }, /operation "createTenant": args\.slug: must be 3-40/],
    ["createTenant", { slug: "ok-fund", tier: "gold", region: "eu" }, /args\.tier/],
    ["createTenant", { slug: "ok-fund", tier: "pro", region: "eu", owner: "x" }, /args: Unrecognized key.*owner/],
    ["createTenant", undefined, /args\.slug/],
    ["migrate", { region: "mars" }, /operation "migrate": args\.region/],
    ["migrate", { passwords: { superuser: "x" } }, /args\.passwords/],
    ["findTenant", { ref: "" }, /args\.ref: must not be empty/],
    ["updateTenant", { id: "not-a-uuid", slug: "ok-fund", tier: "pro" }, /args\.id: must be a uuid/],
    ["dropOrphanLoginRole", { role: "postgres" }, /args\.role: must be a tenant login role/],
    ["createDatabase", { name: "x; DROP DATABASE postgres" }, /args\.name: must be a lower-case SQL identifier/],
  ])("%s(%j) is refused naming the field, and nothing is written", async (operation, args, message) => {
    await withConnection(db.url, (client) => expect(runOperation(operation, client, args, ctx())).rejects.toThrow(message));
    expect(await registry()).toEqual([]);
  });

  it("returns JSON results: the same values the executor's reply carries", async () => {
    const created = await callDatabase(connection, db.name, "createTenant", { slug: "json-fund", tier: "pro", region: "eu" });
    expect(created).toMatchObject({ slug: "json-fund", tier: "pro", placement: "shared", status: "active" });
    await withConnection(db.url, (c) =>
      c.query("UPDATE tenancy.tenants SET status = 'offboarded', offboarded_at = now(), purge_after = now() + interval '1 day'"),
    );
    const found = await callDatabase(connection, db.name, "findTenant", { ref: "json-fund" });
    expect(typeof found?.purgeAfter).toBe("string");
    expect(JSON.parse(JSON.stringify(found))).toEqual(found);
    expect(await callDatabase(connection, db.name, "servedTenants", { slugs: ["json-fund", "no-such-fund"] })).toEqual([]);
    expect(await callDatabase(connection, db.name, "findTenant", { ref: "no-such-fund" })).toBeNull();
  });
});

describe("every components/db provider goes through callDatabase", () => {
  const providers = {
    databaseProvider,
    databaseSchemaProvider,
    tenantProvider,
    tenantRosterProvider,
    dedicatedPlacementProvider,
    tenantLoginRoleProvider,
  };

  it.each(Object.entries(providers))(
    "%s serializes with callDatabase and loads the operations through dataLayer()",
    async (_name, provider) => {
      const serialized = await pulumi.runtime.serializeFunction(() => provider);
      expect(serialized.text).toContain("callDatabase");
      expect(serialized.text).toContain("invokeExecutor");
      expect(serialized.text).toContain("tsx/cjs/api");
      expect(serialized.text).not.toMatch(/ZodObject|executorOperations = |LambdaClient/);
    },
  );
});
