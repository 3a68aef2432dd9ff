/**
 * `alphapulse:db:TenantRoster` — the list of tenants a stack declares in one database, as a guard
 * that makes `pulumi preview` tell the truth about tenants leaving the stack (docs/data-safety.md).
 *
 * Its `check` compares the previous list with the new one. A slug that disappeared (neither declared
 * any more nor the `renamedFrom` of a new entry) is looked up in the database: a tenant that is
 * offboarded (`tenancy tenant delete`) or gone may leave; any other fails the preview, naming the
 * offboarding command and `renamedFrom` (a slug edited in place is a rename only when the stack says
 * so). RegionalDatabase declares its tenants with `dependsOn` this resource, so a refused change
 * stops before any tenant is created. Create, update and delete change nothing in the database.
 */
import * as pulumi from "@pulumi/pulumi";
import { callDatabase, isMissingDatabase, sameJson, type DatabaseConnection } from "./provider-runtime";

export interface RosterEntry {
  slug: string;
  /** The slug this entry had before a rename. */
  renamedFrom?: string;
}

export interface TenantRosterArgs {
  connection: pulumi.Input<DatabaseConnection>;
  database: pulumi.Input<string>;
  /** Every tenant the stack declares in this database. */
  tenants: pulumi.Input<RosterEntry[]>;
}

interface RosterInputs {
  connection: DatabaseConnection;
  database: string;
  tenants: RosterEntry[];
}

/** Slugs in `olds` that `news` neither declares nor renames (pure). */
export function departedSlugs(olds: readonly RosterEntry[], news: readonly RosterEntry[]): string[] {
  const kept = new Set(news.flatMap((t) => (t.renamedFrom ? [t.slug, t.renamedFrom] : [t.slug])));
  return olds.map((t) => t.slug).filter((slug) => !kept.has(slug));
}

export const tenantRosterProvider: pulumi.dynamic.ResourceProvider = {
  async check(olds: Partial<RosterInputs>, news: RosterInputs): Promise<pulumi.dynamic.CheckResult> {
    const departed = departedSlugs(olds.tenants ?? [], news.tenants);
    if (!departed.length) return { inputs: news, failures: [] };
    let served: { slug: string; status: string }[];
    try {
      served = await callDatabase(news.connection, news.database, "servedTenants", { slugs: departed });
    } catch (err) {
      if (isMissingDatabase(err)) return { inputs: news, failures: [] }; // the database is gone: nothing to keep
      throw err;
    }
    const failures = served.map(({ slug, status }) => ({
      property: "tenants",
      reason:
        `tenant "${slug}" (${status}) is no longer declared, and a stack never deletes a tenant's data. ` +
        `If you renamed it, give the new entry \`renamedFrom: ${slug}\`; to offboard it, run \`tenancy tenant delete ${slug}\` ` +
        `(verified export, then a retention window) before removing it; otherwise put it back`,
    }));
    return { inputs: news, failures };
  },

  create(inputs: RosterInputs): Promise<pulumi.dynamic.CreateResult> {
    return Promise.resolve({ id: `${inputs.database}/tenants`, outs: inputs });
  },

  diff(_id: string, olds: RosterInputs, news: RosterInputs): Promise<pulumi.dynamic.DiffResult> {
    return Promise.resolve({
      changes: !sameJson(olds.tenants, news.tenants) || !sameJson(olds.connection, news.connection) || olds.database !== news.database,
      replaces: [],
    });
  },

  update(_id: string, _olds: RosterInputs, news: RosterInputs): Promise<pulumi.dynamic.UpdateResult> {
    return Promise.resolve({ outs: news });
  },

  delete(): Promise<void> {
    return Promise.resolve(); // a list: the tenants' own resources decide what leaving means
  },
};

/** The tenants a stack declares in one database (a preview-time guard, see the file comment). */
export class TenantRoster extends pulumi.dynamic.Resource {
  constructor(name: string, args: TenantRosterArgs, opts: pulumi.CustomResourceOptions = {}) {
    super(tenantRosterProvider, name, args, opts, "db", "TenantRoster");
  }
}
