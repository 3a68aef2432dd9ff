/**
 * `alphapulse:db:RegionalDatabase` — a region's database with the design applied and its tenants
 * registered: Database → DatabaseSchema → TenantContextKey per key, TenantRoster → Tenant per tenant. The local stacks point it
 * at a loopback cluster; a regional AWS stack can point it at its cluster the same way.
 *
 * Nothing here deletes tenant data as a side effect of `pulumi up` or `destroy` (docs/data-safety.md):
 * a renamed tenant (`renamedFrom`) is updated in place, a tenant removed from `tenants` fails the
 * preview unless it was offboarded, and the database is `protect`ed unless `protect: false` (local
 * regions), and refuses its own drop while tenants are registered. Tenants are not `deletedWith` the
 * database: their own delete decides (and refuses), so a refused destroy leaves the state whole.
 */
import * as pulumi from "@pulumi/pulumi";
import { TENANT_TABLES, type TenantTable } from "../../lib/schema/catalogue";
import type { ResidencyRegion, Tier } from "../../lib/tenant/model";
import { Database } from "./database";
import { DatabaseSchema, schemaFingerprint } from "./database-schema";
import type { DatabaseConnection } from "./provider-runtime";
import { Tenant } from "./tenant";
import { TenantContextKey } from "./tenant-context-key";
import type { ContextKey } from "../../lib/tenant-context/proof";
import { TenantRoster } from "./tenant-roster";

export interface RegionalTenant {
  slug: string;
  tier: Tier;
  region: ResidencyRegion;
  displayName?: string;
  /** The slug before a rename: the tenant is updated in place (its resource is aliased to the old name). */
  renamedFrom?: string;
}

export interface RegionalDatabaseArgs {
  /** Server and admin role (superuser, or a role that can create databases and roles). */
  connection: pulumi.Input<DatabaseConnection>;
  /** Database name. A change is refused (it would drop the database and its tenants' data). */
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
  /**
   * Pulumi `protect` on the Database: a `pulumi destroy` (or a change that would delete it) is refused
   * by the engine, in the preview, until `pulumi state unprotect`. Local regions pass false and rely
   * on the Database's own refusal while tenants are registered.
   * @default true
   */
  protect?: boolean;
  /**
   * Tenant-context key ids (ADR-005: the database is strict), oldest first; services sign with the
   * last (`contextKey`). Rotate by adding the next id (both verify), moving the services to it, then
   * removing the old id (its key is retired; the last key is never retired while tenants exist).
   * @default [`${region}-1`]
   */
  contextKeys?: string[];
}

export class RegionalDatabase extends pulumi.ComponentResource {
  readonly database: Database;
  readonly schema: DatabaseSchema;
  /** Tenant id by slug. */
  readonly tenantIds: pulumi.Output<Record<string, string>>;
  /** The key services sign proofs with: the last of `contextKeys` (secret). */
  readonly contextKey: pulumi.Output<ContextKey>;
  /**
   * Every declared key with its id, oldest first (the last is `contextKey`). The AWS stacks keep each
   * one's value in Secrets Manager (components/aws/tenant-context-key-secret.ts).
   */
  readonly contextKeys: readonly { kid: string; key: TenantContextKey }[];

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

    this.database = new Database(
      `${name}-db`,
      { connection: args.connection, name: args.database },
      { parent: this, protect: args.protect ?? true },
    );
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
      { parent: this },
    );
    const kids = args.contextKeys ?? [`${args.region}-1`];
    if (!kids.length || new Set(kids).size !== kids.length)
      throw new Error(`RegionalDatabase ${name}: contextKeys must name at least one key id, each once (got ${JSON.stringify(kids)})`);
    const keys = kids.map(
      (kid) =>
        new TenantContextKey(
          `${name}-context-key-${kid}`,
          { connection: args.connection, database: this.database.name, databaseOid: this.database.oid, region: args.region, kid },
          { parent: this, dependsOn: [this.schema] },
        ),
    );
    this.contextKeys = kids.map((kid, i) => ({ kid, key: keys[i] }));
    const current = keys[keys.length - 1];
    this.contextKey = pulumi.secret(
      pulumi.all([current.kid, current.region, current.secret]).apply(([kid, region, secret]) => ({ kid, region, secret })),
    );
    const roster = new TenantRoster(
      `${name}-tenants`,
      {
        connection: args.connection,
        database: this.database.name,
        tenants: (args.tenants ?? []).map((t) => (t.renamedFrom ? { slug: t.slug, renamedFrom: t.renamedFrom } : { slug: t.slug })),
      },
      { parent: this },
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
          {
            parent: this,
            // Deleted before the keys: a key is never retired while the tenant it serves is active.
            dependsOn: [this.schema, roster, ...keys],
            aliases: t.renamedFrom ? [{ name: `${name}-tenant-${t.renamedFrom}` }] : undefined,
          },
        ),
    );
    this.tenantIds = pulumi.all(tenants.map((t) => pulumi.all([t.slug, t.tenantId]))).apply((pairs) => Object.fromEntries(pairs));

    this.registerOutputs({ database: this.database.name, fingerprint: this.schema.appliedFingerprint, tenantIds: this.tenantIds });
  }
}
