/**
 * Test databases on a real PostgreSQL. The cluster is started once per test run by
 * test/support/global-setup.ts (or taken from DATABASE_URL); each test file creates its own
 * database(s) on it, so files run in parallel without sharing tables.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { withConnection } from "../../lib/db/client";
import { inject } from "vitest";

/** Superuser URL of the test cluster (its `postgres` database). */
export function adminUrl(): string {
  return inject("postgresAdminUrl");
}

/** The same server with another database name (and optionally another user). */
export function withDatabase(url: string, database: string, user?: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  if (user !== undefined) {
    u.username = encodeURIComponent(user);
    u.password = "";
  }
  return u.toString();
}

export interface TestDatabase {
  name: string;
  /** Superuser URL to the database. */
  url: string;
  /** URL for another login role on the same database (trust auth on the test cluster). */
  urlAs(user: string): string;
  drop(): Promise<void>;
}

/** Creates an empty database with a unique name; `drop()` removes it (terminating leftover sessions). */
export async function createTestDatabase(prefix = "t"): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(5).toString("hex")}`;
  await withConnection(adminUrl(), (admin) => admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`));
  const url = withDatabase(adminUrl(), name);
  return {
    name,
    url,
    urlAs: (user) => withDatabase(adminUrl(), name, user),
    async drop() {
      await withConnection(adminUrl(), (c) => c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`));
    },
  };
}
