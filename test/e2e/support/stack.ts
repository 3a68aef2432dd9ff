/**
 * Real-engine stacks for the end-to-end tests: the repository's program run by the toolchain's
 * `pulumi` through the Automation API, with a file backend and PULUMI_HOME in a temporary directory.
 *
 * Each stack gets its own project directory: a temporary directory whose Pulumi.yaml, program,
 * tsconfig, package.json, lib/, components/ and node_modules are symlinks to the repository, and whose
 * stacks/ holds only the test's stack file. So the tests run exactly the program `npm run local` runs
 * (the engine, the Node.js language host, ts-node, the dynamic-provider host started in the project
 * directory), without writing into the repository's stacks/ while other tests read it.
 */
import { LocalWorkspace, PulumiCommand, type Stack } from "@pulumi/pulumi/automation";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { stringify } from "yaml";
import { CONFIG_NAMESPACE } from "../../../lib/stack-config/common";
import { findPulumiToolchain, pulumiEnvironment, REPO_ROOT, type PulumiToolchain } from "../../../lib/pulumi/env";

/** The toolchain, or why there is none (the tests skip with that reason). Never builds: setup.sh does. */
export const toolchainLookup = findPulumiToolchain();
export const toolchain: PulumiToolchain | undefined = toolchainLookup.ok ? toolchainLookup.toolchain : undefined;
export const skipReason = toolchainLookup.ok ? "" : toolchainLookup.reason;

/** What a test project directory links from the repository. */
const PROJECT_ENTRIES = ["Pulumi.yaml", "index.ts", "package.json", "tsconfig.json", "lib", "components", "node_modules"];

export interface TestStack {
  stack: Stack;
  name: string;
  /** The project directory (symlinks + stacks/). */
  projectDir: string;
  /** The stack's checkpoint in the file backend, as the engine wrote it (secrets encrypted). */
  stateFile: string;
  /** Rewrites the stack's config file (values under the project namespace, unprefixed). */
  writeConfig(values: Record<string, unknown>): void;
}

/** A stack name no other run uses. */
export function uniqueStackName(prefix = "e2e"): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

export interface OpenTestStack extends TestStack {
  /**
   * Destroys and removes the stack and deletes its directories; safe to call twice. A stack whose
   * destroy is refused (tenants still registered: docs/data-safety.md) is removed with `--force`;
   * its throwaway cluster is the test's to remove.
   */
  dispose(): Promise<void>;
}

/** Creates a stack with `config` in its own project directory and state backend. Pair with `dispose()`. */
export async function openStack(config: Record<string, unknown>): Promise<OpenTestStack> {
  if (!toolchain) throw new Error(`no Pulumi toolchain: ${skipReason}`);
  const root = mkdtempSync(path.join(os.tmpdir(), "alphapulse-e2e-"));
  const projectDir = path.join(root, "project");
  mkdirSync(path.join(projectDir, "stacks"), { recursive: true });
  for (const entry of PROJECT_ENTRIES) symlinkSync(path.join(REPO_ROOT, entry), path.join(projectDir, entry));
  const name = uniqueStackName();
  const stackFile = path.join(projectDir, "stacks", `Pulumi.${name}.yaml`);
  const writeConfig = (values: Record<string, unknown>) => {
    const prefixed = Object.fromEntries(Object.entries(values).map(([k, v]) => [`${CONFIG_NAMESPACE}:${k}`, v]));
    // Keep the encryption salt that `stack init` added.
    const salt = readSalt(stackFile);
    writeFileSync(stackFile, stringify({ config: prefixed, ...(salt ? { encryptionsalt: salt } : {}) }));
  };
  writeConfig(config);

  const envVars = pulumiEnvironment(REPO_ROOT, {
    stateDir: path.join(root, "state"),
    homeDir: path.join(root, "home"),
    binDir: toolchain.binDir,
  });
  const pulumiCommand = await PulumiCommand.get({ root: toolchain.root });
  const workspace = await LocalWorkspace.create({ workDir: projectDir, pulumiCommand, envVars });
  await workspace.createStack(name);
  const stack = await LocalWorkspace.selectStack({ stackName: name, workDir: projectDir }, { pulumiCommand, envVars });
  let disposed = false;
  return {
    stack,
    name,
    projectDir,
    stateFile: path.join(root, "state", ".pulumi", "stacks", "alphapulse-platform", `${name}.json`),
    writeConfig,
    async dispose() {
      if (disposed) return;
      disposed = true;
      try {
        await stack.destroy({ color: "never" });
        await workspace.removeStack(name);
      } catch {
        await workspace.removeStack(name, { force: true }).catch(() => {});
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    },
  };
}

/**
 * Creates a stack with `config`, runs `fn`, and always destroys and removes the stack and its
 * directories afterwards, whatever `fn` did (pulumi/pulumi sdk/nodejs/tests/automation/util.ts).
 */
export async function withStack<T>(config: Record<string, unknown>, fn: (t: TestStack) => Promise<T>): Promise<T> {
  const t = await openStack(config);
  try {
    return await fn(t);
  } finally {
    await t.dispose();
  }
}

function readSalt(file: string): string | undefined {
  return existsSync(file) ? /^encryptionsalt: (.+)$/m.exec(readFileSync(file, "utf8"))?.[1] : undefined;
}
