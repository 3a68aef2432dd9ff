/**
 * SQL over one tenant's rows in one schema, shared by graduation/demotion and export/import:
 * content checksums, key anti-joins and the copy that brings a target schema to a source schema.
 * Pure renderers (table-tested) plus thin runners. Every statement filters by tenant_id = $1
 * explicitly and is meant to run as the maintenance role (BYPASSRLS): a copy made by a role under
 * RLS "succeeds" and copies whatever the session's tenant setting lets it see, often nothing.
 *
 * Two order-independent content checksums, both over every column but tenant_id (so they are the
 * same in any schema and under any tenant id) and both sums of per-row hashes (no sort, and no giant
 * string as md5(string_agg(...)) builds: 250 MB for a million rows):
 *  - `renderChecksum`: md5 of the row's text, summed as two 64-bit halves. Portable: export and
 *    import recompute it in JavaScript from the file (lib/enterprise/export-file.ts).
 *  - `renderCompare`: hash_record_extended() of the row under two seeds, computed in the same pass
 *    as a full join of source and target that counts missing, extra and different rows. About 10×
 *    cheaper than md5 of the text; used while a move holds the tenant's writes.
 */
import { createHash } from "node:crypto";
import { allColumns, type TenantTable } from "../schema/catalogue";
import type { Queryable } from "../db/client";
import { ident, qualified } from "../db/sql";

/** Every column of a table in catalogue order (the copy's column list). */
export function columnNames(table: TenantTable): string[] {
  return allColumns(table).map((c) => c.name);
}

/** The columns a content checksum covers: all but tenant_id. */
export function contentColumns(table: TenantTable): string[] {
  return columnNames(table).filter((c) => c !== "tenant_id");
}

const list = (columns: string[], alias?: string) => columns.map((c) => (alias ? `${alias}.${ident(c)}` : ident(c))).join(", ");

/** count, and the two 64-bit halves of the per-row md5s summed; $1 = tenant id. */
export function renderChecksum(schema: string, table: TenantTable): string {
  return (
    `SELECT count(*)::bigint AS rows, ` +
    `coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint::numeric), 0)::text AS hi, ` +
    `coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint::numeric), 0)::text AS lo ` +
    `FROM (SELECT md5(ROW(${list(contentColumns(table), "t")})::text) AS h FROM ${qualified(schema, table.name)} t WHERE t.tenant_id = $1) r`
  );
}

/** Keys of `from` missing in `to` (the anti-join that names what a copy lost); $1 = tenant id, $2 = limit. */
export function renderMissingKeys(from: string, to: string, table: TenantTable): string {
  return (
    `SELECT f.id::text AS id FROM ${qualified(from, table.name)} f WHERE f.tenant_id = $1 ` +
    `AND NOT EXISTS (SELECT 1 FROM ${qualified(to, table.name)} x WHERE x.tenant_id = $1 AND x.id = f.id) ORDER BY f.id LIMIT $2`
  );
}

/** Deletes the tenant's rows in `target` whose key is gone from `source`; $1 = tenant id. */
export function renderSyncDelete(source: string, target: string, table: TenantTable): string {
  return (
    `DELETE FROM ${qualified(target, table.name)} d WHERE d.tenant_id = $1 ` +
    `AND NOT EXISTS (SELECT 1 FROM ${qualified(source, table.name)} s WHERE s.tenant_id = $1 AND s.id = d.id)`
  );
}

/**
 * Inserts the tenant's rows of `source` missing in `target` and updates the ones that differ,
 * leaving identical rows alone (so re-running it, or running it after a partial copy, is cheap
 * and converges); $1 = tenant id.
 */
export function renderSyncUpsert(source: string, target: string, table: TenantTable): string {
  const columns = columnNames(table);
  const content = contentColumns(table).filter((c) => c !== "id");
  return (
    `INSERT INTO ${qualified(target, table.name)} AS d (${list(columns)}) ` +
    `SELECT ${list(columns, "s")} FROM ${qualified(source, table.name)} s ` +
    `LEFT JOIN ${qualified(target, table.name)} x ON x.tenant_id = s.tenant_id AND x.id = s.id ` +
    `WHERE s.tenant_id = $1 AND (x.id IS NULL OR ROW(${list(content, "x")}) IS DISTINCT FROM ROW(${list(content, "s")})) ` +
    `ON CONFLICT (tenant_id, id) DO UPDATE SET ${content.map((c) => `${ident(c)} = EXCLUDED.${ident(c)}`).join(", ")}`
  );
}

/** Rows in a schema that belong to other tenants (a dedicated schema must have none). */
export function renderForeignRows(schema: string, table: TenantTable): string {
  return `SELECT count(*)::bigint AS n FROM ${qualified(schema, table.name)} WHERE tenant_id <> $1`;
}

