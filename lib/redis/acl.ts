/**
 * The one renderer of a tenant's Redis permissions. The same rule list becomes
 *  - the arguments of `ACL SETUSER` on a Redis server (local stacks, tests), and
 *  - the access string of an ElastiCache RBAC user (the AWS component),
 * so what the tests prove on a real redis-server is what ships to ElastiCache.
 *
 * What the rules say, and why (each point is exercised by test/redis/isolation.test.ts):
 *  - Keys: only `tenant:{<id>}:*` (the hash tag's closing brace terminates the tenant segment, so no
 *    other tenant id can match), the quota bookkeeping keys by exact name, and the quota limit
 *    read-only (`%R~`), so a tenant cannot raise its own limit.
 *  - Channels: `resetchannels` first (never inherit `allchannels`), then the tenant's channels and
 *    the keyspace-notification channel of its own keys. `__keyevent@…` channels carry the key names
 *    of every tenant and are never granted. PSUBSCRIBE patterns must equal a granted pattern literally.
 *  - Commands: an allow-list of categories, then subtractions. Key patterns do not restrict commands
 *    that take no key, so every keyless command that can observe or change other tenants is removed
 *    by name: KEYS/SCAN/RANDOMKEY/DBSIZE/INFO (enumerate or count everyone's keys), FLUSHALL/FLUSHDB,
 *    SELECT/MOVE/COPY (leave the accounted database), FUNCTION (LOAD/DELETE/FLUSH/RESTORE are in
 *    @write: one library shared by all), PUBSUB (lists and counts everyone's channels), and
 *    CLIENT TRACKING (BCAST mode sends invalidation messages naming other tenants' keys — measured
 *    on Redis 7.0.15). Scripts: EVAL/SCRIPT are not granted (script cache shared by all, unbounded in
 *    7.0); tenants run reviewed server-side code through FCALL only, checked against the same
 *    patterns for every key the code touches, declared or not.
 *  - `RESET` cannot be denied by ACL (it runs for any client and re-authenticates as `default`):
 *    the server's `default` user must be `off` — lib/local/redis-server.ts and the AWS user group do so.
 */
import { checkTenantId, keyspaceChannelPrefix, quotaKeys, tenantPrefix, tenantUserName } from "./keys";

/** Categories granted before the subtractions: data commands, pub/sub, MULTI/EXEC, connection basics. */
export const GRANTED_CATEGORIES = ["@read", "@write", "@pubsub", "@transaction", "@connection"] as const;

/** Commands granted by name: calling the reviewed server-side functions (quota writes), which read the server clock. */
export const GRANTED_COMMANDS = ["fcall", "fcall_ro", "time"] as const;

/** Categories removed after the grants. */
export const DENIED_CATEGORIES = ["@admin", "@dangerous"] as const;

/**
 * Commands removed by name, with the reason. Some are also in @dangerous; they are listed anyway so
 * the rule string says what it protects against, independent of Redis' category assignments.
 */
export const DENIED_COMMANDS: ReadonlyArray<readonly [command: string, reason: string]> = [
  ["keys", "lists every tenant's keys"],
  ["scan", "lists every tenant's keys (MATCH is a filter, not a permission)"],
  ["randomkey", "returns any tenant's key name"],
  ["dbsize", "counts every tenant's keys"],
  ["info", "counts keys per database, shows clients and memory"],
  ["flushall", "deletes every tenant's keys"],
  ["flushdb", "deletes every tenant's keys"],
  ["select", "switches to a database outside quota accounting and keyspace channels"],
  ["move", "moves a key to another database"],
  ["copy", "COPY ... DB n writes into another database"],
  ["function", "FUNCTION LOAD/DELETE/FLUSH/RESTORE change the library shared by every tenant"],
  ["pubsub", "PUBSUB CHANNELS/NUMSUB/NUMPAT/SHARDCHANNELS list or count other tenants' channels"],
  ["client|tracking", "BCAST tracking delivers invalidations that name other tenants' keys"],
];

/**
 * Granted to a frozen (over-quota) tenant after `-@write`: commands that only shrink, so it can
 * delete keys and the quota bookkeeping (`tenancy_del`) still works.
 */
export const FROZEN_WRITE_COMMANDS = ["del", "unlink", "hdel", "zrem", "decrby"] as const;

