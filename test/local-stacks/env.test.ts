/**
 * `npm run local -- env <stack>`: the exports that point `tenancy` at a local region, so a newcomer
 * never types a DATABASE_URL by hand. The pure parts are exact; the command runs as npm runs it.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { regionEnvironment, shellExports } from "../../lib/local/region-services";
import { REPO_ROOT } from "../../lib/pulumi/env";
import { readLocalStackConfig } from "../../lib/stack-config/local";
import { runScript } from "../support/run-script";

describe("regionEnvironment", () => {
  const config = readLocalStackConfig(REPO_ROOT, "local-eu");

  it("names the region's PostgreSQL; REDIS_URL only once the region has its admin password", () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), "local-env-"));
    const withDir = { ...config, dataDir };
    expect(regionEnvironment(REPO_ROOT, "local-eu", withDir)).toEqual({
      DATABASE_URL: `postgres://postgres@127.0.0.1:${config.postgres.port}/${config.postgres.database}`,
    });
    mkdirSync(path.join(dataDir, "redis"));
    writeFileSync(path.join(dataDir, "redis", "admin-password"), "s3cret/+=\n");
    expect(regionEnvironment(REPO_ROOT, "local-eu", withDir).REDIS_URL).toBe(
      `redis://admin:${encodeURIComponent("s3cret/+=")}@127.0.0.1:${config.redis.port}`,
    );
  });

  it("renders exports a POSIX shell reads back exactly, quotes included", () => {
    const env = { DATABASE_URL: "postgres://postgres@127.0.0.1:1/db", ODD: "it's $HOME `x`" };
    const script = `${shellExports(env)}\nprintf '%s\\n' "$DATABASE_URL" "$ODD"`;
    const out = spawnSync("sh", ["-c", script], { encoding: "utf8" });
    expect(out.stdout).toBe(`${env.DATABASE_URL}\n${env.ODD}\n`);
  });
});

describe("npm run local -- env", () => {
  it("prints the exports (JSON with --json) and refuses anything but one known stack with exit 2", async () => {
    const shell = await runScript("scripts/local.ts", ["env", "local-us"]);
    expect(shell.code).toBe(0);
    expect(shell.stdout).toMatch(/^export DATABASE_URL='postgres:\/\/postgres@127\.0\.0\.1:\d+\/alphapulse'$/m);
    const json = await runScript("scripts/local.ts", ["env", "local-eu", "--json"]);
    expect(JSON.parse(json.stdout)).toMatchObject({ stack: "local-eu", env: { DATABASE_URL: expect.stringMatching(/^postgres:/) } });
    for (const args of [["env"], ["env", "local-eu", "local-us"], ["env", "nowhere"]]) {
      const bad = await runScript("scripts/local.ts", [...args, "--json"]);
      expect(bad.code, args.join(" ")).toBe(2);
      expect(JSON.parse(bad.stdout).error.field).toBe("stack");
    }
  });
});
