/**
 * Issue 19 through the real Pulumi engine: a local region deployed with the executor transport
 * (`transport: executor`) gives the same database as the direct transport
 * (docs/adr/ADR-004-database-executor.md). The repository's program, one stack config, deployed twice
 * on two fresh PostgreSQL clusters; only the transport differs:
 *
 *   direct    the providers connect from the engine's provider process;
 *   executor  the providers invoke the region's local executor (lib/local/executor-server.ts, the
 *             detached process `npm run local` starts) with the real Lambda client, which runs the
 *             executor's handler against its cluster.
 *
 * Then: the two databases compare equal (catalogue, roles and memberships, policies, grants, the
 * registry; test/support/database-snapshot.ts) and the comparison reports a dropped policy (negative
 * control); `tenancy audit` is clean on the executor's database and reports a table without forced
 * RLS (negative control); a second preview through the executor changes nothing; with the executor
 * stopped, a refresh fails naming it as unreachable and changes nothing.
 * Skipped, with the reason, where there is no toolchain; under CI that fails.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { withConnection } from "../../lib/db/client";
import { auditDatabase } from "../../lib/audit/isolation-audit";
import {
  EXECUTOR_LOG,
  localExecutorConnection,
  localExecutorFunctionName,
  startExecutorProcess,
  stopExecutorAt,
} from "../../lib/local/executor-server";
import { THROWAWAY_SETTINGS, startPostgres, type PostgresServer } from "../../lib/local/postgres-server";
import { freePort } from "../../lib/local/processes";
import { parsePlatformContract } from "../../lib/platform/contract";
import { REPO_ROOT } from "../../lib/pulumi/env";
import { unwrapOutputs } from "../../lib/tenant-stacks/platform";
import { tenancy } from "../support/cli";
import { readDatabaseSnapshot, snapshotDifferences, type DatabaseSnapshot } from "../support/database-snapshot";
import { describeWithToolchain } from "../support/toolchain";
import { openStack, toolchain, toolchainLookup, type OpenTestStack } from "./support/stack";

const DATABASE = "alphapulse_transport";
// Each step is one or two engine runs: seconds on an idle machine, minutes when the 2 cores are busy.
const ENGINE_TIMEOUT = 600_000;

interface Deployment {
  transport: "direct" | "executor";
  cluster: PostgresServer;
  stack: OpenTestStack;
  config: Record<string, unknown>;
  url: string;
}

describeWithToolchain(toolchainLookup)(
  `a local stack through the executor transport gives the direct transport's database${toolchain ? ` (pulumi ${toolchain.version})` : ""}`,
  { timeout: ENGINE_TIMEOUT },
  () => {
    let root: string;
    let executorDir: string;
    let executorPort: number;
    const deployments: Partial<Record<Deployment["transport"], Deployment>> = {};
    const direct = () => deployments.direct!;
    const executor = () => deployments.executor!;

    async function deployment(transport: Deployment["transport"]): Promise<Deployment> {
      const cluster = await startPostgres({ settings: THROWAWAY_SETTINGS });
      const config: Record<string, unknown> = {
        kind: "local",
        region: "eu",
        postgres: { port: cluster.port, database: DATABASE },
        // Not started: the program passes these through as outputs only.
        pgbouncer: { port: await freePort() },
        redis: { port: await freePort() },
        ...(transport === "executor" ? { transport, executor: { port: executorPort } } : {}),
        dataDir: path.join(root, transport),
        tenants: [
          { slug: "alpha-fund", tier: "pro", region: "eu", displayName: "Alpha Fund" },
          { slug: "beta-capital", tier: "starter", region: "eu" },
          { slug: "gamma-corp", tier: "enterprise", region: "eu", displayName: "Gamma Corp" },
        ],
      };
      const stack = await openStack(config);
      return { transport, cluster, stack, config, url: cluster.urlFor(DATABASE) };
    }

    beforeAll(async () => {
      root = mkdtempSync(path.join(os.tmpdir(), "alphapulse-transport-"));
      executorPort = await freePort();
      deployments.direct = await deployment("direct");
      deployments.executor = await deployment("executor");
      // What `npm run local` does for a `transport: executor` stack (lib/local/region-services.ts).
      executorDir = path.join(root, "executor", "executor");
      await startExecutorProcess(REPO_ROOT, executorDir, {
        functionName: localExecutorFunctionName(executor().stack.name),
        port: executorPort,
        postgresPort: executor().cluster.port,
      });
    }, ENGINE_TIMEOUT);

    afterAll(async () => {
      for (const d of Object.values(deployments)) {
        // Tenants stay registered, so destroy is refused: the stack is removed, the cluster thrown away.
        await d.stack.dispose().catch(() => {});
        await d.cluster.stop({ removeData: true, mode: "immediate" }).catch(() => {});
      }
      if (executorDir) await stopExecutorAt(executorDir).catch(() => {});
      if (root) rmSync(root, { recursive: true, force: true });
    }, ENGINE_TIMEOUT);

    it("deploys the same region with either transport; the executor's providers went through the executor", async () => {
      const changes: Record<string, unknown> = {};
      for (const d of [direct(), executor()]) {
        const up = await d.stack.stack.up({ color: "never" });
        expect(up.summary.result).toBe("succeeded");
        changes[d.transport] = up.summary.resourceChanges;
        const contract = parsePlatformContract(unwrapOutputs(up.outputs), d.stack.name);
        expect(Object.keys(contract.database.tenantIds).sort()).toEqual(["alpha-fund", "beta-capital", "gamma-corp"]);
        expect(contract.database.connection).toEqual(
          d.transport === "executor"
            ? localExecutorConnection({ stack: d.stack.name, executorPort, postgresPort: d.cluster.port })
            : { host: "127.0.0.1", port: d.cluster.port, user: "postgres" },
        );
      }
      expect(changes.executor).toEqual(changes.direct);

      // Every operation of the executor stack ran in the executor process (its log: one line per
      // invocation, never the args); the state records the executor connection on each provider.
      const log = readFileSync(path.join(executorDir, EXECUTOR_LOG), "utf8")
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { operation?: string; outcome: string });
      const operations = new Set(log.filter((l) => l.outcome === "ok").map((l) => l.operation));
      for (const op of ["createDatabase", "migrate", "createTenant", "installContextKey"]) expect(operations).toContain(op);
      expect(log.filter((l) => l.outcome === "error")).toEqual([]);
      const state = await executor().stack.stack.exportStack();
      const dynamic = (state.deployment.resources as { type: string; inputs?: { connection?: { kind?: string } } }[]).filter((r) =>
        r.type.startsWith("pulumi-nodejs:dynamic/"),
      );
      expect(dynamic.length).toBeGreaterThan(0);
      for (const r of dynamic) expect(r.inputs?.connection?.kind, r.type).toBe("executor");
    });

    it("the two databases are the same: catalogue, roles and memberships, policies, grants, registry", async () => {
      const snapshots: DatabaseSnapshot[] = [];
      for (const d of [direct(), executor()]) snapshots.push(await withConnection(d.url, readDatabaseSnapshot));
      const [a, b] = snapshots;
      // What is compared is the whole design, not an empty read.
      expect(a.sections.schema.filter((s) => s.startsWith("CREATE POLICY")).length).toBeGreaterThan(10);
      expect(a.sections.registry.filter((l) => l.startsWith("tenant "))).toEqual([
        "tenant <tenant:alpha-fund> alpha-fund Alpha Fund pro eu shared active offboarded:false export:-",
        "tenant <tenant:beta-capital> beta-capital beta-capital starter eu shared active offboarded:false export:-",
        "tenant <tenant:gamma-corp> gamma-corp Gamma Corp enterprise eu shared active offboarded:false export:-",
      ]);
      expect(a.sections.registry).toContain("context key eu-1 eu active");
      expect(snapshotDifferences(a, b, ["direct", "executor"])).toEqual([]);
    });

    it("negative control: the comparison reports a policy dropped from one of them", async () => {
      const before = await withConnection(direct().url, readDatabaseSnapshot);
      const broken = await withConnection(executor().url, async (c) => {
        await c.query("BEGIN");
        try {
          await c.query("DROP POLICY tenant_isolation ON shared.trades");
          return await readDatabaseSnapshot(c);
        } finally {
          await c.query("ROLLBACK");
        }
      });
      const differences = snapshotDifferences(before, broken, ["direct", "executor"]);
      expect(differences).toEqual([expect.stringMatching(/^schema: only in direct: CREATE POLICY tenant_isolation ON shared\.trades /)]);
    });

    it("the isolation audit is clean on the executor's database, and reports a table without forced RLS (negative control)", async () => {
      const audit = await tenancy("audit", "--database-url", executor().url, "--json");
      expect(audit.json).toMatchObject({ clean: true, findings: [] });
      expect(audit.code).toBe(0);
      const findings = await withConnection(executor().url, async (c) => {
        await c.query("BEGIN");
        try {
          await c.query("ALTER TABLE shared.trades NO FORCE ROW LEVEL SECURITY");
          return await auditDatabase(c);
        } finally {
          await c.query("ROLLBACK");
        }
      });
      expect(findings.filter((f) => f.check === "rls-not-forced").map((f) => f.object)).toEqual([expect.stringContaining("shared.trades")]);
    });

    it("a second preview through the executor changes nothing", async () => {
      const preview = await executor().stack.stack.preview({ expectNoChanges: true, color: "never" });
      expect(Object.keys(preview.changeSummary)).toEqual(["same"]);
    });

    it("with the executor stopped, a refresh fails naming it unreachable, and nothing changed", async () => {
      const before = await withConnection(executor().url, readDatabaseSnapshot);
      await stopExecutorAt(executorDir);
      await expect(executor().stack.stack.refresh({ color: "never" })).rejects.toThrow(
        new RegExp(
          `executor ${localExecutorFunctionName(executor().stack.name)} \\(local at http://127\\.0\\.0\\.1:${executorPort}\\) is unreachable`,
        ),
      );
      expect(snapshotDifferences(before, await withConnection(executor().url, readDatabaseSnapshot))).toEqual([]);
    });
  },
);
