/**
 * What a local stack declares: the region's database with the design applied and its sample tenants,
 * on the loopback PostgreSQL cluster that scripts/local-services.ts started from the same stack
 * config. PgBouncer and Redis are processes, not resources: their addresses (and the Redis admin
 * password, a secret output) are part of the stack's outputs, which are exactly the platform contract
 * (lib/platform/contract.ts `localPlatformOutputs`) that tenant stacks, the rollout and
 * `npm run local` read.
 */
import * as pulumi from "@pulumi/pulumi";
import { localPlatformOutputs } from "../../lib/platform/contract";
import { TENANT_TABLES } from "../../lib/schema/catalogue";
import { RESIDENCY_REGIONS } from "../../lib/tenant/model";
import { extendCatalogue, type LocalStackConfig } from "../../lib/stack-config/local";
import { REDIS_ADMIN_USER } from "../../lib/local/redis-server";
import { regionRedisAdminPassword } from "../../lib/local/region-services";
import { REPO_ROOT } from "../../lib/pulumi/env";
import { localExecutorConnection } from "../../lib/local/executor-server";
import type { DatabaseConnection } from "../db/provider-runtime";
import { RegionalDatabase } from "../db/regional-database";

/** Loopback only: the local services never listen elsewhere. */
export const LOCAL_HOST = "127.0.0.1";
/** The superuser of a local cluster (trust authentication on loopback). */
export const LOCAL_ADMIN_USER = "postgres";

/**
 * The name of a local stack's RegionalDatabase. It does not carry the region: a region edited in the
 * stack file must reach the resources that recorded the old one (their `check` refuses a residency
 * change in the preview, docs/data-safety.md). Named by region, the edit renamed every resource and
 * the engine planned an empty region next to the old one instead.
 */
export const LOCAL_REGION_COMPONENT = "local";

/**
 * The names stacks created before LOCAL_REGION_COMPONENT used (`local-<region>`): aliases, so such a
 * stack's first `up` with this code changes nothing (children follow their parent's alias).
 */
export const LEGACY_REGION_COMPONENTS = RESIDENCY_REGIONS.map((r) => `local-${r}`);

/**
 * How the stack's providers reach its PostgreSQL: directly as the cluster's admin, or — with
 * `transport: executor` — through the region's local database executor, the AWS regions' path
 * (lib/local/executor-server.ts). Everything else in the stack is the same for both.
 */
export function localDatabaseConnection(stack: string, config: LocalStackConfig): DatabaseConnection {
  if (config.transport === "executor") {
    return localExecutorConnection({ stack, executorPort: config.executor!.port, postgresPort: config.postgres.port });
  }
  return { host: LOCAL_HOST, port: config.postgres.port, user: LOCAL_ADMIN_USER };
}

export function localPlatform(config: LocalStackConfig) {
  const stack = pulumi.getStack();
  // The one the region's Redis uses (generated once, by the services or here, whichever runs first).
  const redisAdminPassword = regionRedisAdminPassword(REPO_ROOT, stack, config);
  const catalogue = extendCatalogue(TENANT_TABLES, config.catalogueExtension);
  const connection = localDatabaseConnection(stack, config);
  const region = new RegionalDatabase(
    LOCAL_REGION_COMPONENT,
    {
      connection,
      database: config.postgres.database,
      region: config.region,
      catalogue,
      tenants: config.tenants,
      contextKeys: config.contextKeys,
      // A local region is thrown away with `npm run local -- reset` (servers stopped, data removed);
      // `pulumi destroy` of it still refuses while tenants are registered (docs/data-safety.md).
      protect: false,
    },
    { aliases: LEGACY_REGION_COMPONENTS.map((name) => ({ name })) },
  );
  const url = (user: pulumi.Input<string>, password: pulumi.Input<string>) =>
    pulumi.interpolate`postgres://${user}:${password}@${LOCAL_HOST}:${config.postgres.port}/${region.database.name}`;
  return localPlatformOutputs(stack, {
    region: config.region,
    database: { name: region.database.name, oid: region.database.oid, connection, tenantIds: region.tenantIds },
    schema: { fingerprint: region.schema.appliedFingerprint, migrations: region.schema.versions, roles: region.schema.roles },
    pgbouncer: { host: LOCAL_HOST, port: config.pgbouncer.port },
    redis: { host: LOCAL_HOST, port: config.redis.port, tls: false, adminUser: REDIS_ADMIN_USER, adminPassword: redisAdminPassword },
    /** The tenant-context key services sign proofs with (ADR-005); `npm run local` writes it to a 0600 file. */
    contextKey: region.contextKey,
    /** What services connect as. */
    appUrl: url(
      region.schema.roles.apply((r) => r.app),
      region.schema.passwords.apply((p) => p.app),
    ),
    /** Migrations and operations. */
    migratorUrl: url(
      region.schema.roles.apply((r) => r.migrator),
      region.schema.passwords.apply((p) => p.migrator),
    ),
  });
}
