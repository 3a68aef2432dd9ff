/**
 * Issue 17 through the real Pulumi engine: a stack change never deletes tenant data
 * (docs/data-safety.md). Against a PostgreSQL cluster started for this file, with seeded rows:
 *
 *   the repository's program (one stack, several steps): a slug edited in place fails the preview
 *   naming `renamedFrom` and the offboarding command; with `renamedFrom` it is a rename in place
 *   (same id, same rows); removing a served tenant fails the preview (and `up`); a region change
 *   and a connection change (another port) fail the preview; `destroy` is refused and leaves the state whole; `tenancy tenant delete`
 *   (verified export, retention) lets the tenant leave the stack with its rows; `tenancy tenant
 *   purge` is refused before the window (exit 2) and removes the rows after it; then `destroy` of
 *   the emptied stack drops the database.
 *
 *   main's old provider code (test/e2e/fixtures/main-tenant-provider.ts) in an inline program:
 *   the negative control — the same slug edit with the old provider and the old data layer loses
 *   the tenant's rows — and the upgrade path — old code kept in the state now refuses the delete
 *   through the data layer, and one `up` with the current program rewrites it (no create, no delete).
 *   And the component named by region, as local stacks had it: a region edit previewed as an empty new
 *   region (the negative control of the region step); the stable name adopts such a stack unchanged.
 *
 * Skipped, with the reason, where there is no toolchain; under CI that fails.
 */
import * as pulumi from "@pulumi/pulumi";
import { LocalWorkspace, type PulumiFn } from "@pulumi/pulumi/automation";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegionalDatabase } from "../../components/db/regional-database";
import { LOCAL_ADMIN_USER, LOCAL_HOST, localPlatform } from "../../components/local/local-platform";
import type { LocalStackConfig } from "../../lib/stack-config/local";
import { THROWAWAY_SETTINGS, startPostgres, type PostgresServer } from "../../lib/local/postgres-server";
import { freePort } from "../../lib/local/processes";
import { REPO_ROOT } from "../../lib/pulumi/env";
import { AutomationContext } from "../../lib/tenant-stacks/automation";
import { countTenantRows } from "../../lib/tenant/registry";
import { tenancy } from "../support/cli";
import { MainTenant } from "./fixtures/main-tenant-provider";
import { describeWithToolchain } from "../support/toolchain";
import { openStack, toolchain, toolchainLookup, type OpenTestStack } from "./support/stack";

const ENGINE_TIMEOUT = 300_000;

async function query<R = Record<string, unknown>>(url: string, text: string, params: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text, params)).rows as R[];
  } finally {
    await client.end();
  }
}

/** Every row of one tenant, over the catalogue (as the maintenance role, explicit tenant filter). */
async function rowsOf(url: string, tenantId: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await countTenantRows(client, { id: tenantId, placement: "shared" })).reduce((n, t) => n + t.rows, 0);
  } finally {
    await client.end();
  }
}

async function registry(url: string): Promise<{ id: string; slug: string; status: string }[]> {
  return query(url, "SELECT id::text, slug, status FROM tenancy.tenants ORDER BY slug");
}

/** Lets a tenant's retention window end now (the CLI has no clock hook; the purge reads the database's clock). */
async function endRetention(url: string, slug: string): Promise<void> {
  await query(url, "UPDATE tenancy.tenants SET purge_after = now() - interval '1 second' WHERE slug = $1", [slug]);
}

