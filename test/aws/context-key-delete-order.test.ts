/**
 * Why the AWS context key's secret depends on its key (components/aws/tenant-context-key-secret.ts),
 * on the real engine with stand-in resources (an AWS stack cannot run here): a "key" whose delete
 * would retire it, and a protected "secret". When both leave the program — a kid removed from the
 * config — the preview fails at the protected secret, and an `up` without a preview (what the
 * Automation API runs) fails there too; with the secret depending on the key the key's delete never
 * runs, so a config edit cannot retire a key. Negative control: without the dependency, the same `up`
 * deletes (retires) the key while failing at the secret.
 * Skipped, with the reason, where there is no toolchain; under CI that fails (test/support/toolchain.ts).
 */
import * as pulumi from "@pulumi/pulumi";
import { LocalWorkspace, PulumiCommand } from "@pulumi/pulumi/automation";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { findPulumiToolchain, pulumiEnvironment, REPO_ROOT } from "../../lib/pulumi/env";
import { describeWithToolchain } from "../support/toolchain";

const lookup = findPulumiToolchain();
const root = mkdtempSync(path.join(os.tmpdir(), "context-key-delete-order-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A stand-in whose delete appends its name to `log` (what a retirement would be). */
function recorder(name: string, log: string): pulumi.dynamic.ResourceProvider {
  return {
    create: () => Promise.resolve({ id: name, outs: {} }),
    delete: () => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require("node:fs").appendFileSync(log, `${name}\n`);
      return Promise.resolve();
    },
  };
}

class StandIn extends pulumi.dynamic.Resource {
  constructor(provider: pulumi.dynamic.ResourceProvider, name: string, opts: pulumi.CustomResourceOptions = {}) {
    super(provider, name, {}, opts);
  }
}

/** Declares key + protected secret, then removes both; returns the preview's and the up's outcome and what was deleted. */
async function removeBoth(secretDependsOnKey: boolean) {
  if (!lookup.ok) throw new Error(lookup.reason);
  const name = secretDependsOnKey ? "with-dependency" : "without-dependency";
  const log = path.join(root, `${name}.log`);
  let declared = true;
  const program = () => {
    if (!declared) return Promise.resolve();
    const key = new StandIn(recorder("key", log), "key");
    new StandIn(recorder("secret", log), "secret", { protect: true, dependsOn: secretDependsOnKey ? [key] : [] });
    return Promise.resolve();
  };
  const envVars = pulumiEnvironment(REPO_ROOT, {
    stateDir: path.join(root, name, "state"),
    homeDir: path.join(root, name, "home"),
    binDir: lookup.toolchain.binDir,
  });
  // Its own work directory: the repository's Pulumi.yaml would put the stack files into stacks/.
  const workDir = path.join(root, name, "work");
  mkdirSync(workDir, { recursive: true });
  const pulumiCommand = await PulumiCommand.get({ root: lookup.toolchain.root });
  const stack = await LocalWorkspace.createOrSelectStack(
    { stackName: name, projectName: "delete-order", program },
    { pulumiCommand, envVars, workDir },
  );
  await stack.up();
  declared = false;
  const outcome = (run: Promise<unknown>) =>
    run.then(
      () => "succeeded",
      (err: Error) => (/cannot be deleted/.test(err.message) ? "refused: protected" : err.message),
    );
  const preview = await outcome(stack.preview());
  const up = await outcome(stack.up());
  return { preview, up, deleted: existsSync(log) ? readFileSync(log, "utf8").trim().split("\n") : [] };
}

describeWithToolchain(lookup)("a removed context key on AWS stops at its protected secret (real engine)", { timeout: 300_000 }, () => {
  it("the secret depends on the key: preview and up refuse, the key is never deleted", async () => {
    expect(await removeBoth(true)).toEqual({ preview: "refused: protected", up: "refused: protected", deleted: [] });
  });

  it("negative control: without the dependency the up refuses too, but has already deleted the key", async () => {
    expect(await removeBoth(false)).toEqual({ preview: "refused: protected", up: "refused: protected", deleted: ["key"] });
  });
});
