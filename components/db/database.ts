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
  callDatabase,
  DATA_SAFETY_GENERATION,
  describeConnection,
  sameJson,
  sameServer,
  serverId,
  type DatabaseConnection,
} from "./provider-runtime";

export interface DatabaseArgs {
  /**
   * Server and admin role, directly or through the database executor. Another server is refused for an
   * existing database; another admin user, loopback spelling or transport is an update.
   */
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
        `database "${olds.name}" is on ${serverId(olds.connection)} (${describeConnection(olds.connection)}); pointing the stack at ` +
        `${serverId(news.connection)} (${describeConnection(news.connection)}) ` +
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
    const { oid } = await callDatabase(inputs.connection, "postgres", "createDatabase", { name: inputs.name });
    const outs: DatabaseOutputs = {
      connection: inputs.connection,
      name: inputs.name,
      oid: Number(oid),
      dataSafety: DATA_SAFETY_GENERATION,
    };
    return { id: `${serverId(inputs.connection)}/${inputs.name}`, outs };
  },

  diff(_id: string, olds: DatabaseOutputs, news: DatabaseInputs): Promise<pulumi.dynamic.DiffResult> {
    // Nothing replaces a database (check refuses name and server changes). Outputs of older code
    // are a change: the update rewrites the provider code the state keeps for the delete.
    const changes = olds.name !== news.name || !sameJson(olds.connection, news.connection) || olds.dataSafety !== DATA_SAFETY_GENERATION;
    return Promise.resolve({ changes, replaces: [] });
  },

  update(_id: string, olds: DatabaseOutputs, news: DatabaseInputs): Promise<pulumi.dynamic.UpdateResult> {
    const problem = databaseChangeProblem(olds, news);
    if (problem) return Promise.reject(new Error(`${problem.property}: ${problem.reason}`));
    // The admin user, the spelling of a loopback host or the transport; the database itself stays as it is.
    return Promise.resolve({ outs: { ...olds, connection: news.connection, dataSafety: DATA_SAFETY_GENERATION } });
  },

  async read(id: string, props: DatabaseOutputs): Promise<pulumi.dynamic.ReadResult> {
    const { oid } = await callDatabase(props.connection, "postgres", "readDatabase", { name: props.name });
    if (oid === null) return { id: "" };
    return { id, props: { ...props, oid: Number(oid) } };
  },

  async delete(_id: string, props: DatabaseOutputs): Promise<void> {
    // Refused while tenants are registered; then DROP DATABASE and the roles nothing depends on.
    await callDatabase(props.connection, "postgres", "dropDatabase", { name: props.name });
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
