/**
 * Per-tenant import: reads a file in the format of lib/enterprise/export-file.ts (checked
 * completely first, its MAC included: a corrupted or edited file writes nothing) into exactly one
 * tenant, in one transaction, and verifies per table that PostgreSQL holds exactly the file's rows
 * (and, again, the MAC) before committing. The target is never chosen by the file alone: a replace
 * names the tenant, and the name, the file's header and the registry must agree on slug and id.
 */
import { allColumns, TENANT_TABLES, tablesInDeleteOrder, type TenantTable } from "../schema/catalogue";
import { withTransaction, type Queryable } from "../db/client";
import { lockForTransaction, tenantGateKey } from "../db/locks";
import { openMove } from "./graduation";
import { ROLES } from "../schema/roles";
import { canonicalType, REGISTRY_SCHEMA } from "../schema/planner";
import { ident, qualified } from "../db/sql";
import { TenantSlug, type Tenant } from "../tenant/model";
import { createTenant, findTenant, ResidencyMismatchError, tenantSchema, TenantExistsError } from "../tenant/registry";
import { tableChecksum } from "./tenant-rows";
import {
  CorruptExportError,
  IncompleteExportError,
  readExport,
  readExportHeader,
  TEXT_SETTINGS,
  verifyExportFile,
  type Authenticity,
  type ExportHeader,
  type MacPolicy,
  type TableSummary,
} from "./export-file";
import { readExportKeys } from "./export-key";

export class ImportConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ImportConflictError";
  }
}

/**
 * The tenant an import would write to is not the one the operator named, or the file's header and
 * the registry disagree about it. `field` names what disagrees ("tenant", "tenant.id", "tenant.slug").
 * Bad input: nothing was written.
 */
export class ImportTargetError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = "ImportTargetError";
  }
}

export interface ImportOptions {
  /** Import under a new tenant with this slug (a new id); the file's rows are rewritten to it. */
  as?: string;
  /** Replace the rows of an existing tenant (the PITR single-tenant restore); its writes are held meanwhile. Requires `tenant`. */
  replace?: boolean;
  /**
   * The tenant the operator means (slug or id): it must be the file's (its header's slug or id), and
   * the registry must hold that tenant under the same slug and id. Required with `replace`.
   */
  tenant?: string;
  /** Accept a file without a MAC (version 1, or written where no key was installed). @default false */
  allowUnsigned?: boolean;
  /** Accept a file signed with a retired key (an old export after a rotation). @default false */
  allowRetiredKey?: boolean;
  /**
   * Accept a registry slug that differs from the file's for the same id (a rename since the export).
   * For PITR, whose file comes from its own scratch restore of the same tenant id; never from the CLI.
   * @default false
   */
  acceptRenamed?: boolean;
  tables?: readonly TenantTable[];
  batchSize?: number;
  onProgress?: (message: string) => void;
}

