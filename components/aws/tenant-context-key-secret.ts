/**
 * `alphapulse:aws:TenantContextKeySecret` — where an AWS region's tenant-context key (ADR-005) lives
 * for the application. The key itself is components/db TenantContextKey, the same resource as in the
 * local stacks: its provider generates the secret (32 random bytes, a secret output, never an input)
 * and installs it through the database executor (installContextKey; only the HMAC pads reach the
 * database). Only the secret's home differs: locally a 0600 file written by `npm run local`, here
 *
 *   <name>-secret  a Secrets Manager secret `<prefix>/<kid>` under the region's KMS key, protected,
 *                  30-day recovery window. It depends on the key, so Pulumi deletes it BEFORE the key:
 *                  removing a kid from the config fails at this protected secret and the key is not
 *                  retired. Retiring is an explicit step (`pulumi state unprotect` the secret, docs/aws.md).
 *   <name>-value   its value `{"kid","region","secret"}` (lib/tenant-context/proof.ts ContextKey), a
 *                  secret in the state; the application reads it with `contextKeyReadPolicy`.
 *
 * The executor never reads it: the key reaches the database inside the install call's payload (never
 * logged, lib/executor/handler.ts), so the executor's role keeps GetSecretValue on its own credential only.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { KEY_ID_PATTERN } from "../../lib/tenant-context/proof";
import type { TenantContextKey } from "../db/tenant-context-key";

export interface TenantContextKeySecretArgs {
  /** The key (RegionalDatabase `contextKeys`): the secret's value, and what the secret depends on. */
  key: TenantContextKey;
  /** The key's id (plain: it names the secret). Caution: a change replaces the secret (protected: refused). */
  kid: string;
  /** Secrets Manager name prefix, e.g. `alphapulse/eu-prod/tenant-context` (the secret is `<prefix>/<kid>`). */
  secretNamePrefix: string;
  /** The region's KMS key (ARN) encrypting the secret. */
  kmsKeyArn: pulumi.Input<string>;
}

export class TenantContextKeySecret extends pulumi.ComponentResource {
  readonly kid: string;
  readonly secretArn: pulumi.Output<string>;

  constructor(name: string, args: TenantContextKeySecretArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("alphapulse:aws:TenantContextKeySecret", name, {}, opts);
    if (!KEY_ID_PATTERN.test(args.kid))
      throw new Error(`TenantContextKeySecret ${name}: kid "${args.kid}" must be 1-32 characters of a-z, 0-9, _ and -`);

    const secret = new aws.secretsmanager.Secret(
      `${name}-secret`,
      {
        name: contextKeySecretName(args.secretNamePrefix, args.kid),
        description: `Tenant-context key ${args.kid} (ADR-005): {"kid","region","secret"}, read by the application to sign tenant proofs`,
        kmsKeyId: args.kmsKeyArn,
        recoveryWindowInDays: 30,
      },
      // Deleted before the key (its dependent), so the protection stops a delete before the key is retired.
      { parent: this, protect: true, dependsOn: [args.key] },
    );
    new aws.secretsmanager.SecretVersion(
      `${name}-value`,
      { secretId: secret.id, secretString: contextKeySecretString(args.key) },
      { parent: this },
    );

    this.kid = args.kid;
    this.secretArn = secret.arn;
    this.registerOutputs({ kid: this.kid, secretArn: this.secretArn });
  }
}

/** `alphapulse/eu-prod/tenant-context` + `eu-1` → `alphapulse/eu-prod/tenant-context/eu-1`. */
export function contextKeySecretName(prefix: string, kid: string): string {
  return `${prefix.replace(/\/+$/, "")}/${kid}`;
}

/** The secret's value, `{"kid","region","secret"}`, as a secret Output (what `ContextKey.parse` reads back). */
export function contextKeySecretString(key: Pick<TenantContextKey, "kid" | "region" | "secret">): pulumi.Output<string> {
  return pulumi.secret(pulumi.jsonStringify({ kid: key.kid, region: key.region, secret: key.secret }));
}

/**
 * The managed policy the application's task role attaches to read the region's context keys: every
 * declared key's secret (during a rotation, tasks still on the old key and tasks on the new one both
 * start), and the region key's Decrypt only through Secrets Manager for those secrets. `T` is a string
 * in tests, an Output in the component.
 */
export function contextKeyReadPolicy<T>(o: { secretArns: T[]; kmsKeyArn: T; awsRegion: string }) {
  return {
    Version: "2012-10-17",
    Statement: [
      { Sid: "ReadTenantContextKeys", Effect: "Allow", Action: "secretsmanager:GetSecretValue", Resource: o.secretArns },
      {
        Sid: "DecryptThemThroughSecretsManager",
        Effect: "Allow",
        Action: "kms:Decrypt",
        Resource: o.kmsKeyArn,
        Condition: {
          StringEquals: {
            "kms:ViaService": `secretsmanager.${o.awsRegion}.amazonaws.com`,
            "kms:EncryptionContext:SecretARN": o.secretArns,
          },
        },
      },
    ],
  };
}
