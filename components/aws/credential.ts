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
   * Protect the secret from deletion. Only a tenant's Redis credential is ever declared unprotected,
   * and only by `npm run tenant -- destroy` after the tenant was offboarded (TenantRedisUser
   * `releaseSecret`): the destroy then schedules its deletion with the 30-day recovery window.
   * @default true
   */
  protect?: boolean;
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

    const password = new random.RandomPassword(
      `${name}-password`,
      { length, special: false, minLower: 1, minUpper: 1, minNumeric: 1 },
      { parent: this },
    );
    const secret = new aws.secretsmanager.Secret(
      `${name}-secret`,
      { name: args.secretName, description: args.description, kmsKeyId: args.kmsKeyId, recoveryWindowInDays: 30 },
      { parent: this, protect: args.protect ?? true },
    );
    new aws.secretsmanager.SecretVersion(
      `${name}-value`,
      { secretId: secret.id, secretString: pulumi.secret(pulumi.jsonStringify({ username: args.username, password: password.result })) },
      { parent: this },
    );

    this.secretArn = secret.arn;
    this.password = pulumi.secret(password.result);
    this.registerOutputs({ secretArn: this.secretArn });
  }
}
