/**
 * `alphapulse:db:PgbouncerAuthFile` — PgBouncer's auth file as the database holds it: the SCRAM
 * verifiers of the RLS-subject login roles (lib/pgbouncer/verifiers.ts), read through the
 * connection (the executor on AWS) by the `pgbouncerAuthFile` operation, with its revision (sha256).
 * A thin shell: the AWS PgBouncerService writes `authFile` as a new version of its secret and
 * redeploys its tasks when `revision` changes (docs/aws.md).
 *
 * - `after` is any value that changes when the login roles' passwords may have been set again
 *   (RegionalPlatform passes the schema's applied fingerprint and versions): a change re-reads.
 * - Read re-reads: after `pulumi refresh`, a password changed behind the stack's back shows as a
 *   new revision, and the next `up` redeploys PgBouncer with it.
 * - Delete changes nothing. `authFile` is a secret output.
 */
import * as pulumi from "@pulumi/pulumi";
import { callDatabase, sameJson, type DatabaseConnection } from "./provider-runtime";

export interface PgbouncerAuthFileArgs {
  connection: pulumi.Input<DatabaseConnection>;
  /** Changes when the verifiers may have changed (the schema's applied fingerprint and versions). */
  after: pulumi.Input<string>;
}

type AuthFileInputs = pulumi.Unwrap<PgbouncerAuthFileArgs>;

interface AuthFileOutputs extends AuthFileInputs {
  authFile: string;
  revision: string;
}

async function readAuthFile(inputs: AuthFileInputs): Promise<AuthFileOutputs> {
  const { authFile, revision } = await callDatabase(inputs.connection, "postgres", "pgbouncerAuthFile", {});
  return { ...inputs, authFile, revision };
}

export const pgbouncerAuthFileProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: AuthFileInputs): Promise<pulumi.dynamic.CreateResult> {
    return { id: "pgbouncer-auth-file", outs: await readAuthFile(inputs) };
  },

  diff(_id: string, olds: AuthFileOutputs, news: AuthFileInputs): Promise<pulumi.dynamic.DiffResult> {
    return Promise.resolve({ changes: olds.after !== news.after || !sameJson(olds.connection, news.connection), replaces: [] });
  },

  async update(_id: string, _olds: AuthFileOutputs, news: AuthFileInputs): Promise<pulumi.dynamic.UpdateResult> {
    return { outs: await readAuthFile(news) };
  },

  async read(id: string, props: AuthFileOutputs): Promise<pulumi.dynamic.ReadResult> {
    return { id, props: await readAuthFile(props) };
  },

  delete(): Promise<void> {
    return Promise.resolve(); // a reading: nothing to undo
  },
};

/** PgBouncer's auth file as the database holds it (see the file comment). */
export class PgbouncerAuthFile extends pulumi.dynamic.Resource {
  declare readonly authFile: pulumi.Output<string>;
  declare readonly revision: pulumi.Output<string>;

  constructor(name: string, args: PgbouncerAuthFileArgs, opts: pulumi.CustomResourceOptions = {}) {
    super(
      pgbouncerAuthFileProvider,
      name,
      { ...args, authFile: undefined, revision: undefined },
      pulumi.mergeOptions(opts, { additionalSecretOutputs: ["authFile"] }),
      "db",
      "PgbouncerAuthFile",
    );
  }
}