describeWithToolchain(toolchainLookup)(
  `data safety through the real engine${toolchain ? ` (pulumi ${toolchain.version})` : ""}`,
  { timeout: ENGINE_TIMEOUT },
  () => {
    let cluster: PostgresServer;
    beforeAll(async () => {
      cluster = await startPostgres({ settings: THROWAWAY_SETTINGS });
    }, ENGINE_TIMEOUT);
    afterAll(async () => cluster?.stop({ removeData: true, mode: "immediate" }), ENGINE_TIMEOUT);

    describe("the repository's program: one stack, each change that used to delete rows", () => {
      const DATABASE = "alphapulse_safety";
      let t: OpenTestStack;
      let base: Record<string, unknown>;
      let ids: Record<string, string>;
      let rows: Record<string, number>;
      let exportDir: string;
      const url = () => cluster.urlFor(DATABASE);
      const config = (tenants: unknown[], region = "eu") => ({ ...base, region, tenants });
      const alpha = { slug: "alpha-fund", tier: "pro", region: "eu" };
      const beta = { slug: "beta-capital", tier: "starter", region: "eu" };
      const betaRenamed = { slug: "beta-capital-group", tier: "starter", region: "eu", renamedFrom: "beta-capital" };

      beforeAll(async () => {
        base = {
          kind: "local",
          postgres: { port: cluster.port, database: DATABASE },
          pgbouncer: { port: await freePort() },
          redis: { port: await freePort() },
        };
        exportDir = mkdtempSync(path.join(os.tmpdir(), "data-safety-exports-"));
        t = await openStack(config([alpha, beta]));
      }, ENGINE_TIMEOUT);
      afterAll(async () => {
        await t?.dispose();
        if (exportDir) rmSync(exportDir, { recursive: true, force: true });
      }, ENGINE_TIMEOUT);

      /** Every tenant's rows are what they were after seeding. */
      async function expectRowsIntact(): Promise<void> {
        for (const [slug, n] of Object.entries(rows)) expect(await rowsOf(url(), ids[slug]), slug).toBe(n);
      }

      it("up, then seed rows (the issue's reproduction)", async () => {
        const up = await t.stack.up({ color: "never" });
        // Stack, component, Database, DatabaseSchema, TenantContextKey, TenantRoster, 2 Tenants.
        expect(up.summary.resourceChanges).toEqual({ create: 8 });
        ids = (up.outputs.database.value as { tenantIds: Record<string, string> }).tenantIds;
        expect((await tenancy("seed", "--rows-per-tenant", "5", "--database-url", url())).code).toBe(0);
        rows = { "alpha-fund": await rowsOf(url(), ids["alpha-fund"]), "beta-capital": await rowsOf(url(), ids["beta-capital"]) };
        expect(rows["alpha-fund"]).toBeGreaterThan(0);
        expect(rows["beta-capital"]).toBeGreaterThan(0);
      });

      it("a slug edited in place fails the preview, naming renamedFrom and the offboarding command; nothing changes", async () => {
        t.writeConfig(config([alpha, { ...beta, slug: "beta-capital-group" }]));
        await expect(t.stack.preview({ color: "never" })).rejects.toThrow(
          /tenant "beta-capital" \(active\) is no longer declared[\s\S]*renamedFrom: beta-capital[\s\S]*tenancy tenant delete beta-capital/,
        );
        await expect(t.stack.up({ color: "never" })).rejects.toThrow(/renamedFrom: beta-capital/);
        expect((await registry(url())).map((r) => r.slug)).toEqual(["alpha-fund", "beta-capital"]);
        await expectRowsIntact();
      });

      it("with renamedFrom the slug change is a rename in place: same id, same rows, no create or delete", async () => {
        t.writeConfig(config([alpha, betaRenamed]));
        const preview = await t.stack.preview({ color: "never", diff: true });
        // The preview says what the update does to the data.
        expect(preview.stdout).toMatch(
          /dataEffect\s*:\s*"renamed in place \W*beta-capital\W* -> \W*beta-capital-group\W*: same tenant id, every row kept/,
        );
        expect(preview.changeSummary).toMatchObject({ update: 2 }); // the roster and the tenant
        for (const op of ["create", "delete", "replace", "create-replacement", "delete-replaced"] as const)
          expect(preview.changeSummary[op], op).toBeUndefined();
        const up = await t.stack.up({ color: "never" });
        expect(up.summary.resourceChanges).toMatchObject({ update: 2 });
        expect((up.outputs.database.value as { tenantIds: object }).tenantIds).toEqual({
          "alpha-fund": ids["alpha-fund"],
          "beta-capital-group": ids["beta-capital"],
        });
        expect(await registry(url())).toEqual([
          { id: ids["alpha-fund"], slug: "alpha-fund", status: "active" },
          { id: ids["beta-capital"], slug: "beta-capital-group", status: "active" },
        ]);
        await expectRowsIntact();
        await t.stack.preview({ expectNoChanges: true, color: "never" });
      });

      it("removing a served tenant from the list fails the preview and the up, naming `tenancy tenant delete`", async () => {
        t.writeConfig(config([betaRenamed]));
        await expect(t.stack.preview({ color: "never" })).rejects.toThrow(
          /tenant "alpha-fund" \(active\) is no longer declared[\s\S]*tenancy tenant delete alpha-fund/,
        );
        await expect(t.stack.up({ color: "never" })).rejects.toThrow(/tenancy tenant delete alpha-fund/);
        expect((await registry(url())).find((r) => r.slug === "alpha-fund")?.status).toBe("active");
        await expectRowsIntact();
      });

      it("a region change fails the preview as a residency decision, naming the offboarding command", async () => {
        t.writeConfig(
          config(
            [
              { ...alpha, region: "us" },
              { ...betaRenamed, region: "us" },
            ],
            "us",
          ),
        );
        // The schema (registered before the tenants) is the first to refuse; the engine stops there.
        await expect(t.stack.preview({ color: "never" })).rejects.toThrow(
          /database "alphapulse_safety" serves residency region "eu"[\s\S]*tenancy tenant delete/,
        );
        await expect(t.stack.up({ color: "never" })).rejects.toThrow(/residency/);
        expect(await query(url(), "SELECT region FROM tenancy.database_settings")).toEqual([{ region: "eu" }]);
        expect((await registry(url())).map((r) => r.status)).toEqual(["active", "active"]);
        await expectRowsIntact();
      });

      it("a connection change (another server) fails the preview: the database and its tenants do not move", async () => {
        t.writeConfig({ ...config([alpha, betaRenamed]), postgres: { port: await freePort(), database: DATABASE } });
        await expect(t.stack.preview({ color: "never" })).rejects.toThrow(
          /database "alphapulse_safety" is on 127\.0\.0\.1:\d+[^;]*; pointing the stack at 127\.0\.0\.1:\d+[^;]* would drop it/,
        );
        await expect(t.stack.up({ color: "never" })).rejects.toThrow(/revert the connection/);
        expect(await query(cluster.adminUrl, "SELECT 1 FROM pg_database WHERE datname = $1", [DATABASE])).toHaveLength(1);
        await expectRowsIntact();
        // Back to the recorded config: nothing to do.
        t.writeConfig(config([alpha, betaRenamed]));
        await t.stack.preview({ expectNoChanges: true, color: "never" });
      });

      it("destroy with tenants is refused: the database, the rows and the state are kept", async () => {
        t.writeConfig(config([alpha, betaRenamed]));
        await expect(t.stack.destroy({ color: "never" })).rejects.toThrow(/a stack never deletes a tenant's data/);
        expect(await query(cluster.adminUrl, "SELECT 1 FROM pg_database WHERE datname = $1", [DATABASE])).toHaveLength(1);
        expect((await registry(url())).map((r) => r.status)).toEqual(["active", "active"]);
        await expectRowsIntact();
        // Nothing left the state: the same config previews clean.
        await t.stack.preview({ expectNoChanges: true, color: "never" });
      });

      it("offboarding on purpose: verified export, the tenant leaves the stack with its rows, purge refused before the window", async () => {
        const deleted = await tenancy("tenant", "delete", "alpha-fund", "--export-dir", exportDir, "--json", "--database-url", url());
        expect(deleted.code).toBe(0);
        expect(deleted.json.tenant.status).toBe("offboarded");
        expect(deleted.json.exportedRows).toBe(rows["alpha-fund"]);
        // The trailer is the last line of an unsigned export and the one before the MAC of a signed one.
        const lines = readFileSync(deleted.json.exportFile, "utf8")
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l) as Record<string, unknown>);
        expect(lines.some((line) => line.trailer === true)).toBe(true);

        t.writeConfig(config([betaRenamed]));
        const up = await t.stack.up({ color: "never" });
        expect(up.summary.resourceChanges).toMatchObject({ delete: 1, update: 1 });
        expect(Object.keys((up.outputs.database.value as { tenantIds: object }).tenantIds)).toEqual(["beta-capital-group"]);
        // Released by the stack, not deleted: still registered (offboarded), every row still there.
        expect((await registry(url())).find((r) => r.slug === "alpha-fund")?.status).toBe("offboarded");
        await expectRowsIntact();

        const early = await tenancy("tenant", "purge", "alpha-fund", "--json", "--database-url", url());
        expect(early.code).toBe(2);
        expect(early.json.error.message).toMatch(/retained until/);
        expect(await rowsOf(url(), ids["alpha-fund"])).toBe(rows["alpha-fund"]);

        await endRetention(url(), "alpha-fund");
        expect((await tenancy("tenant", "purge", "alpha-fund", "--database-url", url())).code).toBe(0);
        expect(await rowsOf(url(), ids["alpha-fund"])).toBe(0);
        expect(await rowsOf(url(), ids["beta-capital"])).toBe(rows["beta-capital"]);
      });

      it("destroy is refused while an offboarded tenant waits for its purge, and drops the database once it is purged", async () => {
        const deleted = await tenancy("tenant", "delete", "beta-capital-group", "--export-dir", exportDir, "--database-url", url());
        expect(deleted.code).toBe(0);
        await expect(t.stack.destroy({ color: "never" })).rejects.toThrow(/beta-capital-group \(offboarded, purge after/);
        expect(await rowsOf(url(), ids["beta-capital"])).toBe(rows["beta-capital"]);

        await endRetention(url(), "beta-capital-group");
        expect((await tenancy("tenant", "purge", "beta-capital-group", "--database-url", url())).code).toBe(0);
        const destroy = await t.stack.destroy({ color: "never" });
        expect(destroy.summary.result).toBe("succeeded");
        expect(await query(cluster.adminUrl, "SELECT 1 FROM pg_database WHERE datname = $1", [DATABASE])).toHaveLength(0);
      });
    });

    describe("main's provider code: the negative control, and a stack created before the change", () => {
      const DATABASE = "alphapulse_legacy";
      const url = () => cluster.urlFor(DATABASE);
      let root: string;
      let ctx: AutomationContext;

      beforeAll(async () => {
        root = mkdtempSync(path.join(os.tmpdir(), "data-safety-legacy-"));
        for (const dir of ["state", "home"]) mkdirSync(path.join(root, dir));
        ctx = await AutomationContext.create({
          repoRoot: REPO_ROOT,
          binDir: toolchain!.binDir,
          program: () => () => Promise.resolve(),
          env: { PULUMI_BACKEND_URL: `file://${path.join(root, "state")}`, PULUMI_HOME: path.join(root, "home") },
        });
      });
      afterAll(() => rmSync(root, { recursive: true, force: true }));

      /** Before the change: the component's database and schema, tenants declared with main's provider under the same names. */
      function mainProgram(tenants: { slug: string; withMainDataLayer: boolean }[]): PulumiFn {
        return () => {
          const connection = { host: "127.0.0.1", port: cluster.port, user: "postgres" };
          const region = new RegionalDatabase("legacy", { connection, database: DATABASE, region: "eu", protect: false });
          const declared = tenants.map(
            (x) =>
              new MainTenant(
                `legacy-tenant-${x.slug}`,
                {
                  connection,
                  database: region.database.name,
                  databaseOid: region.database.oid,
                  slug: x.slug,
                  tier: "starter",
                  region: "eu",
                  withMainDataLayer: x.withMainDataLayer,
                },
                { parent: region, deletedWith: region.database, dependsOn: [region.schema] },
              ),
          );
          return Promise.resolve({ tenants: pulumi.all(declared.map((d) => pulumi.all([d.slug, d.tenantId]))).apply(Object.fromEntries) });
        };
      }

      /** After the change: the repository's component, declaring the same tenants. */
      function currentProgram(slugs: string[]): PulumiFn {
        return () => {
          const connection = { host: "127.0.0.1", port: cluster.port, user: "postgres" };
          const region = new RegionalDatabase("legacy", {
            connection,
            database: DATABASE,
            region: "eu",
            protect: false,
            tenants: slugs.map((slug) => ({ slug, tier: "starter" as const, region: "eu" as const })),
          });
          return Promise.resolve({ tenants: region.tenantIds });
        };
      }

      it("a local stack whose component was named by region: a region edit planned an empty region (negative control); the stable name adopts it", async () => {
        const database = "alphapulse_named";
        const config = (region: "eu" | "us"): LocalStackConfig => ({
          kind: "local",
          region,
          postgres: { port: cluster.port, database },
          pgbouncer: { port: cluster.port + 1 },
          redis: { port: cluster.port + 2 },
          transport: "direct",
          tenants: [{ slug: "gamma-fund", tier: "starter", region }],
          catalogueExtension: [],
        });
        /** Before: localPlatform's RegionalDatabase under the name `local-<region>`, its arguments unchanged. */
        const namedByRegion =
          (c: LocalStackConfig): PulumiFn =>
          () => {
            new RegionalDatabase(`local-${c.region}`, {
              connection: { host: LOCAL_HOST, port: c.postgres.port, user: LOCAL_ADMIN_USER },
              database: c.postgres.database,
              region: c.region,
              tenants: c.tenants,
              protect: false,
            });
            return Promise.resolve({});
          };
        const current =
          (c: LocalStackConfig): PulumiFn =>
          () => {
            localPlatform(c);
            return Promise.resolve({});
          };
        await ctx.withWorkspace("alphapulse-platform", "named", async (opts) => {
          const stackName = "named-by-region";
          const stack = await LocalWorkspace.createStack(
            { projectName: "alphapulse-platform", stackName, program: namedByRegion(config("eu")) },
            opts,
          );
          try {
            await stack.up({ color: "never" });
            // Negative control: named by region, the region edit is a plan for a new, empty region
            // (create local-us-*, delete local-eu-*), and the preview does not say a word about residency.
            stack.workspace.program = namedByRegion(config("us"));
            const planned = await stack.preview({ color: "never" });
            // The component, Database, DatabaseSchema, TenantContextKey, TenantRoster and Tenant, each under a new name.
            expect(planned.changeSummary).toMatchObject({ create: 6, delete: 6 });

            // The stable name with the old names as aliases: the existing stack is adopted as it is.
            stack.workspace.program = current(config("eu"));
            await stack.preview({ expectNoChanges: true, color: "never" });
            await stack.up({ color: "never" });
            // ...and now the same region edit is refused in the preview.
            stack.workspace.program = current(config("us"));
            await expect(stack.preview({ color: "never" })).rejects.toThrow(/serves residency region "eu"/);
            expect(await query(cluster.urlFor(database), "SELECT slug, status FROM tenancy.tenants")).toEqual([
              { slug: "gamma-fund", status: "active" },
            ]);
          } finally {
            await stack.workspace.removeStack(stackName, { force: true }).catch(() => {});
            await query(cluster.adminUrl, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
          }
        });
      });

      it("the old provider loses a tenant's rows on a slug edit; its old code kept in the state refuses; one up rewrites it", async () => {
        await ctx.withWorkspace("alphapulse-platform", "legacy", async (opts) => {
          const stackName = "legacy";
          const stack = await LocalWorkspace.createStack({ projectName: "alphapulse-platform", stackName, program: mainProgram([]) }, opts);
          const run = async (program: PulumiFn) => {
            stack.workspace.program = program;
            return stack.up({ color: "never" });
          };
          try {
            const first = await run(
              mainProgram([
                { slug: "keep-me", withMainDataLayer: false },
                { slug: "lose-me", withMainDataLayer: true },
              ]),
            );
            const ids = first.outputs.tenants.value as Record<string, string>;
            expect((await tenancy("seed", "--rows-per-tenant", "5", "--database-url", url())).code).toBe(0);
            const keepRows = await rowsOf(url(), ids["keep-me"]);
            const loseRows = await rowsOf(url(), ids["lose-me"]);
            expect(keepRows).toBeGreaterThan(0);
            expect(loseRows).toBeGreaterThan(0);

            // Negative control: the issue's slug edit with main's provider and data layer deletes every row of the tenant.
            await run(
              mainProgram([
                { slug: "keep-me", withMainDataLayer: false },
                { slug: "lose-me-renamed", withMainDataLayer: true },
              ]),
            );
            expect(await rowsOf(url(), ids["lose-me"])).toBe(0);
            expect((await registry(url())).map((r) => r.slug)).toEqual(["keep-me", "lose-me-renamed"]);

            // A stack created before the change: main's delete code, run from the state, reaches today's data layer and is refused.
            await expect(run(mainProgram([{ slug: "lose-me-renamed", withMainDataLayer: true }]))).rejects.toThrow(
              /keep-me[\s\S]*is active[\s\S]*tenancy tenant delete keep-me/,
            );
            expect(await rowsOf(url(), ids["keep-me"])).toBe(keepRows);

            // The upgrade: one up with the current program updates every tenant in place (new provider code in the state).
            stack.workspace.program = currentProgram(["keep-me", "lose-me-renamed"]);
            const preview = await stack.preview({ color: "never" });
            for (const op of ["create", "delete", "replace"] as const) expect(preview.changeSummary[op], op).toBeUndefined();
            await run(currentProgram(["keep-me", "lose-me-renamed"]));
            const state = await stack.exportStack();
            const tenantsInState = (state.deployment.resources as { type: string; outputs?: Record<string, unknown> }[]).filter(
              (r) => r.type === "pulumi-nodejs:dynamic/db:Tenant",
            );
            expect(tenantsInState).toHaveLength(2);
            for (const r of tenantsInState) {
              expect(r.outputs?.dataSafety).toBe(1);
              expect(String(r.outputs?.__provider)).toContain("releaseTenantFromStack");
            }
            await stack.preview({ expectNoChanges: true, color: "never" });
            expect(await rowsOf(url(), ids["keep-me"])).toBe(keepRows);
          } finally {
            await stack.workspace.removeStack(stackName, { force: true }).catch(() => {});
          }
        });
      });
    });
  },
);
