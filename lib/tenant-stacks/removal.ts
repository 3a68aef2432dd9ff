/**
 * What destroying an offboarded tenant's stack removes, read from the stack's own state (the
 * deployment `pulumi stack export` prints) before the destroy: `npm run tenant -- destroy` prints it
 * as the plan of a dry run and records it (`removed`, in the `--json` result) after a real one.
 * Pure: the state goes in, one line per resource comes out (docs/data-safety.md).
 *
 * The effects are those of the resources' delete (docs/data-safety.md "Per resource"): nothing in
 * the database is deleted (the registry entry is released, rows, schema and keys stay until
 * `tenancy tenant purge`); on AWS the ElastiCache user and its membership are deleted, and the Redis
 * secret is scheduled for deletion with its recovery window (restorable until then).
 */

/** A resource of a deployment (the fields of `pulumi stack export` this reads). */
export interface StateResource {
  type: string;
  urn: string;
  id?: string;
  protect?: boolean;
  custom?: boolean;
  inputs?: Record<string, unknown>;
}

export interface Removal {
  type: string;
  /** The resource's name (the last URN segment). */
  name: string;
  /** The cloud or database id, when it has one. */
  id?: string;
  /** What the destroy does to it, for an operator. */
  effect: string;
  /** Protected in the state now (the destroy lifts it first: only the Redis secret, on AWS). */
  protected?: boolean;
}

const FIXED_EFFECTS: Record<string, string> = {
  "pulumi-nodejs:dynamic/db:Tenant": "registry entry released; rows kept until `tenancy tenant purge`",
  "pulumi-nodejs:dynamic/db:DedicatedPlacement": "nothing (deleted with the registry entry); the dedicated schema is kept until the purge",
  "pulumi-nodejs:dynamic/db:TenantLoginRole": "login role kept NOLOGIN until the purge",
  "pulumi-nodejs:dynamic/cache:TenantCacheUser": "Redis user revoked, its connections cut; keys kept until the purge",
  "aws:elasticache/user:User": "ElastiCache user deleted (the tenant can no longer authenticate); keys kept until the purge",
  "aws:elasticache/userGroupAssociation:UserGroupAssociation": "removed from the regional user group",
  "aws:secretsmanager/secretVersion:SecretVersion": "goes with its secret",
  "random:index/randomPassword:RandomPassword": "forgotten (it exists only in the state)",
  "aws:cloudwatch/metricAlarm:MetricAlarm": "alarm deleted",
  "aws:cloudwatch/logMetricFilter:LogMetricFilter": "metric filter deleted",
};

/** Resources that are not removed from anywhere: the stack, providers, references, components. */
function isBookkeeping(r: StateResource): boolean {
  return (
    r.type === "pulumi:pulumi:Stack" ||
    r.type === "pulumi:pulumi:StackReference" ||
    r.type.startsWith("pulumi:providers:") ||
    r.custom === false
  );
}

function effectOf(r: StateResource): string {
  if (r.type === "aws:secretsmanager/secret:Secret") {
    const days = r.inputs?.recoveryWindowInDays;
    return typeof days === "number" && days > 0
      ? `secret scheduled for deletion with a ${days}-day recovery window (\`aws secretsmanager restore-secret\` until then)`
      : "secret deleted at once (no recovery window)";
  }
  return FIXED_EFFECTS[r.type] ?? "deleted";
}

/** One Removal per resource the destroy removes, in the state's order (pure). */
export function removalPlan(resources: readonly StateResource[]): Removal[] {
  return resources
    .filter((r) => !isBookkeeping(r))
    .map((r) => ({
      type: r.type,
      name: r.urn.slice(r.urn.lastIndexOf("::") + 2),
      ...(r.id ? { id: r.id } : {}),
      effect: effectOf(r),
      ...(r.protect ? { protected: true } : {}),
    }));
}

/** Protected resources the destroy needs released first, by name; anything but the Redis secret is refused (pure). */
export function protectionToLift(plan: readonly Removal[]): { lift: Removal[]; refused: Removal[] } {
  const isTenantRedisSecret = (r: Removal) => r.type === "aws:secretsmanager/secret:Secret" && r.name.endsWith("-cache-secret");
  const guarded = plan.filter((r) => r.protected);
  return { lift: guarded.filter(isTenantRedisSecret), refused: guarded.filter((r) => !isTenantRedisSecret(r)) };
}

/** A removal as one line of the plan or report. */
export function describeRemoval(r: Removal): string {
  return `${r.name} (${r.type}${r.id ? ` ${r.id}` : ""}): ${r.effect}`;
}
