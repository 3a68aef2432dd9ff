/**
 * The benchmark's data: tenants of Zipf-like sizes seeded through lib/tenant/seed.ts (the one seeding code
 * path) into the shared schema, then copied into one schema per variant. Every copy is rendered
 * from the catalogue by lib/schema/planner.ts (planSchema), loaded in the same physical order (time order,
 * tenants interleaved, as production traffic writes it), indexed, vacuumed and analysed the same
 * way. The single-tenant reference is rendered from the same catalogue without tenant_id.
 */
import { allColumns, TENANT_TABLES, type TenantTable } from "../../lib/schema/catalogue";
import type { Queryable } from "../../lib/db/client";
import { migrate } from "../../lib/schema/migrate";
import { ROLES } from "../../lib/schema/roles";
import { emptySchemaState, planSchema, POLICY_NAMES, readSchemaStates, SHARED_SCHEMA } from "../../lib/schema/planner";
import { seedTenant } from "../../lib/tenant/seed";
import { ident, qualified } from "../../lib/db/sql";
import { createTenant } from "../../lib/tenant/registry";
import type { Tier } from "../../lib/tenant/tiers";
import { singleSchema, type Mode } from "./modes";
import type { Fixture } from "./shapes";
import { zipfSizes } from "../stats";
import { installContextKey } from "../../lib/tenant-context/keys";
import { generateContextSecret, type ContextKey } from "../../lib/tenant-context/proof";

export interface DatasetOptions {
  tenants: number;
  /** Trades over all tenants (the other tables follow from lib/tenant/seed.ts seedSizes). */
  trades: number;
  /** Zipf exponent of the tenant sizes. @default 1 */
  exponent?: number;
  modes: readonly Mode[];
  /** Trade ids sampled per tenant for point lookups. @default 200 */
  sampleIds?: number;
  /**
   * SQL run as the owner right after migrate: a candidate design change (say, a new body for
   * tenancy.enter_tenant() or another index) measured before it becomes a versioned migration.
   */
  designSql?: string;
  onProgress?: (message: string) => void;
}

export interface Dataset {
  tenants: Fixture[];
  largest: Fixture;
  anchor: Date;
  /** Bytes (tables + indexes) per variant copy, and the total of all copies. */
  bytes: Record<string, number>;
  totalBytes: number;
  /** Whether pg_prewarm loaded every copy into shared_buffers before the run. */
  prewarmed: boolean;
  /** The key the runner mints proofs with: every transaction enters through the verifier (ADR-005). */
  contextKey: ContextKey;
}

/** Statements of a fresh planSchema that create the empty tables; the rest (indexes, constraints, RLS) runs after loading. */
export const isTableCreation = (statement: string) =>
  /^(CREATE SCHEMA|GRANT USAGE ON SCHEMA|CREATE TABLE|ALTER TABLE \S+ ADD COLUMN)/.test(statement);

const columnsWithout = (table: TenantTable, skip: string[]) => allColumns(table).filter((c) => !skip.includes(c.name));

/**
 * DDL of the single-tenant reference: the catalogue's tables without tenant_id, keys and indexes
 * without the tenant prefix. `create` makes the empty tables; `finish` runs after loading.
 */
export function singleTenantDdl(schema: string, tables: readonly TenantTable[] = TENANT_TABLES): { create: string[]; finish: string[] } {
  const s = ident(schema);
  const create = [`CREATE SCHEMA ${s} AUTHORIZATION ${ident(ROLES.owner)}`, `GRANT USAGE ON SCHEMA ${s} TO ${ident(ROLES.app)}`];
  const finish: string[] = [];
  for (const table of tables) {
    const name = qualified(schema, table.name);
    const columns = columnsWithout(table, ["tenant_id"]).map(
      (c) => `${ident(c.name)} ${c.type}${c.nullable ? "" : " NOT NULL"}${c.default ? ` DEFAULT ${c.default}` : ""}`,
    );
    create.push(`CREATE TABLE ${name} (${columns.join(", ")}, CONSTRAINT ${ident(`${table.name}_pkey`)} PRIMARY KEY (id))`);
    for (const c of table.columns.filter((x) => x.check))
      finish.push(`ALTER TABLE ${name} ADD CONSTRAINT ${ident(`${table.name}_${c.name}_check`)} CHECK (${c.check})`);
    for (const fk of table.foreignKeys ?? []) {
      const cols = fk.columns.map(ident).join(", ");
      finish.push(
        `ALTER TABLE ${name} ADD CONSTRAINT ${ident(`${table.name}_${fk.columns.join("_")}_fkey`)} FOREIGN KEY (${cols}) REFERENCES ${qualified(schema, fk.references)} (id) ON DELETE ${fk.onDelete.toUpperCase()}`,
      );
    }
    finish.push(`CREATE INDEX ${ident(`${table.name}_created_idx`)} ON ${name} (created_at)`);
    for (const index of table.indexes ?? []) {
      const iName = `${table.name}_${index.columns.join("_")}_${index.unique ? "key" : "idx"}`;
      finish.push(`CREATE ${index.unique ? "UNIQUE " : ""}INDEX ${ident(iName)} ON ${name} (${index.columns.map(ident).join(", ")})`);
    }
    finish.push(`GRANT SELECT, INSERT, UPDATE, DELETE ON ${name} TO ${ident(ROLES.app)}`);
  }
  return { create, finish };
}

