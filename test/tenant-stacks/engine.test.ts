/**
 * Tenant stacks through the real Pulumi engine (toolchain CLI, dynamic-provider host) against a
 * throwaway region: its own PostgreSQL cluster, Redis server, file backend and platform stack
 * (./support/region.ts). Proves, for real:
 *   - up registers the tenant and grants its Redis user; a second preview is clean (expectNoChanges)
 *     and a second up changes nothing;
 *   - a tenant of another residency is refused before any change (no stack, no row);
 *   - ten tenants at once, each operation in its own process (lib/tenant-stacks/process-driver.ts),
 *     then ten offboardings at once;
 *   - Enterprise: graduation to a dedicated schema and login role, demotion on a tier change (the
 *     tenant's rows move with it), and offboarding that first writes a verified export, then leaves
 *     no schema, role, Redis user or registry row behind; an export that fails deletes nothing.
 * Once per transport of the database side (docs/adr/ADR-004-database-executor.md): direct, and
 * through a local database executor (the AWS regions' path; the tenant program takes the connection
 * from the platform contract) — the same steps must pass on both. The residency refusal happens before
 * any stack and the bulk run repeats the single-tenant providers, so the executor pass skips those two
 * to keep the machine's engine runs down.
 * Skipped, with the reason, where there is no toolchain; under CI that fails (test/support/toolchain.ts).
 */
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWithToolchain } from "../support/toolchain";
import { tenantProgram } from "../../components/tenant/program";
import { connectRedis } from "../../lib/redis/client";
import { seedTenant } from "../../lib/tenant/seed";
import { verifyExportFile } from "../../lib/enterprise/export-file";
import { countTenantRows } from "../../lib/tenant/registry";
import { REPO_ROOT } from "../../lib/pulumi/env";
import { AutomationDriver } from "../../lib/tenant-stacks/automation";
import { changeTotal, runJobs, type TenantJob, type TenantJobResult } from "../../lib/tenant-stacks/jobs";
import { TENANT_PROJECT, tenantStackName } from "../../lib/tenant-stacks/names";
import { ProcessDriver } from "../../lib/tenant-stacks/process-driver";
import type { TenantStackSpec } from "../../lib/tenant-stacks/spec";
import { openTestRegion, toolchainLookup, type TestRegion } from "./support/region";
import { DATABASE_TRANSPORTS } from "../../lib/stack-config/local";

async function withPg<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Dotted paths of every string in `value` that contains `needle`. */
function pathsHolding(value: unknown, needle: string, path: string[] = []): string[] {
  if (typeof value === "string") return value.includes(needle) ? [path.join(".")] : [];
  if (value !== null && typeof value === "object") return Object.entries(value).flatMap(([k, v]) => pathsHolding(v, needle, [...path, k]));
  return [];
}

/** The result of an operation that must succeed; a failure shows its message in the assertion. */
function succeeded(result: TenantJobResult): TenantJobResult {
  expect(result.failure).toBeUndefined();
  return result;
}

async function query<R = Record<string, unknown>>(url: string, text: string, params: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text, params)).rows as R[];
  } finally {
    await client.end();
  }
}

