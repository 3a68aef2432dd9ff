/**
 * What a deployment leaves in a database, read back in a form two servers can be compared in:
 * "the same database" for the transport e2e (test/e2e/executor-transport.test.ts).
 *
 *   schema    lib/schema/current-schema.ts `readCurrentSchema`: the platform roles' attributes and
 *             memberships, database and pg_catalog privileges, extensions, default privileges, and
 *             every user schema (dedicated tenant schemas included) with its tables, columns,
 *             constraints, indexes, row security, policies, functions and grants;
 *   roles     every other role of the cluster (tenant login roles) with attributes and memberships;
 *   registry  the rows of tenancy.tenants, tenant_moves, database_settings, schema_migrations and
 *             the context keys' ids and states.
 *
 * Values generated per deployment are normalised: a tenant's id (and its hex form in schema and role
 * names) becomes `<tenant:slug>`; timestamps, log tags and key material are left out. Everything
 * else must be equal.
 */
import type { Queryable } from "../../lib/db/client";
import { readCurrentSchema } from "../../lib/schema/current-schema";
import { ROLES } from "../../lib/schema/roles";

export interface DatabaseSnapshot {
  /** Section → its lines, sorted: each line one object, statement or row. */
  sections: Record<string, string[]>;
}

async function rows(client: Queryable, sql: string, params: unknown[] = []): Promise<string[]> {
  const { rows } = await client.query<{ line: string }>(sql, params);
  return rows.map((r) => r.line);
}

/** Reads the snapshot of the connected database (a dedicated session; safe inside a transaction). */
export async function readDatabaseSnapshot(client: Queryable): Promise<DatabaseSnapshot> {
  const tenants = (await client.query<{ id: string; slug: string }>("SELECT id::text AS id, slug FROM tenancy.tenants")).rows;
  const schema = statements(await readCurrentSchema(client));
  const roles = await rows(
    client,
    `SELECT r.rolname || ' ' || concat_ws(' ',
              CASE WHEN r.rolcanlogin THEN 'LOGIN' ELSE 'NOLOGIN' END, CASE WHEN r.rolsuper THEN 'SUPERUSER' END,
              CASE WHEN r.rolcreatedb THEN 'CREATEDB' END, CASE WHEN r.rolcreaterole THEN 'CREATEROLE' END,
              CASE WHEN r.rolbypassrls THEN 'BYPASSRLS' END, CASE WHEN NOT r.rolinherit THEN 'NOINHERIT' END,
              'CONNECTION LIMIT ' || r.rolconnlimit, 'PASSWORD ' || CASE WHEN a.rolpassword IS NULL THEN 'none' ELSE split_part(a.rolpassword, '$', 1) END,
              'MEMBER OF (' || coalesce((SELECT string_agg(g.rolname, ', ' ORDER BY g.rolname) FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid), '') || ')',
              'SETTINGS (' || coalesce(array_to_string(r.rolconfig, ', '), '') || ')') AS line
       FROM pg_roles r JOIN pg_authid a ON a.oid = r.oid
      WHERE r.rolname !~ '^pg_' AND r.rolname <> 'postgres' AND NOT r.rolname = ANY($1)`,
    [Object.values(ROLES)],
  );
  const registry = [
    ...(await rows(
      client,
      `SELECT concat_ws(' ', 'tenant', id, slug, display_name, tier, region, placement, status,
              'offboarded:' || (offboarded_at IS NOT NULL), 'export:' || coalesce(offboarding_export, '-')) AS line
         FROM tenancy.tenants`,
    )),
    ...(await rows(
      client,
      `SELECT concat_ws(' ', 'move', tenant_id, direction, source_schema, target_schema, step, catalogue_fingerprint,
              'rows:' || coalesce(rows_moved::text, '-')) AS line
         FROM tenancy.tenant_moves`,
    )),
    ...(await rows(client, `SELECT concat_ws(' ', 'settings', region, tenant_context) AS line FROM tenancy.database_settings`)),
    ...(await rows(client, `SELECT concat_ws(' ', 'migration', version, name, checksum) AS line FROM tenancy.schema_migrations`)),
    ...(await rows(client, `SELECT concat_ws(' ', 'context key', kid, region, state) AS line FROM tenancy_private.context_keys`)),
  ];
  const normalise = (line: string) =>
    tenants.reduce((text, t) => text.replaceAll(t.id, `<tenant:${t.slug}>`).replaceAll(t.id.replace(/-/g, ""), `<tenant:${t.slug}>`), line);
  const sorted = (lines: string[]) => lines.map(normalise).sort();
  return { sections: { schema: sorted(schema), roles: sorted(roles), registry: sorted(registry) } };
}

/**
 * The statements of lib/schema/current.sql-shaped text: a statement starts at a line that begins
 * with a top-level keyword (CREATE, ALTER, GRANT, …) outside a dollar-quoted body; comments and
 * blank lines are dropped.
 */
export function statements(sql: string): string[] {
  const out: string[] = [];
  let current: string[] = [];
  let inBody = false;
  for (const line of sql.split("\n")) {
    if (!inBody && (line.trim() === "" || line.startsWith("--"))) continue;
    if (!inBody && /^(CREATE|ALTER|GRANT|REVOKE|COMMENT|SELECT|SET)\b/.test(line) && current.length) {
      out.push(current.join("\n"));
      current = [];
    }
    current.push(line);
    // An odd number of dollar-quote tags on a line opens or closes a function body.
    if ((line.match(/\$[A-Za-z_]*\$/g) ?? []).length % 2 === 1) inBody = !inBody;
  }
  if (current.length) out.push(current.join("\n"));
  return out;
}

/**
 * What differs between two snapshots, one line per object found on one side only:
 * `<section>: only in <name>: <line>`. Empty when they are the same database.
 */
export function snapshotDifferences(a: DatabaseSnapshot, b: DatabaseSnapshot, names: [string, string] = ["a", "b"]): string[] {
  const out: string[] = [];
  for (const section of [...new Set([...Object.keys(a.sections), ...Object.keys(b.sections)])].sort()) {
    const left = a.sections[section] ?? [];
    const right = b.sections[section] ?? [];
    const onlyIn = (name: string, mine: string[], theirs: string[]) => {
      const rest = [...theirs];
      for (const line of mine) {
        const i = rest.indexOf(line);
        if (i >= 0) rest.splice(i, 1);
        else out.push(`${section}: only in ${name}: ${line.split("\n")[0]}${line.includes("\n") ? " …" : ""}`);
      }
    };
    onlyIn(names[0], left, right);
    onlyIn(names[1], right, left);
  }
  return out;
}
