/**
 * `alphapulse:db:Tenant` — one tenant in a regional database's registry, as a dynamic resource over
 * lib/tenant/registry.ts. The tenant id is its identity; nothing a stack does deletes its data
 * (docs/data-safety.md):
 *
 * - Create registers the tenant (the database refuses a tenant of another residency region).
 * - A slug change is a rename in place (renameTenant: same id, same rows); a tier change is an
 *   update (setTenantTier). To rename a tenant declared by RegionalDatabase, give the entry
 *   `renamedFrom: <old slug>` so the engine knows it is the same resource.
 * - A region, database or server change of an existing tenant is refused in `check`, so `pulumi
 *   preview` fails with the reason: moving a tenant between regions or servers is a residency
 *   decision, not a config edit. Loopback spellings (localhost, 127.0.0.1, ::1) are one server.
 * - Delete (the tenant left the stack, or `pulumi destroy`) never deletes rows: it releases a
 *   tenant that was offboarded on purpose (`tenancy tenant delete`) or is gone, and refuses any other
 *   with the command to run (lib/tenant/stack-guards.ts releaseTenantFromStack).
 * - `databaseOid` changes only when the database was recreated (a wiped cluster): `check` asks the
 *   database (its oid must now be the new one, ./provider-checks.ts), then the tenant is registered
 *   again in the new database; the old one went with its database (its delete sees the new oid).
 */
import * as pulumi from "@pulumi/pulumi";
import type { ResidencyRegion, Tier } from "../../lib/tenant/model";
import {
  callDatabase,
  DATA_SAFETY_GENERATION,
  describeConnection,
  isMissingDatabase,
  sameJson,
  sameServer,
  serverId,
  type DatabaseConnection,
} from "./provider-runtime";
import { recreationFailure } from "./provider-checks";

export interface TenantArgs {
  /** Server and admin role, directly or through the executor. Another server is refused (the tenant lives on this one); another admin user or transport is an update. */
  connection: pulumi.Input<DatabaseConnection>;
  /** Refused when changed for an existing tenant. */
  database: pulumi.Input<string>;
  /** `Database.oid`: a recreated database gets its tenants registered again. */
  databaseOid: pulumi.Input<number>;
  /** A change renames the tenant in place (same id, same rows). */
  slug: pulumi.Input<string>;
  tier: pulumi.Input<Tier>;
  /** Residency; must match the database's region. Refused when changed for an existing tenant. */
  region: pulumi.Input<ResidencyRegion>;
  /** @default the slug. Fixed at registration: a change is refused (no data-layer function renames it yet). */
  displayName?: pulumi.Input<string>;
}

/** What the provider receives: the args with every input resolved. */
type TenantInputs = pulumi.Unwrap<TenantArgs>;

interface TenantOutputs extends TenantInputs {
  tenantId: string;
  placement: string;
  status: string;
  /** The tenant's opaque log tag (`application_name = tenant:<logTag>`): per-tenant alarms select on it. */
  logTag?: string;
  /** DATA_SAFETY_GENERATION of the code that wrote these outputs (absent: older code). */
  dataSafety?: number;
  /** What the last accepted change did to the tenant's data (tenantDataEffect); informational. */
  dataEffect?: string;
}

function toOutputs(
  inputs: TenantInputs,
  tenant: { id: string; placement: string; status: string; displayName: string; logTag: string },
): TenantOutputs {
  return {
    ...inputs,
    displayName: tenant.displayName,
    tenantId: tenant.id,
    placement: tenant.placement,
    status: tenant.status,
    logTag: tenant.logTag,
    dataSafety: DATA_SAFETY_GENERATION,
  };
}

/**
 * Why an existing tenant's inputs may not change this way, or undefined. Pure: `check` reports it
 * as a failure (the preview fails), and `update` refuses it again.
 */
export function tenantChangeProblem(olds: Partial<TenantInputs>, news: TenantInputs): { property: string; reason: string } | undefined {
  if (olds.slug === undefined) return undefined; // a new tenant
  const slug = olds.slug;
  if (olds.region !== undefined && olds.region !== news.region) {
    return {
      property: "region",
      reason:
        `tenant "${slug}" is registered in region "${olds.region}": its data does not move to "${news.region}" by a config edit ` +
        `(residency). Revert the region. To serve it from "${news.region}" instead, offboard it here ` +
        `(\`tenancy tenant delete ${slug}\`, which exports it first) and register it in that region's stack`,
    };
  }
  if (olds.database !== undefined && olds.database !== news.database) {
    return {
      property: "database",
      reason:
        `tenant "${slug}" lives in database "${olds.database}", not "${news.database}": a stack does not move a tenant. ` +
        `Revert the database name (tenancy tenant export/import moves a tenant on purpose)`,
    };
  }
  if (olds.connection !== undefined && !sameServer(olds.connection, news.connection)) {
    const at = (c: DatabaseConnection) => `${serverId(c)} (${describeConnection(c)})`;
    return {
      property: "connection",
      reason:
        `tenant "${slug}" lives on ${at(olds.connection)}, not ${at(news.connection)}: a stack does not move a tenant between servers. ` +
        `Revert the connection. (Two names of one server count as another server, except the loopback spellings ` +
        `localhost, 127.0.0.1 and ::1; to respell a remote host of the same server, edit it in \`pulumi stack export\` and \`pulumi stack import\` the result)`,
    };
  }
  return undefined;
}

