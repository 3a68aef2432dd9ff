/**
 * The language-neutral contract (docs/tenant-context-contract.md), run as documented: a proof minted
 * by the document's Python function, the document's SQL sent by psql as app_user. The injected
 * set_config after it reads none of B's rows on a strict database, and B's rows on a raw-setting one
 * (the negative control).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../../lib/schema/migrate";
import { installContextKey } from "../../lib/tenant-context/keys";
import { generateContextSecret, mintTenantProof, type ContextKey } from "../../lib/tenant-context/proof";
import { postgresBinDir } from "../../lib/local/postgres-server";
import { ROLES } from "../../lib/schema/roles";
import { withDatabase } from "../support/postgres";
import { tenantDatabase, type TenantDatabase } from "../pgbouncer/helpers";

const DOC = readFileSync(path.join(__dirname, "../../docs/tenant-context-contract.md"), "utf8");
const block = (marker: string, lang: string) => {
  const match = new RegExp(`<!-- contract:${marker} -->\\s*\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``).exec(DOC);
  if (!match) throw new Error(`docs/tenant-context-contract.md has no ${marker} block`);
  return match[1];
};
const KEY: ContextKey = { kid: "eu-contract", region: "eu", secret: generateContextSecret() };
const python = spawnSync("python3", ["--version"]).status === 0;
const psql = path.join(postgresBinDir() ?? "", "psql");

let strict: TenantDatabase;
let raw: TenantDatabase;
let dir: string;

async function prepare(mode: "verified" | "setting"): Promise<TenantDatabase> {
  const db = await tenantDatabase({ tiers: ["starter", "pro"] });
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  try {
    // Key first: a database with tenants is switched to strict only once a key is active.
    await installContextKey(admin, KEY);
    await migrate(admin, { tenantContext: mode, region: "eu" });
  } finally {
    await admin.end();
  }
  return db;
}

beforeAll(async () => {
  [strict, raw] = await Promise.all([prepare("verified"), prepare("setting")]);
  dir = mkdtempSync(path.join(tmpdir(), "contract-"));
}, 120_000);

afterAll(async () => {
  await strict?.drop();
  await raw?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The document's Python function, called once. */
function pythonProof(tenantId: string): string {
  const script = `${block("python", "python")}\nimport sys\nprint(mint_tenant_proof(*sys.argv[1:5]))\n`;
  return execFileSync("python3", ["-c", script, KEY.kid, KEY.region, KEY.secret, tenantId], { encoding: "utf8" }).trim();
}

/** Runs the document's SQL (plus `extra`) through psql as app_user; returns its unaligned output lines. */
function runPsql(db: TenantDatabase, proof: string, extra = ""): string[] {
  const file = path.join(dir, `contract-${Math.random().toString(16).slice(2)}.sql`);
  writeFileSync(file, block("sql", "sql").replace(/COMMIT;\s*$/, `${extra}\nCOMMIT;\n`));
  const url = withDatabase(db.url, db.name, ROLES.app);
  const out = execFileSync(
    psql,
    ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-v", `proof=${proof}`, "-v", "timeout_ms=5000", "-f", file, url],
    {
      encoding: "utf8",
    },
  );
  return out.split("\n").filter(Boolean);
}

describe("docs/tenant-context-contract.md through psql", () => {
  // Skipped only where python3 is not installed: the Python function cannot run there.
  it.skipIf(!python)("the Python function's proof is accepted; the SQL reads exactly the tenant's rows", () => {
    const a = strict.tenants[0].id;
    const lines = runPsql(strict, pythonProof(a));
    expect(lines).toEqual(["5s|5s|shared", `${a}|20`]);
  });

  it("the proof minted by the Node client has the same format", () => {
    const a = strict.tenants[0].id;
    expect(runPsql(strict, mintTenantProof(KEY, a))).toEqual(["5s|5s|shared", `${a}|20`]);
  });

  it("an injected set_config after the prelude reads none of B's rows (strict); the raw-setting design reads B's (negative control)", () => {
    for (const [db, expected] of [
      [strict, "0"],
      [raw, "20"],
    ] as const) {
      const [a, b] = db.tenants.map((t) => t.id);
      const attack = `SELECT set_config('app.current_tenant_id', '${b}', true) IS NOT NULL;\nSELECT count(*) FROM trades WHERE tenant_id = '${b}';`;
      const lines = runPsql(db, mintTenantProof(KEY, a), attack);
      expect(lines.at(-1)).toBe(expected);
    }
  });

  it("an altered proof is refused with SQLSTATE 42501 and nothing runs after it", () => {
    const [a, b] = strict.tenants.map((t) => t.id);
    const altered = mintTenantProof(KEY, a).replace(a, b);
    expect(() => runPsql(strict, altered)).toThrow(/tenant context proof is not valid here/);
  });
});