/** Cluster topology commands a cluster-mode client needs (`cluster: true`). */
export const CLUSTER_TOPOLOGY_COMMANDS = [
  "cluster|slots",
  "cluster|shards",
  "cluster|nodes",
  "cluster|info",
  "cluster|myid",
  "cluster|keyslot",
] as const;

export interface TenantAclOptions {
  /** Logical database whose keyspace notifications the tenant may subscribe to. @default 0 */
  db?: number;
  /**
   * Over quota: writes are removed (`-@write`) except DEL/UNLINK, so the tenant can only shrink.
   * Set by the quota audit, lifted when usage is back under the limit. @default false
   */
  frozen?: boolean;
  /** Add the cluster topology commands a cluster-mode client needs. @default false */
  cluster?: boolean;
}

export interface TenantAcl {
  /** `tenant_<uuid>`: the Redis ACL user name (and the ElastiCache UserName). */
  userName: string;
  /** `tenant-<uuid>`: ElastiCache UserId (letters, digits and hyphens only). */
  elasticacheUserId: string;
  /** The rules in order, starting with `on`; no password, no `reset`. */
  rules: string[];
  /** `rules` joined by spaces: the ElastiCache RBAC access string. */
  accessString: string;
}

/** Key patterns: data keys, quota bookkeeping (exact names), the limit read-only. */
export function tenantKeyRules(tenantId: string): string[] {
  const q = quotaKeys(tenantId);
  return [`~${tenantPrefix(tenantId)}*`, `~${q.used}`, `~${q.sizes}`, `~${q.expiry}`, `%R~${q.limit}`];
}

/** Channel patterns, starting with `resetchannels`. */
export function tenantChannelRules(tenantId: string, db = 0): string[] {
  return ["resetchannels", `&${tenantPrefix(tenantId)}*`, `&${keyspaceChannelPrefix(tenantId, db)}*`];
}

/** Command rules, starting with `-@all`. */
export function tenantCommandRules(options: Pick<TenantAclOptions, "frozen" | "cluster"> = {}): string[] {
  const rules = [
    "-@all",
    ...GRANTED_CATEGORIES.map((c) => `+${c}`),
    ...GRANTED_COMMANDS.map((c) => `+${c}`),
    ...(options.cluster ? CLUSTER_TOPOLOGY_COMMANDS.map((c) => `+${c}`) : []),
    ...DENIED_CATEGORIES.map((c) => `-${c}`),
    ...DENIED_COMMANDS.map(([c]) => `-${c}`),
  ];
  if (options.frozen) rules.push("-@write", ...FROZEN_WRITE_COMMANDS.map((c) => `+${c}`));
  return rules;
}

/** The complete, ordered permissions of a tenant's user. Pure: same input, same rules. */
export function renderTenantAcl(tenantId: string, options: TenantAclOptions = {}): TenantAcl {
  const id = checkTenantId(tenantId);
  const rules = ["on", ...tenantKeyRules(id), ...tenantChannelRules(id, options.db ?? 0), ...tenantCommandRules(options)];
  return { userName: tenantUserName(id), elasticacheUserId: `tenant-${id}`, rules, accessString: rules.join(" ") };
}

/** A password for `ACL SETUSER`: `#<sha256 hex>` so the plain text never reaches the server. */
export function passwordHashRule(passwordSha256Hex: string): string {
  if (!/^[0-9a-f]{64}$/.test(passwordSha256Hex)) throw new Error("password hash must be 64 lower-case hex characters (sha256)");
  return `#${passwordSha256Hex}`;
}

/**
 * `ACL SETUSER` arguments (after the command words) for a Redis server.
 *  - With `passwordSha256Hex`: `reset` first — creates the user, or replaces every rule and password.
 *  - Without: updates the permissions and keeps the user's passwords (`resetkeys`, `clearselectors`;
 *    channels and commands are reset by the rules themselves). A user that does not exist yet is
 *    created without a password, so it cannot log in.
 */
export function setUserArgs(acl: TenantAcl, passwordSha256Hex?: string): string[] {
  return passwordSha256Hex === undefined
    ? [acl.userName, "resetkeys", "clearselectors", ...acl.rules]
    : [acl.userName, "reset", ...acl.rules, passwordHashRule(passwordSha256Hex)];
}

/**
 * The shared pool user of "auth-per-request" connections (lib/redis/tenant-cache.ts): it can log in
 * and nothing else, so a connection whose tenant AUTH failed, or that reconnected, can do nothing.
 */
export function renderPoolUserRules(): string[] {
  return ["on", "resetkeys", "resetchannels", "-@all"];
}
