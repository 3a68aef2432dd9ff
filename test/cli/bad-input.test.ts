/**
 * Every entry point a user runs answers --help, and reports bad input the same way (cli/output.ts `printCommandError`):
 * exit 2, and with --json one document on stdout, `{ "error": { kind: "usage", message, field } }`,
 * naming the input at fault, with the synopsis in its own field rather than inside the message.
 * Each runs in its own process, as `npm run <script>` runs it.
 */
import { describe, expect, it } from "vitest";
import { runScript as run } from "../support/run-script";

describe("bad input at every entry point: exit 2, the field named, JSON with --json", () => {
  it.each<[string, string[], string]>([
    ["bin/tenancy.js", ["tenant", "list", "--bogus"], "--bogus"],
    ["scripts/tenant.ts", ["up", "Bad_Slug", "--tier", "pro", "--region", "eu"], "argument 1.slug"],
    ["scripts/rollout.ts", ["--concurrency", "0"], "--concurrency"],
    ["scripts/synth.ts", ["--stack", "nowhere"], "--stack"],
    ["scripts/local.ts", ["--bogus"], "--bogus"],
    ["scripts/local.ts", ["frob"], "command"],
    ["scripts/local.ts", ["status", "--stack", "nowhere"], "--stack"],
    ["scripts/local-services.ts", ["--bogus"], "--bogus"],
    ["scripts/local-services.ts", ["status", "--stack", "eu-prod"], "alphapulse-platform:kind"],
    ["scripts/ops.ts", ["--", "tenant", "list"], "--stack"],
    ["scripts/ops.ts", ["--stack", "nowhere", "--", "tenant", "list"], "--stack"],
    ["scripts/ops.ts", ["--stack", "eu-prod"], "command"],
    ["scripts/ops.ts", ["--stack", "eu-prod", "--bogus", "--", "tenant", "list"], "--bogus"],
  ])("%s %j names %s", async (script, args, field) => {
    const json = await run(script, [...args, "--json"]);
    expect(json.code, json.stderr).toBe(2);
    const { error } = JSON.parse(json.stdout);
    expect(error).toMatchObject({ kind: "usage", field });
    expect(error.message.startsWith(`${field}: `)).toBe(true);
    expect(error.message).not.toMatch(/usage:/);

    const human = await run(script, args);
    expect(human.code).toBe(2);
    expect(human.stdout).toBe("");
    expect(human.stderr).toMatch(new RegExp(`^[a-z-]+: ${field.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: `));
  });
});

describe("--help at every entry point: exit 0, the usage on stdout", () => {
  it.each<[string, RegExp]>([
    ["bin/tenancy.js", /usage: tenancy/],
    ["scripts/tenant.ts", /usage: npm run tenant/],
    ["scripts/rollout.ts", /usage: npm run rollout/],
    ["scripts/synth.ts", /npm run synth -- --stack/],
    ["scripts/local.ts", /npm run local -- status/],
    ["scripts/local-services.ts", /usage: npm run local:services/],
    ["scripts/ops.ts", /npm run ops -- --stack <stack>/],
  ])("%s --help", async (script, usage) => {
    const help = await run(script, ["--help"]);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(usage);
  });
});
