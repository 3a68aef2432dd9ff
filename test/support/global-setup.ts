/**
 * Starts one PostgreSQL cluster for the whole test run on a free loopback port (torn down after),
 * unless DATABASE_URL names an existing server to use instead.
 */
import type { TestProject } from "vitest/node";
import { startPostgres, THROWAWAY_SETTINGS, type PostgresServer } from "../../lib/local/postgres-server";

declare module "vitest" {
  export interface ProvidedContext {
    postgresAdminUrl: string;
  }
}

let server: PostgresServer | undefined;

export async function setup(project: TestProject): Promise<void> {
  if (process.env.DATABASE_URL) {
    project.provide("postgresAdminUrl", process.env.DATABASE_URL);
    return;
  }
  server = await startPostgres({ settings: THROWAWAY_SETTINGS });
  project.provide("postgresAdminUrl", server.adminUrl);
}

export async function teardown(): Promise<void> {
  await server?.stop({ removeData: true, mode: "immediate" });
}
