/**
 * The offline environment every Pulumi run in this repository uses — `npm run pulumi`, `npm run
 * local`, the Automation API scripts and the end-to-end tests — kept in one place:
 *
 *   PULUMI_BACKEND_URL            file:// state under .pulumi-local/state (no Pulumi Cloud)
 *   PULUMI_CONFIG_PASSPHRASE      passphrase secrets provider; the local stacks use LOCAL_DEV_PASSPHRASE
 *                                 unless PULUMI_CONFIG_PASSPHRASE(_FILE) is already set
 *   PULUMI_HOME                   .pulumi-local/home (plugins, credentials, workspace settings)
 *   PULUMI_SKIP_UPDATE_CHECK      no version check against the network
 *   PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION
 *                                 a missing plugin fails at once instead of trying a download
 *   PULUMI_NODEJS_TRANSPILE_ONLY  the SDK's vendored ts-node only transpiles; `npm run typecheck` checks
 *   PATH                          the toolchain's bin directory first (pulumi, the Node.js language
 *                                 host and the dynamic-provider plugin live there)
 *
 * No Pulumi import: the scripts read it before any Pulumi code runs.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/** The Pulumi CLI version the repository pins (the last one whose Node.js SDK supports Node 20). */
export const PULUMI_VERSION = "3.248.0";

/**
 * The passphrase of the local stacks' secrets. Not a secret: it protects throwaway local state only
 * (loopback servers, generated passwords). Real stacks set PULUMI_CONFIG_PASSPHRASE(_FILE) themselves.
 */
export const LOCAL_DEV_PASSPHRASE = "alphapulse-local-dev-only";

/** The repository root (the directory holding Pulumi.yaml). */
export const REPO_ROOT = path.resolve(__dirname, "..", "..");

/** Where the offline backend and Pulumi's home live for a checkout: `<repo>/.pulumi-local` (gitignored). */
export function localPulumiDir(repoRoot: string = REPO_ROOT): string {
  return path.join(repoRoot, ".pulumi-local");
}

/** The default toolchain directory that scripts/install-pulumi.sh builds into. */
export function defaultToolchainBinDir(version = PULUMI_VERSION): string {
  const root = process.env.ALPHAPULSE_TOOLCHAIN_DIR ?? path.join(os.homedir(), ".cache", "alphapulse-toolchain");
  return path.join(root, `pulumi-${version}`, "bin");
}

export interface PulumiEnvironmentOptions {
  /** Directory of the file backend; default `<repo>/.pulumi-local/state`. */
  stateDir?: string;
  /** PULUMI_HOME; default `<repo>/.pulumi-local/home`. */
  homeDir?: string;
  /** Directory holding `pulumi` and `pulumi-language-nodejs`; default: the built toolchain when present. */
  binDir?: string;
  /** Passphrase for the secrets provider; default: the caller's PULUMI_CONFIG_PASSPHRASE(_FILE), else LOCAL_DEV_PASSPHRASE. */
  passphrase?: string;
  /** The environment to extend; default `process.env`. */
  base?: NodeJS.ProcessEnv;
}

/**
 * The variables to add to a Pulumi process (CLI or Automation API `envVars`). Returns only what it
 * sets, so callers merge it over their own environment: `{ ...process.env, ...pulumiEnvironment(root) }`.
 * Creates the state and home directories when missing (the file backend needs its directory).
 */
