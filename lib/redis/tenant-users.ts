/**
 * The lifecycle of a tenant's Redis ACL user on a Redis server (admin connection): grant (create or
 * update, with a generated password returned exactly once), revoke (no new logins, open connections
 * cut, user deleted), and the quota freeze the audit applies to a tenant over its limit.
 *
 * Only the password hash reaches the server (`#<sha256>`); nothing here stores the password. The
 * caller hands it to whoever needs it once (the CLI prints it; a stack passes it as a secret).
 * On ElastiCache the same permissions are applied by the AWS component from `renderTenantAcl(...)`
 * `.accessString`; this module is the Redis-server path.
 */
import { createHash, randomBytes } from "node:crypto";
import { passwordHashRule, renderPoolUserRules, renderTenantAcl, setUserArgs, type TenantAclOptions } from "./acl";
import { type RedisCaller, replyErrorMessage } from "./client";
import { checkTenantId, quotaKeys, tenantKey, tenantUserName } from "./keys";
import { auditTenantCache, ensureQuotaLibrary, purgeTenantCache, setTenantLimits, type AuditResult, type CacheLimits } from "./quota";

/** 32 random bytes, base64url: 43 characters, valid for Redis and ElastiCache (no , " / @). */
export function generatePassword(): string {
  return randomBytes(32).toString("base64url");
}

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

async function userExists(admin: RedisCaller, user: string): Promise<boolean> {
  return (await admin.call("ACL", "GETUSER", user)) !== null;
}

/** ACL SAVE when the server keeps users in an ACL file (local servers do); a no-op otherwise. */
export async function persistAcl(admin: RedisCaller): Promise<boolean> {
  const [, aclfile] = (await admin.call("CONFIG", "GET", "aclfile")) as string[];
  if (!aclfile) return false;
  await admin.call("ACL", "SAVE");
  return true;
}

/**
 * The server's `default` user is on: tenant fences mean nothing there. `RESET` cannot be denied by
 * ACL and re-authenticates the connection as `default`; `AUTH default …` and `HELLO 3 AUTH default …`
 * switch to it too. With Redis' out-of-the-box default (on, nopass, every command and key) a tenant
 * user reads every tenant's keys with one command. Nothing is changed on such a server: the
 * operator decides (other clients may be using `default`).
 */
export class RedisDefaultUserOnError extends Error {
  constructor(readonly flags: readonly string[]) {
    super(
      `this Redis server's "default" user is on (${flags.join(" ")}): a tenant user escapes its fence with RESET, AUTH default or HELLO … AUTH default. ` +
        `Refusing to grant tenant access here. Turn it off first (as an admin: ACL SETUSER default reset off resetchannels -@all; then ACL SAVE or CONFIG REWRITE), ` +
        `or on ElastiCache put a disabled "default" user in the user group (docs/redis.md).`,
    );
    this.name = "RedisDefaultUserOnError";
  }
}

/** The flags of `ACL GETUSER default` (["off", …]), or undefined when the server has no such user (it then falls back to nothing). Pure. */
export function defaultUserFlags(reply: unknown): string[] | undefined {
  if (!Array.isArray(reply)) return undefined;
  const i = reply.findIndex((x) => String(x) === "flags");
  const flags = i >= 0 ? reply[i + 1] : undefined;
  return Array.isArray(flags) ? flags.map(String) : [];
}

/** True when the `default` user can be switched to: it exists and is not off. Pure. */
export function defaultUserIsOn(flags: readonly string[] | undefined): boolean {
  return flags !== undefined && !flags.includes("off");
}

/** Reads the server's `default` user: `{ on, flags }`. */
export async function readDefaultUser(admin: RedisCaller): Promise<{ on: boolean; flags: string[] }> {
  const flags = defaultUserFlags(await admin.call("ACL", "GETUSER", "default"));
  return { on: defaultUserIsOn(flags), flags: flags ?? [] };
}

/** Throws RedisDefaultUserOnError when the server's `default` user is on (before anything is written). */
export async function assertDefaultUserOff(admin: RedisCaller): Promise<void> {
  const user = await readDefaultUser(admin);
  if (user.on) throw new RedisDefaultUserOnError(user.flags);
}

export interface GrantOptions {
  limits: CacheLimits;
  /** Use this password instead of generating one (e.g. a stack's RandomPassword). */
  password?: string;
  /** Replace the password of an existing user (its open connections stay open: revoke to cut them). */
  rotatePassword?: boolean;
  acl?: TenantAclOptions;
}

export interface GrantResult {
  tenantId: string;
  user: string;
  created: boolean;
  /** Present only when a password was set by this call (new user or rotation): show it once. */
  password?: string;
  limits: CacheLimits;
  accessString: string;
}

