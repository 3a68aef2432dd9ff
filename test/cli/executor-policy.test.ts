/**
 * cli/executor-policy.ts, the table of which `tenancy` commands run inside the database executor
 * (`npm run ops`): every command has a row (a new command is refused until someone decides), and
 * each refusal names the argument at fault. Pure.
 */
import { describe, expect, it } from "vitest";
import { commands } from "../../cli/commands";
import { EXECUTOR_POLICY, executorRefusal, type ExecutorAbilities } from "../../cli/executor-policy";
import type { Flags } from "../../cli/command";

describe("which tenancy commands run inside the executor", () => {
  it("has a row for every command, and none for a command that does not exist", () => {
    const words = commands.map((c) => c.words.join(" ")).sort();
    expect(Object.keys(EXECUTOR_POLICY).sort()).toEqual(words);
    expect(executorRefusal(["tenant", "teleport"], {})).toMatchObject({ field: "command" });
  });

  it.each<[string, Flags, string | undefined, ExecutorAbilities?]>([
    ["tenant graduate", {}, undefined],
    ["tenant demote", {}, undefined],
    ["tenant create", { tier: "pro", region: "eu" }, undefined],
    ["tenant list", {}, undefined],
    ["tenant suspend", {}, undefined],
    ["tenant suspend", { "redis-url": "redis://a:b@h:6379" }, "--redis-url"],
    ["tenant purge", { "dry-run": true }, undefined],
    ["tenant purge", { "redis-url": "redis://a:b@h:6379" }, "--redis-url"],
    ["tenant delete", {}, "--export-dir"],
    ["tenant delete", { "export-dir": "/tmp/x" }, "--export-dir"],
    ["tenant delete", { "skip-export": true }, undefined],
    ["tenant delete", { "dry-run": true }, undefined],
    ["tenant delete", { "skip-export": true, "redis-url": "redis://h" }, "--redis-url"],
    ["tenant export", { out: "acme.json" }, "--out"],
    ["tenant import", { in: "acme.json" }, "--in"],
    ["tenant restore", { "as-of": "2026-01-01", "pgbackrest-config": "/etc/pgbackrest.conf" }, "--pgbackrest-config"],
    ["pgbouncer render", { out: "/etc/pgbouncer" }, "--out"],
    ["cache grant", { "redis-url": "redis://h" }, "--redis-url"],
    ["cache usage", {}, "--redis-url"],
    ["context-key install", { "secret-env": "KEY" }, "--secret-env"],
    ["context-key list", {}, undefined],
    ["seed", { "rows-per-tenant": "10" }, "command"],
    ["top", {}, undefined],
    ["top", { watch: "5" }, "--watch"],
    ["slow", { since: "1h" }, undefined],
    ["slow", { since: "1h", "log-file": "/var/log/pg.log" }, "--log-file"],
    ["migrate", { "dry-run": true }, undefined],
    ["audit", {}, undefined],
    ["tenant list", { "database-url": "postgres://x@h/db" }, "--database-url"],
    // An executor with the region's export bucket keeps the offboarding export there; never in a directory.
    ["tenant delete", {}, undefined, { keepsExports: true }],
    ["tenant delete", { "retention-days": "7" }, undefined, { keepsExports: true }],
    ["tenant delete", { "export-dir": "/tmp/x" }, "--export-dir", { keepsExports: true }],
    ["tenant delete", { "redis-url": "redis://h" }, "--redis-url", { keepsExports: true }],
    ["tenant export", { out: "a.json" }, "--out", { keepsExports: true }],
  ])("%s %j → %s (%j)", (command, flags, field, abilities = { keepsExports: false }) => {
    const refusal = executorRefusal(command.split(" "), flags, abilities);
    expect(refusal?.field).toBe(field);
    if (refusal) expect(refusal.reason.length).toBeGreaterThan(20);
  });

  it("says why a file argument cannot work: the executor's /tmp does not outlive the invocation", () => {
    expect(executorRefusal(["tenant", "export"], { out: "a.json" })?.reason).toMatch(/\/tmp.*gone when the invocation ends/);
  });
});
