/**
 * `npm run schema:current -- [--check] [--out <file>|-] [--json]`: regenerates lib/schema/current.sql,
 * the current schema (functions such as enter_tenant(), policies, grants, the roles' posture) as a
 * fresh `migrate` leaves it. Starts a throwaway PostgreSQL on a free loopback port, migrates an empty
 * database, reads it back (lib/schema/current-schema.ts) and stops the server.
 *
 *   --check   write nothing; exit 1 when the checked-in file differs (it names the file to regenerate)
 *   --out     another file, or - for stdout (default: lib/schema/current.sql)
 *
 * Run it after adding a migration or changing the catalogue, and commit the file with the change.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { entryPoint, runMain } from "../cli/runner";
import { withConnection } from "../lib/db/client";
import { startPostgres, THROWAWAY_SETTINGS } from "../lib/local/postgres-server";
import { REPO_ROOT } from "../lib/pulumi/env";
import { CURRENT_SCHEMA_FILE, readCurrentSchema } from "../lib/schema/current-schema";
import { migrate } from "../lib/schema/migrate";

const USAGE = "usage: npm run schema:current -- [--check] [--out <file>|-] [--json]";

/** A fresh cluster, one migrated database, its schema as text; the server is always stopped. */
export async function freshSchema(): Promise<string> {
  const server = await startPostgres({ settings: THROWAWAY_SETTINGS });
  try {
    await withConnection(server.adminUrl, (admin) => admin.query("CREATE DATABASE alphapulse"));
    return await withConnection(server.urlFor("alphapulse"), async (client) => {
      await migrate(client, { region: "eu" });
      return readCurrentSchema(client);
    });
  } finally {
    await server.stop({ removeData: true, mode: "immediate" });
  }
}

const main = entryPoint({
  program: "schema-current",
  usage: USAGE,
  options: {
    check: { type: "boolean", default: false },
    out: { type: "string" },
  },
  async run({ values }) {
    const file = values.out === undefined ? path.join(REPO_ROOT, CURRENT_SCHEMA_FILE) : values.out;
    const text = await freshSchema();
    if (file === "-") {
      process.stdout.write(text);
      return 0;
    }
    const relative = path.relative(REPO_ROOT, path.resolve(file));
    const display = relative.startsWith("..") ? path.resolve(file) : relative;
    let before: string | undefined;
    try {
      before = readFileSync(file, "utf8");
    } catch {
      before = undefined;
    }
    const upToDate = before === text;
    if (!values.check && !upToDate) writeFileSync(file, text);
    const result = { file: display, upToDate, written: !values.check && !upToDate, lines: text.split("\n").length - 1 };
    if (values.json) process.stdout.write(JSON.stringify(result, null, 2) + "\n");
    else if (values.check)
      process.stdout.write(
        upToDate ? `${display} is up to date\n` : `${display} differs from a fresh migrate: run npm run schema:current\n`,
      );
    else process.stdout.write(upToDate ? `${display} is up to date\n` : `${display} written (${result.lines} lines)\n`);
    return values.check && !upToDate ? 1 : 0;
  },
});

if (require.main === module) runMain(main);
