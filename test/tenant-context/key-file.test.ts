/** The 0600 file a local region hands its services with their tenant-context key (ADR-005), and `npm run local -- env`. */
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { contextKeyFile, regionEnvironment } from "../../lib/local/region-services";
import { REPO_ROOT } from "../../lib/pulumi/env";
import { readLocalStackConfig } from "../../lib/stack-config/local";
import { ContextKeyError } from "../../lib/tenant-context/keys";
import { CONTEXT_KEY_FILE_ENV, readContextKeyFile, writeContextKeyFile } from "../../lib/tenant-context/key-file";
import type { ContextKey } from "../../lib/tenant-context/proof";

describe("the key file a local region hands its services", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "ctxkey-file-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const key: ContextKey = { kid: "local-1", region: "eu", secret: "ab".repeat(32) };

  it("is written 0600 and read back; a file others may read is refused (negative control)", () => {
    const file = contextKeyFile(path.join(dir, "region"));
    writeContextKeyFile(file, key);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readContextKeyFile(file)).toEqual(key);
    writeContextKeyFile(file, { ...key, kid: "local-2" }); // replaced, still 0600
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readContextKeyFile(file).kid).toBe("local-2");

    chmodSync(file, 0o644);
    expect(() => readContextKeyFile(file)).toThrow(/readable by others/);
    const bad = path.join(dir, "bad.json");
    writeFileSync(bad, JSON.stringify({ ...key, secret: "short" }), { mode: 0o600 });
    expect(() => readContextKeyFile(bad)).toThrow(ContextKeyError);
  });

  it("npm run local -- env names it once it exists (its path, never its content)", () => {
    const config = { ...readLocalStackConfig(REPO_ROOT, "local-eu"), dataDir: path.join(dir, "env") };
    expect(regionEnvironment(REPO_ROOT, "local-eu", config)[CONTEXT_KEY_FILE_ENV]).toBeUndefined();
    writeContextKeyFile(contextKeyFile(config.dataDir), key);
    const env = regionEnvironment(REPO_ROOT, "local-eu", config);
    expect(env[CONTEXT_KEY_FILE_ENV]).toBe(path.join(config.dataDir, "context-key.json"));
    expect(JSON.stringify(env)).not.toContain(key.secret);
  });
});
