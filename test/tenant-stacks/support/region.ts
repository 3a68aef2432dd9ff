/**
 * A throwaway region for the real-engine tests of tenant stacks: a PostgreSQL cluster and a Redis
 * server on free loopback ports, a file backend in a temporary directory, and a platform stack in the
 * project `alphapulse-platform` that declares the region's database (components/db RegionalDatabase,
 * the same component the local stacks use) and exports the platform contract the way the local stacks
 * do (lib/platform/contract.ts `localPlatformOutputs`; docs/tenant-stacks.md).
 *
 * With `transport: "executor"` the platform stack reaches its database through a local database
 * executor (lib/local/executor-server.ts, the process `npm run local` starts for such a stack), and so
 * do the tenant stacks, which take the connection from the platform contract: the AWS regions' path.
 *
 * Everything is torn down by `dispose()`: tenant stacks left behind, the platform stack, the executor,
 * the servers, the directories.
 */
import * as pulumi from "@pulumi/pulumi";
import { LocalWorkspace, type PulumiFn } from "@pulumi/pulumi/automation";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { DatabaseConnection } from "../../../components/db/provider-runtime";
import { RegionalDatabase } from "../../../components/db/regional-database";
import { tenantProgram } from "../../../components/tenant/program";
import {
  localExecutorConnection,
  localExecutorFunctionName,
  startExecutorProcess,
  stopExecutorAt,
  EXECUTOR_LOG,
} from "../../../lib/local/executor-server";
import { startPostgres, THROWAWAY_SETTINGS, type PostgresServer } from "../../../lib/local/postgres-server";
import { freePort } from "../../../lib/local/processes";
import type { DatabaseTransport } from "../../../lib/stack-config/local";
import { localPlatformOutputs } from "../../../lib/platform/contract";
import { startRedis, type RedisServer } from "../../../lib/local/redis-server";
import { findPulumiToolchain, REPO_ROOT } from "../../../lib/pulumi/env";
import { AutomationContext } from "../../../lib/tenant-stacks/automation";
import { offboardBeforeDestroy } from "../../../lib/tenant-stacks/offboarding";
import { PLATFORM_PROJECT, TENANT_PROJECT } from "../../../lib/tenant-stacks/names";
import type { ResidencyRegion } from "../../../lib/tenant/model";
import { runScript, type ScriptRun } from "../../support/run-script";

export const toolchainLookup = findPulumiToolchain();

/**
 * `npm run tenant -- <args>` as a user runs it: scripts/tenant.ts in its own process, pointed at a
 * region's backend by `env` (a TestRegion's `env`, passed as ALPHAPULSE_TENANT_ENV_JSON).
 */
export function runTenantCli(args: string[], env: Record<string, string>): Promise<ScriptRun> {
  return runScript("scripts/tenant.ts", args, { ALPHAPULSE_TENANT_ENV_JSON: JSON.stringify(env) });
}
export const skipReason = toolchainLookup.ok ? "" : toolchainLookup.reason;

export interface TestRegion {
  region: ResidencyRegion;
  /** How the platform and tenant stacks reach the database. */
  transport: DatabaseTransport;
  /** The executor's log (one JSON line per invocation), with the executor transport. */
  executorLog?: string;
  /** Where the executor keeps offboarding exports, with the executor transport (the caller's export directory is not used). */
  executorExportDir?: string;
  platformStack: string;
  /** The platform stack's inline program (for lib/rollout/automation.ts inlinePlatformOps). */
  platformProgram: PulumiFn;
  database: string;
  postgres: PostgresServer;
  redis: RedisServer;
  /** Environment that points Pulumi at the regions' backend (for drivers and workers). */
  env: Record<string, string>;
  ctx: AutomationContext;
  /** Superuser URL of the region's database. */
  databaseUrl: string;
}

export interface TestRegions {
  regions: TestRegion[];
  env: Record<string, string>;
  ctx: AutomationContext;
  /** Destroys every tenant stack and platform stack, stops the servers, removes the directories. */
  dispose(): Promise<void>;
}

/**
 * A local platform stack's program in small: the region's database (the component the local stacks
 * use) and exactly the platform contract (lib/platform/contract.ts `localPlatformOutputs`, as
 * components/local/local-platform.ts exports it), so the tenant stacks read it with the same reader.
 */
export function testPlatformProgram(options: {
  region: ResidencyRegion;
  pgPort: number;
  database: string;
  redisPort: number;
  redisPassword: string;
  /** @default a direct connection to 127.0.0.1:pgPort as postgres */
  connection?: DatabaseConnection;
}): PulumiFn {
  return () => {
    const connection = options.connection ?? { host: "127.0.0.1", port: options.pgPort, user: "postgres" };
    const regional = new RegionalDatabase(`test-${options.region}`, { connection, database: options.database, region: options.region });
    const url = (role: "app" | "migrator") =>
      pulumi.interpolate`postgres://${regional.schema.roles.apply((r) => r[role])}:${regional.schema.passwords.apply((p) => p[role])}@127.0.0.1:${options.pgPort}/${regional.database.name}`;
    return Promise.resolve(
      localPlatformOutputs(pulumi.getStack(), {
        region: options.region,
        database: { name: regional.database.name, oid: regional.database.oid, connection, tenantIds: regional.tenantIds },
        schema: { fingerprint: regional.schema.appliedFingerprint, migrations: regional.schema.versions, roles: regional.schema.roles },
        // No PgBouncer in a test region: its address is PostgreSQL's (tenant stacks do not use it).
        pgbouncer: { host: "127.0.0.1", port: options.pgPort },
        redis: { host: "127.0.0.1", port: options.redisPort, tls: false, adminUser: "admin", adminPassword: options.redisPassword },
        appUrl: url("app"),
        migratorUrl: url("migrator"),
      }),
    );
  };
}

