/**
 * PgBouncer's auth file on AWS: what the secret holds is exactly renderAuthFile of the verifiers, its
 * revision changes with them, and the task's start script writes the secret's value byte for byte
 * (run with bash, as the container runs it). The read through the executor is proven on a real
 * server in database-bootstrap-pg.test.ts.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { pgbouncerStartScript } from "../../components/aws/pgbouncer-service";
import { renderAuthFile, scramSha256Verifier } from "../../lib/pgbouncer/auth";
import { pgbouncerAuthFile } from "../../lib/pgbouncer/verifiers";

const salt = Buffer.alloc(16, 7);
const users = [
  { name: "alphapulse_readonly", scramVerifier: scramSha256Verifier("readonly-password-1", { salt }) },
  { name: "app_user", scramVerifier: scramSha256Verifier("app-password-12345", { salt }) },
];
const dir = mkdtempSync(path.join(os.tmpdir(), "auth-file-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("pgbouncerAuthFile", () => {
  it("is the rendered auth file, and its revision is the sha256 of exactly that text", () => {
    const { authFile, revision } = pgbouncerAuthFile(users);
    expect(authFile).toBe(renderAuthFile(users));
    expect(authFile).toBe(users.map((u) => `"${u.name}" "${u.scramVerifier}"`).join("\n") + "\n");
    expect(revision).toMatch(/^[0-9a-f]{64}$/);
  });

  it("a new verifier (a password set again) is a new revision; the same verifiers are the same revision", () => {
    const again = pgbouncerAuthFile(users.map((u) => ({ ...u })));
    const rotated = pgbouncerAuthFile([
      users[0],
      { name: "app_user", scramVerifier: scramSha256Verifier("app-password-12345", { salt: Buffer.alloc(16, 8) }) },
    ]);
    expect(again.revision).toBe(pgbouncerAuthFile(users).revision);
    expect(rotated.revision).not.toBe(again.revision);
  });

  it("refuses a line that could smuggle in another user (negative control)", () => {
    expect(() => pgbouncerAuthFile([{ name: 'app_user" "x', scramVerifier: users[1].scramVerifier }])).toThrow();
  });

  it("the task's start script writes the secret's value byte for byte", () => {
    const target = path.join(dir, "userlist.txt");
    // The script's own lines that concern the auth file (the ini goes to the task's run directory).
    const script = pgbouncerStartScript(target)
      .split("\n")
      .filter((l) => !l.includes("PGBOUNCER_INI") && !l.startsWith("exec "))
      .join("\n");
    expect(script).toContain(`printf '%s' "$PGBOUNCER_AUTH_FILE" > ${target}`);
    const { authFile } = pgbouncerAuthFile(users);
    execFileSync("bash", ["-c", script], { env: { ...process.env, PGBOUNCER_AUTH_FILE: authFile } });
    expect(readFileSync(target, "utf8")).toBe(authFile);
  });
});