for (const transport of DATABASE_TRANSPORTS)
  describeWithToolchain(toolchainLookup)(`tenant stacks through the real engine (${transport} transport)`, () => {
    const directOnly = it.skipIf(transport !== "direct");
    let region: TestRegion & { dispose(): Promise<void> };
    let driver: AutomationDriver;
    const spec = (slug: string, tier: TenantStackSpec["tier"] = "starter", r: TenantStackSpec["region"] = "eu"): TenantStackSpec => ({
      slug,
      tier,
      region: r,
      platform: region.platformStack,
    });
    /** Served tenants (active or suspended); an offboarded one stays registered until its purge (docs/data-safety.md). */
    const registry = () =>
      query<{ slug: string; tier: string; placement: string }>(
        region.databaseUrl,
        "SELECT slug, tier, placement FROM tenancy.tenants WHERE status <> 'offboarded' ORDER BY slug",
      );
    const offboarded = async () =>
      (await query<{ slug: string }>(region.databaseUrl, "SELECT slug FROM tenancy.tenants WHERE status = 'offboarded' ORDER BY slug")).map(
        (t) => t.slug,
      );
    const redisUsers = async () => {
      const admin = connectRedis(region.redis.adminUrl);
      try {
        return ((await admin.call("ACL", "USERS")) as string[]).filter((u) => u.startsWith("tenant_"));
      } finally {
        admin.disconnect();
      }
    };
    const tenantStacks = async () => (await region.ctx.listTenantStacks()).map((s) => s.stack).sort();
    /**
     * Where a destroy asked to export to `requested` keeps the export: there, with the direct
     * transport; with the executor, where the executor keeps exports (lib/tenant-stacks/offboarding.ts).
     */
    const exportsLandIn = (requested: string) => (transport === "executor" ? region.executorExportDir! : requested);
    const filesIn = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);
    /** An export directory the next offboarding cannot write to; `restore()` undoes it. */
    const blockedExports = () => {
      if (transport === "direct") return { exportDir: "/dev/null/exports", restore: () => {} };
      // The executor's own directory: a file where it should be.
      const dir = region.executorExportDir!;
      writeFileSync(dir, "not a directory\n");
      return { exportDir: "/dev/null/exports", restore: () => rmSync(dir) };
    };

    beforeAll(async () => {
      region = await openTestRegion("eu", { transport });
      driver = new AutomationDriver(region.ctx);
    }, 180_000);

    afterAll(async () => {
      await region?.dispose();
    }, 180_000);

    it("up registers a tenant and grants its cache user; a second preview and a second up change nothing", async () => {
      const first = succeeded(await driver.run({ action: "up", spec: spec("solo-one") }, () => {}));
      expect(first).toMatchObject({ ok: true, createdStack: true, changes: { create: 4 } });
      expect(first.outputs).toMatchObject({ slug: "solo-one", tier: "starter", placement: "shared", schema: "shared" });
      expect(first.outputs).not.toHaveProperty("cachePassword"); // secret outputs never leave the driver
      expect(await registry()).toEqual([{ slug: "solo-one", tier: "starter", placement: "shared" }]);
      expect(await redisUsers()).toEqual([`tenant_${first.outputs!.tenantId}`]);

      // The engine's own check: a preview that would change anything fails.
      await region.ctx.withWorkspace(TENANT_PROJECT, "check", async (opts) => {
        const stack = await LocalWorkspace.selectStack(
          { projectName: TENANT_PROJECT, stackName: tenantStackName("solo-one"), program: tenantProgram(spec("solo-one")) },
          opts,
        );
        const preview = await stack.preview({ expectNoChanges: true });
        expect(changeTotal(preview.changeSummary)).toBe(0);
        // The Redis admin password came from the platform contract as a secret and stays one in this
        // stack's state: every place it is kept is a secret envelope (Pulumi's secret signature; this
        // offline backend's envelope is `plaintext`, a real secrets provider's is `ciphertext`).
        const deployment = (await stack.exportStack()).deployment as unknown;
        const places = pathsHolding(deployment, region.redis.adminPassword);
        // The cache user's input, and its outputs; negative control: the search finds it where it is.
        expect(places.some((p) => /^resources\.\d+\.inputs\.redis\.plaintext$/.test(p))).toBe(true);
        for (const place of places) {
          expect(place).toMatch(/\.plaintext$/);
          const envelope = place
            .split(".")
            .slice(0, -1)
            .reduce<unknown>((v, k) => (v as Record<string, unknown>)[k], deployment);
          expect(envelope).toHaveProperty("4dabf18193072939515e22adb298388d");
        }
      });
      const second = succeeded(await driver.run({ action: "up", spec: spec("solo-one") }, () => {}));
      expect(second.ok).toBe(true);
      expect(second.createdStack).toBe(false);
      expect(changeTotal(second.changes)).toBe(0);

      // Offboarding exports first: when the export cannot be written, nothing is deleted.
      if (transport === "executor") {
        // Through the executor an explicit --export-dir would be ignored: refused, nothing changed (checked below).
        const misplaced = await driver.run(
          { action: "destroy", slug: "solo-one", exportDir: "/tmp/elsewhere", exportDirGiven: true },
          () => {},
        );
        expect(misplaced).toMatchObject({
          ok: false,
          failure: { kind: "export", message: expect.stringContaining("--export-dir applies to regions reached directly") },
        });
      }
      const blocked = blockedExports();
      const refused = await driver.run({ action: "destroy", slug: "solo-one", exportDir: blocked.exportDir }, () => {});
      blocked.restore();
      expect(refused).toMatchObject({
        ok: false,
        failure: {
          kind: "export",
          message: expect.stringMatching(
            /^offboarding of solo-one failed, nothing was deleted: export of solo-one failed, the tenant was not offboarded/,
          ),
        },
      });
      expect(await registry()).toEqual([{ slug: "solo-one", tier: "starter", placement: "shared" }]);
      expect(await redisUsers()).toHaveLength(1);
      expect(await tenantStacks()).toEqual(["tenant-solo-one"]);

      // A dry run says what it would do (the shared offboarding steps, then the planned destroy) and does none of it.
      const dryDir = mkdtempSync(path.join(os.tmpdir(), "offboarding-dry-"));
      const dry = succeeded(
        await driver.run({ action: "destroy", slug: "solo-one", exportDir: dryDir, retentionDays: 7, dryRun: true }, () => {}),
      );
      expect(dry).toMatchObject({ ok: true, dryRun: true, changes: { delete: 4 } });
      expect(dry.steps).toEqual([
        "suspend solo-one (no writes after the export's snapshot)",
        expect.stringMatching(new RegExp(`^export 0 row\\(s\\), verified, to ${exportsLandIn(dryDir)}/solo-one-`)),
        "mark it offboarded: rows, schema and registry entry kept for 7 day(s)",
        expect.stringMatching(/^then, after that date: `tenancy tenant purge solo-one`/),
        "destroy stack tenant-solo-one (-4): 2 resource(s), each below",
      ]);
      expect(dry.removed?.map((r) => `${r.name}: ${r.effect}`)).toEqual([
        "solo-one-registry: registry entry released; rows kept until `tenancy tenant purge`",
        "solo-one-cache: Redis user revoked, its connections cut; keys kept until the purge",
      ]);
      expect(filesIn(exportsLandIn(dryDir))).toEqual([]);
      rmSync(dryDir, { recursive: true, force: true });
      expect(await registry()).toEqual([{ slug: "solo-one", tier: "starter", placement: "shared" }]);
      expect(await redisUsers()).toHaveLength(1);
      expect(await tenantStacks()).toEqual(["tenant-solo-one"]);

      const gone = succeeded(await driver.run({ action: "destroy", slug: "solo-one", exportDir: null, retentionDays: 7 }, () => {}));
      expect(gone).toMatchObject({ ok: true, tier: "starter", region: "eu", changes: { delete: 4 } });
      // What it removed is recorded in the result (the CLI's --json): the state's resources and their effect.
      expect(gone.removed?.map((r) => [r.type, r.name])).toEqual([
        ["pulumi-nodejs:dynamic/db:Tenant", "solo-one-registry"],
        ["pulumi-nodejs:dynamic/cache:TenantCacheUser", "solo-one-cache"],
      ]);
      const retainedDays = (Date.parse(gone.purgeAfter!) - Date.now()) / 86_400_000;
      expect(retainedDays).toBeGreaterThan(6.9);
      expect(retainedDays).toBeLessThanOrEqual(7);
      expect(await registry()).toEqual([]);
      expect(await offboarded()).toContain("solo-one"); // retained until `tenancy tenant purge`
      expect(await redisUsers()).toEqual([]);
      expect(await tenantStacks()).toEqual([]);
      if (transport === "executor") {
        // The tenant's database side ran in the executor process: its log has one line per invocation.
        const calls = readFileSync(region.executorLog!, "utf8")
          .split("\n")
          .filter((l) => l.startsWith("{"))
          .map((l) => JSON.parse(l) as { operation?: string; outcome: string });
        const ran = new Set(calls.filter((c) => c.outcome === "ok").map((c) => c.operation));
        for (const op of ["createTenant", "offboardTenant", "releaseTenantFromStack"]) expect(ran).toContain(op);
      }
    }, 600_000);

    directOnly(
      "refuses a tenant of another residency before any change: no stack, no row, no user",
      async () => {
        const events: string[] = [];
        const result = await driver.run({ action: "up", spec: spec("wrong-place", "pro", "us") }, (e) => events.push(e.phase));
        expect(result.ok).toBe(false);
        expect(result.failure).toEqual({
          kind: "residency",
          message: `tenant "wrong-place" has residency "us" but platform stack ${region.platformStack} serves "eu": its data may not be stored there (use --region eu, or --platform with a "us" stack)`,
        });
        expect(events).toEqual(["platform", "done"]); // it never got to selecting a stack
        expect(await tenantStacks()).toEqual([]);
        expect(await registry()).toEqual([]);
        expect(await redisUsers()).toEqual([]);
      },
      60_000,
    );

    directOnly(
      "ten tenants at once, each in its own process: ten ups, then ten offboardings",
      async () => {
        const slugs = Array.from({ length: 10 }, (_, i) => `bulk-${String(i).padStart(2, "0")}`);
        const processes = new ProcessDriver({ repoRoot: REPO_ROOT, env: region.env });
        let running = 0;
        let peak = 0;
        const track = async (jobs: TenantJob[]): Promise<TenantJobResult[]> => {
          const started = new Set<string>();
          return runJobs(jobs, processes, {
            concurrency: 10,
            onEvent: (e) => {
              if (e.phase !== "queued" && !started.has(e.slug)) {
                started.add(e.slug);
                peak = Math.max(peak, ++running);
              }
            },
            onResult: () => running--,
          });
        };
        const tiers = ["starter", "pro"] as const;
        const ups = await track(slugs.map((slug, i) => ({ action: "up", spec: spec(slug, tiers[i % 2]) })));
        expect(ups.filter((r) => !r.ok).map((r) => `${r.stack}: ${r.failure?.message}`)).toEqual([]);
        expect(peak).toBe(10);
        expect((await registry()).map((t) => `${t.slug}:${t.tier}`)).toEqual(slugs.map((slug, i) => `${slug}:${tiers[i % 2]}`));
        expect(await redisUsers()).toHaveLength(10);
        expect(await tenantStacks()).toEqual(slugs.map(tenantStackName));

        const destroys = await track(slugs.map((slug) => ({ action: "destroy", slug, exportDir: null })));
        expect(destroys.filter((r) => !r.ok).map((r) => `${r.stack}: ${r.failure?.message}`)).toEqual([]);
        expect(await registry()).toEqual([]);
        expect(await redisUsers()).toEqual([]);
        expect(await tenantStacks()).toEqual([]);
      },
      600_000,
    );

    it("Enterprise: graduation to a dedicated schema and login role, demotion on a tier change, offboarding exports and retains it until the purge", async () => {
      const schemas = () =>
        query<{ nspname: string }>(region.databaseUrl, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant\\_%' ORDER BY 1");
      const loginRoles = () =>
        query<{ rolname: string }>(region.databaseUrl, "SELECT rolname FROM pg_roles WHERE rolname LIKE 'tenant\\_%\\_login' ORDER BY 1");

      const up = succeeded(await driver.run({ action: "up", spec: spec("big-corp", "enterprise") }, () => {}));
      expect(up).toMatchObject({ ok: true, changes: { create: 6 }, outputs: { placement: "dedicated" } });
      const hex = String(up.outputs!.tenantId).replace(/-/g, "");
      expect(up.outputs).toMatchObject({ schema: `tenant_${hex}`, loginRole: `tenant_${hex}_login` });
      expect(await registry()).toEqual([{ slug: "big-corp", tier: "enterprise", placement: "dedicated" }]);
      expect(await schemas()).toEqual([{ nspname: `tenant_${hex}` }]);
      expect(await loginRoles()).toEqual([{ rolname: `tenant_${hex}_login` }]);
      const again = succeeded(await driver.run({ action: "preview", spec: spec("big-corp", "enterprise") }, () => {}));
      expect(changeTotal(again.changes)).toBe(0);

      // Rows, so that demotion, graduation and the offboarding export move something real.
      const tenantId = String(up.outputs!.tenantId);
      const seeded = await withPg(region.databaseUrl, (c) =>
        seedTenant(c, { id: tenantId, slug: "big-corp", placement: "dedicated" }, { trades: 200 }),
      );
      const total = Object.values(seeded.rows).reduce((a, b) => a + b, 0);
      const rowsIn = (placement: "shared" | "dedicated") =>
        withPg(region.databaseUrl, async (c) => (await countTenantRows(c, { id: tenantId, placement })).reduce((a, t) => a + t.rows, 0));
      expect(await rowsIn("dedicated")).toBe(total);

      const demoted = succeeded(await driver.run({ action: "up", spec: spec("big-corp", "pro") }, () => {}));
      expect(demoted).toMatchObject({ ok: true, changes: { update: 2, delete: 2 }, outputs: { placement: "shared", tier: "pro" } });
      expect(await registry()).toEqual([{ slug: "big-corp", tier: "pro", placement: "shared" }]);
      expect(await schemas()).toEqual([]);
      expect(await loginRoles()).toEqual([]);
      expect(await rowsIn("shared")).toBe(total);

      const graduated = succeeded(await driver.run({ action: "up", spec: spec("big-corp", "enterprise") }, () => {}));
      expect(graduated).toMatchObject({ ok: true, changes: { update: 2, create: 2 }, outputs: { placement: "dedicated" } });
      expect(await rowsIn("dedicated")).toBe(total);

      const exportDir = mkdtempSync(path.join(os.tmpdir(), "offboarding-"));
      const gone = succeeded(await driver.run({ action: "destroy", slug: "big-corp", exportDir }, () => {}));
      expect(gone).toMatchObject({ ok: true, tier: "enterprise", changes: { delete: 6 } });
      expect(path.dirname(gone.exportFile!)).toBe(exportsLandIn(exportDir));
      const exported = await verifyExportFile(gone.exportFile!, "structure-only"); // the test region installs no context key: unsigned
      expect(exported.header.tenant).toMatchObject({ id: tenantId, slug: "big-corp" });
      expect(exported.tables.reduce((a, t) => a + t.rows, 0)).toBe(total);
      rmSync(exportDir, { recursive: true, force: true });
      expect(await registry()).toEqual([]);
      expect(await offboarded()).toContain("big-corp");
      // Offboarded, not purged: its dedicated schema and (NOLOGIN) login role stay until `tenancy tenant purge`.
      expect(await schemas()).toHaveLength(1);
      expect(await loginRoles()).toHaveLength(1);
      expect(await redisUsers()).toEqual([]);
      expect(await tenantStacks()).toEqual([]);
    }, 600_000);
  });
