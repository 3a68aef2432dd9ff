/**
 * `alphapulse:cache:TenantCacheUser` — a tenant's Redis ACL user and cache quota, as a dynamic
 * resource over lib/redis/tenant-users.ts (the same functions as `tenancy cache grant|revoke`).
 *
 * - Create grants the user (`tenant_<uuid>`, permissions from lib/redis/acl.ts) with the tier's quota
 *   (lib/tenant/tiers.ts) and returns its generated password as a secret output, once; it is never an input.
 * - A tier change is an update: new quota limits, same user, same password.
 * - Delete revokes the user (switched off, its open connections cut, deleted) and keeps the tenant's
 *   keys: they are tenant data, removed by `tenancy tenant purge --redis-url` after the retention
 *   window (lib/tenant/stack-guards.ts revokeCacheForStack, docs/data-safety.md). A later create
 *   issues a new user over the same keys.
 * - The admin credential comes from the platform stack's contract (lib/platform/contract.ts: the
 *   local Redis admin password is a secret output there). The tenant program passes it on as a
 *   secret, so it is stored encrypted in the tenant stack's state, like every secret; the tenant
 *   user's own password is generated here and never an input. Rotating the admin password is an
 *   update (same user, same password).
 *
 * The provider code captures nothing at module level (see components/db/provider-runtime.ts).
 */
import * as pulumi from "@pulumi/pulumi";
import type { Tier } from "../../lib/tenant/model";
import { dataLayer, sameJson } from "../db/provider-runtime";

/** How the provider reaches Redis as an administrator. */
export interface RedisAdminConnection {
  host: string;
  port: number;
  /** The ACL user with admin rights (`admin` on the local servers). */
  user: string;
  /** That user's password: pass it as a secret (`pulumi.secret`). */
  password: string;
}

export interface TenantCacheUserArgs {
  /** The region's Redis. Changing host or port replaces the user (a new server). */
  redis: pulumi.Input<RedisAdminConnection>;
  /** The tenant (components/db Tenant `tenantId`). Replaces when changed. */
  tenantId: pulumi.Input<string>;
  /** Sets the quota (lib/tenant/tiers.ts `cacheMaxBytes`/`cacheMaxKeys`); an update. */
  tier: pulumi.Input<Tier>;
}

/** What the provider receives: the args with every input resolved. */
type CacheUserInputs = pulumi.Unwrap<TenantCacheUserArgs>;

interface CacheUserOutputs extends CacheUserInputs {
  userName: string;
  /** The user's password (secret), set on create and kept by updates. */
  password: string;
  maxBytes: number;
  maxKeys: number;
}

/** Runs `fn` with an admin connection to the region's Redis; always disconnects. */
async function withRedisAdmin<T>(
  redis: RedisAdminConnection,
  fn: (admin: { call(...args: (string | number)[]): Promise<unknown> }) => Promise<T>,
): Promise<T> {
  // State written before the contract held a `passwordFile` instead (read when refreshing it).
  const legacyFile = (redis as { passwordFile?: string }).passwordFile;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const password = redis.password ?? String(require("node:fs").readFileSync(legacyFile, "utf8")).split("\n")[0].trim();
  const { connectRedis, redisUrl } = dataLayer();
  const client = connectRedis(redisUrl(redis.host, Number(redis.port), redis.user, password));
  try {
    return await fn(client);
  } finally {
    client.disconnect();
  }
}

async function grant(inputs: CacheUserInputs, password: string | undefined): Promise<CacheUserOutputs> {
  const { grantTenantCache, cacheLimitsForTier } = dataLayer();
  const limits = cacheLimitsForTier(inputs.tier);
  const result = await withRedisAdmin(inputs.redis, (admin) => grantTenantCache(admin as never, inputs.tenantId, { limits, password }));
  const kept = result.password ?? password;
  if (kept === undefined)
    throw new Error(
      `Redis user ${result.user} already exists and its password is unknown to this stack: revoke it (tenancy cache revoke) and run again`,
    );
  return { ...inputs, userName: result.user, password: kept, maxBytes: limits.maxBytes, maxKeys: limits.maxKeys };
}

const tenantCacheUserProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: CacheUserInputs): Promise<pulumi.dynamic.CreateResult> {
    const outs = await grant(inputs, undefined);
    return { id: outs.userName, outs };
  },

  diff(_id: string, olds: CacheUserOutputs, news: CacheUserInputs): Promise<pulumi.dynamic.DiffResult> {
    const replaces: string[] = [];
    if (olds.redis?.host !== news.redis.host || Number(olds.redis?.port) !== Number(news.redis.port)) replaces.push("redis");
    if (olds.tenantId !== news.tenantId) replaces.push("tenantId");
    const changes = replaces.length > 0 || olds.tier !== news.tier || !sameJson(olds.redis, news.redis);
    return Promise.resolve({ changes, replaces, deleteBeforeReplace: true });
  },

  async update(_id: string, olds: CacheUserOutputs, news: CacheUserInputs): Promise<pulumi.dynamic.UpdateResult> {
    return { outs: await grant(news, olds.password) };
  },

  async read(id: string, props: CacheUserOutputs): Promise<pulumi.dynamic.ReadResult> {
    const exists = await withRedisAdmin(props.redis, async (admin) => (await admin.call("ACL", "GETUSER", props.userName)) !== null);
    return exists ? { id, props } : { id: "" };
  },

  async delete(_id: string, props: CacheUserOutputs): Promise<void> {
    const { revokeCacheForStack } = dataLayer();
    await withRedisAdmin(props.redis, (admin) => revokeCacheForStack(admin as never, props.tenantId));
  },
};

/** A tenant's Redis ACL user with its tier's cache quota. */
export class TenantCacheUser extends pulumi.dynamic.Resource {
  declare readonly userName: pulumi.Output<string>;
  declare readonly password: pulumi.Output<string>;
  declare readonly maxBytes: pulumi.Output<number>;
  declare readonly maxKeys: pulumi.Output<number>;

  constructor(name: string, args: TenantCacheUserArgs, opts: pulumi.CustomResourceOptions = {}) {
    super(
      tenantCacheUserProvider,
      name,
      { ...args, userName: undefined, password: undefined, maxBytes: undefined, maxKeys: undefined },
      pulumi.mergeOptions(opts, { additionalSecretOutputs: ["password", "redis"] }),
      "cache",
      "TenantCacheUser",
    );
  }
}
