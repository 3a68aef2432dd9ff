/**
 * `npm run pulumi -- <args>`: the toolchain's `pulumi` (built by scripts/install-pulumi.sh when
 * missing) with the repository's offline environment (lib/pulumi/env.ts), run from the repository
 * root. `npm run pulumi -- preview --stack local-eu` just works; the exit code is pulumi's. Every
 * argument is pulumi's (no flags of our own, so no parsing here); the end of the process is the
 * runner's (cli/runner.ts).
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { CommandFailure } from "../cli/output";
import { guard, runMain } from "../cli/runner";
import { findPulumiToolchain, pulumiEnvironment, REPO_ROOT } from "../lib/pulumi/env";

async function pulumi(argv: string[]): Promise<number> {
  // The built toolchain when it is there (no subprocess); otherwise build it (scripts/install-pulumi.sh).
  const found = findPulumiToolchain();
  const lookup = found.ok ? found : findPulumiToolchain({ build: true });
  if (!lookup.ok) throw new CommandFailure({ kind: "toolchain", message: lookup.reason });
  const { binDir } = lookup.toolchain;
  const child = spawn(path.join(binDir, "pulumi"), argv, {
    cwd: REPO_ROOT,
    stdio: "inherit",
    env: { ...process.env, ...pulumiEnvironment(REPO_ROOT, { binDir }) },
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 + 1 : 1)));
  });
}

// Not guard's --json: with pulumi's own flags, "--json" is pulumi's, and so are its errors.
runMain((argv) => guard("pulumi", [], () => pulumi(argv)));
