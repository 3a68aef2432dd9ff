/**
 * What a Pulumi stack may do to a tenant's data when a resource leaves it: nothing, ever
 * (docs/data-safety.md). These are the delete paths of the dynamic providers in components/db, and
 * also what lib/data-layer.ts exports under the names that provider code kept in the state of older
 * stacks calls (`deleteTenant`, `demoteTenant`, `dropTenantLoginRole`): the engine runs a deleted
 * resource's provider code from the state (pulumi/pulumi#6238), and that code loads the data layer
 * by path at call time, so these guards hold for it too.
 *
 * Each one either does something that keeps every row (release a tenant that was offboarded on
 * purpose, demote a tenant whose tier changed, drop the login role of a tenant that left
 * Enterprise), or refuses with TenantStillServedError naming the command to run.
 */
import type { Queryable } from "../db/client";
import { qualified } from "../db/sql";
import { REGISTRY_SCHEMA } from "../schema/planner";
import { dropTenantLoginRole } from "../enterprise/dedicated";
import { demoteTenant } from "../enterprise/graduation";
import type { RedisCaller } from "../redis/client";
import { revokeTenantCache, type RevokeResult } from "../redis/tenant-users";
import { countTenantRows, findTenant } from "./registry";
import type { Tenant } from "./model";

/** A stack was about to remove something of a tenant that is still served; the message names the command. */
export class TenantStillServedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TenantStillServedError";
  }
}

async function rowTotal(client: Queryable, tenant: Tenant): Promise<number> {
  return (await countTenantRows(client, tenant)).reduce((n, t) => n + t.rows, 0);
}

/** pg_database.oid of the database `client` is connected to: what a resource records as `databaseOid`. */
export async function currentDatabaseOid(client: Queryable): Promise<number> {
  const { rows } = await client.query("SELECT oid FROM pg_database WHERE datname = current_database()");
  return Number(rows[0].oid);
}

/**
 * A resource inside a database is told its database has a new oid (`databaseOid` input changed), so
 * the engine would replace it — register the tenant again, migrate from scratch, graduate again.
 * That is right only when the database really was recreated: this asks the database it is connected
 * to, instead of assuming. Undefined when the database's oid now is `newOid` (recreated: replace);
 * otherwise the reason to refuse (the recorded database is still there, or it is a third one).
 */
export async function databaseRecreationProblem(
  client: Queryable,
  args: { database: string; recordedOid: number; newOid: number },
): Promise<string | undefined> {
  if (Number(args.recordedOid) === Number(args.newOid)) return undefined;
  const current = await currentDatabaseOid(client);
  if (current === Number(args.newOid)) return undefined;
  return (
    `database "${args.database}" is oid ${current}, but this stack is told it is ${args.newOid} (it recorded ${args.recordedOid})` +
    (current === Number(args.recordedOid) ? ": it was not recreated" : "") +
    `. Replacing what lives in it would register, migrate or move tenant data again over a live database: ` +
    `point the stack at the right database (a tenant stack: its platform stack's \`databaseOid\` output; a platform stack: \`pulumi refresh\`)`
  );
}

/** True when `client`'s database is not the one with `recordedOid`: the recorded one was dropped and recreated. */
async function databaseWasRecreated(client: Queryable, recordedOid: number | undefined): Promise<boolean> {
  return recordedOid !== undefined && Number.isFinite(Number(recordedOid)) && (await currentDatabaseOid(client)) !== Number(recordedOid);
}

/**
 * A tenant leaves a stack (removed from its config, or the stack is destroyed). A tenant that is gone
 * or offboarded is released: the stack forgets it, its rows stay until `tenancy tenant purge`. So is
 * one whose database was recreated (`databaseOid` given and no longer current): it went with that
 * database, even if a tenant with its id was imported into the new one. Any other tenant is refused,
 * with the offboarding command.
 */
export async function releaseTenantFromStack(
  client: Queryable,
  ref: string,
  options: { databaseOid?: number } = {},
): Promise<{ released: "gone" | "offboarded" | "database recreated" }> {
  if (await databaseWasRecreated(client, options.databaseOid)) return { released: "database recreated" };
  const tenant = await findTenant(client, ref);
  if (!tenant) return { released: "gone" };
  if (tenant.status === "offboarded") return { released: "offboarded" };
  throw new TenantStillServedError(
    `tenant "${tenant.slug}" (${tenant.id}) is ${tenant.status} with ${await rowTotal(client, tenant)} row(s): ` +
      `a stack never deletes a tenant's data. To offboard it, run \`tenancy tenant delete ${tenant.slug}\` ` +
      `(verified export, then a retention window) and run this again; to keep it, put it back in the stack`,
  );
}

