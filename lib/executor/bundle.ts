/**
 * The executor's artifact: lib/executor/handler.ts and everything it imports from npm (pg, zod, the
 * Secrets Manager client, the data layer) bundled by esbuild into one CommonJS file,
 * `.build/executor/index.js`, whose `handler` export is the Lambda entry point (`index.handler`).
 * components/aws/executor.ts deploys that file. Nothing is left to the runtime's own SDK copy: the
 * versions in package-lock.json are the versions that run.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";

/** Where the bundle goes, relative to the repository root (components/aws/executor.ts EXECUTOR_BUNDLE). */
export const EXECUTOR_BUNDLE_PATH = ".build/executor/index.js";

export interface BundleResult {
  file: string;
  bytes: number;
  sha256: string;
}

/** Builds the bundle from `repoRoot` into `outfile` (absolute, or relative to the root). */
export async function buildExecutorBundle(repoRoot: string, outfile: string = EXECUTOR_BUNDLE_PATH): Promise<BundleResult> {
  const { build } = await import("esbuild");
  const file = path.resolve(repoRoot, outfile);
  await build({
    absWorkingDir: repoRoot,
    entryPoints: [path.join(repoRoot, "lib/executor/handler.ts")],
    outfile: file,
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    minify: false,
    sourcemap: false,
    legalComments: "none",
    logLevel: "silent",
    // pg's optional native binding is never installed; requiring it is guarded in pg.
    external: ["pg-native"],
  });
  const content = readFileSync(file);
  return { file, bytes: content.length, sha256: createHash("sha256").update(content).digest("hex") };
}
