/**
 * An entry point run as `npm run <script>` runs it: the file under node with tsx, in its own
 * process, from the repository root, its output captured. No vitest import, so benchmarks can use it.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { REPO_ROOT } from "../../lib/pulumi/env";

export interface ScriptRun {
  code: number | null;
  stdout: string;
  stderr: string;
  wallMs: number;
}

/** Runs `<script> <args…>` (a path from the repository root) with `env` added to this process's environment. */
export function runScript(script: string, args: string[], env: Record<string, string> = {}): Promise<ScriptRun> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(REPO_ROOT, script), ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code, stdout, stderr, wallMs: performance.now() - started }));
  });
}
