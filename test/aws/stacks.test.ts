/**
 * Every AWS stack in stacks/ synthesises offline through the real program (index.ts) and passes
 * every policy rule — and the same check fails, naming rule and resource, on a deliberately bad
 * program and a deliberately bad stack file. Each synthesis runs in its own process, as the CLI does.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml, stringify } from "yaml";
import { AwsPlatformContract, parsePlatformContract } from "../../lib/platform/contract";
import { stableStringify } from "../../lib/synth/mocks";

const execFileAsync = promisify(execFile);
const ROOT = path.resolve(__dirname, "../..");
const out = mkdtempSync(path.join(os.tmpdir(), "synth-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

interface Summary {
  stack: string;
  out: string;
  resources: number;
  violations?: string[];
}

/** Runs `npm run synth -- <args>` (without npm) and returns exit code, stdout, stderr. */
async function synth(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(
      process.execPath,
      [path.join(ROOT, "node_modules/tsx/dist/cli.mjs"), path.join(ROOT, "scripts/synth.ts"), ...args],
      {
        cwd: ROOT,
        maxBuffer: 64 * 1024 * 1024,
      },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

let all: { code: number; summaries: Summary[] };
beforeAll(async () => {
  const run = await synth("--all", "--check", "--json", "--out", out);
  all = { code: run.code, summaries: run.stdout ? JSON.parse(run.stdout) : [] };
}, 120_000);

describe("every AWS stack", () => {
  it("synthesises and passes every policy", () => {
    expect(all.summaries.map((s) => [s.stack, s.violations])).toEqual([
      ["eu-prod", []],
      ["eu-staging", []],
      ["us-prod", []],
    ]);
    expect(all.code).toBe(0);
    for (const s of all.summaries) expect(s.resources).toBeGreaterThan(100);
  });

  it("writes the graph with type, name, parent, provider and inputs, secrets redacted", () => {
    const doc = JSON.parse(readFileSync(path.join(out, "eu-prod.json"), "utf8"));
    expect(Object.keys(doc)).toEqual(["config", "outputs", "project", "resources", "stack"]);
    const volume = doc.resources.find((r: { name: string }) => r.name === "eu-prod-postgres-primary-data");
    expect(Object.keys(volume)).toEqual([
      "additionalSecretOutputs",
      "custom",
      "dependencies",
      "ignoreChanges",
      "inputs",
      "name",
      "parent",
      "propertyDependencies",
      "protect",
      "provider",
      "retainOnDelete",
      "type",
      "urn",
    ]);
    // The mock monitor's URNs qualify a type by its parent's type only (the engine spells the whole chain).
    expect(volume.parent).toBe(
      "urn:pulumi:eu-prod::alphapulse-platform::alphapulse:aws:RegionalPlatform$alphapulse:aws:PostgresCluster::eu-prod-postgres",
    );
    const text = readFileSync(path.join(out, "eu-prod.json"), "utf8");
    expect(text).not.toContain("mock-password");
    expect(text).toContain('"secretString": "[secret]"');
    expect(doc.outputs.postgres.primaryHost).toBe("pg-primary.eu-prod.alphapulse.internal");
  });

  it("exports exactly the platform contract, which its readers parse (lib/platform/contract.ts)", () => {
    for (const [stack, region, awsRegion] of [
      ["eu-prod", "eu", "eu-central-1"],
      ["eu-staging", "eu", "eu-central-1"],
      ["us-prod", "us", "us-east-1"],
    ]) {
      const doc = JSON.parse(readFileSync(path.join(out, `${stack}.json`), "utf8"));
      expect(Object.keys(doc.outputs).sort()).toEqual(Object.keys(AwsPlatformContract.shape).sort());
      const contract = parsePlatformContract(doc.outputs, stack);
      expect(contract).toMatchObject({ kind: "aws", stack, region, aws: { region: awsRegion } });
      if (contract.kind !== "aws") throw new Error("not an AWS contract");
      expect(contract.database.connection).toMatchObject({ kind: "executor", region: awsRegion });
      expect(contract.redis).toMatchObject({ tls: true, adminSecretArn: expect.stringMatching(/^arn:aws:secretsmanager:/) });
      // The tenant-context key: the ARN of its secret, never the value (test/aws/tenant-context-key.test.ts).
      const keyArn = expect.stringMatching(
        new RegExp(`^arn:aws:secretsmanager:${awsRegion}:\\d{12}:secret:alphapulse/${stack}/tenant-context/${region}-1-`),
      );
      expect(contract.contextKeys).toEqual({
        current: { kid: `${region}-1`, secretArn: keyArn },
        keys: [{ kid: `${region}-1`, secretArn: keyArn }],
        readPolicyArn: expect.stringMatching(new RegExp(`^arn:aws:iam::\\d{12}:policy/${stack}-context-key-read$`)),
      });
      // The mocks give the key the value lib/synth/mocks.ts derives from its name: nowhere in the file.
      const mockKey = createHash("sha256").update(`context-key:${stack}-data-context-key-${region}-1`).digest("hex");
      expect(readFileSync(path.join(out, `${stack}.json`), "utf8")).not.toContain(mockKey);
      // Negative control: the same reader refuses it as another stack's outputs, or with an output missing.
      expect(() => parsePlatformContract(doc.outputs, "other")).toThrow("output `stack`");
      expect(() => parsePlatformContract({ ...doc.outputs, pgbouncer: undefined }, stack)).toThrow(
        `platform stack ${stack}: output \`pgbouncer\` is missing (expected an object)`,
      );
    }
  });

  it("each stack stays in its residency's region", () => {
    for (const [stack, region] of [
      ["eu-prod", "eu-central-1"],
      ["eu-staging", "eu-central-1"],
      ["us-prod", "us-east-1"],
    ]) {
      const doc = JSON.parse(readFileSync(path.join(out, `${stack}.json`), "utf8"));
      const providers = doc.resources.filter((r: { type: string }) => r.type === "pulumi:providers:aws");
      expect(providers.map((p: { inputs: { region: string } }) => p.inputs.region)).toEqual([region]);
    }
  });
});

describe("negative controls", () => {
  it("a program with a stray unencrypted volume and a world-open PostgreSQL port fails, naming rule and resource", async () => {
    const run = await synth(
      "--stack",
      "eu-prod",
      "--program",
      "test/aws/fixtures/bad-platform.ts",
      "--check",
      "--json",
      "--out",
      path.join(out, "bad.json"),
    );
    expect(run.code).toBe(1);
    const summary = JSON.parse(run.stdout) as Summary;
    const found = (summary.violations ?? []).map((v) => v.replace(/ \(urn:[^)]*\)$/, ""));
    expect([...found].sort()).toEqual(
      [
        '[encryption-at-rest] aws:ebs/volume:Volume "stray-volume": EBS volume is not encrypted (encrypted must be true)',
        '[no-world-ingress-to-data-ports] aws:ec2/securityGroup:SecurityGroup "open-postgres": ingress from 0.0.0.0/0 reaches data port(s) 5432',
        '[region-pinning] aws:ebs/volume:Volume "stray-volume": uses the default AWS provider: pass the stack\'s regional provider',
        '[region-pinning] aws:ec2/securityGroup:SecurityGroup "open-postgres": uses the default AWS provider: pass the stack\'s regional provider',
        '[stateful-protection] aws:ebs/volume:Volume "stray-volume": EBS volume takes no final snapshot (finalSnapshot must be true)',
        '[stateful-protection] aws:ebs/volume:Volume "stray-volume": stateful resource is not protected (protect: true)',
      ].sort(),
    );
    expect(summary.violations?.[0]).toMatch(/\(urn:pulumi:eu-prod::alphapulse-platform::[^)]+\)$/);

    // Determinism, from a second process: without the two stray resources the graph is eu-prod's, byte for byte.
    const bad = JSON.parse(readFileSync(path.join(out, "bad.json"), "utf8"));
    bad.resources = bad.resources.filter((r: { name: string }) => r.name !== "stray-volume" && r.name !== "open-postgres");
    expect(stableStringify(bad)).toBe(readFileSync(path.join(out, "eu-prod.json"), "utf8"));
  }, 60_000);

  it("an EU stack file with a US tenant fails before any resource, naming the key path", async () => {
    const dir = mkdtempSync(path.join(out, "stacks-"));
    const doc = parseYaml(readFileSync(path.join(ROOT, "stacks/Pulumi.eu-prod.yaml"), "utf8"));
    doc.config["alphapulse-platform:tenants"].push({
      id: "dd6ad784-7363-46b4-8594-14f8bf1eac3c",
      slug: "hudson-quant",
      tier: "pro",
      region: "us",
    });
    writeFileSync(path.join(dir, "Pulumi.eu-bad.yaml"), stringify(doc));
    const target = path.join(out, "eu-bad.json");
    const run = await synth("--stack", "eu-bad", "--stacks-dir", dir, "--out", target);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      "alphapulse-platform:tenants[2].region: tenant: a eu stack refuses tenants of another residency: hudson-quant (us)",
    );
    expect(existsSync(target)).toBe(false);
  }, 60_000);

  it("bad arguments exit 2", async () => {
    const [missing, typo, neither] = await Promise.all([synth("--stack", "nope"), synth("--stak", "eu-prod"), synth()]);
    expect(missing).toMatchObject({ code: 2, stderr: expect.stringContaining("synth: --stack: no stack file stacks/Pulumi.nope.yaml") });
    expect(typo).toMatchObject({ code: 2, stderr: expect.stringContaining("Unknown option '--stak'") });
    expect(neither).toMatchObject({ code: 2, stderr: expect.stringContaining("give exactly one of --stack <name> or --all") });
  }, 60_000);
});
