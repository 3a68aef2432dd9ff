/**
 * Per-tenant export: writes one tenant's rows to a file in the format of
 * lib/enterprise/export-file.ts, from one snapshot, and refuses to produce a file that is not
 * exactly what the database holds for the tenant: the content checksum is computed in PostgreSQL
 * in the same snapshot the rows stream from and again in JavaScript over what was written (an
 * export that silently saw a subset, as `pg_dump --enable-row-security` under a tenant setting
 * does, cannot pass). The file is signed (its last line a MAC) with the export key derived from the
 * region's tenant-context key (lib/enterprise/export-key.ts).
 */
import { createHash, createHmac } from "node:crypto";
import { renameSync, rmSync } from "node:fs";
import { allColumns, catalogueFingerprint, TENANT_TABLES, type TenantTable } from "../schema/catalogue";
import { withTransaction, type Queryable, type QueryResult } from "../db/client";
import { ROLES } from "../schema/roles";
import { REGISTRY_SCHEMA } from "../schema/planner";
import { ident, qualified } from "../db/sql";
import type { Tenant } from "../tenant/model";
import { requireTenant, tenantSchema } from "../tenant/registry";
import { contentColumns, tableChecksum } from "./tenant-rows";
import { EXPORT_KEY_LABEL, ExportKeyMissingError, readExportKeys, signingKey, type ExportKey } from "./export-key";
import {
  ContentChecksum,
  EXPORT_FORMAT,
  EXPORT_VERSION,
  IncompleteExportError,
  openOutput,
  TEXT_SETTINGS,
  write,
  type ExportHeader,
  type TableSummary,
} from "./export-file";

export interface ExportReport {
  file: string;
  tenant: { id: string; slug: string; region: string; placement: string };
  tables: TableSummary[];
  rows: number;
  bytes: number;
  fingerprint: string;
  /** The key id the file is signed with; null when it was written unsigned (allowUnsigned, no key installed). */
  signedWith: string | null;
  durationMs: number;
}

export interface ExportOptions {
  tables?: readonly TenantTable[];
  /** Rows per round trip. @default 5000 */
  batchSize?: number;
  onProgress?: (message: string) => void;
  /**
   * The key to sign with. PITR passes the live database's (it exports from a scratch copy whose keys
   * are as old as the backup). Must be of the database's region.
   * @default the newest active key of the database exported from
   */
  signWith?: ExportKey;
  /**
   * Write an unsigned file when there is no key to sign with (offboarding must not be blocked by a
   * missing key). Such a file imports only with allowUnsigned.
   * @default false: no key → ExportKeyMissingError, nothing written
   */
  allowUnsigned?: boolean;
}

/**
 * Writes one tenant's rows to `file` from one REPEATABLE READ snapshot, as the maintenance role
 * with an explicit tenant filter. The file appears only when complete and verified (written to
 * `<file>.partial`, then renamed).
 */