/**
 * A dedicated placement leaves a stack. Demotes (a verified move back to the shared tables: no row
 * is lost) only when the tenant's tier is no longer Enterprise — the tier change the stack just
 * applied. A gone or offboarded tenant keeps its schema (the purge drops it). An Enterprise tenant
 * is refused.
 */
export async function demoteForStack(client: Queryable, ref: string): Promise<{ demoted: boolean }> {
  const tenant = await findTenant(client, ref);
  if (!tenant || tenant.status === "offboarded" || tenant.placement !== "dedicated") return { demoted: false };
  if (tenant.tier === "enterprise") {
    throw new TenantStillServedError(
      `tenant "${tenant.slug}" is an Enterprise tenant in its dedicated schema: a stack demotes it only when its tier changes. ` +
        `To offboard it, run \`tenancy tenant delete ${tenant.slug}\`; to demote it by hand, \`tenancy tenant demote ${tenant.slug}\``,
    );
  }
  await demoteTenant(client, tenant.id);
  return { demoted: true };
}

/**
 * A dedicated login role leaves a stack. Dropped when the tenant left Enterprise (its demotion
 * follows) or is gone; kept for an offboarded tenant (resuming it inside the retention window gets
 * its access back; the purge drops it); refused for a served Enterprise tenant.
 */
export async function dropLoginRoleForStack(client: Queryable, which: Pick<Tenant, "id">): Promise<{ dropped: boolean }> {
  const tenant = await findTenant(client, which.id);
  if (tenant?.status === "offboarded") return { dropped: false };
  if (tenant && tenant.tier === "enterprise") {
    throw new TenantStillServedError(
      `tenant "${tenant.slug}" is a served Enterprise tenant: a stack never drops its login role while it is. ` +
        `To offboard it, run \`tenancy tenant delete ${tenant.slug}\`; to drop the role by hand, \`tenancy tenant login-role ${tenant.slug} --drop\``,
    );
  }
  return { dropped: await dropTenantLoginRole(client, { id: tenant?.id ?? which.id }) };
}

/**
 * A tenant's cache user leaves a stack: the user is revoked (switched off, its connections cut,
 * deleted), its keys stay (`tenancy tenant purge --redis-url` removes them with the rest of the
 * tenant's data). Also what older state's `revokeTenantCache(admin, id, { purge: true })` gets.
 */
export function revokeCacheForStack(admin: RedisCaller, tenantId: string, _options?: { purge?: boolean }): Promise<RevokeResult> {
  return revokeTenantCache(admin, tenantId, { purge: false });
}

/**
 * Why a stack may not drop this database (or let go of its design), or undefined: any tenant still
 * registered — served, suspended, or offboarded and waiting for its purge. Databases without a
 * registry (never migrated) have none.
 */
export async function databaseDropProblem(
  client: Queryable,
  database: string,
  options: { databaseOid?: number } = {},
): Promise<string | undefined> {
  // A design (DatabaseSchema) recorded for a database that was dropped and recreated: nothing of it is left to keep.
  if (await databaseWasRecreated(client, options.databaseOid)) return undefined;
  const table = qualified(REGISTRY_SCHEMA, "tenants");
  const { rows: registry } = await client.query(`SELECT to_regclass($1) IS NOT NULL AS present`, [table]);
  if (!registry[0]?.present) return undefined;
  const { rows } = await client.query(`SELECT slug, status, purge_after AS "purgeAfter" FROM ${table} ORDER BY slug`);
  if (!rows.length) return undefined;
  const listed = (rows as { slug: string; status: string; purgeAfter: Date | null }[])
    .slice(0, 10)
    .map((t) => `${t.slug} (${t.status}${t.purgeAfter ? `, purge after ${t.purgeAfter.toISOString()}` : ""})`)
    .join(", ");
  return (
    `database "${database}" still holds ${rows.length} tenant(s): ${listed}${rows.length > 10 ? ", …" : ""}. ` +
    `A stack never drops a database with tenant data: offboard each tenant (\`tenancy tenant delete <slug>\`) and purge it after ` +
    `its retention window (\`tenancy tenant purge <slug>\`), then run this again. A local region is thrown away with \`npm run local -- reset\``
  );
}
