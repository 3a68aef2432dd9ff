/**
 * PgBouncer's auth file (userlist.txt) with SCRAM-SHA-256 verifiers: no password, plain or MD5, is
 * ever written to disk.
 *
 * Why an auth file and not auth_query: auth_query needs a lookup role and a SECURITY DEFINER function
 * over pg_authid, which only a superuser can create (managed PostgreSQL does not let anyone read
 * pg_authid), and the lookup role's own password must then sit in the auth file in a form PgBouncer
 * can log in with (plain text, or MD5). With an auth file there is no lookup function for app_user to
 * call and nothing to lock down; the cost is that a password change means re-rendering the file and
 * `RELOAD` (SIGHUP).
 *
 * The same verifier goes to both ends. PgBouncer checks the client's proof against it and then logs
 * in to PostgreSQL by SCRAM pass-through, which works only when PostgreSQL holds the *identical*
 * verifier (same salt and iterations, not merely the same password). So the verifier is computed
 * once (`scramSha256Verifier`, deterministic for a given salt) and set on the role as its password
 * (`ALTER ROLE ... PASSWORD 'SCRAM-SHA-256$...'`: PostgreSQL stores a pre-hashed verifier as given;
 * lib/schema/migrate.ts takes it through `passwords`), or read back from pg_authid (`tenancy pgbouncer render`).
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import { z } from "zod";

/** Role names PgBouncer may see: the same allow-list as SQL identifiers we create (lib/db/sql.ts), plus upper case. */
export const PGBOUNCER_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
export const PgbouncerName = z
  .string()
  .regex(PGBOUNCER_NAME_PATTERN, { message: "must be 1-63 letters, digits or _ (not starting with a digit)" });

/** `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, base64 parts (RFC 5803, PostgreSQL's pg_authid format). */
export const SCRAM_VERIFIER_PATTERN = /^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2}):([A-Za-z0-9+/]+={0,2})$/;
export const ScramVerifier = z.string().regex(SCRAM_VERIFIER_PATTERN, {
  message: "must be a SCRAM-SHA-256 verifier (SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>)",
});

/** PostgreSQL's default (scram_iterations in 16+, fixed in 15). */
export const DEFAULT_SCRAM_ITERATIONS = 4096;

/**
 * Passwords are printable ASCII: SASLprep (RFC 4013) leaves those unchanged, so this verifier equals
 * what PostgreSQL computes for the same password and salt. Anything else is refused rather than
 * normalised differently from the server.
 */
export const ScramPassword = z
  .string()
  .min(12, { message: "must be at least 12 characters" })
  .max(200, { message: "must be at most 200 characters" })
  .regex(/^[\x21-\x7e]+$/, { message: "must be printable ASCII without spaces" });

export interface ScramOptions {
  /** Random bytes; PostgreSQL uses 16. Same salt → same verifier. */
  salt: Buffer;
  iterations?: number;
}

/** A fresh 16-byte salt (the only impure part; everything else here is a pure function). */
export function newScramSalt(): Buffer {
  return randomBytes(16);
}

const hmac = (key: Buffer, text: string) => createHmac("sha256", key).update(text).digest();

