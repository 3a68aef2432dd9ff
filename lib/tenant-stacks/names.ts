/**
 * How tenant stacks and platform stacks are named. Pure: the CLI, the rollout and the tests agree on
 * one spelling.
 *
 *   project  alphapulse-tenant            one project for every tenant stack (inline program)
 *   stack    tenant-<slug>                one stack per tenant, on the platform stacks' backend
 *   platform any name                     the regional platform stack (project alphapulse-platform);
 *                                         lib/stack-config/platform-stacks.ts finds a region's default by config
 */
import { CONFIG_NAMESPACE } from "../stack-config/common";
import { SLUG_PATTERN } from "../tenant/model";

/** The tenant program's project name (and config namespace). */
export const TENANT_PROJECT = "alphapulse-tenant";

/** The platform program's project name (Pulumi.yaml `name`). */
export const PLATFORM_PROJECT = CONFIG_NAMESPACE;

/** The organization segment of a stack reference on a file backend (always this literal). */
export const FILE_BACKEND_ORGANIZATION = "organization";

/** Environment whose platform stacks `--region` maps to unless `--env` says otherwise. */
export const DEFAULT_ENVIRONMENT = "local";

const TENANT_STACK_PREFIX = "tenant-";

/** Environment names (local, staging, prod): `alphapulse-platform:environment` of a platform stack, `local` for local stacks. */
export const ENVIRONMENT_PATTERN = /^[a-z][a-z0-9]{1,19}$/;

/** `acme-capital` → `tenant-acme-capital`. */
export function tenantStackName(slug: string): string {
  return `${TENANT_STACK_PREFIX}${slug}`;
}

/** `tenant-acme-capital` → `acme-capital`; undefined for a stack that is not a tenant stack. */
export function slugOfTenantStack(stackName: string): string | undefined {
  // A fully qualified name from `pulumi stack ls` (org/project/stack) counts by its last segment.
  const name = stackName.split("/").pop() ?? "";
  if (!name.startsWith(TENANT_STACK_PREFIX)) return undefined;
  const slug = name.slice(TENANT_STACK_PREFIX.length);
  return SLUG_PATTERN.test(slug) && !slug.includes("--") ? slug : undefined;
}

/** The fully qualified name a StackReference uses on the file backend: `organization/<project>/<stack>`. */
export function stackReferenceName(stack: string, project: string = PLATFORM_PROJECT): string {
  return stack.includes("/") ? stack : `${FILE_BACKEND_ORGANIZATION}/${project}/${stack}`;
}
