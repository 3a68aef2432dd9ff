/**
 * The SCRAM verifiers PgBouncer's auth file carries (lib/pgbouncer/auth.ts), read from the server:
 * on an AWS cluster through the bootstrap's `alphapulse_bootstrap.pgbouncer_verifiers()` (SECURITY
 * DEFINER over pg_authid, executable by the executor only: lib/platform/database-bootstrap.ts); on
 * a server without it (a local cluster) straight from pg_authid, which needs a superuser. Run in the
 * `postgres` database (the function lives there; pg_authid is cluster-wide).
 */
import { createHash } from "node:crypto";
import type { Queryable } from "../db/client";
import { RLS_SUBJECT_ROLES } from "../schema/roles";
import { renderAuthFile, SCRAM_VERIFIER_PATTERN, type AuthUser } from "./auth";

/** The RLS-subject login roles' verifiers, by name; throws when none has a SCRAM password yet. */
export async function readPgbouncerVerifiers(client: Queryable): Promise<AuthUser[]> {
  const { rows: fn } = await client.query(`SELECT to_regprocedure('alphapulse_bootstrap.pgbouncer_verifiers()') IS NOT NULL AS present`);
  const { rows } = fn[0].present
    ? await client.query(`SELECT name, scram_verifier FROM alphapulse_bootstrap.pgbouncer_verifiers() ORDER BY name`)
    : await client.query(
        `SELECT rolname AS name, rolpassword AS scram_verifier FROM pg_catalog.pg_authid WHERE rolname = ANY($1) AND rolcanlogin ORDER BY rolname`,
        [[...RLS_SUBJECT_ROLES]],
      );
  const users = (rows as { name: string; scram_verifier: string | null }[])
    .filter((r) => r.scram_verifier !== null && SCRAM_VERIFIER_PATTERN.test(r.scram_verifier))
    .map((r) => ({ name: r.name, scramVerifier: r.scram_verifier as string }));
  if (!users.length)
    throw new Error(`no login role of ${RLS_SUBJECT_ROLES.join(", ")} has a SCRAM password yet: migrate the database first`);
  return users;
}

/** The auth file and its revision (sha256, hex): what the secret holds, and what redeploys the tasks when it changes. */
export function pgbouncerAuthFile(users: readonly AuthUser[]): { authFile: string; revision: string } {
  const authFile = renderAuthFile(users);
  return { authFile, revision: createHash("sha256").update(authFile).digest("hex") };
}