/** Throwaway regions sharing one file backend, each with its own PostgreSQL, Redis and platform stack (deployed). */
export async function openTestRegions(names: ResidencyRegion[], options: { transport?: DatabaseTransport } = {}): Promise<TestRegions> {
  const transport = options.transport ?? "direct";
  if (!toolchainLookup.ok) throw new Error(skipReason);
  const root = mkdtempSync(path.join(os.tmpdir(), "alphapulse-tenant-stacks-"));
  const env = {
    PULUMI_BACKEND_URL: `file://${path.join(root, "state")}`,
    PULUMI_HOME: path.join(root, "home"),
  };
  for (const dir of ["state", "home"]) mkdirSync(path.join(root, dir), { recursive: true });
  const ctx = await AutomationContext.create({
    repoRoot: REPO_ROOT,
    binDir: toolchainLookup.toolchain.binDir,
    program: (spec, options) => tenantProgram(spec, options),
    offboarder: offboardBeforeDestroy,
    env,
  });
  const regions: TestRegion[] = [];
  const dispose = async () => {
    try {
      // Tenant stacks a failed test left behind: destroy them so their Redis users and roles go too.
      const leftovers = await ctx.listTenantStacks().catch(() => []);
      for (const { stack } of leftovers) {
        await ctx.withWorkspace(TENANT_PROJECT, stack, async (opts) => {
          const s = await LocalWorkspace.selectStack(
            { projectName: TENANT_PROJECT, stackName: stack, program: () => Promise.resolve() },
            opts,
          );
          await s.destroy().catch(() => {});
          await s.workspace.removeStack(stack, { force: true }).catch(() => {});
        });
      }
      for (const r of regions) {
        await ctx
          .withWorkspace(PLATFORM_PROJECT, r.platformStack, async (opts) => {
            const stack = await LocalWorkspace.selectStack(
              { projectName: PLATFORM_PROJECT, stackName: r.platformStack, program: r.platformProgram },
              opts,
            );
            await stack.destroy();
            await stack.workspace.removeStack(r.platformStack);
          })
          .catch(() => {});
      }
    } finally {
      for (const r of regions) {
        if (r.executorLog) await stopExecutorAt(path.dirname(r.executorLog)).catch(() => {});
        await r.redis.stop({ removeDir: true }).catch(() => {});
        await r.postgres.stop({ removeData: true, mode: "immediate" }).catch(() => {});
      }
      rmSync(root, { recursive: true, force: true });
    }
  };
  try {
    for (const region of names) {
      const postgres = await startPostgres({ settings: THROWAWAY_SETTINGS });
      const redis = await startRedis();
      const database = `tenants_${randomBytes(3).toString("hex")}`;
      const platformStack = `test-${region}-${randomBytes(3).toString("hex")}`;
      let connection: DatabaseConnection | undefined;
      let executorLog: string | undefined;
      let executorExportDir: string | undefined;
      if (transport === "executor") {
        // What `npm run local` starts for a `transport: executor` stack (lib/local/region-services.ts).
        const executorDir = path.join(root, `executor-${region}`);
        const executorPort = await freePort();
        executorExportDir = path.join(executorDir, "exports");
        const started = await startExecutorProcess(REPO_ROOT, executorDir, {
          functionName: localExecutorFunctionName(platformStack),
          port: executorPort,
          postgresPort: postgres.port,
          exportDir: executorExportDir,
        });
        executorLog = path.join(started.dir, EXECUTOR_LOG);
        connection = localExecutorConnection({ stack: platformStack, executorPort, postgresPort: postgres.port });
      }
      const platformProgram = testPlatformProgram({
        region,
        pgPort: postgres.port,
        database,
        redisPort: redis.port,
        redisPassword: redis.adminPassword,
        connection,
      });
      const r: TestRegion = {
        region,
        transport,
        executorLog,
        executorExportDir,
        platformStack,
        platformProgram,
        database,
        postgres,
        redis,
        env,
        ctx,
        databaseUrl: postgres.urlFor(database),
      };
      regions.push(r);
      await ctx.withWorkspace(PLATFORM_PROJECT, platformStack, async (opts) => {
        const stack = await LocalWorkspace.createStack(
          { projectName: PLATFORM_PROJECT, stackName: platformStack, program: platformProgram },
          opts,
        );
        await stack.up();
      });
    }
  } catch (err) {
    await dispose();
    throw err;
  }
  let disposed = false;
  return {
    regions,
    env,
    ctx,
    async dispose() {
      if (disposed) return;
      disposed = true;
      await dispose();
    },
  };
}

/** One throwaway region (see openTestRegions). */
export async function openTestRegion(
  region: ResidencyRegion,
  options: { transport?: DatabaseTransport } = {},
): Promise<TestRegion & { dispose(): Promise<void> }> {
  const opened = await openTestRegions([region], options);
  return { ...opened.regions[0], dispose: () => opened.dispose() };
}