/**
 * What an accepted change of an existing tenant does to its data, in one sentence, or undefined
 * (nothing: a new tenant, an admin-user change). Pure. `check` adds it to the inputs, so the preview
 * says it (docs/data-safety.md "What the preview shows").
 */
export function tenantDataEffect(olds: Partial<TenantInputs>, news: TenantInputs): string | undefined {
  if (olds.slug === undefined) return undefined;
  const effects: string[] = [];
  if (olds.databaseOid !== undefined && Number(olds.databaseOid) !== Number(news.databaseOid))
    effects.push(`registered again in the recreated database "${news.database}" (the old registration went with the old database)`);
  if (olds.slug !== news.slug) effects.push(`renamed in place "${olds.slug}" -> "${news.slug}": same tenant id, every row kept`);
  if (olds.tier !== news.tier) {
    const move =
      olds.tier === "enterprise"
        ? `; leaving Enterprise demotes it: its rows move from its dedicated schema back to the shared tables (verified copy, no row lost)`
        : news.tier === "enterprise"
          ? `; becoming Enterprise graduates it: its rows move to its own schema (verified copy, no row lost)`
          : "";
    effects.push(`tier ${olds.tier} -> ${news.tier}: new limits${move}`);
  }
  return effects.length ? effects.join("; ") : undefined;
}

export const tenantProvider: pulumi.dynamic.ResourceProvider = {
  async check(olds: Partial<TenantInputs>, news: TenantInputs): Promise<pulumi.dynamic.CheckResult> {
    const problem = tenantChangeProblem(olds, news) ?? (await recreationFailure(olds, news));
    // What the change does to the tenant's data, as an input: the preview lists it (`[diff: +dataEffect ~slug]`,
    // the text with --diff), so an operator reads it before the up. Absent when the data is not touched.
    const dataEffect = tenantDataEffect(olds, news);
    return { inputs: dataEffect ? { ...news, dataEffect } : news, failures: problem ? [problem] : [] };
  },

  async create(inputs: TenantInputs): Promise<pulumi.dynamic.CreateResult> {
    const tenant = await callDatabase(inputs.connection, inputs.database, "createTenant", {
      slug: inputs.slug,
      tier: inputs.tier,
      region: inputs.region,
      displayName: inputs.displayName,
    });
    return { id: tenant.id, outs: toOutputs(inputs, tenant) };
  },

  diff(_id: string, olds: TenantOutputs, news: TenantInputs): Promise<pulumi.dynamic.DiffResult> {
    // Only a recreated database replaces: the old tenant went with it. Nothing else ever replaces.
    const replaces = Number(olds.databaseOid) !== Number(news.databaseOid) ? ["databaseOid"] : [];
    const renamed = news.displayName !== undefined && olds.displayName !== news.displayName;
    const changes =
      replaces.length > 0 ||
      renamed ||
      olds.slug !== news.slug ||
      olds.tier !== news.tier ||
      olds.region !== news.region ||
      olds.database !== news.database ||
      !sameJson(olds.connection, news.connection) ||
      olds.dataSafety !== DATA_SAFETY_GENERATION;
    return Promise.resolve({ changes, replaces, deleteBeforeReplace: true });
  },

  async update(id: string, olds: TenantOutputs, news: TenantInputs): Promise<pulumi.dynamic.UpdateResult> {
    const problem = tenantChangeProblem(olds, news);
    if (problem) throw new Error(`${problem.property}: ${problem.reason}`);
    if (news.displayName !== undefined && olds.displayName !== news.displayName) {
      throw new Error(
        `tenant "${olds.slug}": the display name is fixed at registration ("${olds.displayName}"); revert the change to "${news.displayName}"`,
      );
    }
    const tenant = await callDatabase(news.connection, news.database, "updateTenant", { id, slug: news.slug, tier: news.tier });
    return { outs: toOutputs({ ...news, displayName: olds.displayName }, tenant) };
  },

  async read(id: string, props: TenantOutputs): Promise<pulumi.dynamic.ReadResult> {
    try {
      const tenant = await callDatabase(props.connection, props.database, "findTenant", { ref: id });
      if (!tenant) return { id: "" };
      return {
        id,
        props: {
          ...props,
          tenantId: tenant.id,
          placement: tenant.placement,
          status: tenant.status,
          logTag: tenant.logTag,
          tier: tenant.tier,
          region: tenant.region,
          slug: tenant.slug,
        },
      };
    } catch (err) {
      if (isMissingDatabase(err)) return { id: "" };
      throw err;
    }
  },

  async delete(id: string, props: TenantOutputs): Promise<void> {
    try {
      await callDatabase(props.connection, props.database, "releaseTenantFromStack", { ref: id, databaseOid: Number(props.databaseOid) });
    } catch (err) {
      if (isMissingDatabase(err)) return;
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
  declare readonly logTag: pulumi.Output<string>;

  constructor(name: string, args: TenantArgs, opts: pulumi.CustomResourceOptions = {}) {
    super(
      tenantProvider,
      name,
      { ...args, tenantId: undefined, placement: undefined, status: undefined, logTag: undefined, dataSafety: undefined },
      opts,
      "db",
      "Tenant",
    );
  }
}
