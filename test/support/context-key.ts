/**
 * Context keys for tests of strict databases (ADR-005; strict is the default for a new database):
 * installs a fresh key of the database's region through the same code as `tenancy context-key
 * install`, and returns it for `new TenantPool({ contextKey })` or `mintTenantProof`.
 */
import { randomBytes } from "node:crypto";
import type { Queryable } from "../../lib/db/client";
import { installContextKey } from "../../lib/tenant-context/keys";
import { generateContextSecret, type ContextKey } from "../../lib/tenant-context/proof";
import type { ResidencyRegion } from "../../lib/tenant/model";

/** Installs a new active key (kid `test-<random>` unless given) on the database `client` is connected to (as an operator). */
export async function installTestContextKey(
  client: Queryable,
  options: { region?: ResidencyRegion; kid?: string } = {},
): Promise<ContextKey> {
  const key: ContextKey = {
    kid: options.kid ?? `test-${randomBytes(4).toString("hex")}`,
    region: options.region ?? "eu",
    secret: generateContextSecret(),
  };
  await installContextKey(client, key);
  return key;
}
