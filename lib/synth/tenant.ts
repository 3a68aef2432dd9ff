/**
 * Offline synthesis of a tenant stack (`npm run tenant -- synth <slug> ... --platform <aws stack>`):
 * the platform stack is synthesised first (`npm run synth`, in a child process: the runtime's
 * state is global) and its outputs become the StackReference's outputs under the mocks; then the
 * tenant program (components/tenant/program.ts, the same one `npm run tenant -- up` runs) runs
 * under the same mocks in this process and its graph is written in the synth format
 * (lib/synth/mocks.ts). No engine, no backend, no cloud credentials.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import type { TenantStackSpec } from "../tenant-stacks/spec";
import { platformReference } from "../tenant-stacks/spec";
import { TENANT_PROJECT, tenantStackName } from "../tenant-stacks/names";
import type { SynthDocument } from "./mocks";

const REPO_ROOT = path.resolve(__dirname, "..", "..");

/** The synth document of a platform stack (scripts/synth.ts in a child process). Rejects with its error output. */
export function synthesizePlatformStack(stack: string, root = REPO_ROOT): Promise<SynthDocument> {
  return new Promise((resolve, reject) => {
    const args = [path.join(root, "node_modules/tsx/dist/cli.mjs"), path.join(root, "scripts/synth.ts"), "--stack", stack, "--out", "-"];
    const child = spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`synth of platform stack ${stack} failed (exit ${code}): ${stderr.trim() || stdout.trim()}`));
      try {
        resolve(JSON.parse(stdout) as SynthDocument);
      } catch {
        reject(new Error(`synth of platform stack ${stack} printed no JSON document`));
      }
    });
  });
}

/**
 * Runs the tenant program for `spec` under mocks whose StackReference answers with `platformOutputs`.
 * Once per process (the Pulumi runtime's state is global).
 */
export async function synthesizeTenantStack(
  spec: TenantStackSpec,
  platformOutputs: Record<string, unknown>,
  options: { accountId?: string } = {},
): Promise<SynthDocument> {
  const pulumi = await import("@pulumi/pulumi");
  const { PlatformMocks, startRecording } = await import("./mocks.js");
  const { tenantProgram } = await import("../../components/tenant/program.js");
  const stack = tenantStackName(spec.slug);
  const recording = await startRecording(
    new PlatformMocks({ accountId: options.accountId, stackOutputs: { [platformReference(spec)]: platformOutputs } }),
    TENANT_PROJECT,
    stack,
  );
  await pulumi.runtime.runInPulumiStack(tenantProgram(spec));
  await recording.settle();
  const resources = recording.resources();
  const stackResource = resources.find((r) => r.type === "pulumi:pulumi:Stack");
  return {
    project: TENANT_PROJECT,
    stack,
    config: {},
    resources,
    outputs: (stackResource && recording.outputs(stackResource.urn)) ?? {},
  };
}
