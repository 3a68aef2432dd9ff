/**
 * A private directory (0700) inside a region's data directory must not make the data directory
 * itself private: PostgreSQL runs as `postgres` there when we are root, and initdb failed with
 * "could not access directory … Permission denied" when the Redis password's directory was
 * created first, 0700 with all its parents (a clean clone under a 0700 directory, as CI makes).
 */
import { mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { ensurePrivateDirectory } from "../../lib/local/processes";

const root = mkdtempSync(path.join(os.tmpdir(), "private-directory-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

it("creates the leaf 0700 and its missing parents traversable", () => {
  const mode = (p: string) => statSync(p).mode & 0o777;
  const dataDir = path.join(root, "hash", "local-eu");
  const redisDir = ensurePrivateDirectory(path.join(dataDir, "redis"));
  expect(mode(redisDir)).toBe(0o700);
  for (const parent of [dataDir, path.dirname(dataDir)]) expect(mode(parent) & 0o055).not.toBe(0); // others may enter
  // Negative control: what the code did before gives the parents 0700 as well.
  const before = path.join(root, "before", "local-eu");
  mkdirSync(path.join(before, "redis"), { recursive: true, mode: 0o700 });
  expect(mode(before)).toBe(0o700);
});
