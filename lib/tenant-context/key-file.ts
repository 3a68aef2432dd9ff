/**
 * The file a local region hands its services: the context key they sign proofs with (ADR-005), as
 * JSON `{ kid, region, secret }`, mode 0600 in the region's data directory. Written by `npm run local`
 * from the stack's secret output after each `up`; `npm run local -- env <stack>` prints its path as
 * ALPHAPULSE_CONTEXT_KEY_FILE. A service loads it with `readContextKeyFile` and passes it to
 * `new TenantPool({ contextKey })`. (On AWS the key is a Secrets Manager secret instead.)
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { ContextKeyError } from "./keys";
import { ContextKey } from "./proof";

/** The environment variable `npm run local -- env` sets to the key file's path. */
export const CONTEXT_KEY_FILE_ENV = "ALPHAPULSE_CONTEXT_KEY_FILE";

/**
 * Writes `key` to `file` (created 0600, replaced atomically). Its directory gets the default mode:
 * it is a region's data directory, which the servers running as `postgres` must traverse.
 */
export function writeContextKeyFile(file: string, key: ContextKey): void {
  const parsed = ContextKey.parse(key);
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify({ kid: parsed.kid, region: parsed.region, secret: parsed.secret }) + "\n", { mode: 0o600 });
  chmodSync(tmp, 0o600); // whatever the umask
  renameSync(tmp, file);
}

/** Reads a key file; refuses one that group or others may read, or that is not a key. */
export function readContextKeyFile(file: string): ContextKey {
  const mode = statSync(file).mode & 0o777;
  if (mode & 0o077)
    throw new ContextKeyError(`${file} is readable by others (mode ${mode.toString(8)}): chmod 600 it and rotate the key`, "file");
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, "utf8"));
  } catch {
    throw new ContextKeyError(`${file} is not JSON`, "file");
  }
  const parsed = ContextKey.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ContextKeyError(`${file}: ${issue.message}`, issue.path.map(String).join(".") || "file");
  }
  return parsed.data;
}
