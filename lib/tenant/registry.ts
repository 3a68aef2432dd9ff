/**
 * The tenant registry (tenancy.tenants) and the operations on a tenant's lifecycle: create, list,
 * show, suspend/resume, delete (offboarding). Registry writes run as the owner role; operations
 * that touch tenant rows run as the maintenance role (BYPASSRLS) and always filter by tenant_id.
 */
import { tablesInDeleteOrder, TENANT_TABLES, type TenantTable } from "../schema/catalogue";
import { withTransaction, type Queryable } from "../db/client";
import {
  dropDedicatedSchema,
  dropTenantLoginRole,
  setTenantLoginAccess,
  tenantLoginRoleName,
  terminateTenantLoginSessions,
} from "../enterprise/dedicated";
import { ROLES } from "../schema/roles";
import { REGISTRY_SCHEMA, SHARED_SCHEMA } from "../schema/planner";
import { ident, qualified } from "../db/sql";
import {
  dedicatedSchemaName,
  ResidencyRegion,
  Tier,
  TenantDisplayName,
  TenantId,
  TenantSlug,
  type Placement,
  type Tenant,
  type TenantStatus,
} from "./model";
import { z } from "zod";

export class TenantNotFoundError extends Error {
  constructor(readonly ref: string) {
    super(`no tenant "${ref}"`);
    this.name = "TenantNotFoundError";
  }
}

export class TenantExistsError extends Error {
  /** `by: "id"` when the clash is on a fixed id (imports), not on the slug. */
  constructor(
    readonly slug: string,
    readonly by: "slug" | "id" = "slug",
    readonly id?: string,
  ) {
    super(by === "id" ? `a tenant with id "${id}" already exists` : `a tenant with slug "${slug}" already exists`);
    this.name = "TenantExistsError";
  }
}

export class ResidencyMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ResidencyMismatchError";
  }
}

export const NewTenant = z.object({
  slug: TenantSlug,
  tier: Tier,
  region: ResidencyRegion,
  displayName: TenantDisplayName.optional(),
  /** Fixed id (imports, tests); a random uuid otherwise. */
  id: TenantId.optional(),
});
export type NewTenant = z.input<typeof NewTenant>;

const registry = qualified(REGISTRY_SCHEMA, "tenants");

/** SQLSTATEs and constraint names (migration 0001) that registry writes map to errors. */
const UNIQUE_VIOLATION = "23505";
const CHECK_VIOLATION = "23514";
const TENANTS_CONSTRAINTS = { id: "tenants_pkey", slug: "tenants_slug_key" } as const;
const COLUMNS = `id, slug, display_name AS "displayName", tier, region, placement, status, log_tag AS "logTag", created_at AS "createdAt", updated_at AS "updatedAt",
  offboarded_at AS "offboardedAt", purge_after AS "purgeAfter", offboarding_export AS "offboardingExport"`;

/** Runs `fn` in a transaction as `role` (the session must be a superuser or a member of it). */
export async function withRole<T>(client: Queryable, role: string, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  return withTransaction(client, async (tx) => {
    await tx.query(`SET LOCAL ROLE ${ident(role)}`);
    return fn(tx);
  });
}

/** The schema holding a tenant's rows. */
export function tenantSchema(tenant: Pick<Tenant, "id" | "placement">): string {
  return tenant.placement === "dedicated" ? dedicatedSchemaName(tenant.id) : SHARED_SCHEMA;
}

export async function createTenant(client: Queryable, input: NewTenant): Promise<Tenant> {
  const t = NewTenant.parse(input);
  try {
    return await withRole(client, ROLES.owner, async (tx) => {
      const { rows } = await tx.query(
        `INSERT INTO ${registry} (id, slug, display_name, tier, region) VALUES (coalesce($1::uuid, gen_random_uuid()), $2, $3, $4, $5) RETURNING ${COLUMNS}`,
        [t.id ?? null, t.slug, t.displayName ?? t.slug, t.tier, t.region],
      );
      return rows[0] as Tenant;
    });
  } catch (err) {
    const e = err as { code?: string; constraint?: string; message: string };
    if (e.code === UNIQUE_VIOLATION && e.constraint === TENANTS_CONSTRAINTS.slug) throw new TenantExistsError(t.slug);
    if (e.code === UNIQUE_VIOLATION && e.constraint === TENANTS_CONSTRAINTS.id) throw new TenantExistsError(t.slug, "id", t.id);
    // Every CHECK on tenancy.tenants is a named constraint; the one check_violation without a
    // constraint name is enforce_tenant_region()'s RAISE (migration 0001, frozen: it cannot gain a
    // dedicated ERRCODE or a CONSTRAINT option without changing an applied migration).
    if (e.code === CHECK_VIOLATION && !e.constraint) throw new ResidencyMismatchError(e.message);
    throw err;
  }
}

