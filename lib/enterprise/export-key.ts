/**
 * The key that authenticates tenant exports (docs/enterprise.md "Authenticated exports"). It is not a
 * second secret: the database derives it from the region's tenant-context key (ADR-005,
 * tenancy_private.context_keys), so one secret per region is installed, rotated and retired
 * (`tenancy context-key install|retire`), and a retired context key retires its export key too.
 *
 *   export key = HMAC-SHA256(context secret, "alphapulse-export-v2")
 *   file MAC   = HMAC-SHA256(export key, every line of the file before the MAC line, each with its "\n")
 *
 * The derivation runs in SQL over the stored HMAC pads — sha256(outer_pad || sha256(inner_pad || label))
 * is HMAC-SHA256 by definition — as a plain query under the owner role: no SECURITY DEFINER function,
 * nothing granted. The tenant roles (app_user, readonly, the dedicated tenants' login roles) have no
 * USAGE on tenancy_private, so they can neither read the pads nor derive the key
 * (test/enterprise/export-auth.test.ts); the operator sessions that export and import (the migrator,
 * a superuser) are members of the owner.
 */
import { createHmac } from "node:crypto";
import { withTransaction, type Queryable } from "../db/client";
import { ident } from "../db/sql";
import { ROLES } from "../schema/roles";
import type { ResidencyRegion } from "../tenant/model";

/** The HMAC message that turns a context key into its export key (and names the format version it signs). */
export const EXPORT_KEY_LABEL = "alphapulse-export-v2";

export interface ExportKey {
  kid: string;
  region: ResidencyRegion;
  state: "active" | "retired";
  /** HMAC-SHA256(context secret, EXPORT_KEY_LABEL): 32 bytes. Never printed, never written. */
  key: Buffer;
}

/** An export was asked to be signed but this database has no active context key. */
export class ExportKeyMissingError extends Error {
  constructor(readonly region: string | null) {
    const r = region ?? "<region>";
    super(
      `no active tenant-context key is installed in this database${region ? ` (region ${region})` : ""}, and exports are signed with a key derived from it: ` +
        `install one with \`tenancy context-key install <kid> --region ${r} --secret-env <VAR>\` (the region's secret, ADR-005), ` +
        `or pass --allow-unsigned to write an export that imports only with --allow-unsigned`,
    );
    this.name = "ExportKeyMissingError";
  }
}

/**
 * The export keys of every installed context key, derived in SQL (pure: the statement). Newest first,
 * so the first active one is the key new exports are signed with.
 */
export function exportKeysQuery(): string {
  return `SELECT kid, region, state,
                 sha256(outer_pad || sha256(inner_pad || convert_to($1, 'UTF8'))) AS key
            FROM tenancy_private.context_keys
           ORDER BY created_at DESC, kid`;
}

/**
 * Reads the export keys (as the owner, in a transaction of its own; the caller must be a member of
 * the owner role). None before migration 0012 or before a key is installed.
 */
export async function readExportKeys(client: Queryable): Promise<ExportKey[]> {
  return withTransaction(client, async (tx) => {
    await tx.query(`SET LOCAL ROLE ${ident(ROLES.owner)}`);
    const { rows: present } = await tx.query(`SELECT to_regclass('tenancy_private.context_keys') IS NOT NULL AS present`);
    if (!present[0]?.present) return [];
    const { rows } = await tx.query(exportKeysQuery(), [EXPORT_KEY_LABEL]);
    return rows as ExportKey[];
  });
}

/** The key a new export of `region` is signed with: the newest active one of that region. */
export function signingKey(keys: readonly ExportKey[], region: string): ExportKey | undefined {
  return keys.find((k) => k.state === "active" && k.region === region);
}

/** The export key of a context secret (hex), computed as the database does: for tests and the docs' example. */
export function exportKeyFromSecret(secretHex: string): Buffer {
  return createHmac("sha256", Buffer.from(secretHex, "hex")).update(EXPORT_KEY_LABEL).digest();
}
