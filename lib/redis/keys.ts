/**
 * Every Redis key and channel name a tenant touches, built from a validated tenant id and validated
 * parts. There is no way to reach outside `tenant:{<id>}:` from caller input: separators, glob
 * characters, braces, whitespace, control characters and empty parts are refused, not escaped.
 * Callers that must embed arbitrary text (a symbol, a user-supplied name) encode it first with
 * `encodeKeyPart`, whose output only uses allowed characters.
 *
 * Layout (one hash tag per tenant, so in cluster mode all of a tenant's keys share a slot and the
 * quota functions can touch data and bookkeeping keys in one atomic call):
 *
 *   tenant:{<uuid>}:<part>[:<part>...]        data keys and pub/sub channels
 *   quota:{<uuid>}:used|sizes|expiry          quota bookkeeping (written by the quota functions)
 *   quota:{<uuid>}:limit                      the tenant's limits (read-only for the tenant)
 *   __keyspace@<db>__:tenant:{<uuid>}:...     keyspace notifications for the tenant's keys
 */
import { TENANT_ID_PATTERN } from "../tenant/model";

export const KEY_SEPARATOR = ":";
export const TENANT_KEY_PREFIX = "tenant";
export const QUOTA_KEY_PREFIX = "quota";

/** Characters a key part may contain: RFC 3986 unreserved plus `%` (what `encodeKeyPart` emits). */
export const KEY_PART_PATTERN = /^[A-Za-z0-9._~%-]+$/;
export const MAX_KEY_PART_LENGTH = 256;
export const MAX_KEY_PARTS = 16;

export class InvalidTenantIdError extends Error {
  constructor(readonly tenantId: unknown) {
    super(`invalid tenant id ${JSON.stringify(tenantId)}: expected a uuid like 0b5e8f3c-1d2a-4c8e-9f1a-2b3c4d5e6f70`);
    this.name = "InvalidTenantIdError";
  }
}

export class InvalidKeyPartError extends Error {
  constructor(
    readonly index: number,
    readonly part: unknown,
    readonly reason: string,
  ) {
    super(`invalid cache key part [${index}] ${JSON.stringify(part)}: ${reason}`);
    this.name = "InvalidKeyPartError";
  }
}

/** The canonical (lower-case) tenant id, or InvalidTenantIdError. */
export function checkTenantId(tenantId: unknown): string {
  if (typeof tenantId !== "string") throw new InvalidTenantIdError(tenantId);
  const id = tenantId.toLowerCase();
  if (!TENANT_ID_PATTERN.test(id)) throw new InvalidTenantIdError(tenantId);
  return id;
}

/** Why `part` is refused, or undefined when it is acceptable. Specific reasons make bugs obvious. */
export function keyPartProblem(part: unknown): string | undefined {
  if (typeof part !== "string") return "must be a string";
  if (part.length === 0) return "must not be empty";
  if (part.length > MAX_KEY_PART_LENGTH) return `must be at most ${MAX_KEY_PART_LENGTH} characters`;
  if (part.includes(KEY_SEPARATOR)) return `must not contain the separator "${KEY_SEPARATOR}"`;
  if (/[*?[\]\\]/.test(part)) return "must not contain glob characters * ? [ ] \\";
  if (/[{}]/.test(part)) return "must not contain braces (cluster hash tags)";
  if (/[\s\u0000-\u001f\u007f]/.test(part)) return "must not contain whitespace or control characters";
  if (!KEY_PART_PATTERN.test(part)) return `must match ${KEY_PART_PATTERN} (encode free text with encodeKeyPart)`;
  return undefined;
}

function checkParts(parts: readonly unknown[]): string[] {
  if (parts.length === 0) throw new InvalidKeyPartError(0, undefined, "a key needs at least one part after the tenant prefix");
  if (parts.length > MAX_KEY_PARTS) throw new InvalidKeyPartError(MAX_KEY_PARTS, parts[MAX_KEY_PARTS], `at most ${MAX_KEY_PARTS} parts`);
  return parts.map((part, i) => {
    const problem = keyPartProblem(part);
    if (problem) throw new InvalidKeyPartError(i, part, problem);
    return part as string;
  });
}

/** `tenant:{<id>}:` — every data key and channel of the tenant starts with exactly this. */
export function tenantPrefix(tenantId: string): string {
  return `${TENANT_KEY_PREFIX}:{${checkTenantId(tenantId)}}${KEY_SEPARATOR}`;
}

/** A data key: `tenantKey(id, "quotes", "AAPL")` → `tenant:{<id>}:quotes:AAPL`. */
export function tenantKey(tenantId: string, ...parts: string[]): string {
  return tenantPrefix(tenantId) + checkParts(parts).join(KEY_SEPARATOR);
}

/** A pub/sub channel in the tenant's namespace (same rules and shape as keys). */
export function tenantChannel(tenantId: string, ...parts: string[]): string {
  return tenantKey(tenantId, ...parts);
}

/**
 * Makes arbitrary text safe as one key part: percent-encodes everything outside
 * `[A-Za-z0-9._~-]` (UTF-8). Injective, so distinct inputs never share a key.
 */
export function encodeKeyPart(text: string): string {
  if (text.length === 0) return "%";
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The inverse of `encodeKeyPart`. */
export function decodeKeyPart(part: string): string {
  return part === "%" ? "" : decodeURIComponent(part);
}

/** The tenant and parts of a data key, or undefined when `key` is not a well-formed tenant key. */
export function parseTenantKey(key: string): { tenantId: string; parts: string[] } | undefined {
  const m = /^tenant:\{([0-9a-f-]{36})\}:(.+)$/s.exec(key);
  if (!m || !TENANT_ID_PATTERN.test(m[1])) return undefined;
  const parts = m[2].split(KEY_SEPARATOR);
  if (parts.some((p) => keyPartProblem(p) !== undefined)) return undefined;
  return { tenantId: m[1], parts };
}

export interface QuotaKeys {
  /** String: bytes accounted to the tenant (sum of `sizes`). */
  used: string;
  /** Hash: data key → accounted bytes. Its length is the tenant's key count. */
  sizes: string;
  /** Sorted set: data key → expiry time (ms since epoch) for keys written with a TTL. */
  expiry: string;
  /** Hash: `bytes`, `keys` — the limits, written by the operator, read-only for the tenant. */
  limit: string;
}

/** The quota bookkeeping keys of a tenant; same hash tag as its data keys. */
export function quotaKeys(tenantId: string): QuotaKeys {
  const base = `${QUOTA_KEY_PREFIX}:{${checkTenantId(tenantId)}}${KEY_SEPARATOR}`;
  return { used: `${base}used`, sizes: `${base}sizes`, expiry: `${base}expiry`, limit: `${base}limit` };
}

/** The keyspace-notification channel prefix for the tenant's keys in logical database `db`. */
export function keyspaceChannelPrefix(tenantId: string, db = 0): string {
  if (!Number.isInteger(db) || db < 0 || db > 15) throw new RangeError(`db must be an integer 0-15, got ${db}`);
  return `__keyspace@${db}__:${tenantPrefix(tenantId)}`;
}

/** The ACL user that owns a tenant's keys: `tenant_<uuid>`. */
export function tenantUserName(tenantId: string): string {
  return `tenant_${checkTenantId(tenantId)}`;
}

/** The tenant id in a `tenant_<uuid>` user name, or undefined. */
export function tenantIdFromUserName(user: string): string | undefined {
  const m = /^tenant_([0-9a-f-]{36})$/.exec(user);
  return m && TENANT_ID_PATTERN.test(m[1]) ? m[1] : undefined;
}
