/**
 * The enterprise commands end to end: `main()` in-process (exit codes, --json, progress on
 * stderr, bad input naming the field), plus the real bin killed with SIGKILL mid-graduation and
 * run again.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openMove } from "../../lib/enterprise/graduation";
import { SHARED_SCHEMA } from "../../lib/schema/planner";
import { dedicatedSchemaName } from "../../lib/tenant/model";
import { tenancy } from "../support/cli";
import {
  checksums,
  claimingTenant,
  EMPTY,
  forgeExport,
  migratedDatabase,
  ROLES,
  seededTenant,
  whereRowsAre,
  type EnterpriseDb,
} from "./helpers";

let env: EnterpriseDb;
let url: string;
let dir: string;

beforeAll(async () => {
  env = await migratedDatabase();
  const u = new URL(env.db.url);
  u.username = ROLES.migrator; // what operators run the CLI as: not a superuser
  url = u.toString();
  dir = mkdtempSync(path.join(os.tmpdir(), "tenancy-cli-"));
});

afterAll(async () => {
  await env.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("tenancy tenant graduate / demote", () => {
  it("graduates with --json (verification, writes held, rows/s) and progress on stderr, then demotes", async () => {
    const t = await seededTenant(env.admin, "cli-move", 100);
    const before = await checksums(env.admin, t.id, SHARED_SCHEMA);
    const up = await tenancy("tenant", "graduate", t.slug, "--json", "--database-url", url);
    expect(up.code).toBe(0);
    expect(up.json).toMatchObject({ direction: "graduate", from: SHARED_SCHEMA, to: dedicatedSchemaName(t.id), alreadyThere: false });
    expect(up.json.verification.every((v: { ok: boolean }) => v.ok)).toBe(true);
    expect(typeof up.json.writesHeldMs).toBe("number");
    expect(up.json.rowsPerSecond).toBeGreaterThan(0);

    const human = await tenancy("tenant", "demote", t.slug, "--database-url", url);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/demoted cli-move: tenant_[0-9a-f]{32} → shared/);
    expect(human.stdout).toMatch(/writes were held \d+ ms/);
    expect(human.stderr).toMatch(/\[gate\] placement flipped to shared/);
    expect(await checksums(env.admin, t.id, SHARED_SCHEMA)).toEqual(before);
    expect((await tenancy("tenant", "demote", t.slug, "--database-url", url)).stdout).toMatch(/already in shared: nothing to do/);
  });

  it("refuses a pro tenant with exit 1 and the reason", async () => {
    const t = await seededTenant(env.admin, "cli-pro", 5, "pro");
    const r = await tenancy("tenant", "graduate", t.slug, "--json", "--database-url", url);
    expect(r.code).toBe(1);
    expect(r.json.error).toMatchObject({ kind: "refused", message: expect.stringMatching(/pro tier/) });
    const human = await tenancy("tenant", "graduate", t.slug, "--database-url", url);
    expect(human).toMatchObject({ code: 1, stdout: "", stderr: expect.stringMatching(/^tenancy: .*pro tier/) });
  });
});

describe("tenancy tenant export / import", () => {
  it("exports, refuses to overwrite, and imports --as a new tenant", async () => {
    const t = await seededTenant(env.admin, "cli-export", 60);
    const file = path.join(dir, "cli-export.jsonl.gz");
    const exported = await tenancy("tenant", "export", t.slug, "--out", file, "--json", "--database-url", url);
    expect(exported.code).toBe(0);
    expect(exported.json).toMatchObject({ file, tenant: { slug: "cli-export", region: "eu" } });
    const again = await tenancy("tenant", "export", t.slug, "--out", file, "--json", "--database-url", url);
    expect(again).toMatchObject({ code: 2, json: { error: { field: "--out" } } });

    const imported = await tenancy("tenant", "import", "--in", file, "--as", "cli-copy", "--database-url", url);
    expect(imported.code).toBe(0);
    expect(imported.stdout).toMatch(/imported cli-export .* into cli-copy \([0-9a-f-]{36}, new\) in shared/);
    const copy = (await env.admin.query(`SELECT id FROM tenancy.tenants WHERE slug = 'cli-copy'`)).rows[0].id;
    expect(await checksums(env.admin, copy, SHARED_SCHEMA)).toEqual(await checksums(env.admin, t.id, SHARED_SCHEMA));
  });

  it("a corrupted file is bad input: exit 2 naming --in, nothing written", async () => {
    const t = await seededTenant(env.admin, "cli-corrupt", 10);
    const file = path.join(dir, "corrupt.jsonl");
    await tenancy("tenant", "export", t.slug, "--out", file, "--database-url", url);
    writeFileSync(file, readFileSync(file, "utf8").replace('"rows":10,', '"rows":11,'));
    const before = (await env.admin.query(`SELECT count(*)::int AS n FROM tenancy.tenants`)).rows[0].n;
    const r = await tenancy("tenant", "import", "--in", file, "--as", "cli-corrupt-copy", "--json", "--database-url", url);
    expect(r.code).toBe(2);
    expect(r.json.error).toMatchObject({ field: "--in", kind: "usage" });
    expect(r.json.error.message).toMatch(/not a valid tenant export/);
    expect((await env.admin.query(`SELECT count(*)::int AS n FROM tenancy.tenants`)).rows[0].n).toBe(before);
  });
});

describe("authenticated exports and the named target (issue 18, finding 4)", () => {
  const lines = (f: string) => readFileSync(f, "utf8").split("\n").filter(Boolean);

  it("an export of alpha edited to claim the victim (checksums recomputed), imported --replace --tenant victim: exit 2 naming --in, nothing written", async () => {
    const alpha = await seededTenant(env.admin, "cli-alpha", 20);
    const victim = await seededTenant(env.admin, "cli-victim", 15);
    const before = await checksums(env.admin, victim.id, SHARED_SCHEMA);
    const file = path.join(dir, "cli-alpha.jsonl");
    const exported = await tenancy("tenant", "export", alpha.slug, "--out", file, "--json", "--database-url", url);
    expect(exported).toMatchObject({ code: 0, json: { signedWith: "eu-test" } });
    const forged = path.join(dir, "cli-forged.jsonl");
    writeFileSync(forged, forgeExport(lines(file), { header: claimingTenant(victim) }));
    const r = await tenancy("tenant", "import", "--in", forged, "--replace", "--tenant", victim.slug, "--json", "--database-url", url);
    expect(r.code).toBe(2);
    expect(r.json.error).toMatchObject({ kind: "usage", field: "--in", message: expect.stringMatching(/MAC does not verify/) });
    expect(await checksums(env.admin, victim.id, SHARED_SCHEMA)).toEqual(before);

    // The genuine file, aimed at the victim: exit 2 naming --tenant. Control: aimed at alpha, it restores alpha.
    const wrong = await tenancy("tenant", "import", "--in", file, "--replace", "--tenant", victim.slug, "--json", "--database-url", url);
    expect(wrong).toMatchObject({ code: 2, json: { error: { field: "--tenant", message: expect.stringMatching(/export of cli-alpha/) } } });
    expect(await checksums(env.admin, victim.id, SHARED_SCHEMA)).toEqual(before);
    const right = await tenancy("tenant", "import", "--in", file, "--replace", "--tenant", alpha.slug, "--database-url", url);
    expect(right.code).toBe(0);
    expect(right.stdout).toMatch(/MAC verified with key eu-test/);
  });

  it("offboarding signs its export with the live key", async () => {
    const t = await seededTenant(env.admin, "cli-leaver", 5);
    const exportDir = path.join(dir, "offboarding");
    const r = await tenancy("tenant", "delete", t.slug, "--export-dir", exportDir, "--json", "--database-url", url);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ exportSignedWith: "eu-test", exportedRows: expect.any(Number) });
    expect(JSON.parse(readFileSync(r.json.exportFile, "utf8").split("\n")[0]).signature).toMatchObject({ kid: "eu-test" });
  });

  it("without an installed key: export exits 2 naming the fix; --allow-unsigned writes an unsigned file that imports only with --allow-unsigned", async () => {
    const bare = await migratedDatabase("eu", undefined, 16_384, false);
    try {
      const u = new URL(bare.db.url);
      u.username = ROLES.migrator;
      const bareUrl = u.toString();
      const t = await seededTenant(bare.admin, "cli-keyless", 5);
      const file = path.join(dir, "cli-keyless.jsonl");
      const refused = await tenancy("tenant", "export", t.slug, "--out", file, "--json", "--database-url", bareUrl);
      expect(refused.code).toBe(2);
      expect(refused.json.error).toMatchObject({ field: "context-key", message: expect.stringMatching(/tenancy context-key install/) });
      const unsigned = await tenancy("tenant", "export", t.slug, "--out", file, "--allow-unsigned", "--database-url", bareUrl);
      expect(unsigned.code).toBe(0);
      expect(unsigned.stdout).toMatch(/UNSIGNED/);
      const plain = await tenancy("tenant", "import", "--in", file, "--json", "--database-url", url);
      expect(plain).toMatchObject({ code: 2, json: { error: { field: "--in", message: expect.stringMatching(/--allow-unsigned/) } } });
      const allowed = await tenancy("tenant", "import", "--in", file, "--allow-unsigned", "--json", "--database-url", url);
      expect(allowed.code).toBe(0);
      expect(allowed.json).toMatchObject({ authenticity: { signed: false }, tenant: { slug: "cli-keyless", created: true } });
    } finally {
      await bare.close();
    }
  });
});

describe("bad input: exit 2, the field named, before connecting", () => {
  it.each<[string, string[], string]>([
    ["graduate without a slug", ["tenant", "graduate"], "slug"],
    ["graduate a malformed slug", ["tenant", "graduate", "Not_A_Slug"], "slug"],
    ["graduate an unknown tenant", ["tenant", "graduate", "nobody-here"], "slug"],
    ["a gate timeout that is not a number", ["tenant", "graduate", "acme", "--gate-timeout-ms", "soon"], "--gate-timeout-ms"],
    ["export without --out", ["tenant", "export", "acme"], "--out"],
    ["export into a missing directory", ["tenant", "export", "acme", "--out", "/nonexistent/dir/x.jsonl"], "--out"],
    ["import without --in", ["tenant", "import"], "--in"],
    ["import a missing file", ["tenant", "import", "--in", "/nonexistent.jsonl"], "--in"],
    ["import --as a malformed slug", ["tenant", "import", "--in", "/etc/hostname", "--as", "X"], "--as"],
    ["import --as with --replace", ["tenant", "import", "--in", "/etc/hostname", "--as", "abc", "--replace"], "--replace"],
    ["import --replace without --tenant", ["tenant", "import", "--in", "/etc/hostname", "--replace"], "--tenant"],
    ["import --tenant with --as", ["tenant", "import", "--in", "/etc/hostname", "--as", "abc", "--tenant", "abc"], "--tenant"],
    ["import --tenant malformed", ["tenant", "import", "--in", "/etc/hostname", "--replace", "--tenant", "Not_A_Slug"], "--tenant"],
    ["restore without --as-of", ["tenant", "restore", "acme", "--pgbackrest-config", "/etc/hostname"], "--as-of"],
    [
      "restore --as-of without a zone",
      ["tenant", "restore", "acme", "--as-of", "2025-10-20 14:00:00", "--pgbackrest-config", "/etc/hostname"],
      "--as-of",
    ],
    [
      "restore --as-of in the future",
      ["tenant", "restore", "acme", "--as-of", "2999-01-01T00:00:00Z", "--pgbackrest-config", "/etc/hostname"],
      "--as-of",
    ],
    [
      "restore with a missing config",
      ["tenant", "restore", "acme", "--as-of", "2025-10-20T14:00:00Z", "--pgbackrest-config", "/nonexistent.conf"],
      "--pgbackrest-config",
    ],
    ["capacity with a silly memory size", ["capacity", "--memory-mib", "12"], "--memory-mib"],
  ])("%s", async (_name, argv, field) => {
    const r = await tenancy(...argv, "--json", "--database-url", url);
    expect(r.code).toBe(2);
    expect(r.json.error.field).toBe(field);
  });
});

describe("tenancy capacity", () => {
  it("reports the cap, its inputs and the lock table it needs", async () => {
    const r = await tenancy("capacity", "--json", "--database-url", url);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ ok: true, inputs: { memoryMiB: 16_384, memorySource: "setting", maxConnections: 300 } });
    expect(r.json.maxDedicatedSchemas).toBe(268);
  });
});

describe("the real process, killed with SIGKILL mid-graduation, then run again", () => {
  const bin = path.resolve(__dirname, "../../bin/tenancy.js");
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [bin, ...args], { env: { ...process.env, ...env } }, (error, stdout, stderr) => {
        const e = error as (Error & { code?: number; signal?: string }) | null;
        resolve({ code: e ? (typeof e.code === "number" ? e.code : null) : 0, signal: e?.signal ?? null, stdout, stderr });
      });
    });

  it.each(["cutover-before-commit", "during-removal"] as const)(
    "killed at %s: rows intact in between, exactly once after the re-run",
    async (point) => {
      const t = await seededTenant(env.admin, `kill-${point}`, 120);
      const before = await checksums(env.admin, t.id, SHARED_SCHEMA);
      const killed = await run(["tenant", "graduate", t.slug, "--database-url", url], { TENANCY_FAILPOINT: point });
      expect(killed.signal).toBe("SIGKILL");
      expect(await openMove(env.admin, t.id)).toMatchObject({ step: point === "cutover-before-commit" ? "prefilled" : "flipped" });
      expect((await whereRowsAre(env.admin, t.id)).routed).toEqual(before);

      const again = await run(["tenant", "graduate", t.slug, "--json", "--database-url", url]);
      expect(again.code).toBe(0);
      expect(JSON.parse(again.stdout)).toMatchObject({ resumed: true, alreadyThere: false });
      expect(await whereRowsAre(env.admin, t.id)).toEqual({ placement: "dedicated", routed: before, shared: EMPTY, dedicated: before });
    },
  );
});
