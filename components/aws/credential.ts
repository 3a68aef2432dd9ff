/**
 * `alphapulse:aws:Credential` — a generated password kept in Secrets Manager: a @pulumi/random
 * RandomPassword (secret in state), a KMS-encrypted secret protected from deletion, and its value
 * `{"username": ..., "password": ...}` (the shape ECS `valueFrom <arn>:password::` and the node
 * bootstrap read). Consumers get the ARN; the plain password never leaves Pulumi state and the secret.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";

export interface CredentialArgs {
  /** The login the password belongs to (stored next to it in the secret). */
  username: pulumi.Input<string>;
  /** Secret name in Secrets Manager, e.g. `alphapulse/eu-prod/postgres/admin`. Changing it replaces the secret. */
  secretName: pulumi.Input<string>;
  /** KMS key encrypting the secret. */
  kmsKeyId: pulumi.Input<string>;
  description?: pulumi.Input<string>;
  /**
   * Password length. Letters and digits only: the value travels through shell, INI and URL contexts.
   * @default 40 (about 238 bits)
   */
  length?: number;
  /**
   * What removing this credential from the program does. "protect": the secret is protected, the
   * removal is refused. "retain": the secret is protected too, and its password, secret and value
   * are also retained on delete: after `pulumi state unprotect` of the secret, a removal forgets
   * them in this stack and leaves them in AWS (for a credential another stack adopts with `pulumi import`).
   * "release": the secret is not protected, so a destroy schedules its deletion with the 30-day
   * recovery window; only a tenant's Redis credential is ever declared so, and only by
   * `npm run tenant -- destroy` after the tenant was offboarded (TenantRedisUser `releaseSecret`).
   * @default "protect"
   */
  onRemoval?: "protect" | "retain" | "release";
}

export class Credential extends pulumi.ComponentResource {
  readonly secretArn: pulumi.Output<string>;
  /** The password (secret). */
  readonly password: pulumi.Output<string>;

  constructor(name: string, args: CredentialArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("alphapulse:aws:Credential", name, {}, opts);
    const length = args.length ?? 40;
    if (!Number.isInteger(length) || length < 24)
      throw new Error(`Credential ${name}: length must be an integer of at least 24, got ${length}`);

    // Set on every child: retainOnDelete is not reliably inherited from a component.
    const retain = args.onRemoval === "retain";
    const child = { parent: this, retainOnDelete: retain };
    const password = new random.RandomPassword(
      `${name}-password`,
      { length, special: false, minLower: 1, minUpper: 1, minNumeric: 1 },
      child,
    );
    const secret = new aws.secretsmanager.Secret(
      `${name}-secret`,
      { name: args.secretName, description: args.description, kmsKeyId: args.kmsKeyId, recoveryWindowInDays: 30 },
      { ...child, protect: args.onRemoval !== "release" },
    );
    new aws.secretsmanager.SecretVersion(
      `${name}-value`,
      { secretId: secret.id, secretString: pulumi.secret(pulumi.jsonStringify({ username: args.username, password: password.result })) },
      child,
    );

    this.secretArn = secret.arn;
    this.password = pulumi.secret(password.result);
    this.registerOutputs({ secretArn: this.secretArn });
  }
}
