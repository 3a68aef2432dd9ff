/**
 * The per-tenant export file: one tenant's rows, shared or dedicated, in a documented, versioned
 * format (docs/enterprise.md "Export format"), with checksums that tie the file to the source
 * database and the imported rows to the file, and a MAC that ties it to the region's key. Writing it is lib/enterprise/export.ts, reading it
 * into a database lib/enterprise/import.ts; this file holds the format itself: its records, the
 * content checksum in JavaScript, and the checked reader that `verifyExportFile` and the import use.
 *
 *   line 1        header  {"format":"alphapulse-tenant-export","version":2,"tenant":{...},"region":"eu",
 *                          "catalogue":{"fingerprint":"...","tables":[{"name":..., "columns":[{"name","type"}]}]},
 *                          "exportedAt":"...","snapshotAt":"...",
 *                          "signature":{"alg":"HMAC-SHA256","kid":"eu-2026-12","key":"alphapulse-export-v2"}}   (null: unsigned)
 *   per table     start   {"table":"positions","columns":["id","created_at",...]}   (every column but tenant_id)
 *                 rows    ["<id>","<created_at>",...]                                (text values or null)
 *                 end     {"end":"positions","rows":12,"sha256":"<of the row lines>","checksum":"<content checksum>"}
 *                 trailer {"trailer":true,"tables":{"positions":{"rows":12,"checksum":"..."}},"sha256":"<of every byte before>"}
 *   last line     MAC     {"mac":"<HMAC-SHA256 hex, with the header's key, of every byte before>"}   (signed files only)
 *
 * Checksums detect damage; only the MAC detects an edit (a forger recomputes checksums, as
 * test/enterprise/export.test.ts does). The key is derived in the database from the region's
 * tenant-context key (lib/enterprise/export-key.ts). Version 1 files (no MAC) and unsigned version 2
 * files are read only when the caller allows unsigned files (`--allow-unsigned`); a file signed with a
 * retired key only when it allows retired keys (`--allow-retired-key`).
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
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { createGunzip, createGzip } from "node:zlib";
import type { Readable, Writable } from "node:stream";
import { z } from "zod";
import { ResidencyRegion, Tier, TenantId, TenantSlug, TenantDisplayName, Placement, TenantStatus } from "../tenant/model";
import { KEY_ID_PATTERN } from "../tenant-context/proof";
import { EXPORT_KEY_LABEL, type ExportKey } from "./export-key";
import { formatChecksum } from "./tenant-rows";

export const EXPORT_FORMAT = "alphapulse-tenant-export";
/** What this tool writes. */
export const EXPORT_VERSION = 2;
/** What it reads: version 1 (before MACs) only as an unsigned file. */
export const READABLE_VERSIONS: readonly number[] = [1, 2];

export class CorruptExportError extends Error {
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`${file} is not a valid tenant export (${detail}): refusing to import it`);
    this.name = "CorruptExportError";
  }
}

/**
 * A file whose MAC does not verify here, or that is not signed (or signed with a retired key) while
 * the caller did not allow it. A CorruptExportError: bad input, nothing written.
 */