export interface TableChecksum {
  rows: number;
  /** 32 hex digits; equal for equal content. */
  checksum: string;
}

export function formatChecksum(rows: number | string, hi: string, lo: string): string {
  return createHash("sha256").update(`${rows}:${hi}:${lo}`).digest("hex").slice(0, 32);
}

export async function tableChecksum(tx: Queryable, schema: string, table: TenantTable, tenantId: string): Promise<TableChecksum> {
  const { rows } = await tx.query(renderChecksum(schema, table), [tenantId]);
  return { rows: Number(rows[0].rows), checksum: formatChecksum(rows[0].rows, rows[0].hi, rows[0].lo) };
}

export async function missingKeys(
  tx: Queryable,
  from: string,
  to: string,
  table: TenantTable,
  tenantId: string,
  limit = 10,
): Promise<string[]> {
  const { rows } = await tx.query(renderMissingKeys(from, to, table), [tenantId, limit]);
  return rows.map((r: { id: string }) => r.id);
}

export interface TableVerification {
  table: string;
  sourceRows: number;
  targetRows: number;
  sourceChecksum: string;
  targetChecksum: string;
  /** Up to 10 keys of the source missing in the target, and of the target missing in the source. */
  missingInTarget: string[];
  extraInTarget: string[];
  /** Rows present on both sides whose content differs. */
  different: number;
  ok: boolean;
}

const hashSum = (alias: string, columns: string[], seed: number) =>
  `coalesce(sum(hash_record_extended(ROW(${list(columns, alias)}), ${seed})::numeric) FILTER (WHERE ${alias}.id IS NOT NULL), 0)::text`;

/**
 * One pass over both sides (a full join on the key) that yields everything verification needs:
 * row counts, the anti-joins both ways (first 10 keys), rows that differ, and a content checksum
 * of each side; $1 = tenant id.
 */
export function renderCompare(source: string, target: string, table: TenantTable): string {
  const content = contentColumns(table);
  const rest = content.filter((c) => c !== "id");
  return (
    `SELECT count(s.id)::bigint AS source_rows, count(x.id)::bigint AS target_rows, ` +
    `count(*) FILTER (WHERE s.id IS NOT NULL AND x.id IS NOT NULL AND ROW(${list(rest, "s")}) IS DISTINCT FROM ROW(${list(rest, "x")}))::bigint AS different, ` +
    `coalesce((array_agg(s.id::text ORDER BY s.id) FILTER (WHERE x.id IS NULL))[1:10], '{}') AS missing, ` +
    `coalesce((array_agg(x.id::text ORDER BY x.id) FILTER (WHERE s.id IS NULL))[1:10], '{}') AS extra, ` +
    `${hashSum("s", content, 0)} AS s_hi, ${hashSum("s", content, 1)} AS s_lo, ${hashSum("x", content, 0)} AS x_hi, ${hashSum("x", content, 1)} AS x_lo ` +
    `FROM (SELECT ${list(content)} FROM ${qualified(source, table.name)} WHERE tenant_id = $1) s ` +
    `FULL JOIN (SELECT ${list(content)} FROM ${qualified(target, table.name)} WHERE tenant_id = $1) x ON x.id = s.id`
  );
}

/** Keys where source and target differ (missing, extra or changed), at most $2 of them; $1 = tenant id. */
export function renderDiffKeys(source: string, target: string, table: TenantTable): string {
  const content = contentColumns(table);
  const rest = content.filter((c) => c !== "id");
  return (
    `SELECT s.id::text AS source_id, x.id::text AS target_id ` +
    `FROM (SELECT ${list(content)} FROM ${qualified(source, table.name)} WHERE tenant_id = $1) s ` +
    `FULL JOIN (SELECT ${list(content)} FROM ${qualified(target, table.name)} WHERE tenant_id = $1) x ON x.id = s.id ` +
    `WHERE s.id IS NULL OR x.id IS NULL OR ROW(${list(rest, "s")}) IS DISTINCT FROM ROW(${list(rest, "x")}) LIMIT $2`
  );
}

/** Inserts or updates the given keys of the tenant from `source` into `target`; $1 = tenant id, $2 = uuid[]. */
export function renderUpsertKeys(source: string, target: string, table: TenantTable): string {
  const columns = columnNames(table);
  const content = contentColumns(table).filter((c) => c !== "id");
  return (
    `INSERT INTO ${qualified(target, table.name)} AS d (${list(columns)}) ` +
    `SELECT ${list(columns, "s")} FROM ${qualified(source, table.name)} s WHERE s.tenant_id = $1 AND s.id = ANY($2::uuid[]) ` +
    `ON CONFLICT (tenant_id, id) DO UPDATE SET ${content.map((c) => `${ident(c)} = EXCLUDED.${ident(c)}`).join(", ")}`
  );
}