/** What a copy's RLS must look like for its mode (run as the owner after planSchema). */
export function rlsAdjustments(mode: Mode, tables: readonly TenantTable[] = TENANT_TABLES): string[] {
  const out: string[] = [];
  for (const table of tables) {
    const name = qualified(mode.schema, table.name);
    if (mode.rls === "off") {
      out.push(`ALTER TABLE ${name} NO FORCE ROW LEVEL SECURITY`, `ALTER TABLE ${name} DISABLE ROW LEVEL SECURITY`);
    } else if (mode.rls === "variant") {
      if (!mode.policy) throw new Error(`mode ${mode.key} has a variant policy but no predicate`);
      out.push(
        `DROP POLICY ${POLICY_NAMES.isolation} ON ${name}`,
        `CREATE POLICY ${POLICY_NAMES.isolation} ON ${name} AS RESTRICTIVE FOR ALL TO PUBLIC USING (${mode.policy}) WITH CHECK (${mode.policy})`,
      );
    }
    // Autovacuum would analyse one copy and not another mid-run (different statistics, maybe a
    // different plan): copies are vacuumed and analysed together, by the harness, instead.
    out.push(`ALTER TABLE ${name} SET (autovacuum_enabled = false)`);
  }
  return out;
}

const tierFor = (rank: number, tenants: number): Tier =>
  rank < Math.ceil(tenants * 0.1) ? "enterprise" : rank < Math.ceil(tenants * 0.4) ? "pro" : "starter";

async function asOwner(client: Queryable, statements: readonly string[]): Promise<void> {
  await client.query("BEGIN");
  try {
    await client.query(`SET LOCAL ROLE ${ident(ROLES.owner)}`);
    for (const statement of statements) await client.query(statement);
    await client.query("COMMIT");
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  }
}

/** Builds everything on `admin` (a superuser connection to an empty database). */
export async function buildDataset(admin: Queryable, options: DatasetOptions): Promise<Dataset> {
  const progress = options.onProgress ?? (() => {});
  const sizes = zipfSizes(options.trades, options.tenants, options.exponent ?? 1, 100);
  const tables = TENANT_TABLES;

  progress("migrate");
  await migrate(admin, { tenantContext: "setting" });
  // The database stays in the raw-setting mode (the catalogue's copies are today's design); strict's
  // policy is a variant copy (mode s), and the verifier, which works in both modes, enters every transaction.
  const contextKey: ContextKey = { kid: "bench", region: "eu", secret: generateContextSecret() };
  await installContextKey(admin, contextKey);
  if (options.designSql) {
    progress("apply the candidate design SQL");
    await asOwner(admin, [options.designSql]);
  }

  progress(`seed ${options.tenants} tenants, ${options.trades} trades (largest ${sizes[0]}, smallest ${sizes[sizes.length - 1]})`);
  const tenants: { id: string; slug: string; trades: number }[] = [];
  for (const [rank, trades] of sizes.entries()) {
    const slug = `bench-t${String(rank).padStart(3, "0")}`;
    const tenant = await createTenant(admin, {
      slug,
      tier: tierFor(rank, sizes.length),
      region: "eu",
      displayName: `Bench tenant ${rank}`,
    });
    await seedTenant(admin, tenant, { trades }, 0.42 / (rank + 1));
    tenants.push({ id: tenant.id, slug, trades });
  }

  const shared = options.modes.filter((m) => m.layout === "shared");
  for (const m of shared) {
    progress(`copy ${m.key}: ${m.schema}`);
    const plan = planSchema(m.schema, emptySchemaState(), tables);
    await asOwner(admin, plan.filter(isTableCreation));
    for (const table of tables) {
      const cols = allColumns(table)
        .map((c) => ident(c.name))
        .join(", ");
      await admin.query(
        `INSERT INTO ${qualified(m.schema, table.name)} (${cols}) SELECT ${cols} FROM ${qualified(SHARED_SCHEMA, table.name)} ORDER BY created_at, id`,
      );
    }
    const state = (await readSchemaStates(admin, [m.schema], tables)).get(m.schema)!;
    await asOwner(admin, [...planSchema(m.schema, state, tables), ...rlsAdjustments(m, tables)]);
  }

  if (options.modes.some((m) => m.layout === "single")) {
    progress(`single-tenant reference: ${tenants.length} schemas`);
    for (const [index, tenant] of tenants.entries()) {
      const schema = singleSchema(index);
      const ddl = singleTenantDdl(schema, tables);
      await asOwner(admin, ddl.create);
      for (const table of tables) {
        const cols = columnsWithout(table, ["tenant_id"])
          .map((c) => ident(c.name))
          .join(", ");
        await admin.query(
          `INSERT INTO ${qualified(schema, table.name)} (${cols}) SELECT ${cols} FROM ${qualified(SHARED_SCHEMA, table.name)} WHERE tenant_id = $1 ORDER BY created_at, id`,
          [tenant.id],
        );
      }
      await asOwner(admin, [
        ...ddl.finish,
        ...tables.map((t) => `ALTER TABLE ${qualified(schema, t.name)} SET (autovacuum_enabled = false)`),
      ]);
    }
  }

  // The seed copy is not measured: empty it so it takes no cache from the copies.
  await admin.query(`TRUNCATE ${tables.map((t) => qualified(SHARED_SCHEMA, t.name)).join(", ")}`);

  progress("vacuum and analyse every copy (default_statistics_target 1000, the same for all)");
  const schemas = await benchSchemaNames(admin);
  await admin.query("SET default_statistics_target = 1000");
  for (const schema of schemas) {
    for (const table of tables) await admin.query(`VACUUM (ANALYZE) ${qualified(schema, table.name)}`);
  }
  await admin.query("RESET default_statistics_target");
  await admin.query(`VACUUM (ANALYZE) ${qualified("tenancy", "tenants")}`);

  const bytes: Record<string, number> = {};
  const { rows: sizeRows } = await admin.query(
    `SELECT n.nspname AS schema, sum(pg_total_relation_size(c.oid))::bigint AS bytes
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND n.nspname = ANY($1) GROUP BY n.nspname`,
    [schemas],
  );
  for (const r of sizeRows) {
    const key = r.schema.startsWith("bench_single_") ? "bench_single" : r.schema;
    bytes[key] = (bytes[key] ?? 0) + Number(r.bytes);
  }
  const totalBytes = Object.values(bytes).reduce((s, b) => s + b, 0);

  progress("prewarm");
  const prewarmed = await prewarm(admin, schemas);

  progress("fixtures");
  const floor = shared.find((m) => m.rls === "off") ?? shared[0];
  const fixtures = await readFixtures(admin, floor.schema, tenants, options.sampleIds ?? 200);
  const { rows: anchorRows } = await admin.query(`SELECT max(executed_at) AS anchor FROM ${qualified(floor.schema, "trades")}`);
  return { tenants: fixtures, largest: fixtures[0], anchor: anchorRows[0].anchor, bytes, totalBytes, prewarmed, contextKey };
}