export interface ImportReport {
  file: string;
  source: { id: string; slug: string; region: string; exportedAt: string; snapshotAt: string; version: number };
  /** Whether the file's MAC was verified, and with which key. */
  authenticity: Authenticity;
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

function checkResidency(file: string, header: ExportHeader, databaseRegion: string | null): void {
  if (header.region !== header.tenant.region)
    throw new CorruptExportError(file, `header region ${header.region} and tenant region ${header.tenant.region} differ`);
  if (databaseRegion && databaseRegion !== header.region) {
    throw new ResidencyMismatchError(
      `the file holds ${header.tenant.slug}'s data from residency region "${header.region}"; this database serves "${databaseRegion}": refusing to import it here`,
    );
  }
}

/**
 * Which tenant the file may be written to, from the header, the operator's `tenant` and the registry
 * rows with the header's id and slug (pure). Throws ImportTargetError naming the field that disagrees.
 */
export function checkImportTarget(
  header: Pick<ExportHeader, "tenant">,
  options: Pick<ImportOptions, "tenant" | "replace" | "acceptRenamed">,
  registry: { byId?: Pick<Tenant, "id" | "slug">; bySlug?: Pick<Tenant, "id" | "slug"> },
): void {
  const file = `the file is the export of ${header.tenant.slug} (${header.tenant.id})`;
  if (options.replace && options.tenant === undefined)
    throw new ImportTargetError("tenant", `a replace must name the tenant it replaces (--tenant <slug|id>): ${file}`);
  if (options.tenant !== undefined) {
    const named = options.tenant.toLowerCase();
    if (named !== header.tenant.slug && named !== header.tenant.id)
      throw new ImportTargetError("tenant", `${file}, not of "${options.tenant}": refusing to write it there`);
  }
  const { byId, bySlug } = registry;
  if (byId && byId.slug !== header.tenant.slug && !options.acceptRenamed)
    throw new ImportTargetError(
      "tenant.slug",
      `${file}, but tenant ${byId.id} is ${byId.slug} here: the header's slug and id name different tenants (if it was renamed since the export, rename it back or import with --as <new-slug>)`,
    );
  if (bySlug && bySlug.id !== header.tenant.id)
    throw new ImportTargetError(
      "tenant.id",
      `${file}, but ${bySlug.slug} is tenant ${bySlug.id} here: the header's slug and id name different tenants (import with --as <new-slug> to make a new tenant)`,
    );
}

/**
 * Imports a file (checked completely first, MAC included: a corrupted or edited file writes
 * nothing) into one tenant, in one transaction, and verifies per table that PostgreSQL now holds
 * exactly the file's rows, and the MAC again, before committing.
 *  - without `as`: into the tenant with the file's id and slug (created if absent; refused if it has
 *    rows, unless `replace`, which requires the operator to name it as `tenant`);
 *  - with `as`: into a new tenant with that slug and a new id.
 * Refused when the file's residency region differs from this database's or the target tenant's,
 * when its MAC does not verify with this database's key (unsigned files: `allowUnsigned`), and when
 * the named tenant, the header and the registry disagree on slug or id.
 */
export async function importTenant(client: Queryable, file: string, options: ImportOptions = {}): Promise<ImportReport> {
  const tables = options.tables ?? TENANT_TABLES;
  const progress = options.onProgress ?? (() => {});
  const started = Date.now();
  if (options.as !== undefined && (options.replace || options.tenant !== undefined))
    throw new ImportTargetError("tenant", `--as creates a new tenant; --replace and --tenant name an existing one: pick one`);
  if (options.replace && options.tenant === undefined)
    throw new ImportTargetError("tenant", `a replace must name the tenant it replaces (--tenant <slug|id>)`);
  // The residency refusal first, from the header alone (a refusal may trust an unverified header):
  // another region's file is also signed with another region's key, and "wrong region" is the clearer reason.
  const { rows: settings } = await client.query(`SELECT region FROM ${qualified(REGISTRY_SCHEMA, "database_settings")}`);
  const databaseRegion = settings[0]?.region as string | null;
  checkResidency(file, await readExportHeader(file), databaseRegion);
  const mac: MacPolicy = {
    keys: await readExportKeys(client),
    allowUnsigned: options.allowUnsigned ?? false,
    allowRetiredKey: options.allowRetiredKey ?? false,
  };
  const checked = await verifyExportFile(file, mac);
  const { header, authenticity } = checked;
  progress(
    `checked ${file}: ${checked.tables.reduce((n, t) => n + t.rows, 0)} row(s) of ${header.tenant.slug}, exported ${header.exportedAt}, ` +
      (authenticity.signed ? `MAC verified with key ${authenticity.kid} (${authenticity.keyState})` : `UNSIGNED (accepted: allowUnsigned)`),
  );

  const { problems, sameColumns } = compatibility(header, tables);
  if (problems.length) throw new ImportConflictError(`the file's catalogue does not fit this database: ${problems.join("; ")}`);

  checkResidency(file, header, databaseRegion);

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
    checkImportTarget(header, options, { byId: existing, bySlug: await findTenant(client, header.tenant.slug) });
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
      await lockForTransaction(tx, tenantGateKey(target.id));
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
        mac, // checked again over what was written: the file could have changed since the first pass
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
          version: header.version,
        },
        authenticity,
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