export async function listTenants(client: Queryable): Promise<Tenant[]> {
  return withRole(client, ROLES.owner, async (tx) => (await tx.query(`SELECT ${COLUMNS} FROM ${registry} ORDER BY slug`)).rows);
}

/** Finds a tenant by slug or id; undefined when there is none. */
export async function findTenant(client: Queryable, ref: string): Promise<Tenant | undefined> {
  const byId = TenantId.safeParse(ref);
  return withRole(client, ROLES.owner, async (tx) => {
    const { rows } = byId.success
      ? await tx.query(`SELECT ${COLUMNS} FROM ${registry} WHERE id = $1`, [byId.data])
      : await tx.query(`SELECT ${COLUMNS} FROM ${registry} WHERE slug = $1`, [ref]);
    return rows[0] as Tenant | undefined;
  });
}

export async function requireTenant(client: Queryable, ref: string): Promise<Tenant> {
  const tenant = await findTenant(client, ref);
  if (!tenant) throw new TenantNotFoundError(ref);
  return tenant;
}

/** What suspending or resuming did. */
export interface TenantStatusChange {
  tenant: Tenant;
  /** The tenant's dedicated login role, when it has one: whether it may log in now, and the sessions cut. */
  loginRole?: { role: string; canLogin: boolean; sessionsClosed: number };
}

/**
 * Suspends or resumes a tenant. A suspended tenant reads and writes nothing: enter_tenant() refuses
 * it from the next transaction on, and its dedicated login role (if any) becomes NOLOGIN in the
 * same transaction, its open sessions cut after the commit. Altering the role needs a session that
 * may alter roles (the CLI's admin connection).
 */
export async function setTenantStatus(
  client: Queryable,
  ref: string,
  status: Exclude<TenantStatus, "offboarded">,
): Promise<TenantStatusChange> {
  const tenant = await requireTenant(client, ref);
  const canLogin = status === "active";
  const { updated, hasLoginRole } = await withTransaction(client, async (tx) => {
    const hasLoginRole = await setTenantLoginAccess(tx, tenant.id, canLogin);
    await tx.query(`SET LOCAL ROLE ${ident(ROLES.owner)}`);
    // Resuming an offboarded tenant inside its retention window undoes the offboarding.
    const { rows } = await tx.query(
      `UPDATE ${registry} SET status = $2, offboarded_at = NULL, purge_after = NULL, offboarding_export = NULL WHERE id = $1 RETURNING ${COLUMNS}`,
      [tenant.id, status],
    );
    return { updated: rows[0] as Tenant, hasLoginRole };
  });
  if (!hasLoginRole) return { tenant: updated };
  const sessionsClosed = canLogin ? 0 : await terminateTenantLoginSessions(client, tenant.id);
  return { tenant: updated, loginRole: { role: tenantLoginRoleName(tenant.id), canLogin, sessionsClosed } };
}

export async function setTenantTier(client: Queryable, ref: string, tier: Tier): Promise<Tenant> {
  const tenant = await requireTenant(client, ref);
  return withRole(client, ROLES.owner, async (tx) => {
    const { rows } = await tx.query(`UPDATE ${registry} SET tier = $2 WHERE id = $1 RETURNING ${COLUMNS}`, [tenant.id, Tier.parse(tier)]);
    return rows[0] as Tenant;
  });
}

/**
 * Renames a tenant: the id is its identity, the slug a name. Rows, schema and login role follow the
 * id, so nothing else changes. A slug another tenant holds is refused (TenantExistsError).
 */