/** Creates or updates the tenant's ACL user and its quota limits; loads the quota functions if needed. */
export async function grantTenantCache(admin: RedisCaller, tenantId: string, options: GrantOptions): Promise<GrantResult> {
  const id = checkTenantId(tenantId);
  if (options.password !== undefined && options.password.length < 16) throw new RangeError("password must be at least 16 characters");
  // A fence is worth nothing on a server whose default user is on: refuse before writing anything.
  await assertDefaultUserOff(admin);
  // A tenant the audit froze stays frozen across a re-grant; the next audit thaws it when under.
  const frozen = (await admin.call("HGET", quotaKeys(id).limit, "frozen")) === "1";
  const acl = renderTenantAcl(id, { ...options.acl, frozen });
  await ensureQuotaLibrary(admin);
  await setTenantLimits(admin, id, options.limits);
  const created = !(await userExists(admin, acl.userName));
  const password = created || options.rotatePassword ? (options.password ?? generatePassword()) : undefined;
  await admin.call("ACL", "SETUSER", ...setUserArgs(acl, password === undefined ? undefined : sha256Hex(password)));
  await persistAcl(admin);
  return { tenantId: id, user: acl.userName, created, password, limits: options.limits, accessString: acl.accessString };
}

export interface RevokeResult {
  tenantId: string;
  user: string;
  existed: boolean;
  connectionsClosed: number;
  /** With `purge`: data keys deleted. */
  keysDeleted?: number;
}

/**
 * Revokes the tenant's access: `off` first (no new logins), CLIENT KILL USER (cuts open
 * connections: `off` alone leaves them working), then ACL DELUSER (which also closes any connection
 * that raced in). With `purge`, deletes the tenant's keys and bookkeeping too.
 */
export async function revokeTenantCache(admin: RedisCaller, tenantId: string, options: { purge?: boolean } = {}): Promise<RevokeResult> {
  const id = checkTenantId(tenantId);
  const user = tenantUserName(id);
  const existed = await userExists(admin, user);
  let connectionsClosed = 0;
  if (existed) {
    await admin.call("ACL", "SETUSER", user, "off");
    connectionsClosed = (await admin.call("CLIENT", "KILL", "USER", user)) as number;
    await admin.call("ACL", "DELUSER", user);
    await persistAcl(admin);
  }
  const keysDeleted = options.purge ? await purgeTenantCache(admin, id) : undefined;
  return { tenantId: id, user, existed, connectionsClosed, keysDeleted };
}

/** True when the tenant's user exists and may not write (frozen), by asking the server (ACL DRYRUN). */
export async function isTenantFrozen(admin: RedisCaller, tenantId: string): Promise<boolean> {
  const id = checkTenantId(tenantId);
  try {
    const reply = await admin.call("ACL", "DRYRUN", tenantUserName(id), "SET", tenantKey(id, "dryrun"), "x");
    return reply !== "OK";
  } catch (err) {
    if (replyErrorMessage(err)?.includes("User") && replyErrorMessage(err)?.includes("not found")) return false;
    throw err;
  }
}

/** Applies the frozen (or normal) permissions to an existing user; passwords and connections are kept. */
export async function setTenantFrozen(admin: RedisCaller, tenantId: string, frozen: boolean, acl: TenantAclOptions = {}): Promise<void> {
  const id = checkTenantId(tenantId);
  const rendered = renderTenantAcl(id, { ...acl, frozen });
  if (!(await userExists(admin, rendered.userName))) throw new Error(`no Redis user ${rendered.userName}: grant the tenant first`);
  // The flag first when freezing (helper writes get a clear QUOTA error), the ACL first when thawing.
  if (frozen) await admin.call("HSET", quotaKeys(id).limit, "frozen", 1);
  await admin.call("ACL", "SETUSER", ...setUserArgs(rendered));
  if (!frozen) await admin.call("HDEL", quotaKeys(id).limit, "frozen");
  await persistAcl(admin);
}

export interface EnforceResult {
  audit: AuditResult;
  frozen: boolean;
  /** "froze" / "thawed" when this run changed the user's permissions. */
  action?: "froze" | "thawed";
}

/**
 * The audit plus its consequence: a tenant over its limit (writes that bypassed `tenancy_set`) is
 * frozen until a later audit finds it back under; a frozen tenant under its limit is thawed.
 */
export async function enforceTenantQuota(admin: RedisCaller, tenantId: string, acl: TenantAclOptions = {}): Promise<EnforceResult> {
  const audit = await auditTenantCache(admin, tenantId);
  const user = tenantUserName(audit.tenantId);
  if (!(await userExists(admin, user))) return { audit, frozen: false };
  const wasFrozen = await isTenantFrozen(admin, audit.tenantId);
  if (audit.overLimit && !wasFrozen) {
    await setTenantFrozen(admin, audit.tenantId, true, acl);
    return { audit, frozen: true, action: "froze" };
  }
  if (!audit.overLimit && wasFrozen) {
    await setTenantFrozen(admin, audit.tenantId, false, acl);
    return { audit, frozen: false, action: "thawed" };
  }
  return { audit, frozen: wasFrozen };
}

/** Creates or resets the permissionless pool user for "auth-per-request" connections. */
export async function grantPoolUser(admin: RedisCaller, user: string, password: string): Promise<void> {
  if (!/^[a-z][a-z0-9_-]{0,63}$/.test(user) || user.startsWith("tenant_"))
    throw new RangeError(`invalid pool user name ${JSON.stringify(user)}`);
  await assertDefaultUserOff(admin);
  await admin.call("ACL", "SETUSER", user, "reset", ...renderPoolUserRules(), passwordHashRule(sha256Hex(password)));
  await persistAcl(admin);
}
