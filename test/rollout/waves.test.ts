import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { PlatformStack } from "../../lib/stack-config/platform-stacks";
import { FileStateStore, newState, record, RolloutStateError } from "../../lib/rollout/state";
import { defaultWaveTokens, resolveWaves, WaveError } from "../../lib/rollout/waves";

const STACKS: PlatformStack[] = [
  { stack: "local-eu", kind: "local", region: "eu", environment: "local" },
  { stack: "local-us", kind: "local", region: "us", environment: "local" },
  { stack: "eu-staging", kind: "aws", region: "eu", environment: "staging" },
  { stack: "eu-prod", kind: "aws", region: "eu", environment: "prod" },
  { stack: "us-prod", kind: "aws", region: "us", environment: "prod" },
];

describe("waves", () => {
  it.each([
    [
      "local",
      ["eu", "us"],
      [
        ["eu", ["local-eu"]],
        ["us", ["local-us"]],
      ],
    ],
    [
      "prod",
      ["staging", "eu", "us"],
      [
        ["staging", ["eu-staging"]],
        ["eu", ["eu-prod"]],
        ["us", ["us-prod"]],
      ],
    ],
    [
      "local",
      ["local-us", "eu"],
      [
        ["local-us", ["local-us"]],
        ["eu", ["local-eu"]],
      ],
    ],
    ["prod", ["prod"], [["prod", ["eu-prod", "us-prod"]]]],
  ])("in %s, %j → %j", (environment, tokens, expected) => {
    expect(resolveWaves(tokens, STACKS, environment)).toEqual(
      (expected as [string, string[]][]).map(([name, stacks]) => ({ name, stacks })),
    );
  });

  it("an environment token names that environment's stacks whatever the target environment", () => {
    expect(resolveWaves(["staging"], STACKS, "local")).toEqual([{ name: "staging", stacks: ["eu-staging"] }]);
  });

  it.each([
    [["us"], "staging", /wave "us" names no platform stack \(environment "staging"/],
    [["mars"], "local", /wave "mars" names no platform stack/],
    [["eu", "local-eu"], "local", /platform stack local-eu is in wave "eu" and again in wave "local-eu"/],
    [[], "local", /no waves/],
  ])("%j in %s is refused", (tokens, environment, error) => {
    expect(() => resolveWaves(tokens, STACKS, environment)).toThrow(WaveError);
    expect(() => resolveWaves(tokens, STACKS, environment)).toThrow(error);
  });

  it("defaults: staging first for prod, the regions of the environment otherwise", () => {
    expect(defaultWaveTokens(STACKS, "prod")).toEqual(["staging", "eu", "us"]);
    expect(defaultWaveTokens(STACKS, "local")).toEqual(["eu", "us"]);
    expect(defaultWaveTokens(STACKS, "staging")).toEqual(["eu"]);
  });
});

describe("the state file", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "rollout-state-"));

  it("round-trips through a file, replaced atomically", () => {
    const store = new FileStateStore(path.join(dir, "nested", "state.json"));
    expect(store.load()).toBeUndefined();
    const state = record(
      newState("r1", "local", [{ name: "eu", stacks: ["local-eu"] }], new Date(0)),
      "platform:local-eu",
      { status: "done", changes: { same: 3 } },
      new Date(1000),
    );
    store.save(state);
    expect(store.load()).toEqual(state);
    expect(JSON.parse(readFileSync(store.location, "utf8")).steps["platform:local-eu"]).toEqual({
      status: "done",
      changes: { same: 3 },
      at: "1970-01-01T00:00:01.000Z",
    });
  });

  it("lets one rollout at a time hold it; the lock goes with the release", () => {
    const store = new FileStateStore(path.join(dir, "locked", "state.json"));
    const release = store.lock();
    expect(JSON.parse(readFileSync(`${store.location}.lock`, "utf8"))).toMatchObject({ pid: process.pid });
    expect(() => new FileStateStore(store.location).lock()).toThrow(
      new RegExp(
        `another rollout is running with .*state\\.json \\(pid ${process.pid}, since .*\\): wait for it to finish, or remove .*state\\.json\\.lock`,
      ),
    );
    release();
    expect(existsSync(`${store.location}.lock`)).toBe(false);
    new FileStateStore(store.location).lock()();
  });

  it("takes over a lock whose process is gone, and counts an unreadable one as held", () => {
    const store = new FileStateStore(path.join(dir, "stale", "state.json"));
    store.lock()();
    const gone = spawnSync(process.execPath, ["-e", ""]).pid; // exited by now
    writeFileSync(`${store.location}.lock`, JSON.stringify({ pid: gone, since: "2026-11-26T00:00:00Z" }));
    const release = store.lock();
    expect(JSON.parse(readFileSync(`${store.location}.lock`, "utf8")).pid).toBe(process.pid);
    release();
    writeFileSync(`${store.location}.lock`, "");
    expect(() => store.lock()).toThrow(/another rollout is running with .* \(unknown process\)/);
  });

  it("refuses a file that is not a rollout state, saying what to do", () => {
    const file = path.join(dir, "bad.json");
    writeFileSync(file, "{ not json");
    expect(() => new FileStateStore(file).load()).toThrow(RolloutStateError);
    writeFileSync(file, JSON.stringify({ version: 9 }));
    expect(() => new FileStateStore(file).load()).toThrow(/is not a rollout state file .* move it away or pass --restart/);
  });
});
