/**
 * The database's side of the context keys (ADR-005): installed, rotated and retired by an operator
 * session (the migrator or a superuser; the table belongs to the owner, in a schema no tenant role
 * can use). Only the HMAC pads are stored, never logged. Rotation without downtime:
 *   1. installContextKey(new)        both keys active: proofs of either verify
 *   2. services sign with the new key (their config)
 *   3. retireContextKey(old)         proofs of the old key are refused from the next transaction on
 */
import { withTransaction, type Queryable } from "../db/client";
import { ROLES } from "../schema/roles";
import { ident } from "../db/sql";
import { ContextKey, hmacPads } from "./proof";

export class ContextKeyError extends Error {
  constructor(
    /** What is wrong, without the field. */
    readonly reason: string,
    readonly field: string,
  ) {
    super(`context key: ${field}: ${reason}`);
    this.name = "ContextKeyError";
  }
}

/** Installs (or re-activates with the same secret) a key; refuses a key of another region than the database's. */
export async function installContextKey(client: Queryable, input: unknown): Promise<{ kid: string; installed: boolean }> {
  const parsed = ContextKey.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ContextKeyError(issue.message, issue.path.map(String).join(".") || "key");
  }
  const key = parsed.data;
  const pads = hmacPads(key.secret);
  return withTransaction(client, async (tx) => {
    await tx.query(`SET LOCAL ROLE ${ident(ROLES.owner)}`);
    const { rows: db } = await tx.query(`SELECT region FROM tenancy.database_settings`);
    const region = db[0]?.region as string | null | undefined;
    if (region && region !== key.region)
      throw new ContextKeyError(`this database serves region "${region}"; refusing a key of region "${key.region}"`, "region");
    const { rows } = await tx.query(
      `INSERT INTO tenancy_private.context_keys (kid, region, inner_pad, outer_pad) VALUES ($1, $2, $3, $4)
       ON CONFLICT (kid) DO UPDATE SET state = 'active', retired_at = NULL
        WHERE context_keys.inner_pad = EXCLUDED.inner_pad AND context_keys.region = EXCLUDED.region
       RETURNING (xmax = 0) AS installed`,
      [key.kid, key.region, pads.inner, pads.outer],
    );
    if (!rows.length) throw new ContextKeyError(`key "${key.kid}" exists with another secret or region; use a new kid`, "kid");
    return { kid: key.kid, installed: rows[0].installed as boolean };
  });
}

/**
 * Retires a key: proofs signed with it are refused from the next transaction on. Refused (nothing
 * changed) when it is the region's last active key while the database has active tenants: no service
 * could sign a proof any more. Install the next key first (rotation keeps two valid at once).
 */
export async function retireContextKey(client: Queryable, kid: string): Promise<boolean> {
  return withTransaction(client, async (tx) => {
    await tx.query(`SET LOCAL ROLE ${ident(ROLES.owner)}`);
    // Serialises concurrent retirements, so two of them cannot each leave the other as the last key.
    await tx.query(`LOCK TABLE tenancy_private.context_keys IN SHARE ROW EXCLUSIVE MODE`);
    const { rows } = await tx.query(
      `SELECT (SELECT count(*)::int FROM tenancy_private.context_keys o
                WHERE o.state = 'active' AND o.region = k.region AND o.kid <> k.kid) AS others,
              (SELECT count(*)::int FROM tenancy.tenants WHERE status = 'active') AS tenants
         FROM tenancy_private.context_keys k WHERE k.kid = $1 AND k.state = 'active'`,
      [kid],
    );
    if (!rows.length) return false;
    if (rows[0].others === 0 && rows[0].tenants > 0)
      throw new ContextKeyError(
        `"${kid}" is the last active key of its region and the database has ${rows[0].tenants} active tenant(s): ` +
          `no service could enter a tenant. Install the next key first, then retire this one`,
        "kid",
      );
    await tx.query(`UPDATE tenancy_private.context_keys SET state = 'retired', retired_at = now() WHERE kid = $1`, [kid]);
    return true;
  });
}

/** Key ids and states (never the pads). */
export async function listContextKeys(client: Queryable): Promise<{ kid: string; region: string; state: string }[]> {
  const { rows } = await client.query(`SELECT kid, region, state FROM tenancy_private.context_keys ORDER BY created_at, kid`);
  return rows as { kid: string; region: string; state: string }[];
}
