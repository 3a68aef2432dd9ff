/**
 * Per-tenant export and import: one tenant's rows, shared or dedicated, in a documented, versioned
 * file (docs/enterprise.md "Export format"), with checksums that tie the file to the source
 * database and the imported rows to the file.
 *
 *   line 1        header  {"format":"alphapulse-tenant-export","version":1,"tenant":{...},"region":"eu",
 *                          "catalogue":{"fingerprint":"...","tables":[{"name":..., "columns":[{"name","type"}]}]},
 *                          "exportedAt":"...","snapshotAt":"..."}
 *   per table     start   {"table":"positions","columns":["id","created_at",...]}   (every column but tenant_id)
 *                 rows    ["<id>","<created_at>",...]                                (text values or null)
 *                 end     {"end":"positions","rows":12,"sha256":"<of the row lines>","checksum":"<content checksum>"}
 *   last line     trailer {"trailer":true,"tables":{"positions":{"rows":12,"checksum":"..."}},"sha256":"<of every byte before>"}
 *
 * Rows carry no tenant id: everything in a file belongs to the header's tenant, and an import
 * writes it under exactly one tenant id (the header's, or a new one with `as`), so it cannot mix
 * rows into another tenant; foreign keys stay consistent because they are (tenant_id, id) pairs.
 *
 * The content checksum is lib/enterprise/tenant-rows.ts's (per-row md5 of the row text, summed): the export
 * computes it in PostgreSQL in the same snapshot it streams from and again in JavaScript over what
 * it wrote, and refuses if they differ (an export that silently saw a subset, as `pg_dump
 * --enable-row-security` under a tenant setting does, cannot pass). An import recomputes it over
 * the file before writing and in PostgreSQL over what it wrote, before committing.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, renameSync, rmSync } from "node:fs";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { createGunzip, createGzip } from "node:zlib";
import type { Readable, Writable } from "node:stream";
import { z } from "zod";
import { allColumns, catalogueFingerprint, TENANT_TABLES, tablesInDeleteOrder, type TenantTable } from "../schema/catalogue";
import { withTransaction, type Queryable, type QueryResult } from "../db/client";
import { tenantGateKey, openMove } from "./graduation";
import { ROLES } from "../schema/roles";
import { canonicalType, REGISTRY_SCHEMA } from "../schema/planner";
import { ident, qualified } from "../db/sql";
import { ResidencyRegion, Tier, TenantId, TenantSlug, TenantDisplayName, Placement, TenantStatus, type Tenant } from "../tenant/model";
import { createTenant, findTenant, requireTenant, ResidencyMismatchError, tenantSchema, TenantExistsError } from "../tenant/registry";
import { contentColumns, formatChecksum, tableChecksum } from "./tenant-rows";

export const EXPORT_FORMAT = "alphapulse-tenant-export";
export const EXPORT_VERSION = 1;

export class CorruptExportError extends Error {
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`${file} is not a valid tenant export (${detail}): refusing to import it`);
    this.name = "CorruptExportError";
  }
}

export class ImportConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ImportConflictError";
  }
}

export class IncompleteExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "IncompleteExportError";
  }
}

const ExportedColumn = z.object({ name: z.string(), type: z.string() });
export const ExportHeader = z.object({
  format: z.literal(EXPORT_FORMAT),
  version: z.number().int(),
  tenant: z.object({
    id: TenantId,
    slug: TenantSlug,
    displayName: TenantDisplayName,
    tier: Tier,
    region: ResidencyRegion,
    placement: Placement,
    status: TenantStatus,
  }),
  region: ResidencyRegion,
  catalogue: z.object({ fingerprint: z.string(), tables: z.array(z.object({ name: z.string(), columns: z.array(ExportedColumn) })) }),
  exportedAt: z.string(),
  snapshotAt: z.string(),
});
export type ExportHeader = z.infer<typeof ExportHeader>;

const TableStart = z.object({ table: z.string(), columns: z.array(z.string()) });
const TableEnd = z.object({ end: z.string(), rows: z.number().int().nonnegative(), sha256: z.string(), checksum: z.string() });
const Trailer = z.object({
  trailer: z.literal(true),
  tables: z.record(z.string(), z.object({ rows: z.number(), checksum: z.string() })),
  sha256: z.string(),
});

export interface TableSummary {
  table: string;
  rows: number;
  checksum: string;
}

export interface ExportReport {
  file: string;
  tenant: { id: string; slug: string; region: string; placement: string };
  tables: TableSummary[];
  rows: number;
  bytes: number;
  fingerprint: string;
  durationMs: number;
}

export interface ExportOptions {
  tables?: readonly TenantTable[];
  /** Rows per round trip. @default 5000 */
  batchSize?: number;
  onProgress?: (message: string) => void;
}