export async function exportTenant(client: Queryable, ref: string, file: string, options: ExportOptions = {}): Promise<ExportReport> {
  const tables = options.tables ?? TENANT_TABLES;
  const progress = options.onProgress ?? (() => {});
  const batchSize = options.batchSize ?? 5000;
  const started = Date.now();
  const found = await requireTenant(client, ref);
  // The database's region never changes once recorded (lib/schema/migrate.ts), so reading it first is exact.
  const { rows: settings } = await client.query(`SELECT region FROM ${qualified(REGISTRY_SCHEMA, "database_settings")}`);
  const databaseRegion = (settings[0]?.region ?? null) as string | null;
  const region = databaseRegion ?? found.region;
  const key = options.signWith ?? signingKey(await readExportKeys(client), region);
  if (key && key.region !== region)
    throw new Error(`the signing key ${key.kid} is of region ${key.region}, the export of region ${region}`);
  if (!key && !options.allowUnsigned) throw new ExportKeyMissingError(databaseRegion);
  if (!key) progress(`no tenant-context key is installed: writing an UNSIGNED export (it imports only with --allow-unsigned)`);
  const mac = key ? createHmac("sha256", key.key) : undefined;
  const partial = `${file}.partial`;
  // Compressed when the name says so; written under a temporary name until complete.
  const out = openOutput(partial, file.endsWith(".gz"));
  const fileHash = createHash("sha256");
  let bytes = 0;
  const emit = async (line: string) => {
    const text = line + "\n";
    fileHash.update(text);
    mac?.update(text);
    bytes += Buffer.byteLength(text);
    await write(out.stream, text);
  };
  try {
    const report = await withTransaction(client, async (tx) => {
      await tx.query(`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY`);
      await tx.query(`SET LOCAL ROLE ${ident(ROLES.maintenance)}`);
      for (const s of TEXT_SETTINGS) await tx.query(s);
      await tx.query(`SET LOCAL statement_timeout = 0`);
      const { rows: me } = await tx.query(`SELECT rolbypassrls FROM pg_roles WHERE rolname = current_user`);
      if (!me[0]?.rolbypassrls)
        throw new IncompleteExportError(`the export role does not bypass RLS: it would export only what some tenant setting lets it see`);
      // The registry row from the same snapshot as the data: a move's flip is atomic with its copy.
      const { rows: registry } = await tx.query(
        `SELECT t.id, t.slug, t.display_name AS "displayName", t.tier, t.region, t.placement, t.status,
                to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS snapshot_at
           FROM ${qualified(REGISTRY_SCHEMA, "tenants")} t WHERE t.id = $1`,
        [found.id],
      );
      const t = registry[0] as Tenant & { snapshot_at: string };
      if (!t) throw new Error(`tenant ${ref} disappeared`);
      const schema = tenantSchema(t);
      const header: ExportHeader = {
        format: EXPORT_FORMAT,
        version: EXPORT_VERSION,
        tenant: {
          id: t.id,
          slug: t.slug,
          displayName: t.displayName,
          tier: t.tier,
          region: t.region,
          placement: t.placement,
          status: t.status,
        },
        region: (databaseRegion ?? t.region) as ExportHeader["region"],
        catalogue: {
          fingerprint: catalogueFingerprint(tables),
          tables: tables.map((table) => ({
            name: table.name,
            columns: allColumns(table)
              .filter((c) => c.name !== "tenant_id")
              .map((c) => ({ name: c.name, type: c.type })),
          })),
        },
        exportedAt: new Date().toISOString(),
        snapshotAt: t.snapshot_at,
        signature: key ? { alg: "HMAC-SHA256", kid: key.kid, key: EXPORT_KEY_LABEL } : null,
      };
      await emit(JSON.stringify(header));
      const summaries: TableSummary[] = [];
      for (const table of tables) {
        const columns = contentColumns(table);
        await emit(JSON.stringify({ table: table.name, columns }));
        const tableHash = createHash("sha256");
        const sum = new ContentChecksum();
        const select = columns.map((c, i) => `${ident(c)}::text AS c${i}`).join(", ");
        let after: string | null = null;
        for (;;) {
          const { rows }: QueryResult<Record<string, string | null>> = await tx.query(
            `SELECT ${select} FROM ${qualified(schema, table.name)} WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id > $2::uuid) ORDER BY id LIMIT $3`,
            [t.id, after, batchSize],
          );
          for (const row of rows) {
            const values = columns.map((_c, i) => row[`c${i}`]);
            const line = JSON.stringify(values) + "\n";
            tableHash.update(line);
            sum.add(values);
            await emit(line.slice(0, -1));
          }
          if (rows.length < batchSize) break;
          after = rows[rows.length - 1].c0; // id is the first content column
        }
        // Completeness: what we wrote is exactly what PostgreSQL holds for the tenant in this snapshot.
        const source = await tableChecksum(tx, schema, table, t.id);
        if (source.rows !== sum.rows || source.checksum !== sum.value()) {
          throw new IncompleteExportError(
            `${schema}.${table.name}: wrote ${sum.rows} rows (${sum.value()}) but the source holds ${source.rows} (${source.checksum})`,
          );
        }
        await emit(JSON.stringify({ end: table.name, rows: sum.rows, sha256: tableHash.digest("hex"), checksum: source.checksum }));
        summaries.push({ table: table.name, rows: sum.rows, checksum: source.checksum });
        progress(`${table.name}: ${sum.rows} row(s)`);
      }
      const trailer = {
        trailer: true,
        tables: Object.fromEntries(summaries.map((s) => [s.table, { rows: s.rows, checksum: s.checksum }])),
        sha256: fileHash.copy().digest("hex"),
      };
      await emit(JSON.stringify(trailer));
      if (mac) {
        const line = JSON.stringify({ mac: mac.digest("hex") }) + "\n";
        bytes += Buffer.byteLength(line);
        await write(out.stream, line);
      }
      return { header, summaries };
    });
    out.stream.end();
    await out.done;
    renameSync(partial, file);
    const rows = report.summaries.reduce((n, s) => n + s.rows, 0);
    return {
      file,
      tenant: {
        id: report.header.tenant.id,
        slug: report.header.tenant.slug,
        region: report.header.region,
        placement: report.header.tenant.placement,
      },
      tables: report.summaries,
      rows,
      bytes,
      fingerprint: report.header.catalogue.fingerprint,
      signedWith: key?.kid ?? null,
      durationMs: Date.now() - started,
    };
  } catch (err) {
    out.stream.destroy();
    await out.done.catch(() => {});
    rmSync(partial, { force: true });
    throw err;
  }
}
