/**
 * `alphapulse:db:Tenant` — one tenant in a regional database's registry, as a dynamic resource over
 * lib/tenant/registry.ts (the same functions as `tenancy tenant create|delete`).
 *
 * Create registers the tenant (the database refuses a tenant of another residency region). A tier
 * change is an update (setTenantTier). Slug, region or database changes replace the tenant, and a
 * replacement is an offboarding: delete removes the tenant's rows, its dedicated schema and its
 * registry entry (deleteTenant). A tenant already gone, or whose database is gone, is deleted.
 * Declare it with `deletedWith` the Database so `pulumi destroy` drops the database once instead.
 */
import * as pulumi from "@pulumi/pulumi";
import type { ResidencyRegion, Tier } from "../../lib/tenant/model";
import { dataLayer, isMissingDatabase, sameServer, withDatabase, type DatabaseConnection } from "./provider-runtime";

export interface TenantArgs {
  connection: pulumi.Input<DatabaseConnection>;
  database: pulumi.Input<string>;
  /** `Database.oid`: a recreated database gets its tenants registered again. */
  databaseOid: pulumi.Input<number>;
  /** Replaces (offboards and re-registers) the tenant when changed. */
  slug: pulumi.Input<string>;
  tier: pulumi.Input<Tier>;
  /** Residency; must match the database's region. Replaces when changed. */
  region: pulumi.Input<ResidencyRegion>;
  /** @default the slug. Fixed at registration: a change is refused (no data-layer function renames yet). */
  displayName?: pulumi.Input<string>;
}

/** What the provider receives: the args with every input resolved. */
type TenantInputs = pulumi.Unwrap<TenantArgs>;

interface TenantOutputs extends TenantInputs {
  tenantId: string;
  placement: string;
  status: string;
}

function toOutputs(inputs: TenantInputs, tenant: { id: string; placement: string; status: string; displayName: string }): TenantOutputs {
  return { ...inputs, displayName: tenant.displayName, tenantId: tenant.id, placement: tenant.placement, status: tenant.status };
}

export const tenantProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: TenantInputs): Promise<pulumi.dynamic.CreateResult> {
    const { createTenant } = dataLayer();
    const tenant = await withDatabase(inputs.connection, inputs.database, (client) =>
      createTenant(client, { slug: inputs.slug, tier: inputs.tier, region: inputs.region, displayName: inputs.displayName }),
    );
    return { id: tenant.id, outs: toOutputs(inputs, tenant) };
  },

  diff(_id: string, olds: TenantOutputs, news: TenantInputs): Promise<pulumi.dynamic.DiffResult> {
    const replaces: string[] = [];
    if (!sameServer(olds.connection, news.connection)) replaces.push("connection");
    for (const key of ["database", "slug", "region"] as const) if (olds[key] !== news[key]) replaces.push(key);
    if (Number(olds.databaseOid) !== Number(news.databaseOid)) replaces.push("databaseOid");
    const renamed = news.displayName !== undefined && olds.displayName !== news.displayName;
    const changes = replaces.length > 0 || renamed || olds.tier !== news.tier || olds.connection?.user !== news.connection.user;
    return Promise.resolve({ changes, replaces, deleteBeforeReplace: true });
  },

  async update(id: string, olds: TenantOutputs, news: TenantInputs): Promise<pulumi.dynamic.UpdateResult> {
    if (news.displayName !== undefined && olds.displayName !== news.displayName) {
      throw new Error(
        `tenant "${olds.slug}": the display name is fixed at registration ("${olds.displayName}"); revert the change to "${news.displayName}"`,
      );
    }
    if (olds.tier === news.tier) return { outs: { ...olds, connection: news.connection } };
    const { setTenantTier } = dataLayer();
    const tenant = await withDatabase(news.connection, news.database, (client) => setTenantTier(client, id, news.tier));
    return { outs: toOutputs({ ...news, displayName: olds.displayName }, tenant) };
  },

  async read(id: string, props: TenantOutputs): Promise<pulumi.dynamic.ReadResult> {
    const { findTenant } = dataLayer();
    try {
      const tenant = await withDatabase(props.connection, props.database, (client) => findTenant(client, id));
      if (!tenant) return { id: "" };
      return { id, props: { ...toOutputs(props, tenant), tier: tenant.tier, region: tenant.region, slug: tenant.slug } };
    } catch (err) {
      if (isMissingDatabase(err)) return { id: "" };
      throw err;
    }
  },

  async delete(id: string, props: TenantOutputs): Promise<void> {
    const { deleteTenant, TenantNotFoundError } = dataLayer();
    try {
      await withDatabase(props.connection, props.database, (client) => deleteTenant(client, id));
    } catch (err) {
      if (isMissingDatabase(err) || err instanceof TenantNotFoundError) return;
      throw err;
    }
  },
};

/** A tenant registered in a regional database. */
export class Tenant extends pulumi.dynamic.Resource {
  declare readonly tenantId: pulumi.Output<string>;
  declare readonly slug: pulumi.Output<string>;
  declare readonly tier: pulumi.Output<Tier>;
  declare readonly region: pulumi.Output<ResidencyRegion>;
  declare readonly placement: pulumi.Output<string>;
  declare readonly status: pulumi.Output<string>;

  constructor(name: string, args: TenantArgs, opts: pulumi.CustomResourceOptions = {}) {
    super(tenantProvider, name, { ...args, tenantId: undefined, placement: undefined, status: undefined }, opts, "db", "Tenant");
  }
}
