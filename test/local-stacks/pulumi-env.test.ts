import path from "node:path";
import { describe, expect, it } from "vitest";
import { LOCAL_DEV_PASSPHRASE, pulumiEnvironment } from "../../lib/pulumi/env";
import os from "node:os";
import { mkdtempSync, rmSync } from "node:fs";

describe("pulumiEnvironment", () => {
  const root = mkdtempSync(path.join(os.tmpdir(), "pulumi-env-"));
  const bin = path.join(root, "bin");

  it("sets the offline environment under the repository's .pulumi-local", () => {
    const env = pulumiEnvironment(root, { binDir: bin, base: { PATH: "/usr/bin" } });
    expect(env).toEqual({
      PULUMI_BACKEND_URL: `file://${root}/.pulumi-local/state`,
      PULUMI_HOME: `${root}/.pulumi-local/home`,
      PULUMI_SKIP_UPDATE_CHECK: "true",
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
      PULUMI_NODEJS_TRANSPILE_ONLY: "true",
      PULUMI_CONFIG_PASSPHRASE: LOCAL_DEV_PASSPHRASE,
      // No dynamic-provider script next to this pulumi: found in the npm package instead.
      PATH: [bin, `${root}/node_modules/@pulumi/pulumi`, "/usr/bin"].join(path.delimiter),
    });
  });

  it("keeps a passphrase the caller set, and takes explicit directories", () => {
    const env = pulumiEnvironment(root, {
      base: { PULUMI_CONFIG_PASSPHRASE_FILE: "/run/secret" },
      stateDir: `${root}/s`,
      homeDir: `${root}/h`,
      binDir: bin,
    });
    expect(env.PULUMI_CONFIG_PASSPHRASE).toBeUndefined();
    expect(env.PULUMI_BACKEND_URL).toBe(`file://${root}/s`);
    expect(env.PULUMI_HOME).toBe(`${root}/h`);
    expect(pulumiEnvironment(root, { passphrase: "p", binDir: bin }).PULUMI_CONFIG_PASSPHRASE).toBe("p");
    rmSync(root, { recursive: true, force: true });
  });
});
