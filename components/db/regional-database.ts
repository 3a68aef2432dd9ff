/**
 * `alphapulse:db:RegionalDatabase` — a region's database with the design applied and its tenants
 * registered: Database → DatabaseSchema → Tenant per tenant. The local stacks point it at a loopback
 * cluster; a regional AWS stack can point it at its cluster the same way.
 */
import * as pulumi from "@pulumi/pulumi";
import { TENANT_TABLES, type TenantTable } from "../../lib/schema/catalogue";
import type { ResidencyRegion, Tier } from "../../lib/tenant/model";
import { Database } from "./database";
import { DatabaseSchema, schemaFingerprint } from "./database-schema";
import type { DatabaseConnection } from "./provider-runtime";
import { Tenant } from "./tenant";

export interface RegionalTenant {
  slug: string;
  tier: Tier;
  region: ResidencyRegion;
  displayName?: string;
}

export interface RegionalDatabaseArgs {
  /** Server and admin role (superuser, or a role that can create databases and roles). */
  connection: pulumi.Input<DatabaseConnection>;
  /** Database name. Changing it replaces the database and everything in it. */
  database: string;
  /** The residency region this database serves. */
  region: ResidencyRegion;
  /**
   * The tenant-table catalogue.
   * @default lib/schema/catalogue.ts TENANT_TABLES
   */
  catalogue?: readonly TenantTable[];
  /** Tenants to register; each must be of `region`. @default [] */
  tenants?: RegionalTenant[];
}

export class RegionalDatabase extends pulumi.ComponentResource {
  readonly database: Database;
  readonly schema: DatabaseSchema;
  /** Tenant id by slug. */
  readonly tenantIds: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: RegionalDatabaseArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("alphapulse:db:RegionalDatabase", name, {}, opts);
    const catalogue = args.catalogue ?? TENANT_TABLES;
    for (const tenant of args.tenants ?? []) {
      if (tenant.region !== args.region) {
        throw new Error(
          `RegionalDatabase ${name}: tenant "${tenant.slug}" has residency "${tenant.region}", this database serves "${args.region}"`,
        );
      }
    }

    this.database = new Database(`${name}-db`, { connection: args.connection, name: args.database }, { parent: this });
    const inside = { parent: this, deletedWith: this.database };
    this.schema = new DatabaseSchema(
      `${name}-schema`,
      {
        connection: args.connection,
        database: this.database.name,
        databaseOid: this.database.oid,
        region: args.region,
        catalogue: [...catalogue],
        fingerprint: schemaFingerprint(catalogue),
      },
      inside,
    );
    const tenants = (args.tenants ?? []).map(
      (t) =>
        new Tenant(
          `${name}-tenant-${t.slug}`,
          {
            connection: args.connection,
            database: this.database.name,
            databaseOid: this.database.oid,
            slug: t.slug,
            tier: t.tier,
            region: t.region,
            displayName: t.displayName,
          },
          { ...inside, dependsOn: [this.schema] },
        ),
    );
    this.tenantIds = pulumi.all(tenants.map((t) => pulumi.all([t.slug, t.tenantId]))).apply((pairs) => Object.fromEntries(pairs));

    this.registerOutputs({ database: this.database.name, fingerprint: this.schema.appliedFingerprint, tenantIds: this.tenantIds });
  }
}
