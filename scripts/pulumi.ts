/**
 * `npm run pulumi -- <args>`: the toolchain's `pulumi` (built by scripts/install-pulumi.sh when
 * missing) with the repository's offline environment (lib/pulumi/env.ts), run from the repository
 * root. `npm run pulumi -- preview --stack local-eu` just works; the exit code is pulumi's.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { findPulumiToolchain, pulumiEnvironment, REPO_ROOT } from "../lib/pulumi/env";

// The built toolchain when it is there (no subprocess); otherwise build it (scripts/install-pulumi.sh).
const found = findPulumiToolchain();
const lookup = found.ok ? found : findPulumiToolchain({ build: true });
if (!lookup.ok) {
  process.stderr.write(`pulumi: ${lookup.reason}\n`);
  process.exit(1);
}
const { binDir } = lookup.toolchain;
const child = spawn(path.join(binDir, "pulumi"), process.argv.slice(2), {
  cwd: REPO_ROOT,
  stdio: "inherit",
  env: { ...process.env, ...pulumiEnvironment(REPO_ROOT, { binDir }) },
});
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 128 + 1 : 1)));