export class UnauthenticatedExportError extends CorruptExportError {
  constructor(file: string, detail: string) {
    super(file, detail);
    this.name = "UnauthenticatedExportError";
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
  /** Version 2: the key the file is signed with, or null (unsigned). Absent in version 1. */
  signature: z
    .object({
      alg: z.literal("HMAC-SHA256"),
      kid: z.string().regex(KEY_ID_PATTERN),
      key: z.literal(EXPORT_KEY_LABEL),
    })
    .nullable()
    .optional(),
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

const MacLine = z.object({ mac: z.string().regex(/^[0-9a-f]{64}$/) }).strict();

/**
 * How a reader treats the MAC. `keys`: the export keys installed here (lib/enterprise/export-key.ts
 * readExportKeys); a signed file verifies only with the key its header names. "structure-only" checks
 * everything but the MAC (reading a file this process just wrote, or inspecting one): never for an import.
 */
export type MacPolicy = { keys: readonly ExportKey[]; allowUnsigned?: boolean; allowRetiredKey?: boolean } | "structure-only";

/** What a read found about the file's authenticity. */
export type Authenticity = { signed: true; kid: string; keyState: "active" | "retired" | "unchecked" } | { signed: false };

/** Session settings that fix how values print as text, so checksums agree across sessions and servers. */
export const TEXT_SETTINGS = [
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

// --- writing a file -------------------------------------------------------------------------------

/** Opens `path` for writing (mode 0600), gzip-compressed when asked; `done` settles when the file is closed. */
export function openOutput(path: string, gzip: boolean): { stream: Writable; done: Promise<unknown> } {
  const file = createWriteStream(path, { mode: 0o600 });
  if (!gzip) return { stream: file, done: once(file, "close") };
  const zip = createGzip();
  zip.pipe(file);
  return { stream: zip, done: once(file, "close") };
}

/** Writes `text`, waiting for the stream to drain when its buffer is full. */
export async function write(stream: Writable, text: string): Promise<void> {
  if (!stream.write(text)) await once(stream, "drain");
}
// --- reading a file -------------------------------------------------------------------------------

export interface ExportFile {
  header: ExportHeader;
  authenticity: Authenticity;
  tables: { table: string; columns: string[]; rows: number; checksum: string }[];
}

/** What the checked reader reports as it goes: the import writes rows on "rows" and verifies on "end". */
export type ExportEvent =
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
 * checksum, the whole file's sha256), row shapes, and the MAC as `mac` says. Calls `onEvent` as it
 * goes; throws CorruptExportError (UnauthenticatedExportError for the MAC) at the first problem. A
 * caller that writes on events must not commit before this returns: the MAC is the last line.
 */
export async function readExport(
  path: string,
  onEvent: (e: ExportEvent) => Promise<void>,
  mac: MacPolicy,
  batchSize = 5000,
): Promise<ExportFile> {
  const fail = (detail: string): never => {
    throw new CorruptExportError(path, detail);
  };
  const unauthenticated = (detail: string): never => {
    throw new UnauthenticatedExportError(path, detail);
  };
  const input = openInput(path);
  const lines = createInterface({ input, crlfDelay: Infinity });
  const fileHash = createHash("sha256");
  let header: ExportHeader | undefined;
  let authenticity: Authenticity = { signed: false };
  let hmac: ReturnType<typeof createHmac> | undefined;
  let current:
    { table: string; columns: string[]; hash: ReturnType<typeof createHash>; sum: ContentChecksum; batch: (string | null)[][] } | undefined;
  const tables: ExportFile["tables"] = [];
  let trailer: z.infer<typeof Trailer> | undefined;
  let macChecked = false;
  let n = 0;
  try {
    for await (const line of lines) {
      n++;
      if (macChecked) fail(`data after the MAC at line ${n}`);
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        fail(`line ${n} is not JSON`);
      }
      if (trailer) {
        if (!authenticity.signed) fail(`data after the trailer at line ${n}`);
        const parsed = MacLine.safeParse(value);
        if (!parsed.success) fail(`line ${n}: expected the MAC line after the trailer`);
        if (hmac) {
          const expected = hmac.digest();
          if (!timingSafeEqual(expected, Buffer.from(parsed.data!.mac, "hex")))
            unauthenticated(
              `its MAC does not verify with key "${(authenticity as { kid: string }).kid}": the file was altered after it was exported (checksums can be recomputed; the MAC cannot without the region's key)`,
            );
        }
        macChecked = true;
        continue;
      }
      if (header) hmac?.update(line + "\n"); // the header's own line is added once its key is known
      if (!header) {
        const format = (value as { format?: unknown; version?: unknown }) ?? {};
        if (format.format !== EXPORT_FORMAT) fail(`line 1 is not an ${EXPORT_FORMAT} header`);
        if (!READABLE_VERSIONS.includes(format.version as number))
          fail(`format version ${String(format.version)} is not supported (this tool reads versions ${READABLE_VERSIONS.join(", ")})`);
        const parsed = ExportHeader.safeParse(value);
        if (!parsed.success) fail(`header: ${parsed.error.issues[0].path.join(".")} ${parsed.error.issues[0].message}`);
        header = parsed.data!;
        if (header.version === 1 && header.signature !== undefined) fail(`header: a version 1 file has no signature`);
        if (header.version >= 2 && header.signature === undefined) fail(`header: signature is missing (null for an unsigned file)`);
        hmac = startMac(path, header, mac);
        authenticity = header.signature
          ? {
              signed: true,
              kid: header.signature.kid,
              keyState: mac === "structure-only" ? "unchecked" : keyFor(mac, header.signature.kid)!.state,
            }
          : { signed: false };
        hmac?.update(line + "\n");
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
  if (authenticity.signed && !macChecked) unauthenticated("the file is truncated (no MAC line after the trailer)");
  const missing = header!.catalogue.tables.filter((t) => !tables.some((s) => s.table === t.name));
  if (missing.length) fail(`tables ${missing.map((t) => t.name).join(", ")} are declared but absent`);
  return { header: header!, authenticity, tables };
}

function keyFor(mac: Exclude<MacPolicy, "structure-only">, kid: string): ExportKey | undefined {
  return mac.keys.find((k) => k.kid === kid);
}

/** Decides, from the header alone, whether the file may be read under `mac`, and with which key. */
function startMac(path: string, header: ExportHeader, mac: MacPolicy): ReturnType<typeof createHmac> | undefined {
  const refuse = (detail: string): never => {
    throw new UnauthenticatedExportError(path, detail);
  };
  const signature = header.signature;
  if (mac === "structure-only") return undefined;
  if (!signature) {
    if (mac.allowUnsigned) return undefined;
    return refuse(
      header.version === 1
        ? `it is a version 1 export, which carries no MAC: anyone could have edited it (checksums can be recomputed); import it only if you trust where it came from, with --allow-unsigned`
        : `it is not signed (exported where no tenant-context key was installed): import it only if you trust where it came from, with --allow-unsigned`,
    );
  }
  const key = keyFor(mac, signature.kid);
  if (!key)
    return refuse(
      `it is signed with key "${signature.kid}", which is not installed in this database: install the region's key (\`tenancy context-key install ${signature.kid} --region ${header.region} --secret-env <VAR>\`)`,
    );
  if (key.region !== header.region)
    return refuse(`it names key "${signature.kid}" of region ${key.region}, but is from region ${header.region}`);
  if (key.state === "retired" && !mac.allowRetiredKey)
    return refuse(
      `it is signed with key "${signature.kid}", which is retired here: a retired key verifies old exports only with --allow-retired-key`,
    );
  return createHmac("sha256", key.key);
}

/**
 * The header alone, parsed but NOT authenticated (the MAC covers the whole file): only for refusing
 * early with the clearest reason, never for deciding where rows go.
 */
export async function readExportHeader(path: string): Promise<ExportHeader> {
  let header: ExportHeader | undefined;
  const stop = new Error("header read");
  try {
    await readExport(
      path,
      (e) => {
        if (e.kind !== "header") return Promise.resolve();
        header = e.header;
        return Promise.reject(stop);
      },
      "structure-only",
    );
  } catch (err) {
    if (!header) throw err;
  }
  return header!;
}

/** Checks a file completely (every checksum, and the MAC as `mac` says) without writing anything. */
export async function verifyExportFile(path: string, mac: MacPolicy): Promise<ExportFile> {
  return readExport(path, async () => {}, mac);
}
