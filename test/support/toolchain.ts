/**
 * The suites that run the real Pulumi engine need the toolchain scripts/setup.sh builds. Where there
 * is none (no Go on a developer's machine) they are skipped, their title saying why. Under CI
 * (`CI=true`, which .ci/run sets) a missing toolchain is a failure instead: a CI run that quietly
 * skipped the engine suites would pass while proving nothing about them.
 */
import { describe, it, type TestOptions } from "vitest";
import type { ToolchainLookup } from "../../lib/pulumi/env";

/** True when the environment says this is a CI run (`CI=true` or `CI=1`). */
export function isCi(env: NodeJS.ProcessEnv = process.env): boolean {
  return ["true", "1"].includes((env.CI ?? "").toLowerCase());
}

type Suite = () => void;

/**
 * `describe` for an engine suite: runs it with a toolchain; without one, skips it (title + reason)
 * or, under CI, replaces it with one failing test that names the reason.
 */
export function describeWithToolchain(lookup: ToolchainLookup, env: NodeJS.ProcessEnv = process.env) {
  function suite(name: string, fn: Suite): void;
  function suite(name: string, options: TestOptions, fn: Suite): void;
  function suite(name: string, optionsOrFn: TestOptions | Suite, maybeFn?: Suite): void {
    const options = typeof optionsOrFn === "function" ? {} : optionsOrFn;
    const fn = typeof optionsOrFn === "function" ? optionsOrFn : maybeFn!;
    if (lookup.ok) {
      describe(name, options, fn);
    } else if (isCi(env)) {
      describe(name, () => {
        it("has the Pulumi toolchain (under CI a missing toolchain fails, it is not skipped)", () => {
          throw new Error(`no Pulumi toolchain under CI: ${lookup.reason}`);
        });
      });
    } else {
      describe.skip(`${name} — skipped: ${lookup.reason}`, options, fn);
    }
  }
  return suite;
}