/** The SCRAM-SHA-256 verifier of `password`, exactly as PostgreSQL stores it in pg_authid.rolpassword. */
export function scramSha256Verifier(password: string, options: ScramOptions): string {
  ScramPassword.parse(password);
  const iterations = options.iterations ?? DEFAULT_SCRAM_ITERATIONS;
  if (!Number.isInteger(iterations) || iterations < 4096) throw new Error(`SCRAM iterations must be an integer ≥ 4096, got ${iterations}`);
  if (options.salt.length < 16) throw new Error(`SCRAM salt must be at least 16 bytes, got ${options.salt.length}`);
  const salted = pbkdf2Sync(password, options.salt, iterations, 32, "sha256");
  const storedKey = createHash("sha256").update(hmac(salted, "Client Key")).digest();
  const serverKey = hmac(salted, "Server Key");
  return `SCRAM-SHA-256$${iterations}:${options.salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}

export interface ParsedScramVerifier {
  iterations: number;
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

export function parseScramVerifier(verifier: string): ParsedScramVerifier {
  const m = SCRAM_VERIFIER_PATTERN.exec(verifier);
  if (!m) throw new Error("not a SCRAM-SHA-256 verifier");
  return {
    iterations: Number(m[1]),
    salt: Buffer.from(m[2], "base64"),
    storedKey: Buffer.from(m[3], "base64"),
    serverKey: Buffer.from(m[4], "base64"),
  };
}

/** True when `verifier` was made from `password` (recomputes with the verifier's own salt and iterations). */
export function verifierMatches(password: string, verifier: string): boolean {
  const { iterations, salt } = parseScramVerifier(verifier);
  return scramSha256Verifier(password, { salt, iterations }) === verifier;
}

export const AuthUser = z
  .object({
    name: PgbouncerName,
    scramVerifier: ScramVerifier,
  })
  .strict();
export type AuthUser = z.infer<typeof AuthUser>;

export const AuthUsers = z
  .array(AuthUser)
  .min(1, { message: "must name at least one user" })
  .superRefine((users, ctx) => {
    users.forEach((u, i) => {
      if (users.findIndex((v) => v.name === u.name) !== i)
        ctx.addIssue({ code: "custom", path: [i, "name"], message: `duplicate user "${u.name}"` });
    });
  });

/**
 * The auth file: one `"name" "verifier"` line per user, in the order given. Names and verifiers
 * are allow-listed (no quotes, no line breaks), so no line can smuggle in another entry.
 */
export function renderAuthFile(users: readonly AuthUser[]): string {
  const parsed = AuthUsers.parse(users);
  return parsed.map((u) => `"${u.name}" "${u.scramVerifier}"`).join("\n") + "\n";
}

/** The user names of an auth file, in order (`renderAuthFile` output). Pure. */
export function authFileUsers(text: string): string[] {
  return text.split("\n").flatMap((line) => /^"([^"]+)"\s/.exec(line.trim())?.[1] ?? []);
}

/** A role as pg_authid has it: can it log in, and its stored password (a SCRAM verifier, or null). */
export interface LoginRoleState {
  canLogin: boolean;
  password: string | null;
}

export interface AuthEntriesPlan {
  users: AuthUser[];
  /** Names not in the previous file (the platform's roles on a first render). */
  added: string[];
  /** Names of the previous file left out, each with the reason. */
  removed: { name: string; reason: string }[];
}

/**
 * The entries of a re-rendered auth file (docs/data-safety.md). The `platform` roles always (the
 * ones the stack admits); every other entry of the `previous` file — a dedicated tenant's login role
 * an operator admitted — is kept while its role can still log in, with the verifier the server holds
 * now, and left out when the role is gone, NOLOGIN (an offboarded or suspended tenant) or has no
 * SCRAM password. Nothing else ever appears. Every change is named in `added` / `removed`, so a
 * re-render never changes who may log in silently. Pure.
 */
export function reconcileAuthEntries(
  previous: readonly string[],
  platform: readonly string[],
  roles: ReadonlyMap<string, LoginRoleState>,
): AuthEntriesPlan {
  const users: AuthUser[] = [];
  const removed: { name: string; reason: string }[] = [];
  const names = [...platform, ...previous.filter((name) => !platform.includes(name))];
  for (const name of names) {
    const role = roles.get(name);
    const reason = !role
      ? "the role no longer exists"
      : !role.canLogin
        ? "the role is NOLOGIN (an offboarded or suspended tenant, or switched off)"
        : !role.password || !SCRAM_VERIFIER_PATTERN.test(role.password)
          ? "the role has no SCRAM-SHA-256 password"
          : undefined;
    if (reason === undefined) users.push({ name, scramVerifier: role!.password! });
    else if (previous.includes(name)) removed.push({ name, reason });
  }
  return { users, added: users.map((u) => u.name).filter((name) => !previous.includes(name)), removed };
}