export function pulumiEnvironment(repoRoot: string = REPO_ROOT, options: PulumiEnvironmentOptions = {}): Record<string, string> {
  const base = options.base ?? process.env;
  const local = localPulumiDir(repoRoot);
  const stateDir = path.resolve(options.stateDir ?? path.join(local, "state"));
  const homeDir = path.resolve(options.homeDir ?? path.join(local, "home"));
  for (const dir of [stateDir, homeDir]) mkdirSync(dir, { recursive: true });
  const env: Record<string, string> = {
    PULUMI_BACKEND_URL: `file://${stateDir}`,
    PULUMI_HOME: homeDir,
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_NODEJS_TRANSPILE_ONLY: "true",
  };
  if (options.passphrase !== undefined) env.PULUMI_CONFIG_PASSPHRASE = options.passphrase;
  else if (base.PULUMI_CONFIG_PASSPHRASE === undefined && base.PULUMI_CONFIG_PASSPHRASE_FILE === undefined) {
    env.PULUMI_CONFIG_PASSPHRASE = LOCAL_DEV_PASSPHRASE;
  }
  const binDir = options.binDir ?? (existsSync(path.join(defaultToolchainBinDir(), "pulumi")) ? defaultToolchainBinDir() : undefined);
  const pathEntries = [binDir];
  // The dynamic-provider plugin ships in the npm package; install-pulumi.sh copies it next to `pulumi`
  // (where the engine takes it as bundled). Only when it is not there, find it on PATH instead.
  if (!binDir || !existsSync(path.join(binDir, "pulumi-resource-pulumi-nodejs"))) {
    pathEntries.push(path.join(repoRoot, "node_modules", "@pulumi", "pulumi"));
  }
  env.PATH = [...pathEntries.filter((p): p is string => !!p), base.PATH ?? ""].join(path.delimiter);
  return env;
}

export interface PulumiToolchain {
  /** Directory holding `pulumi`, `pulumi-language-nodejs` and `pulumi-resource-pulumi-nodejs`. */
  binDir: string;
  /** `PulumiCommand.get({ root })` expects `<root>/bin/pulumi`. */
  root: string;
  /** What `pulumi version` printed, e.g. "v3.248.0". */
  version: string;
}

export type ToolchainLookup = { ok: true; toolchain: PulumiToolchain } | { ok: false; reason: string };

/**
 * Finds the toolchain, building it when `build` is set (scripts/install-pulumi.sh: minutes on a cold
 * machine, instant afterwards). Without `build`, only an existing toolchain is used: tests call it
 * this way and skip with `reason` when there is none.
 */
export function findPulumiToolchain(options: { build?: boolean; repoRoot?: string } = {}): ToolchainLookup {
  const repoRoot = options.repoRoot ?? REPO_ROOT;
  let binDir: string | undefined;
  if (options.build) {
    const run = spawnSync("bash", [path.join(repoRoot, "scripts", "install-pulumi.sh")], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    });
    if (run.status === 3)
      return { ok: false, reason: "Go is not installed, so the Pulumi CLI cannot be built (scripts/install-pulumi.sh exit 3)" };
    if (run.status !== 0) return { ok: false, reason: `scripts/install-pulumi.sh failed with exit ${run.status}` };
    binDir = run.stdout.trim().split("\n").pop();
  } else {
    const candidates = [defaultToolchainBinDir(), ...(process.env.PATH ?? "").split(path.delimiter)];
    binDir = candidates.find((dir) => dir && existsSync(path.join(dir, "pulumi")) && existsSync(path.join(dir, "pulumi-language-nodejs")));
    if (!binDir) {
      const go = spawnSync("go", ["version"], { stdio: "ignore" }).status === 0;
      return {
        ok: false,
        reason: go
          ? `no Pulumi toolchain built yet: run \`bash scripts/install-pulumi.sh\` (builds pulumi v${PULUMI_VERSION} from Go modules)`
          : "Go is not installed and no pulumi is on PATH, so the real Pulumi engine is unavailable",
      };
    }
  }
  if (!binDir) return { ok: false, reason: "scripts/install-pulumi.sh printed no directory" };
  const version = spawnSync(path.join(binDir, "pulumi"), ["version"], {
    encoding: "utf8",
    env: { ...process.env, PULUMI_SKIP_UPDATE_CHECK: "true" },
  });
  if (version.status !== 0) return { ok: false, reason: `${binDir}/pulumi version failed: ${version.stderr.trim()}` };
  return { ok: true, toolchain: { binDir, root: path.dirname(binDir), version: version.stdout.trim() } };
}
