/**
 * `npm run tenant -- synth` as a process: bad input exits 2 naming the field and writes nothing;
 * a tenant the platform declares itself is refused on the platform's synthesised outputs; a good
 * run writes the graph and passes the policy rules (--check), with a --json summary.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runScript } from "../support/run-script";

const dir = mkdtempSync(path.join(os.tmpdir(), "tenant-synth-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const synth = (...args: string[]) => runScript("scripts/tenant.ts", ["synth", ...args]);
const errorOf = (stdout: string) => (JSON.parse(stdout) as { error: { field?: string; message: string } }).error;

describe("npm run tenant -- synth: bad input exits 2, names the field, writes nothing", () => {
  it.each([
    [["newco", "--tier", "gold", "--region", "eu", "--platform", "eu-prod"], "--tier", /starter|pro|enterprise/],
    [["newco", "--tier", "pro", "--region", "eu", "--platform", "eu-nowhere"], "--platform", /no platform stack "eu-nowhere" in stacks\//],
    [["newco", "--tier", "pro", "--region", "eu", "--platform", "us-prod"], "--region", /platform stack us-prod serves "us"/],
    [["newco", "--tier", "pro", "--region", "eu", "--platform", "local-eu"], "--platform", /is a local stack/],
    [["newco", "--tier", "pro", "--region", "eu"], "--platform", /is required/],
  ])("%j → %s", async (args, field, message) => {
    const out = path.join(dir, `bad-${field}.json`);
    const run = await synth(...args, "--out", out, "--json");
    expect(run.code).toBe(2);
    expect(errorOf(run.stdout)).toMatchObject({ field, message: expect.stringMatching(message) });
    expect(existsSync(out)).toBe(false);
  });

  it("a slug the platform stack declares itself: exit 2 on its synthesised outputs, nothing written", async () => {
    const out = path.join(dir, "taken.json");
    const run = await synth("acme-capital", "--tier", "pro", "--region", "eu", "--platform", "eu-prod", "--out", out, "--json");
    expect(run.code).toBe(2);
    expect(errorOf(run.stdout)).toMatchObject({
      field: "argument 1 (slug)",
      message: expect.stringMatching(/declared by platform stack eu-prod/),
    });
    expect(existsSync(out)).toBe(false);
  }, 180_000);
});

describe("npm run tenant -- synth --check", () => {
  it("an Enterprise tenant on us-prod: the graph in the synth format, every policy passes", async () => {
    const out = path.join(dir, "hudson.json");
    const run = await synth(
      "hudson-quant-2",
      "--tier",
      "enterprise",
      "--region",
      "us",
      "--platform",
      "us-prod",
      "--check",
      "--out",
      out,
      "--json",
    );
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ stack: "tenant-hudson-quant-2", platform: "us-prod", out, resources: 18, violations: [] });
    const doc = JSON.parse(readFileSync(out, "utf8")) as { project: string; stack: string; resources: { type: string; name: string }[] };
    expect([doc.project, doc.stack]).toEqual(["alphapulse-tenant", "tenant-hudson-quant-2"]);
    expect(doc.resources.map((r) => r.type)).toContain("aws:elasticache/userGroupAssociation:UserGroupAssociation");
    expect(readFileSync(out, "utf8")).not.toMatch(/mock-password-|mock-login-|exports\.handler/);
  }, 180_000);
});
