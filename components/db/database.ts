/**
 * `alphapulse:db:Database` — a PostgreSQL database on a cluster, as a dynamic resource.
 *
 * Create: CREATE DATABASE (refuses to adopt one that already exists: a stack only drops what it made).
 * Delete: DROP DATABASE … WITH (FORCE), then drops the design's cluster-wide roles (lib/schema/roles.ts) that
 * no database on the cluster depends on any more, so `pulumi destroy` leaves nothing behind; a role
 * another database still uses is kept. Read: notices a database that disappeared (a wiped cluster),
 * so `pulumi refresh` / `up --refresh` recreates it.
 *
 * Everything inside the database (DatabaseSchema, Tenant) is declared with `deletedWith` this resource.
 */
import * as pulumi from "@pulumi/pulumi";
import { dataLayer, sameServer, withDatabase, type DatabaseConnection } from "./provider-runtime";

export interface DatabaseArgs {
  /** Server and admin role. Changing host or port replaces the database. */
  connection: pulumi.Input<DatabaseConnection>;
  /** Database name (a lower-case SQL identifier). Changing it replaces the database. */
  name: pulumi.Input<string>;
}

/** What the provider receives: the args with every input resolved. */
type DatabaseInputs = pulumi.Unwrap<DatabaseArgs>;

interface DatabaseOutputs extends DatabaseInputs {
  /** pg_database.oid: changes when the database is recreated, so resources inside it follow. */
  oid: number;
}

export const databaseProvider: pulumi.dynamic.ResourceProvider = {
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
    const outs: DatabaseOutputs = { connection: inputs.connection, name: inputs.name, oid: Number(oid) };
    return { id: `${inputs.connection.host}:${inputs.connection.port}/${inputs.name}`, outs };
  },

  diff(_id: string, olds: DatabaseOutputs, news: DatabaseInputs): Promise<pulumi.dynamic.DiffResult> {
    const replaces: string[] = [];
    if (!sameServer(olds.connection, news.connection)) replaces.push("connection");
    if (olds.name !== news.name) replaces.push("name");
    const userChanged = olds.connection?.user !== news.connection.user;
    return Promise.resolve({ changes: replaces.length > 0 || userChanged, replaces, deleteBeforeReplace: true });
  },

  update(_id: string, olds: DatabaseOutputs, news: DatabaseInputs): Promise<pulumi.dynamic.UpdateResult> {
    // Only the admin user can change without a replacement; the database itself stays as it is.
    return Promise.resolve({ outs: { ...olds, connection: news.connection } });
  },

  async read(id: string, props: DatabaseOutputs): Promise<pulumi.dynamic.ReadResult> {
    const { rows } = await withDatabase(props.connection, "postgres", (client) =>
      client.query("SELECT oid FROM pg_database WHERE datname = $1", [props.name]),
    );
    if (!rows.length) return { id: "" };
    return { id, props: { ...props, oid: Number(rows[0].oid) } };
  },

  async delete(_id: string, props: DatabaseOutputs): Promise<void> {
    const { ident, ROLES } = dataLayer();
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
