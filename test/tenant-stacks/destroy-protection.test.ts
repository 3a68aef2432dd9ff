/**
 * `npm run tenant -- destroy` lifts exactly one protection — an AWS tenant's Redis secret, after the
 * offboarding — and refuses any other protected resource in the tenant's state before it changes
 * anything (lib/tenant-stacks/removal.ts protectionToLift). Through the real engine against a
 * throwaway region: a tenant stack whose program also declares a protected resource is refused with
 * the resource named; the tenant is not offboarded, nothing is exported, the stack stays. (The same
 * destroy without the protected resource succeeds: test/tenant-stacks/engine.test.ts.)
 */
import * as pulumi from "@pulumi/pulumi";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { tenantProgram } from "../../components/tenant/program";
import { REPO_ROOT } from "../../lib/pulumi/env";
import { AutomationContext, AutomationDriver } from "../../lib/tenant-stacks/automation";
import { TENANT_PROJECT, tenantStackName } from "../../lib/tenant-stacks/names";
import { offboardBeforeDestroy } from "../../lib/tenant-stacks/offboarding";
import { describeWithToolchain } from "../support/toolchain";
import { openTestRegion, toolchainLookup, type TestRegion } from "./support/region";

/** A resource with no effect anywhere, declared protected: what a tenant destroy must not unprotect. */
const guardProvider: pulumi.dynamic.ResourceProvider = {
  create: () => Promise.resolve({ id: "guard", outs: {} }),
};
class Guard extends pulumi.dynamic.Resource {
  constructor(name: string) {
    super(guardProvider, name, {}, { protect: true }, "test", "Guard");
  }
}

describeWithToolchain(toolchainLookup)("tenant destroy and protected resources (real engine)", () => {
  let region: TestRegion & { dispose(): Promise<void> };
  let driver: AutomationDriver;
  let exportDir: string;

  beforeAll(async () => {
    region = await openTestRegion("eu");
    exportDir = mkdtempSync(path.join(os.tmpdir(), "destroy-protection-"));
    if (!toolchainLookup.ok) throw new Error(toolchainLookup.reason);
    const ctx = await AutomationContext.create({
      repoRoot: REPO_ROOT,
      binDir: toolchainLookup.toolchain.binDir,
      program: (spec, options) => async () => {
        const outputs = await tenantProgram(spec, options)();
        new Guard(`${spec.slug}-guard`);
        return outputs;
      },
      offboarder: offboardBeforeDestroy,
      env: region.env,
    });
    driver = new AutomationDriver(ctx);
  }, 180_000);

  afterAll(async () => {
    // The guard refuses every destroy: forget the stack (a throwaway region; its servers go next).
    await region?.ctx
      .withWorkspace(TENANT_PROJECT, tenantStackName("guarded"), async (opts) => {
        const s = await LocalWorkspace.selectStack(
          { projectName: TENANT_PROJECT, stackName: tenantStackName("guarded"), program: () => Promise.resolve() },
          opts,
        );
        await s.workspace.removeStack(tenantStackName("guarded"), { force: true });
      })
      .catch(() => {});
    await region?.dispose();
    if (exportDir) rmSync(exportDir, { recursive: true, force: true });
  }, 180_000);

  it("refuses before any change, naming the protected resource: the tenant stays active, nothing exported, the stack stays", async () => {
    const up = await driver.run(
      { action: "up", spec: { slug: "guarded", tier: "starter", region: "eu", platform: region.platformStack } },
      () => {},
    );
    expect(up.failure).toBeUndefined();

    const destroyed = await driver.run({ action: "destroy", slug: "guarded", exportDir, retentionDays: 7 }, () => {});
    expect(destroyed.ok).toBe(false);
    expect(destroyed.failure?.message).toMatch(
      /^tenant-guarded holds protected resources a tenant destroy does not release \(guarded-guard\): nothing was changed/,
    );
    const client = new pg.Client({ connectionString: region.databaseUrl });
    await client.connect();
    try {
      const { rows } = await client.query("SELECT status, offboarding_export FROM tenancy.tenants WHERE slug = 'guarded'");
      expect(rows).toEqual([{ status: "active", offboarding_export: null }]);
    } finally {
      await client.end();
    }
    expect(existsSync(exportDir) ? readdirSync(exportDir) : []).toEqual([]);
    expect((await region.ctx.listTenantStacks()).map((s) => s.stack)).toContain("tenant-guarded");
  }, 240_000);
});