async function benchSchemaNames(admin: Queryable): Promise<string[]> {
  const { rows } = await admin.query(`SELECT nspname FROM pg_namespace WHERE nspname LIKE 'bench\\_%' ORDER BY nspname`);
  return rows.map((r: { nspname: string }) => r.nspname);
}

/** Loads every relation of the copies (and the registry) into shared_buffers, so no variant pays first-touch reads. */
async function prewarm(admin: Queryable, schemas: string[]): Promise<boolean> {
  try {
    await admin.query("CREATE EXTENSION IF NOT EXISTS pg_prewarm");
    await admin.query(
      `SELECT pg_prewarm(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'i')`,
      [[...schemas, "tenancy"]],
    );
    return true;
  } catch {
    return false;
  }
}

async function readFixtures(
  admin: Queryable,
  schema: string,
  tenants: { id: string; slug: string; trades: number }[],
  sample: number,
): Promise<Fixture[]> {
  const ids = [tenants.map((t) => t.id)];
  const { rows: tradeRows } = await admin.query(
    `SELECT tenant_id, array_agg(id ORDER BY r) AS ids FROM (
       SELECT tenant_id, id, row_number() OVER (PARTITION BY tenant_id ORDER BY md5(id::text)) AS r FROM ${qualified(schema, "trades")}
     ) s WHERE r <= $2 AND tenant_id = ANY($1) GROUP BY tenant_id`,
    [...ids, sample],
  );
  const { rows: positionRows } = await admin.query(
    `SELECT tenant_id, array_agg(id ORDER BY symbol, id) AS ids, array_agg(symbol ORDER BY symbol, id) AS symbols
       FROM ${qualified(schema, "positions")} WHERE tenant_id = ANY($1) GROUP BY tenant_id`,
    ids,
  );
  const trades = new Map<string, string[]>(tradeRows.map((r: { tenant_id: string; ids: string[] }) => [r.tenant_id, r.ids]));
  const positions = new Map<string, { ids: string[]; symbols: string[] }>(
    positionRows.map((r: { tenant_id: string; ids: string[]; symbols: string[] }) => [r.tenant_id, r]),
  );
  return tenants.map((t, index) => {
    const p = positions.get(t.id) ?? { ids: [], symbols: [] };
    return {
      index,
      id: t.id,
      slug: t.slug,
      trades: t.trades,
      tradeIds: trades.get(t.id) ?? [],
      positions: p.ids.map((id, i) => ({ id, symbol: p.symbols[i] })),
      symbols: [...new Set(p.symbols)],
    };
  });
}
