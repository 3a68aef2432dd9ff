/**
 * `alphapulse:aws:TenantRedisUser` — one tenant's ElastiCache RBAC user, declared by the tenant's own
 * stack (components/tenant/tenant-stack.ts), not by the regional stack:
 *
 *   <name>            Credential: a RandomPassword (secret in state), a Secrets Manager secret under
 *                     the region's KMS key (protected, 30-day recovery window) and its value
 *                     `{"username","password"}`. Applications read the secret; nothing prints it.
 *   <name>-user       aws.elasticache.User: id `tenant-<uuid>`, name `tenant_<uuid>`, the access
 *                     string of lib/redis/acl.ts `renderTenantAcl` (what test/redis proves on a real
 *                     redis-server), the password as its only credential (secret in state).
 *   <name>-membership aws.elasticache.UserGroupAssociation with the regional user group (whose own
 *                     `userIds` the regional stack ignores, components/aws/redis-cache.ts).
 *
 * Offboarding (docs/tenant-stacks.md): the association and the user go, so the tenant can no longer
 * authenticate; the secret is scheduled for deletion with its recovery window; the tenant's keys stay
 * until `tenancy tenant purge`. The secret is protected; `npm run tenant -- destroy` lifts that, after
 * the tenant was offboarded, with one `up` of the program declaring `releaseSecret`, then destroys.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { renderTenantAcl, type TenantAcl } from "../../lib/redis/acl";
import { Credential, type CredentialArgs } from "./credential";
import { redisUserArgs } from "./redis-cache";

export interface TenantRedisUserArgs {
  /** The tenant's registry id (components/db Tenant.tenantId): the user's id, name and key patterns derive from it. Caution: a change replaces the user. */
  tenantId: pulumi.Input<string>;
  /** Plain slug: names the secret. Caution: a change replaces the secret (protected: refused). */
  slug: string;
  /** Secrets Manager name prefix, e.g. `alphapulse/eu-prod/redis/tenants` (the secret is `<prefix>/<slug>`). */
  secretNamePrefix: string;
  /** The region's KMS key (ARN) encrypting the secret. */
  kmsKeyArn: pulumi.Input<string>;
  /** The regional RBAC user group (RedisCache.userGroupId). */
  userGroupId: pulumi.Input<string>;
  /**
   * Declare the secret unprotected, so that a destroy may schedule its deletion (30-day recovery
   * window). Set only by `npm run tenant -- destroy`, after the tenant was offboarded
   * (lib/tenant-stacks/automation.ts); every other run keeps it protected.
   * @default false
   */
  releaseSecret?: boolean;
}

export class TenantRedisUser extends pulumi.ComponentResource {
  /** `tenant_<uuid>`: the user name applications AUTH as. */
  readonly userName: pulumi.Output<string>;
  readonly userId: pulumi.Output<string>;
  readonly secretArn: pulumi.Output<string>;

  constructor(name: string, args: TenantRedisUserArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("alphapulse:aws:TenantRedisUser", name, {}, opts);
    const parent = { parent: this };
    // A bad tenant id fails the apply (renderTenantAcl checks it) before the user is created.
    const acl = pulumi.output(args.tenantId).apply((id) => renderTenantAcl(id));

    const credential = new Credential(
      name,
      { ...tenantRedisCredentialArgs(args, acl.userName), onRemoval: args.releaseSecret ? "release" : "protect" },
      parent,
    );
    // The provider's schema keeps `passwords` secret in state (and the value arrives secret).
    const user = new aws.elasticache.User(`${name}-user`, tenantRedisUserArgs(pulumiAcl(acl), credential.password), parent);
    new aws.elasticache.UserGroupAssociation(`${name}-membership`, { userGroupId: args.userGroupId, userId: user.userId }, parent);

    this.userName = acl.userName;
    this.userId = user.userId;
    this.secretArn = credential.secretArn;
    this.registerOutputs({ userName: this.userName, userId: this.userId, secretArn: this.secretArn });
  }
}

function pulumiAcl(acl: pulumi.Output<TenantAcl>) {
  return { elasticacheUserId: acl.elasticacheUserId, userName: acl.userName, accessString: acl.accessString };
}

/** The secret `<prefix>/<slug>` under the region's key, holding `{ username: tenant_<uuid>, password }`. */
export function tenantRedisCredentialArgs(
  args: Pick<TenantRedisUserArgs, "slug" | "secretNamePrefix" | "kmsKeyArn">,
  userName: pulumi.Input<string>,
): CredentialArgs {
  return {
    username: userName,
    secretName: tenantRedisSecretName(args.secretNamePrefix, args.slug),
    kmsKeyId: args.kmsKeyArn,
    description: `Redis user of tenant ${args.slug}`,
  };
}

/** `alphapulse/eu-prod/redis/tenants` + `acme-capital` → `alphapulse/eu-prod/redis/tenants/acme-capital`. */
export function tenantRedisSecretName(prefix: string, slug: string): string {
  return `${prefix.replace(/\/+$/, "")}/${slug}`;
}

/** The user's inputs: id, name and access string from lib/redis/acl.ts `renderTenantAcl`, the password its only credential. */
export function tenantRedisUserArgs(
  acl: { [K in "elasticacheUserId" | "userName" | "accessString"]: pulumi.Input<TenantAcl[K]> },
  password: pulumi.Input<string>,
) {
  return redisUserArgs(acl.elasticacheUserId, acl.userName, acl.accessString, password);
}