export async function renameTenant(client: Queryable, ref: string, slug: string): Promise<Tenant> {
  const tenant = await requireTenant(client, ref);
  const next = TenantSlug.parse(slug);
  if (tenant.slug === next) return tenant;
  try {
    return await withRole(client, ROLES.owner, async (tx) => {
      const { rows } = await tx.query(`UPDATE ${registry} SET slug = $2 WHERE id = $1 RETURNING ${COLUMNS}`, [tenant.id, next]);
      return rows[0] as Tenant;
    });
  } catch (err) {
    if ((err as { code?: string }).code === UNIQUE_VIOLATION) throw new TenantExistsError(next);
    throw err;
  }
}

/** Records where a tenant's rows live (used by graduation/demotion once the copy is verified). */
export async function setTenantPlacement(tx: Queryable, tenantId: string, placement: Placement): Promise<void> {
  await tx.query(`UPDATE ${registry} SET placement = $2 WHERE id = $1`, [tenantId, placement]);
}

export interface TableCount {
  table: string;
  rows: number;
}

/** Row counts of one tenant, per catalogue table, read as maintenance with an explicit tenant filter. */
export async function countTenantRows(
  client: Queryable,
  tenant: Pick<Tenant, "id" | "placement">,
  tables: readonly TenantTable[] = TENANT_TABLES,
): Promise<TableCount[]> {
  return withRole(client, ROLES.maintenance, async (tx) => {
    const out: TableCount[] = [];
    for (const table of tables) {
      const { rows } = await tx.query(
        `SELECT count(*)::bigint AS n FROM ${qualified(tenantSchema(tenant), table.name)} WHERE tenant_id = $1`,
        [tenant.id],
      );
      out.push({ table: table.name, rows: Number(rows[0].n) });
    }
    return out;
  });
}

export interface DeletedTenant {
  tenant: Tenant;
  deleted: TableCount[];
  droppedSchema?: string;
  droppedLoginRole?: string;
}

/** The retention window of an offboarded tenant when none is given: its rows stay this long. */
export const DEFAULT_RETENTION_DAYS = 30;
/** Bounds of `--retention-days`: at least a day (a purge is never part of the offboarding itself). */
export const RETENTION_DAYS_RANGE = { min: 1, max: 3650 } as const;

/** Throws a RangeError naming the bounds unless `days` is a whole number of days in RETENTION_DAYS_RANGE. */
export function checkRetentionDays(days: number): number {
  if (!Number.isInteger(days) || days < RETENTION_DAYS_RANGE.min || days > RETENTION_DAYS_RANGE.max)
    throw new RangeError(`retention must be ${RETENTION_DAYS_RANGE.min}-${RETENTION_DAYS_RANGE.max} whole days, got ${days}`);
  return days;
}

/** A purge refused: the tenant is not offboarded, or its retention window has not ended. */
export class PurgeRefusedError extends Error {
  constructor(
    message: string,
    readonly tenant: Tenant,
  ) {
    super(message);
    this.name = "PurgeRefusedError";
  }
}

export interface OffboardOptions {
  /** @default DEFAULT_RETENTION_DAYS */
  retentionDays?: number;
  /** The verified export written first (recorded with the tenant). */
  exportFile?: string;
}

export interface OffboardedTenant {
  tenant: Tenant;
  /** Rows kept until the purge, per table. */
  retained: TableCount[];
  loginRole?: { role: string; sessionsClosed: number };
}

/**
 * Offboarding without deleting anything: the tenant is marked `offboarded` with a purge date
 * (`retentionDays` from now, by the database's clock), so enter_tenant() refuses it and its login
 * role, if any, is NOLOGIN with its sessions cut. Its rows, dedicated schema and registry entry stay
 * until purgeTenant() runs after that date. The export is the caller's to write first (the CLI and
 * `npm run tenant -- destroy` do, verified). Idempotent: an offboarded tenant is returned as it is.
 */