/** Compares one tenant's rows in two schemas, table by table, in one pass each (renderCompare). */
export async function verifyCopy(
  tx: Queryable,
  source: string,
  target: string,
  tables: readonly TenantTable[],
  tenantId: string,
): Promise<TableVerification[]> {
  const out: TableVerification[] = [];
  for (const table of tables) {
    const { rows } = await tx.query(renderCompare(source, target, table), [tenantId]);
    const r = rows[0];
    const v = {
      table: table.name,
      sourceRows: Number(r.source_rows),
      targetRows: Number(r.target_rows),
      sourceChecksum: formatChecksum(r.source_rows, r.s_hi, r.s_lo),
      targetChecksum: formatChecksum(r.target_rows, r.x_hi, r.x_lo),
      missingInTarget: r.missing as string[],
      extraInTarget: r.extra as string[],
      different: Number(r.different),
    };
    out.push({
      ...v,
      ok:
        v.sourceRows === v.targetRows &&
        v.sourceChecksum === v.targetChecksum &&
        !v.missingInTarget.length &&
        !v.extraInTarget.length &&
        v.different === 0,
    });
  }
  return out;
}

export interface TableDiff {
  table: TenantTable;
  /** Keys to delete from the target (gone from the source). */
  gone: string[];
  /** Keys to insert or update from the source (missing in or different from the target). */
  changed: string[];
}

/**
 * The differences between source and target, per table, when there are at most `limit` in all;
 * undefined when there are more (then a set-based sync is cheaper than key lists).
 */
export async function diffTenantRows(
  tx: Queryable,
  source: string,
  target: string,
  tables: readonly TenantTable[],
  tenantId: string,
  limit = 100_000,
): Promise<TableDiff[] | undefined> {
  const out: TableDiff[] = [];
  let total = 0;
  for (const table of tables) {
    const { rows } = await tx.query(renderDiffKeys(source, target, table), [tenantId, limit - total + 1]);
    total += rows.length;
    if (total > limit) return undefined;
    out.push({
      table,
      gone: rows.filter((r: { source_id: string | null }) => r.source_id === null).map((r: { target_id: string }) => r.target_id),
      changed: rows.filter((r: { source_id: string | null }) => r.source_id !== null).map((r: { source_id: string }) => r.source_id),
    });
  }
  return out;
}

/** Applies diffs: deletes referencing tables first, then inserts/updates referenced tables first. Returns rows written. */
export async function applyDiff(
  tx: Queryable,
  source: string,
  target: string,
  diffs: TableDiff[],
  tenantId: string,
  chunk = 10_000,
): Promise<number> {
  let written = 0;
  for (const d of [...diffs].reverse()) {
    for (let i = 0; i < d.gone.length; i += chunk) {
      const { rowCount } = await tx.query(`DELETE FROM ${qualified(target, d.table.name)} WHERE tenant_id = $1 AND id = ANY($2::uuid[])`, [
        tenantId,
        d.gone.slice(i, i + chunk),
      ]);
      written += rowCount ?? 0;
    }
  }
  for (const d of diffs) {
    for (let i = 0; i < d.changed.length; i += chunk) {
      const { rowCount } = await tx.query(renderUpsertKeys(source, target, d.table), [tenantId, d.changed.slice(i, i + chunk)]);
      written += rowCount ?? 0;
    }
  }
  return written;
}

/** Deletes the tenant's rows in `target` whose keys are gone from `source`, referencing tables first. */
export async function deleteGoneRows(
  tx: Queryable,
  source: string,
  target: string,
  tables: readonly TenantTable[],
  tenantId: string,
): Promise<Record<string, number>> {
  const deleted: Record<string, number> = {};
  for (const table of [...tables].reverse()) {
    const { rowCount } = await tx.query(renderSyncDelete(source, target, table), [tenantId]);
    deleted[table.name] = rowCount ?? 0;
  }
  return deleted;
}

/** Inserts missing and updates changed rows of one table; returns the rows written. */
export async function upsertRows(tx: Queryable, source: string, target: string, table: TenantTable, tenantId: string): Promise<number> {
  const { rowCount } = await tx.query(renderSyncUpsert(source, target, table), [tenantId]);
  return rowCount ?? 0;
}

/**
 * Brings the tenant's rows in `target` to exactly those in `source`: deletes gone keys (referencing
 * tables first), then inserts missing and updates changed rows (referenced tables first). Returns
 * the rows written per table.
 */
export async function syncTenantRows(
  tx: Queryable,
  source: string,
  target: string,
  tables: readonly TenantTable[],
  tenantId: string,
): Promise<Record<string, number>> {
  const written = await deleteGoneRows(tx, source, target, tables, tenantId);
  for (const table of tables) written[table.name] += await upsertRows(tx, source, target, table, tenantId);
  return written;
}
