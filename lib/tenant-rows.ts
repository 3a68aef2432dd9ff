/**
 * SQL over one tenant's rows in one schema, shared by graduation/demotion and export/import:
 * content checksums, key anti-joins and the copy that brings a target schema to a source schema.
 * Pure renderers (table-tested) plus thin runners. Every statement filters by tenant_id = $1
 * explicitly and is meant to run as the maintenance role (BYPASSRLS): a copy made by a role under
 * RLS "succeeds" and copies whatever the session's tenant setting lets it see, often nothing.
 *
 * The content checksum of a table is order-independent: per row md5 of the row's text (every
 * column but tenant_id, in catalogue order), summed as two 64-bit halves. It needs no sort and no
 * giant string (md5(string_agg(...)) over a million rows builds a 250 MB value and sorts it), is
 * the same in any schema and under any tenant id (so an import under `--as` can be verified
 * against the source), and any changed, missing or extra row changes it.
 */
import { createHash } from "node:crypto";
import { allColumns, type TenantTable } from "./catalogue";
import type { Queryable } from "./db";
import { ident, qualified } from "./sql";

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

export async function missingKeys(tx: Queryable, from: string, to: string, table: TenantTable, tenantId: string, limit = 10): Promise<string[]> {
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
  ok: boolean;
}

/** Compares one tenant's rows in two schemas, table by table: counts, content checksums, key anti-joins. */
export async function verifyCopy(tx: Queryable, source: string, target: string, tables: readonly TenantTable[], tenantId: string): Promise<TableVerification[]> {
  const out: TableVerification[] = [];
  for (const table of tables) {
    const s = await tableChecksum(tx, source, table, tenantId);
    const t = await tableChecksum(tx, target, table, tenantId);
    const missingInTarget = await missingKeys(tx, source, target, table, tenantId);
    const extraInTarget = await missingKeys(tx, target, source, table, tenantId);
    out.push({
      table: table.name,
      sourceRows: s.rows,
      targetRows: t.rows,
      sourceChecksum: s.checksum,
      targetChecksum: t.checksum,
      missingInTarget,
      extraInTarget,
      ok: s.rows === t.rows && s.checksum === t.checksum && !missingInTarget.length && !extraInTarget.length,
    });
  }
  return out;
}

/** Deletes the tenant's rows in `target` whose keys are gone from `source`, referencing tables first. */
export async function deleteGoneRows(tx: Queryable, source: string, target: string, tables: readonly TenantTable[], tenantId: string): Promise<Record<string, number>> {
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
export async function syncTenantRows(tx: Queryable, source: string, target: string, tables: readonly TenantTable[], tenantId: string): Promise<Record<string, number>> {
  const written = await deleteGoneRows(tx, source, target, tables, tenantId);
  for (const table of tables) written[table.name] += await upsertRows(tx, source, target, table, tenantId);
  return written;
}
