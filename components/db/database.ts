/**
 * `alphapulse:db:Database` — a PostgreSQL database on a cluster, as a dynamic resource.
 *
 * Create: CREATE DATABASE (refuses to adopt one that already exists: a stack only drops what it made).
 * Delete: refused while any tenant is registered in it — served, suspended, or offboarded and not yet
 * purged (docs/data-safety.md); an empty database is dropped (DROP DATABASE … WITH (FORCE)), then the
 * design's cluster-wide roles (lib/schema/roles.ts) that no database on the cluster depends on any
 * more; a role another database still uses is kept. A name or server change of an existing database
 * would drop it and create an empty one: `check` refuses it, so the preview fails with the reason
 * (the loopback spellings localhost, 127.0.0.1 and ::1 are one server: an update).
 * Read: notices a database that disappeared (a wiped cluster), so `pulumi refresh` / `up --refresh`
 * recreates it. RegionalDatabase also sets `protect` on it for real regions.
 */
import * as pulumi from "@pulumi/pulumi";
import {
  DATA_SAFETY_GENERATION,
  dataLayer,
  isMissingDatabase,
  sameServer,
  withDatabase,
  type DatabaseConnection,
} from "./provider-runtime";

export interface DatabaseArgs {
  /** Server and admin role. Another host or port is refused for an existing database; another admin user is an update. */
  connection: pulumi.Input<DatabaseConnection>;
  /** Database name (a lower-case SQL identifier). Refused when changed for an existing database. */
  name: pulumi.Input<string>;
}

/** What the provider receives: the args with every input resolved. */
type DatabaseInputs = pulumi.Unwrap<DatabaseArgs>;

interface DatabaseOutputs extends DatabaseInputs {
  /** pg_database.oid: changes when the database is recreated, so resources inside it follow. */
  oid: number;
  /** DATA_SAFETY_GENERATION of the code that wrote these outputs (absent: older code, whose delete drops unconditionally). */
  dataSafety?: number;
}

/** Why an existing database's inputs may not change this way, or undefined (pure; `check` reports it). */
export function databaseChangeProblem(
  olds: Partial<DatabaseInputs>,
  news: DatabaseInputs,
): { property: string; reason: string } | undefined {
  if (olds.name === undefined) return undefined;
  if (olds.name !== news.name) {
    return {
      property: "name",
      reason: `renaming database "${olds.name}" to "${news.name}" would drop it with its tenants' data and create an empty one: revert the name`,
    };
  }
  if (olds.connection !== undefined && !sameServer(olds.connection, news.connection)) {
    return {
      property: "connection",
      reason:
        `database "${olds.name}" is on ${olds.connection.host}:${olds.connection.port}; pointing the stack at ${news.connection.host}:${news.connection.port} ` +
        `would drop it and create an empty one elsewhere: revert the connection (loopback spellings localhost, 127.0.0.1 and ::1 are one server)`,
    };
  }
  return undefined;
}

export const databaseProvider: pulumi.dynamic.ResourceProvider = {
  check(olds: Partial<DatabaseInputs>, news: DatabaseInputs): Promise<pulumi.dynamic.CheckResult> {
    const problem = databaseChangeProblem(olds, news);
    return Promise.resolve({ inputs: news, failures: problem ? [problem] : [] });
  },

  async create(inputs: DatabaseInputs): Promise<pulumi.dynamic.CreateResult> {
    const { ident } = dataLayer();
    const oid = await withDatabase(inputs.connection, "postgres", async (client) => {
      const { rows } = await client.query("SELECT oid FROM pg_database WHERE datname = $1", [inputs.name]);
      if (rows.length) {
        throw new Error(
          `database "${inputs.name}" already exists on ${inputs.connection.host}:${inputs.connection.port}; ` +
            "this stack only manages databases it created: drop it (or reset the local stack) and run again",
        );
      }
      await client.query(`CREATE DATABASE ${ident(inputs.name)}`);
      return (await client.query("SELECT oid FROM pg_database WHERE datname = $1", [inputs.name])).rows[0].oid;
    });
    const outs: DatabaseOutputs = {
      connection: inputs.connection,
      name: inputs.name,
      oid: Number(oid),
      dataSafety: DATA_SAFETY_GENERATION,
    };
    return { id: `${inputs.connection.host}:${inputs.connection.port}/${inputs.name}`, outs };
  },

  diff(_id: string, olds: DatabaseOutputs, news: DatabaseInputs): Promise<pulumi.dynamic.DiffResult> {
    // Nothing replaces a database (check refuses name and server changes). Outputs of older code
    // are a change: the update rewrites the provider code the state keeps for the delete.
    const changes =
      olds.name !== news.name ||
      !sameServer(olds.connection, news.connection) ||
      olds.connection?.host !== news.connection.host ||
      olds.connection?.user !== news.connection.user ||
      olds.dataSafety !== DATA_SAFETY_GENERATION;
    return Promise.resolve({ changes, replaces: [] });
  },

  update(_id: string, olds: DatabaseOutputs, news: DatabaseInputs): Promise<pulumi.dynamic.UpdateResult> {
    const problem = databaseChangeProblem(olds, news);
    if (problem) return Promise.reject(new Error(`${problem.property}: ${problem.reason}`));
    // The admin user or the spelling of a loopback host; the database itself stays as it is.
    return Promise.resolve({ outs: { ...olds, connection: news.connection, dataSafety: DATA_SAFETY_GENERATION } });
  },

  async read(id: string, props: DatabaseOutputs): Promise<pulumi.dynamic.ReadResult> {
    const { rows } = await withDatabase(props.connection, "postgres", (client) =>
      client.query("SELECT oid FROM pg_database WHERE datname = $1", [props.name]),
    );
    if (!rows.length) return { id: "" };
    return { id, props: { ...props, oid: Number(rows[0].oid) } };
  },

  async delete(_id: string, props: DatabaseOutputs): Promise<void> {
    const { ident, ROLES, databaseDropProblem } = dataLayer();
    let problem: string | undefined;
    try {
      problem = await withDatabase(props.connection, props.name, (client) => databaseDropProblem(client, props.name));
    } catch (err) {
      if (!isMissingDatabase(err)) throw err; // gone already: only the roles are left to drop
    }
    if (problem) throw new Error(problem);
    await withDatabase(props.connection, "postgres", async (client) => {
      await client.query(`DROP DATABASE IF EXISTS ${ident(props.name)} WITH (FORCE)`);
      // Roles are cluster-wide: drop the design's roles only when no remaining database depends on them.
      const { rows } = await client.query(
        `SELECT r.rolname FROM pg_roles r
          WHERE r.rolname = ANY($1)
            AND NOT EXISTS (SELECT 1 FROM pg_shdepend d WHERE d.refclassid = 'pg_authid'::regclass AND d.refobjid = r.oid)`,
        [Object.values(ROLES)],
      );
      for (const { rolname } of rows) await client.query(`DROP ROLE IF EXISTS ${ident(rolname)}`);
    });
  },
};

/** A PostgreSQL database created and dropped by the stack. */
export class Database extends pulumi.dynamic.Resource {
  declare readonly name: pulumi.Output<string>;
  declare readonly oid: pulumi.Output<number>;
  declare readonly connection: pulumi.Output<DatabaseConnection>;

  constructor(name: string, args: DatabaseArgs, opts: pulumi.CustomResourceOptions = {}) {
    super(databaseProvider, name, { ...args, oid: undefined }, opts, "db", "Database");
  }
}
