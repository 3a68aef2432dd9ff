/**
 * `alphapulse:db:DedicatedPlacement` — an Enterprise tenant placed in its own schema `tenant_<hex>`,
 * as a dynamic resource over lib/enterprise/graduation.ts (the same functions as `tenancy tenant graduate|demote`).
 *
 * - Create graduates the tenant (shared → dedicated: provision the schema from the catalogue, copy,
 *   verify, flip, remove the source rows). A tenant already dedicated is adopted as it is.
 * - Delete never drops the schema and demotes only on purpose (lib/tenant/stack-guards.ts
 *   demoteForStack, docs/data-safety.md): when the tenant's tier is no longer Enterprise (the tier
 *   change the stack just applied), it demotes (dedicated → shared, verified, no row lost); an
 *   offboarded or gone tenant keeps its schema until `tenancy tenant purge`; a served Enterprise
 *   tenant is refused with the command to run. Declare it with `deletedWith` the tenant's registry
 *   entry (components/db Tenant), whose own delete decides for the tenant as a whole.
 * - Another server, database or tenant for an existing placement fails `check` (the preview says why:
 *   a replacement would demote one placement to graduate another); a new `databaseOid` passes only
 *   when the database was really recreated (./provider-checks.ts).
 * - Both are crash-safe and resumable in the library: a re-run after an interruption finishes the move.
 * - A dedicated login role (components/db/tenant-login-role.ts) must be gone before a demotion; declare
 *   it as a dependent of this resource so the engine deletes it first.
 */
import * as pulumi from "@pulumi/pulumi";
import { callDatabase, isMissingDatabase, sameJson, sameServer, type DatabaseConnection } from "./provider-runtime";
import { placementFailures } from "./provider-checks";

export interface DedicatedPlacementArgs {
  connection: pulumi.Input<DatabaseConnection>;
  database: pulumi.Input<string>;
  /** `Database.oid`: a recreated database replaces the placement. */
  databaseOid: pulumi.Input<number>;
  /** The tenant (components/db Tenant `tenantId`). Replaces when changed. */
  tenantId: pulumi.Input<string>;
}

/** What the provider receives: the args with every input resolved. */
type PlacementInputs = pulumi.Unwrap<DedicatedPlacementArgs>;

interface PlacementOutputs extends PlacementInputs {
  /** `tenant_<hex>`. */
  schema: string;
  /** Rows moved by the graduation (0 when adopted). */
  rowsMoved: number;
  /** How long the graduation held the tenant's writes, in ms. */
  writesHeldMs: number;
}

export const dedicatedPlacementProvider: pulumi.dynamic.ResourceProvider = {
  async check(olds: Partial<PlacementInputs>, news: PlacementInputs): Promise<pulumi.dynamic.CheckResult> {
    return { inputs: news, failures: await placementFailures(`the dedicated schema of tenant ${olds.tenantId}`, olds, news) };
  },

  async create(inputs: PlacementInputs): Promise<pulumi.dynamic.CreateResult> {
    const result = await callDatabase(inputs.connection, inputs.database, "graduateTenant", { ref: inputs.tenantId });
    const outs: PlacementOutputs = { ...inputs, schema: result.to, rowsMoved: result.rowsMoved, writesHeldMs: result.writesHeldMs };
    return { id: `${inputs.tenantId}/dedicated`, outs };
  },

  diff(_id: string, olds: PlacementOutputs, news: PlacementInputs): Promise<pulumi.dynamic.DiffResult> {
    const replaces: string[] = [];
    if (!sameServer(olds.connection, news.connection)) replaces.push("connection");
    if (olds.database !== news.database) replaces.push("database");
    if (Number(olds.databaseOid) !== Number(news.databaseOid)) replaces.push("databaseOid");
    if (olds.tenantId !== news.tenantId) replaces.push("tenantId");
    const changes = replaces.length > 0 || !sameJson(olds.connection, news.connection);
    return Promise.resolve({ changes, replaces, deleteBeforeReplace: true });
  },

  update(_id: string, olds: PlacementOutputs, news: PlacementInputs): Promise<pulumi.dynamic.UpdateResult> {
    return Promise.resolve({ outs: { ...olds, connection: news.connection } });
  },

  async read(id: string, props: PlacementOutputs): Promise<pulumi.dynamic.ReadResult> {
    try {
      const tenant = await callDatabase(props.connection, props.database, "findTenant", { ref: props.tenantId });
      return tenant?.placement === "dedicated" ? { id, props } : { id: "" };
    } catch (err) {
      if (isMissingDatabase(err)) return { id: "" };
      throw err;
    }
  },

  async delete(_id: string, props: PlacementOutputs): Promise<void> {
    try {
      await callDatabase(props.connection, props.database, "demoteForStack", { ref: props.tenantId });
    } catch (err) {
      if (isMissingDatabase(err)) return;
      throw err;
    }
  },
};

/** An Enterprise tenant's dedicated schema placement (graduated on create; demoted on delete only after a tier change). */
export class DedicatedPlacement extends pulumi.dynamic.Resource {
  declare readonly schema: pulumi.Output<string>;
  declare readonly rowsMoved: pulumi.Output<number>;
  declare readonly writesHeldMs: pulumi.Output<number>;

  constructor(name: string, args: DedicatedPlacementArgs, opts: pulumi.CustomResourceOptions = {}) {
    super(
      dedicatedPlacementProvider,
      name,
      { ...args, schema: undefined, rowsMoved: undefined, writesHeldMs: undefined },
      opts,
      "db",
      "DedicatedPlacement",
    );
  }
}