/** Session settings that fix how values print as text, so checksums agree across sessions and servers. */
const TEXT_SETTINGS = [
  `SET LOCAL TimeZone = 'UTC'`,
  `SET LOCAL DateStyle = 'ISO, YMD'`,
  `SET LOCAL IntervalStyle = 'postgres'`,
  `SET LOCAL extra_float_digits = 1`,
];

// --- the content checksum, in JavaScript ---------------------------------------------------------

/** A row as PostgreSQL's record_out prints it: `(v1,v2,...)`, quoting what needs quoting, NULL as nothing. */
export function recordText(values: readonly (string | null)[]): string {
  return (
    "(" +
    values
      .map((v) => {
        if (v === null) return "";
        if (v === "" || /[",\\() \t\n\r\f\v]/.test(v)) return `"${v.replace(/(["\\])/g, "$1$1")}"`;
        return v;
      })
      .join(",") +
    ")"
  );
}

/** Accumulates lib/enterprise/tenant-rows.ts's content checksum over rows, without PostgreSQL. */
export class ContentChecksum {
  rows = 0;
  private hi = 0n;
  private lo = 0n;
  add(values: readonly (string | null)[]): void {
    const h = createHash("md5").update(recordText(values)).digest();
    this.hi += h.readBigInt64BE(0);
    this.lo += h.readBigInt64BE(8);
    this.rows++;
  }
  value(): string {
    return formatChecksum(this.rows, this.hi.toString(), this.lo.toString());
  }
}

// --- export ---------------------------------------------------------------------------------------

function openOutput(path: string, gzip: boolean): { stream: Writable; done: Promise<unknown> } {
  const file = createWriteStream(path, { mode: 0o600 });
  if (!gzip) return { stream: file, done: once(file, "close") };
  const zip = createGzip();
  zip.pipe(file);
  return { stream: zip, done: once(file, "close") };
}

async function write(stream: Writable, text: string): Promise<void> {
  if (!stream.write(text)) await once(stream, "drain");
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
  const partial = `${file}.partial`;
  // Compressed when the name says so; written under a temporary name until complete.
  const out = openOutput(partial, file.endsWith(".gz"));
  const fileHash = createHash("sha256");
  let bytes = 0;
  const emit = async (line: string) => {
    const text = line + "\n";
    fileHash.update(text);
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
      const line = JSON.stringify(trailer) + "\n";
      bytes += Buffer.byteLength(line);
      await write(out.stream, line);
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
      durationMs: Date.now() - started,
    };
  } catch (err) {
    out.stream.destroy();
    await out.done.catch(() => {});
    rmSync(partial, { force: true });
    throw err;
  }
}

// --- reading a file -------------------------------------------------------------------------------

export interface ExportFile {
  header: ExportHeader;
  tables: { table: string; columns: string[]; rows: number; checksum: string }[];
}

type Event =
  | { kind: "header"; header: ExportHeader }
  | { kind: "start"; table: string; columns: string[] }
  | { kind: "rows"; table: string; rows: (string | null)[][] }
  | { kind: "end"; table: string; rows: number; checksum: string };

function openInput(path: string): Readable {
  const file = createReadStream(path);
  return path.endsWith(".gz") ? file.pipe(createGunzip()) : file;
}

/**
 * Reads and checks a file line by line: structure, every checksum (per table sha256 and content
 * checksum, the whole file's sha256), row shapes. Calls `onEvent` as it goes; throws
 * CorruptExportError at the first problem.
 */
async function readExport(path: string, onEvent: (e: Event) => Promise<void>, batchSize = 5000): Promise<ExportFile> {
  const fail = (detail: string): never => {
    throw new CorruptExportError(path, detail);
  };
  const input = openInput(path);
  const lines = createInterface({ input, crlfDelay: Infinity });
  const fileHash = createHash("sha256");
  let header: ExportHeader | undefined;
  let current:
    { table: string; columns: string[]; hash: ReturnType<typeof createHash>; sum: ContentChecksum; batch: (string | null)[][] } | undefined;
  const tables: ExportFile["tables"] = [];
  let trailer: z.infer<typeof Trailer> | undefined;
  let n = 0;
  try {
    for await (const line of lines) {
      n++;
      if (trailer) fail(`data after the trailer at line ${n}`);
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        fail(`line ${n} is not JSON`);
      }
      if (!header) {
        const format = (value as { format?: unknown; version?: unknown }) ?? {};
        if (format.format !== EXPORT_FORMAT) fail(`line 1 is not an ${EXPORT_FORMAT} header`);
        if (format.version !== EXPORT_VERSION)
          fail(`format version ${String(format.version)} is not supported (this tool reads version ${EXPORT_VERSION})`);
        const parsed = ExportHeader.safeParse(value);
        if (!parsed.success) fail(`header: ${parsed.error.issues[0].path.join(".")} ${parsed.error.issues[0].message}`);
        header = parsed.data!;
        fileHash.update(line + "\n");
        await onEvent({ kind: "header", header });
        continue;
      }
      if (Array.isArray(value)) {
        if (!current) fail(`row outside a table at line ${n}`);
        const row = value as unknown[];
        if (row.length !== current!.columns.length || !row.every((v) => v === null || typeof v === "string"))
          fail(`line ${n}: a row of ${current!.table} must be ${current!.columns.length} strings or nulls`);
        const text = line + "\n";
        fileHash.update(text);
        current!.hash.update(text);
        current!.sum.add(row as (string | null)[]);
        current!.batch.push(row as (string | null)[]);
        if (current!.batch.length >= batchSize) {
          await onEvent({ kind: "rows", table: current!.table, rows: current!.batch });
          current!.batch = [];
        }
        continue;
      }
      const record = value as Record<string, unknown>;
      if ("table" in record) {
        const start = TableStart.safeParse(record);
        if (!start.success || current) fail(`line ${n}: unexpected table start`);
        const declared = header.catalogue.tables.find((t) => t.name === start.data!.table);
        if (!declared || JSON.stringify(declared.columns.map((c) => c.name)) !== JSON.stringify(start.data!.columns))
          fail(`line ${n}: table ${start.data!.table} does not match the header`);
        if (tables.some((t) => t.table === start.data!.table)) fail(`line ${n}: table ${start.data!.table} appears twice`);
        fileHash.update(line + "\n");
        current = {
          table: start.data!.table,
          columns: start.data!.columns,
          hash: createHash("sha256"),
          sum: new ContentChecksum(),
          batch: [],
        };
        await onEvent({ kind: "start", table: current.table, columns: current.columns });
      } else if ("end" in record) {
        const end = TableEnd.safeParse(record);
        if (!end.success || !current || end.data.end !== current.table) fail(`line ${n}: unexpected table end`);
        const e = end.data!;
        if (e.rows !== current!.sum.rows) fail(`${current!.table}: the file says ${e.rows} rows but holds ${current!.sum.rows}`);
        if (e.sha256 !== current!.hash.digest("hex")) fail(`${current!.table}: sha256 of the rows does not match`);
        if (e.checksum !== current!.sum.value()) fail(`${current!.table}: content checksum does not match`);
        fileHash.update(line + "\n");
        if (current!.batch.length) await onEvent({ kind: "rows", table: current!.table, rows: current!.batch });
        await onEvent({ kind: "end", table: current!.table, rows: e.rows, checksum: e.checksum });
        tables.push({ table: current!.table, columns: current!.columns, rows: e.rows, checksum: e.checksum });
        current = undefined;
      } else if ("trailer" in record) {
        const t = Trailer.safeParse(record);
        if (!t.success || current) fail(`line ${n}: unexpected trailer`);
        if (t.data!.sha256 !== fileHash.digest("hex")) fail(`the file's sha256 does not match its trailer`);
        for (const s of tables) {
          const summary = t.data!.tables[s.table];
          if (!summary || summary.rows !== s.rows || summary.checksum !== s.checksum) fail(`trailer disagrees about ${s.table}`);
        }
        if (Object.keys(t.data!.tables).length !== tables.length) fail(`trailer lists other tables`);
        trailer = t.data;
      } else {
        fail(`line ${n} is not part of the format`);
      }
    }
  } catch (err) {
    if (err instanceof CorruptExportError) throw err;
    if ((err as { code?: string }).code === "ENOENT") throw err;
    throw new CorruptExportError(path, (err as Error).message); // e.g. a damaged gzip stream
  } finally {
    input.destroy();
  }
  if (!header) fail("the file is empty");
  if (!trailer) fail("the file is truncated (no trailer)");
  const missing = header!.catalogue.tables.filter((t) => !tables.some((s) => s.table === t.name));
  if (missing.length) fail(`tables ${missing.map((t) => t.name).join(", ")} are declared but absent`);
  return { header: header!, tables };
}

/** Checks a file completely (every checksum) without touching any database. */
export async function verifyExportFile(path: string): Promise<ExportFile> {
  return readExport(path, async () => {});
}

// --- import ---------------------------------------------------------------------------------------

export interface ImportOptions {
  /** Import under a new tenant with this slug (a new id); the file's rows are rewritten to it. */
  as?: string;
  /** Replace the rows of an existing tenant (the PITR single-tenant restore); its writes are held meanwhile. */
  replace?: boolean;
  tables?: readonly TenantTable[];
  batchSize?: number;
  onProgress?: (message: string) => void;
}

export interface ImportReport {
  file: string;
  source: { id: string; slug: string; region: string; exportedAt: string; snapshotAt: string };
  tenant: { id: string; slug: string; created: boolean; schema: string };
  tables: (TableSummary & { verified: "checksum" | "rows" })[];
  rows: number;
  replacedRows: number;
  durationMs: number;
}

/** Whether the file's tables and columns can be written into the current catalogue, and how checksums compare. */
export function compatibility(header: ExportHeader, tables: readonly TenantTable[]): { problems: string[]; sameColumns: Set<string> } {
  const problems: string[] = [];
  const sameColumns = new Set<string>();
  for (const declared of header.catalogue.tables) {
    const table = tables.find((t) => t.name === declared.name);
    if (!table) {
      problems.push(`table ${declared.name} is not in this catalogue`);
      continue;
    }
    const current = allColumns(table).filter((c) => c.name !== "tenant_id");
    for (const column of declared.columns) {
      const have = current.find((c) => c.name === column.name);
      if (!have) problems.push(`${declared.name}.${column.name} is not in this catalogue`);
      else if (canonicalType(have.type) !== canonicalType(column.type))
        problems.push(`${declared.name}.${column.name} is ${column.type} in the file but ${have.type} here`);
    }
    for (const column of current) {
      if (!declared.columns.some((c) => c.name === column.name) && !column.nullable && column.default === undefined) {
        problems.push(`${declared.name}.${column.name} is required here but absent from the file`);
      }
    }
    if (JSON.stringify(current.map((c) => c.name)) === JSON.stringify(declared.columns.map((c) => c.name))) sameColumns.add(declared.name);
  }
  return { problems, sameColumns };
}

/**
 * Imports a file (checked completely first: a corrupted file writes nothing) into one tenant, in
 * one transaction, and verifies per table that PostgreSQL now holds exactly the file's rows
 * before committing.
 *  - without `as`: into the tenant with the file's id (created if absent; refused if it has rows,
 *    unless `replace`);
 *  - with `as`: into a new tenant with that slug and a new id.
 * Refused when the file's residency region differs from this database's or the target tenant's.
 */
export async function importTenant(client: Queryable, file: string, options: ImportOptions = {}): Promise<ImportReport> {
  const tables = options.tables ?? TENANT_TABLES;
  const progress = options.onProgress ?? (() => {});
  const started = Date.now();
  const checked = await verifyExportFile(file);
  const { header } = checked;
  progress(
    `checked ${file}: ${checked.tables.reduce((n, t) => n + t.rows, 0)} row(s) of ${header.tenant.slug}, exported ${header.exportedAt}`,
  );

  const { problems, sameColumns } = compatibility(header, tables);
  if (problems.length) throw new ImportConflictError(`the file's catalogue does not fit this database: ${problems.join("; ")}`);

  const { rows: settings } = await client.query(`SELECT region FROM ${qualified(REGISTRY_SCHEMA, "database_settings")}`);
  const databaseRegion = settings[0]?.region as string | null;
  if (header.region !== header.tenant.region)
    throw new CorruptExportError(file, `header region ${header.region} and tenant region ${header.tenant.region} differ`);
  if (databaseRegion && databaseRegion !== header.region) {
    throw new ResidencyMismatchError(
      `the file holds ${header.tenant.slug}'s data from residency region "${header.region}"; this database serves "${databaseRegion}": refusing to import it here`,
    );
  }

  // The target tenant.
  let target: Tenant;
  let created = false;
  if (options.as !== undefined) {
    const slug = TenantSlug.parse(options.as);
    if (await findTenant(client, slug)) throw new TenantExistsError(slug);
    target = await createTenant(client, {
      slug,
      tier: header.tenant.tier,
      region: header.tenant.region,
      displayName: header.tenant.displayName,
    });
    created = true;
  } else {
    const existing = await findTenant(client, header.tenant.id);
    if (existing) {
      if (existing.region !== header.region)
        throw new ResidencyMismatchError(
          `tenant ${existing.slug} has residency region "${existing.region}" but the file is from "${header.region}"`,
        );
      target = existing;
    } else {
      const bySlug = await findTenant(client, header.tenant.slug);
      if (bySlug)
        throw new ImportConflictError(
          `slug ${header.tenant.slug} belongs to another tenant (${bySlug.id}) here: import with --as <new-slug>`,
        );
      target = await createTenant(client, {
        id: header.tenant.id,
        slug: header.tenant.slug,
        tier: header.tenant.tier,
        region: header.tenant.region,
        displayName: header.tenant.displayName,
      });
      created = true;
    }
  }

  try {
    return await withTransaction(client, async (tx) => {
      await tx.query(`SET TRANSACTION ISOLATION LEVEL READ COMMITTED`);
      // Hold the target's writes: nothing of theirs may interleave with a replace.
      await tx.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [tenantGateKey(target.id)]);
      const move = await openMove(tx, target.id);
      if (move) throw new ImportConflictError(`${target.slug} has an unfinished ${move.direction} (step ${move.step}): finish it first`);
      // A plain read (requireTenant would open a transaction of its own inside this one).
      const { rows: registry } = await tx.query(`SELECT id, slug, placement FROM ${qualified(REGISTRY_SCHEMA, "tenants")} WHERE id = $1`, [
        target.id,
      ]);
      const current = registry[0] as Pick<Tenant, "id" | "slug" | "placement">;
      if (!current) throw new ImportConflictError(`tenant ${target.slug} was deleted during the import`);
      const schema = tenantSchema(current);
      await tx.query(`SET LOCAL ROLE ${ident(ROLES.maintenance)}`);
      for (const s of TEXT_SETTINGS) await tx.query(s);
      await tx.query(`SET LOCAL statement_timeout = 0`);

      let replacedRows = 0;
      const { rows: existing } = await tx.query(
        tables.map((t) => `SELECT count(*)::bigint AS n FROM ${qualified(schema, t.name)} WHERE tenant_id = $1`).join(" UNION ALL "),
        [target.id],
      );
      const present = existing.reduce((n: number, r: { n: string }) => n + Number(r.n), 0);
      if (present > 0 && !options.replace) {
        throw new ImportConflictError(
          `${current.slug} already has ${present} row(s): import into an empty tenant, use --as <new-slug>, or restore with replace`,
        );
      }
      if (present > 0) {
        for (const table of tablesInDeleteOrder(tables)) {
          const { rowCount } = await tx.query(`DELETE FROM ${qualified(schema, table.name)} WHERE tenant_id = $1`, [target.id]);
          replacedRows += rowCount ?? 0;
        }
        progress(`removed ${replacedRows} current row(s) of ${current.slug}`);
      }

      const results: ImportReport["tables"] = [];
      await readExport(
        file,
        async (e) => {
          if (e.kind === "rows") {
            await insertRows(
              tx,
              schema,
              tables.find((t) => t.name === e.table)!,
              header,
              e.table,
              e.rows,
              target.id,
            );
          } else if (e.kind === "end") {
            const table = tables.find((t) => t.name === e.table)!;
            const now = await tableChecksum(tx, schema, table, target.id);
            const comparable = sameColumns.has(e.table);
            if (now.rows !== e.rows || (comparable && now.checksum !== e.checksum)) {
              throw new IncompleteExportError(
                `${schema}.${e.table}: imported ${now.rows} rows (${now.checksum}) but the file holds ${e.rows} (${e.checksum})`,
              );
            }
            results.push({ table: e.table, rows: now.rows, checksum: now.checksum, verified: comparable ? "checksum" : "rows" });
            progress(`${e.table}: ${now.rows} row(s) imported and verified`);
          }
        },
        options.batchSize ?? 5000,
      );
      return {
        file,
        source: {
          id: header.tenant.id,
          slug: header.tenant.slug,
          region: header.region,
          exportedAt: header.exportedAt,
          snapshotAt: header.snapshotAt,
        },
        tenant: { id: target.id, slug: target.slug, created, schema },
        tables: results,
        rows: results.reduce((n, r) => n + r.rows, 0),
        replacedRows,
        durationMs: Date.now() - started,
      };
    });
  } catch (err) {
    // A tenant this import created holds nothing: remove it, so a failed import leaves nothing behind.
    if (created) {
      await withTransaction(client, async (tx) => {
        await tx.query(`SET LOCAL ROLE ${ident(ROLES.owner)}`);
        await tx.query(`DELETE FROM ${qualified(REGISTRY_SCHEMA, "tenants")} WHERE id = $1`, [target.id]);
      }).catch(() => {});
    }
    throw err;
  }
}

/** One batch: a text array per column, unnested and cast to the catalogue's types, under the target's tenant id. */
async function insertRows(
  tx: Queryable,
  schema: string,
  table: TenantTable,
  header: ExportHeader,
  name: string,
  rows: (string | null)[][],
  tenantId: string,
): Promise<void> {
  const declared = header.catalogue.tables.find((t) => t.name === name)!.columns.map((c) => c.name);
  const types = new Map(allColumns(table).map((c) => [c.name, c.type]));
  const columns = declared.map(ident).join(", ");
  const casts = declared.map((c, i) => `u.c${i}::${types.get(c)}`).join(", ");
  const unnest = declared.map((_c, i) => `$${i + 2}::text[]`).join(", ");
  const aliases = declared.map((_c, i) => `c${i}`).join(", ");
  const params: unknown[] = [tenantId, ...declared.map((_c, i) => rows.map((r) => r[i]))];
  await tx.query(
    `INSERT INTO ${qualified(schema, table.name)} (tenant_id, ${columns}) SELECT $1, ${casts} FROM unnest(${unnest}) AS u(${aliases})`,
    params,
  );
}