export async function offboardTenant(client: Queryable, ref: string, options: OffboardOptions = {}): Promise<OffboardedTenant> {
  const retentionDays = checkRetentionDays(options.retentionDays ?? DEFAULT_RETENTION_DAYS);
  const tenant = await requireTenant(client, ref);
  if (tenant.status === "offboarded") return { tenant, retained: await countTenantRows(client, tenant) };
  const { updated, hasLoginRole } = await withTransaction(client, async (tx) => {
    const hasLoginRole = await setTenantLoginAccess(tx, tenant.id, false);
    await tx.query(`SET LOCAL ROLE ${ident(ROLES.owner)}`);
    const { rows } = await tx.query(
      `UPDATE ${registry} SET status = 'offboarded', offboarded_at = now(), purge_after = now() + make_interval(days => $2),
              offboarding_export = $3 WHERE id = $1 RETURNING ${COLUMNS}`,
      [tenant.id, retentionDays, options.exportFile ?? null],
    );
    return { updated: rows[0] as Tenant, hasLoginRole };
  });
  const retained = await countTenantRows(client, updated);
  if (!hasLoginRole) return { tenant: updated, retained };
  const sessionsClosed = await terminateTenantLoginSessions(client, tenant.id);
  return { tenant: updated, retained, loginRole: { role: tenantLoginRoleName(tenant.id), sessionsClosed } };
}

/**
 * The purge: the end of an offboarding, refused (PurgeRefusedError) unless the tenant is offboarded
 * and its purge date has passed by the database's clock. Then its rows, dedicated schema, login role
 * and registry entry are removed (eraseTenant).
 */
export async function purgeTenant(client: Queryable, ref: string, tables: readonly TenantTable[] = TENANT_TABLES): Promise<DeletedTenant> {
  const tenant = await requireTenant(client, ref);
  if (tenant.status !== "offboarded") {
    throw new PurgeRefusedError(
      `tenant "${tenant.slug}" is ${tenant.status}, not offboarded: offboard it first with \`tenancy tenant delete ${tenant.slug}\``,
      tenant,
    );
  }
  const { rows } = await client.query(`SELECT purge_after <= now() AS due FROM ${registry} WHERE id = $1`, [tenant.id]);
  if (!rows[0]?.due) {
    throw new PurgeRefusedError(
      `tenant "${tenant.slug}" is retained until ${tenant.purgeAfter?.toISOString()} (offboarded ${tenant.offboardedAt?.toISOString()}` +
        `${tenant.offboardingExport ? `, export ${tenant.offboardingExport}` : ""}): a purge is refused before then`,
      tenant,
    );
  }
  return eraseTenant(client, tenant.id, tables);
}

/**
 * Removes a tenant's data for good, in steps that are each idempotent, so an interrupted run is
 * finished by running it again: the tenant is suspended first if it is still active, its rows are
 * deleted in one transaction (referencing tables first, from its dedicated schema and from the shared
 * one, where an interrupted move may have left some), its dedicated schema is dropped without
 * stalling other tenants (lib/enterprise/dedicated.ts), its login role is dropped, and last its
 * registry entry, so that until the end the tenant can still be found and retried. Only purgeTenant
 * (after the retention window) and tests call this.
 */
export async function eraseTenant(client: Queryable, ref: string, tables: readonly TenantTable[] = TENANT_TABLES): Promise<DeletedTenant> {
  const tenant = await requireTenant(client, ref);
  if (tenant.status === "active") await setTenantStatus(client, tenant.id, "suspended");
  const dedicated = dedicatedSchemaName(tenant.id);
  const schemaExists = async () => (await client.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [dedicated])).rows.length > 0;
  const hasDedicatedSchema = await schemaExists();

  const deleted = await withRole(client, ROLES.maintenance, async (tx) => {
    const counts: TableCount[] = [];
    for (const table of tablesInDeleteOrder(tables)) {
      let rows = 0;
      for (const schema of hasDedicatedSchema ? [dedicated, SHARED_SCHEMA] : [SHARED_SCHEMA]) {
        rows += (await tx.query(`DELETE FROM ${qualified(schema, table.name)} WHERE tenant_id = $1`, [tenant.id])).rowCount ?? 0;
      }
      counts.push({ table: table.name, rows });
    }
    return counts.reverse();
  });

  if (hasDedicatedSchema) await dropDedicatedSchema(client, dedicated);
  const droppedLoginRole = (await dropTenantLoginRole(client, tenant)) ? tenantLoginRoleName(tenant.id) : undefined;
  await withRole(client, ROLES.owner, (tx) => tx.query(`DELETE FROM ${registry} WHERE id = $1`, [tenant.id]));
  return { tenant, deleted, droppedSchema: hasDedicatedSchema ? dedicated : undefined, droppedLoginRole };
}
