/**
 * Tenant-context proofs (ADR-005): what a service sends so the database can verify which tenant a
 * transaction is for. Pure; the same format any client (Node, Python) mints — docs/tenant-context-contract.md.
 *
 *   v1.<kid>.<region>.<tenant uuid>.<expires: unix seconds, 10 digits>.<nonce: 24 hex>.<mac: 64 hex>
 *   mac = hex(HMAC-SHA256(secret, everything before ".<mac>"))
 *
 * The database (tenancy.enter_verified_tenant, migration 0012) accepts it when the kid names an
 * active key of its region, the MAC matches, and it expires within the next 15 minutes.
 */
import { createHmac, createSecretKey, randomBytes, randomFillSync, type KeyObject } from "node:crypto";
import { z } from "zod";
import { ResidencyRegion } from "../tenant/model";

/** A key id: what the database's tenancy_private.context_keys.kid accepts. */
export const KEY_ID_PATTERN = /^[a-z0-9_-]{1,32}$/;

export const ContextKey = z.object({
  /** Key id, e.g. "eu-2026-12". */
  kid: z.string().regex(KEY_ID_PATTERN, { message: "must be 1-32 characters of a-z, 0-9, _ and -" }),
  region: ResidencyRegion,
  /** The secret, hex: at least 32 bytes, at most 64 (an HMAC-SHA256 block). */
  secret: z.string().regex(/^(?:[0-9a-f]{2}){32,64}$/, { message: "must be 64-128 lower-case hex digits (32-64 bytes)" }),
});
export type ContextKey = z.output<typeof ContextKey>;

/** How long a proof is valid when the caller does not say. Short: a proof is a bearer credential. */
export const DEFAULT_PROOF_TTL_SECONDS = 60;
/** The database refuses proofs that claim to be valid for longer than this. */
export const MAX_PROOF_TTL_SECONDS = 900;

export interface MintOptions {
  ttlSeconds?: number;
  /** Milliseconds since the epoch. @default Date.now() */
  now?: number;
}

/** Mints a proof for `tenantId` (canonical, lower-case uuid) with `key`. For one proof; a service mints through createProofMinter. */
export function mintTenantProof(key: ContextKey, tenantId: string, options: MintOptions = {}): string {
  return signProof(Buffer.from(key.secret, "hex"), key, tenantId, options, randomBytes(NONCE_BYTES).toString("hex"));
}

const NONCE_BYTES = 12;
/** Nonces drawn per refill of a minter's pool. */
const NONCES_PER_REFILL = 256;

/**
 * The minter a service keeps for its key: the same proofs as mintTenantProof, minted once per tenant
 * transaction, without its per-proof setup — the secret is decoded into a KeyObject once, and the
 * nonces come from a pool refilled from the CSPRNG 256 at a time (one randomFillSync call instead
 * of one per proof): about 4 µs per proof instead of 9–14 (docs/benchmarks.md, "Strict (verified)
 * tenant context: the fixed per-transaction cost").
 */
export function createProofMinter(key: ContextKey): (tenantId: string, options?: MintOptions) => string {
  const secret = createSecretKey(Buffer.from(key.secret, "hex"));
  const pool = Buffer.alloc(NONCE_BYTES * NONCES_PER_REFILL);
  let hex = "";
  let next = NONCES_PER_REFILL;
  return (tenantId, options = {}) => {
    if (next === NONCES_PER_REFILL) {
      hex = randomFillSync(pool).toString("hex");
      next = 0;
    }
    const nonce = hex.slice(next * NONCE_BYTES * 2, (next + 1) * NONCE_BYTES * 2);
    next++;
    return signProof(secret, key, tenantId, options, nonce);
  };
}

function signProof(secret: KeyObject | Buffer, key: ContextKey, tenantId: string, options: MintOptions, nonce: string): string {
  const ttl = options.ttlSeconds ?? DEFAULT_PROOF_TTL_SECONDS;
  const expires = Math.floor((options.now ?? Date.now()) / 1000) + ttl;
  const payload = `v1.${key.kid}.${key.region}.${tenantId}.${String(expires).padStart(10, "0")}.${nonce}`;
  return `${payload}.${createHmac("sha256", secret).update(payload).digest("hex")}`;
}

/** The HMAC pads the database stores instead of the secret (HMAC-SHA256: key zero-padded to 64 bytes, XOR 0x36 / 0x5c). */
export function hmacPads(secretHex: string): { inner: Buffer; outer: Buffer } {
  const key = Buffer.alloc(64);
  Buffer.from(secretHex, "hex").copy(key);
  return { inner: Buffer.from(key.map((b) => b ^ 0x36)), outer: Buffer.from(key.map((b) => b ^ 0x5c)) };
}

/** A new random secret (hex, 32 bytes) for a context key. */
export const generateContextSecret = () => randomBytes(32).toString("hex");
