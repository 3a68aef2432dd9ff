/**
 * The `tenancy` data-layer commands end to end on the test PostgreSQL: `main()` in-process with
 * stdout/stderr captured, plus one run of the real bin to prove the exit code reaches the shell.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tenancy } from "../support/cli";
import { migratedDatabase, type MigratedDatabase } from "./harness";
import { createTestDatabase, type TestDatabase } from "../support/postgres";

let m: MigratedDatabase;
let url: string;
let empty: TestDatabase;

beforeAll(async () => {
  m = await migratedDatabase("cli");
  url = m.db.url;
  empty = await createTestDatabase("cli_empty");
});
afterAll(async () => {
  await m?.close();
  await empty?.drop();
});

const tenantCount = async () => (await m.admin.query(`SELECT count(*)::int AS n FROM tenancy.tenants`)).rows[0].n;

describe("tenancy migrate", () => {
  it("migrates an empty database (progress on stderr), then finds nothing to do", async () => {
    const first = await tenancy("migrate", "--region", "eu", "--database-url", empty.url);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/versioned migrations/);
    expect(first.stderr).toMatch(/\[catalogue 1\/1\] shared: \d+ change\(s\)/);
    const second = await tenancy("migrate", "--json", "--database-url", empty.url);
    expect(second.code).toBe(0);
    expect(second.json).toMatchObject({ unchanged: true, dryRun: false, versioned: [], catalogue: [] });
  });

  it("--dry-run lists the statements it would run", async () => {
    await m.admin.query(`ALTER TABLE shared.trades NO FORCE ROW LEVEL SECURITY`);
    const dry = await tenancy("migrate", "--dry-run", "--database-url", url);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`ALTER TABLE "shared"."trades" FORCE ROW LEVEL SECURITY;`);
    const still = (await m.admin.query(`SELECT relforcerowsecurity FROM pg_class WHERE oid = 'shared.trades'::regclass`)).rows[0]
      .relforcerowsecurity;
    expect(still).toBe(false);
    expect((await tenancy("migrate", "--json", "--database-url", url)).json.catalogue[0].statements).toEqual([
      `ALTER TABLE "shared"."trades" FORCE ROW LEVEL SECURITY`,
    ]);
  });

  it("a command on a database that was never migrated says so and names the fix (exit 1)", async () => {
    const unmigrated = await createTestDatabase("cli_unmigrated");
    try {
      const r = await tenancy("tenant", "list", "--json", "--database-url", unmigrated.url);
      expect(r.code).toBe(1);
      expect(r.json.error.kind).toBe("failure");
      expect(r.json.error.message).toMatch(/has not been migrated: run `tenancy migrate --region <eu\|us>` first \(.*does not exist\)/);
      const dry = await tenancy("migrate", "--dry-run", "--json", "--database-url", unmigrated.url);
      expect(dry.code).toBe(0);
      expect(dry.json).toMatchObject({ dryRun: true, unchanged: false });
    } finally {
      await unmigrated.drop();
    }
  });

  it("refuses another region with exit 2, naming --region", async () => {
    const r = await tenancy("migrate", "--region", "us", "--json", "--database-url", url);
    expect(r.code).toBe(2);
    expect(r.json.error).toMatchObject({ field: "--region", kind: "usage" });
  });
});

describe("bad input: exit 2, the field named, nothing written", () => {
  it.each<[string, string[], string]>([
    ["a slug with capitals", ["tenant", "create", "Acme_Capital", "--tier", "pro", "--region", "eu"], "slug"],
    ["a slug too short", ["tenant", "create", "ab", "--tier", "pro", "--region", "eu"], "slug"],
    ["no slug", ["tenant", "create", "--tier", "pro", "--region", "eu"], "slug"],
    ["two slugs", ["tenant", "create", "one-slug", "two-slug", "--tier", "pro", "--region", "eu"], "arguments"],
    ["an unknown tier", ["tenant", "create", "acme-capital", "--tier", "gold", "--region", "eu"], "--tier"],
    ["a missing tier", ["tenant", "create", "acme-capital", "--region", "eu"], "--tier"],
    ["a tier without its value", ["tenant", "create", "acme-capital", "--region", "eu", "--tier"], "--tier"],
    ["an unknown region", ["tenant", "create", "acme-capital", "--tier", "pro", "--region", "apac"], "--region"],
    [
      "a residency region this database does not serve",
      ["tenant", "create", "acme-capital", "--tier", "pro", "--region", "us"],
      "--region",
    ],
    ["an empty name", ["tenant", "create", "acme-capital", "--tier", "pro", "--region", "eu", "--name", " "], "--name"],
    ["an unknown flag", ["tenant", "create", "acme-capital", "--tier", "pro", "--region", "eu", "--teir", "pro"], "--teir"],
    ["rows as a float", ["seed", "--rows-per-tenant", "1.5"], "--rows-per-tenant"],
    ["rows in exponent notation", ["seed", "--rows-per-tenant", "1e3"], "--rows-per-tenant"],
    ["zero rows", ["seed", "--rows-per-tenant", "0"], "--rows-per-tenant"],
    ["too many rows", ["seed", "--rows-per-tenant", "10000001"], "--rows-per-tenant"],
    ["no rows flag", ["seed"], "--rows-per-tenant"],
    ["an unknown tenant", ["tenant", "delete", "no-such-tenant"], "slug"],
    ["a retention window of 0 days", ["tenant", "delete", "no-such-tenant", "--retention-days", "0"], "--retention-days"],
    ["a retention window in fractions", ["tenant", "delete", "no-such-tenant", "--retention-days", "1.5"], "--retention-days"],
    ["an export dir and --skip-export", ["tenant", "delete", "no-such-tenant", "--skip-export", "--export-dir", "x"], "--skip-export"],
    ["a malformed slug to show", ["tenant", "show", "x"], "slug"],
    ["a bad region for migrate", ["migrate", "--region", "mars"], "--region"],
    ["an argument to audit", ["audit", "now"], "arguments"],
  ])("%s", async (_name, argv, field) => {
    const before = await tenantCount();
    const r = await tenancy(...argv, "--json", "--database-url", url);
    expect(r.code, r.stdout).toBe(2);
    expect(r.json.error).toMatchObject({ kind: "usage", field });
    expect(await tenantCount()).toBe(before);
  });

  it("a missing connection names both --database-url and DATABASE_URL", async () => {
    const saved = process.env.DATABASE_URL;
    delete process.env.DATABASE_URL;
    try {
      const r = await tenancy("tenant", "list");
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/--database-url.*DATABASE_URL/);
    } finally {
      if (saved !== undefined) process.env.DATABASE_URL = saved;
    }
  });

  it("a malformed URL is a usage error; an unreachable server is a failure (exit 1) that never prints the password", async () => {
    expect((await tenancy("tenant", "list", "--json", "--database-url", "mysql://x@y/z")).json.error.field).toBe("--database-url");
    const r = await tenancy("tenant", "list", "--database-url", "postgres://someone:s3cret-pw@127.0.0.1:1/nowhere");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/could not connect to postgres:\/\/someone@127\.0\.0\.1:1\/nowhere/);
    expect(r.stderr).not.toContain("s3cret-pw");
  });
});

describe("tenant lifecycle", () => {
  it("create, list, show, suspend, resume, seed, then offboard (export, retention) and purge after the window", async () => {
    const created = await tenancy(
      "tenant",
      "create",
      "acme-capital",
      "--tier",
      "pro",
      "--region",
      "eu",
      "--name",
      "Acme Capital",
      "--json",
      "--database-url",
      url,
    );
    expect(created.code).toBe(0);
    expect(created.json).toMatchObject({
      slug: "acme-capital",
      displayName: "Acme Capital",
      tier: "pro",
      region: "eu",
      placement: "shared",
      status: "active",
    });
    expect((await tenancy("tenant", "create", "globex", "--tier", "starter", "--region", "eu", "--database-url", url)).code).toBe(0);

    const again = await tenancy("tenant", "create", "acme-capital", "--tier", "pro", "--region", "eu", "--json", "--database-url", url);
    expect(again.code).toBe(2);
    expect(again.json.error).toMatchObject({ field: "slug" });

    const list = await tenancy("tenant", "list", "--database-url", url);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/acme-capital.*Acme Capital.*pro.*eu.*shared.*active/);
    expect(list.stdout).toMatch(/globex/);

    const seeded = await tenancy("seed", "--rows-per-tenant", "40", "--database-url", url);
    expect(seeded.code).toBe(0);
    expect(seeded.stderr).toMatch(/seeded acme-capital \(1\/2\)/);
    expect(seeded.stdout).toMatch(/acme-capital .* 40 /);

    // Seeding again adds rows (client order ids continue, they never collide with the first run's).
    expect((await tenancy("seed", "--rows-per-tenant", "20", "--database-url", url)).code).toBe(0);

    const shown = await tenancy("tenant", "show", "acme-capital", "--json", "--database-url", url);
    expect(shown.json.rows).toContainEqual({ table: "trades", rows: 60 });
    expect((await tenancy("tenant", "show", created.json.id, "--json", "--database-url", url)).json.slug).toBe("acme-capital");

    expect((await tenancy("tenant", "suspend", "acme-capital", "--json", "--database-url", url)).json.status).toBe("suspended");
    expect((await tenancy("tenant", "resume", "acme-capital", "--json", "--database-url", url)).json.status).toBe("active");

    // Offboarding: a verified export first, then `offboarded` with a purge date; nothing is deleted.
    const exportDir = mkdtempSync(path.join(os.tmpdir(), "cli-offboarding-"));
    try {
      // A dry run says what it would do, in order, and does none of it (no file, still active).
      const dry = await tenancy(
        "tenant",
        "delete",
        "acme-capital",
        "--dry-run",
        "--retention-days",
        "7",
        "--export-dir",
        exportDir,
        "--json",
        "--database-url",
        url,
      );
      expect(dry.code).toBe(0);
      expect(dry.json.retained).toContainEqual({ table: "trades", rows: 60 });
      expect(dry.json.steps).toEqual([
        "suspend acme-capital (no writes after the export's snapshot)",
        expect.stringMatching(new RegExp(`^export \\d+ row\\(s\\), verified, to ${exportDir}/acme-capital-\\d{8}T\\d{6}Z\\.jsonl$`)),
        "mark it offboarded: rows, schema and registry entry kept for 7 day(s)",
        expect.stringMatching(/^then, after that date: `tenancy tenant purge acme-capital`/),
      ]);
      expect(readdirSync(exportDir)).toEqual([]);
      expect((await m.admin.query(`SELECT status FROM tenancy.tenants WHERE id = $1`, [created.json.id])).rows[0].status).toBe("active");
      const human = await tenancy("tenant", "delete", "acme-capital", "--dry-run", "--database-url", url);
      expect(human.stdout).toMatch(/would offboard tenant acme-capital .*nothing was changed[\s\S]*1\. suspend acme-capital/);

      const deleted = await tenancy("tenant", "delete", "acme-capital", "--export-dir", exportDir, "--database-url", url);
      expect(deleted.code).toBe(0);
      expect(deleted.stdout).toMatch(/offboarded tenant acme-capital/);
      expect(deleted.stdout).toMatch(/trades\s+│ 60/);
      // No context key is installed here: offboarding still exports, unsigned, and says so.
      expect(deleted.stdout).toMatch(/the export is UNSIGNED: no tenant-context key is installed/);
      const file = /verified export: (\S+)/.exec(deleted.stdout)![1];
      expect(path.dirname(file)).toBe(exportDir);
      expect(readFileSync(file, "utf8")).toContain('"format":"alphapulse-tenant-export"');
      const kept = await m.admin.query(
        `SELECT (SELECT count(*) FROM shared.trades WHERE tenant_id = $1)::int AS trades, status, offboarding_export AS export,
                round(extract(epoch FROM purge_after - offboarded_at) / 86400)::int AS days
           FROM tenancy.tenants WHERE id = $1`,
        [created.json.id],
      );
      expect(kept.rows[0]).toEqual({ trades: 60, status: "offboarded", export: file, days: 30 });

      // The purge is its own command, refused before the window (exit 2, nothing removed) ...
      const early = await tenancy("tenant", "purge", "acme-capital", "--json", "--database-url", url);
      expect(early.code).toBe(2);
      expect(early.json.error).toMatchObject({ kind: "usage", field: "slug" });
      expect(early.json.error.message).toMatch(/retained until .* a purge is refused before then/);
      // ... and removes everything once the purge date has passed (set in the database: no clock hook in the CLI).
      await m.admin.query(
        `UPDATE tenancy.tenants SET offboarded_at = now() - interval '31 days', purge_after = now() - interval '1 day' WHERE id = $1`,
        [created.json.id],
      );
      const purged = await tenancy("tenant", "purge", "acme-capital", "--database-url", url);
      expect(purged.code).toBe(0);
      expect(purged.stdout).toMatch(/purged tenant acme-capital/);
    } finally {
      rmSync(exportDir, { recursive: true, force: true });
    }
    const left = await m.admin.query(
      `SELECT (SELECT count(*) FROM shared.trades WHERE tenant_id = $1)::int AS trades, (SELECT count(*) FROM tenancy.tenants WHERE id = $1)::int AS registry`,
      [created.json.id],
    );
    expect(left.rows[0]).toEqual({ trades: 0, registry: 0 });
    // The other tenant is untouched.
    expect(
      (
        await m.admin.query(
          `SELECT count(*)::int AS n FROM shared.trades t JOIN tenancy.tenants x ON x.id = t.tenant_id WHERE x.slug = 'globex'`,
        )
      ).rows[0].n,
    ).toBe(60);
  });
});

describe("tenancy audit", () => {
  it("exits 0 when clean and 1 with findings, naming the object and the fix", async () => {
    await tenancy("migrate", "--database-url", url);
    const clean = await tenancy("audit", "--json", "--database-url", url);
    const versionFindings = clean.json.findings.filter((f: { check: string }) => f.check === "server-version");
    expect(clean.json.findings).toEqual(versionFindings);
    if (versionFindings.length === 0) expect(clean.code).toBe(0);

    await m.admin.query(`GRANT TRUNCATE ON shared.trades TO app_user`);
    try {
      const dirty = await tenancy("audit", "--database-url", url);
      expect(dirty.code).toBe(1);
      expect(dirty.stdout).toMatch(/critical.*grant-dangerous.*table shared\.trades/);
      expect(dirty.stdout).toMatch(/fix: REVOKE TRUNCATE ON shared\.trades FROM app_user/);
    } finally {
      await m.admin.query(`REVOKE TRUNCATE ON shared.trades FROM app_user`);
    }
  });
});

describe("bin/tenancy.js", () => {
  it("exits 2 on bad input from a real process, message on stderr", async () => {
    const bin = path.join(__dirname, "../../bin/tenancy.js");
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        [bin, "tenant", "create", "Bad_Slug", "--tier", "pro", "--region", "eu", "--database-url", url],
        (err, _stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stderr }),
      ),
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^tenancy: slug: must be/);
  });
});
