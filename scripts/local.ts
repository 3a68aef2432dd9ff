/**
 * `npm run local` — the main job, embedded: the EU and US regions on this machine, end to end through
 * the real Pulumi engine. For each local stack (stacks/Pulumi.local-*.yaml):
 *   1. start its servers (PostgreSQL cluster, Redis, PgBouncer) on loopback, if not running;
 *   2. `pulumi up` (Automation API, offline environment from lib/pulumi/env.ts): the database, the
 *      design (roles, migrations, catalogue, RLS) and the stack's sample tenants. With `--refresh` first
 *      when the cluster was (re)started by this run — its data directory may be new — or on request;
 *   3. the isolation audit of the region's database, and a residency check across the regions.
 * `npm run local` runs scripts/setup.sh first (apt packages, npm ci, the toolchain). A second run
 * changes nothing and says so.
 *
 *   npm run local [-- up]      the above (default)
 *   npm run local -- status    servers and stack outputs, changing nothing
 *   npm run local -- down      stop the servers and the executor (data and stacks kept)
 *   npm run local -- reset     stop the servers, delete their data (every tenant's rows), remove the stacks
 *   npm run local -- env local-eu   the region's DATABASE_URL, REDIS_URL and ALPHAPULSE_CONTEXT_KEY_FILE
 *                                   (the services' tenant-context key, 0600) as shell exports:
 *                                   eval "$(npm run -s local -- env local-eu)"; then plain `npx tenancy …`
 *   options: --stack <name> (repeatable; default local-eu and local-us), --refresh (always refresh first),
 *            --json, --verbose (pulumi's output), --help
 * Exit codes: 0 ok, 1 failure or audit findings, 2 bad arguments or stack config.
 */
import { LocalWorkspace, PulumiCommand, type EngineEvent, type OpMap, type OutputMap, type Stack } from "@pulumi/pulumi/automation";
import { table, UsageError } from "../cli/output";
import { entryPoint, headerComment, runMain } from "../cli/runner";
import { auditRegions, type RegionAudit } from "../lib/local/region-audit";
import { readLocalStackConfig, type LocalStackConfig } from "../lib/stack-config/local";
import { StackConfigError, stacksWithoutFile } from "../lib/stack-config/common";
import {
  contextKeyFile,
  regionDataDir,
  regionEnvironment,
  regionServicesStatus,
  shellExports,
  startRegionPgbouncer,
  startRegionServices,
  stopRegionServices,
  type ServiceStatus,
} from "../lib/local/region-services";
import { writeContextKeyFile } from "../lib/tenant-context/key-file";
import type { ContextKey } from "../lib/tenant-context/proof";
import { parsePlatformContract, redactSecrets } from "../lib/platform/contract";
import { findPulumiToolchain, pulumiEnvironment, REPO_ROOT, type PulumiToolchain } from "../lib/pulumi/env";
import { unwrapOutputs } from "../lib/tenant-stacks/platform";

const LOCAL_STACKS = ["local-eu", "local-us"];
const COMMANDS = ["up", "status", "down", "reset", "env"] as const;
type LocalCommand = (typeof COMMANDS)[number];

interface StackSummary {
  stack: string;
  region: string;
  services: ServiceStatus[];
  /** Resource operations of the update, e.g. { same: 7 } or { create: 7 }. */
  changes?: OpMap;
  changed?: boolean;
  durationMs?: number;
  /** From the stack's outputs, read through the platform contract (secrets redacted). */
  database?: { name: string; oid: number; connection: unknown };
  redis?: unknown;
  pgbouncer?: unknown;
  tenants?: Record<string, string>;
  migrations?: string[];
}

const started = Date.now();
let json = false;
let verbose = false;
let alwaysRefresh = false;
/** The app role's URL per stack (secret: kept out of every output). */
const appUrls = new Map<string, string>();
/** The services' context key per stack (secret: kept out of every output). */
const contextKeys = new Map<string, ContextKey>();
const progress = (message: string) => {
  if (!json || verbose) process.stderr.write(message + "\n");
};

async function openStack(toolchain: PulumiToolchain, stack: string, create: boolean): Promise<Stack> {
  const envVars = pulumiEnvironment(REPO_ROOT, { binDir: toolchain.binDir });
  const pulumiCommand = await PulumiCommand.get({ root: toolchain.root });
  const args = { stackName: stack, workDir: REPO_ROOT };
  const opts = { pulumiCommand, envVars };
  return create ? LocalWorkspace.createOrSelectStack(args, opts) : LocalWorkspace.selectStack(args, opts);
}

function onEvent(stack: string) {
  return (event: EngineEvent) => {
    const step = event.resOutputsEvent?.metadata;
    if (step && step.op !== "same" && step.op !== "refresh" && step.op !== "read") {
      const name = step.urn.split("::").pop();
      progress(`  ${stack}: ${step.op} ${step.type.replace("pulumi-nodejs:dynamic/", "")} ${name}`);
    }
    const diag = event.diagnosticEvent;
    if (diag && (diag.severity === "error" || diag.severity === "warning") && !diag.ephemeral)
      progress(`  ${stack}: ${diag.severity}: ${diag.message.trim()}`);
  };
}

/** The stack's outputs through the platform contract: what the summary shows (secrets redacted) and the app URL. */
function readOutputs(stack: string, outputs: OutputMap): { summary: Partial<StackSummary>; appUrl: string; contextKey?: ContextKey } {
  const contract = parsePlatformContract(unwrapOutputs(outputs), stack);
  if (contract.kind !== "local") throw new UsageError(`${stack} is not a local stack (its outputs say ${contract.kind})`, "--stack");
  const shown = redactSecrets(contract);
  return {
    summary: {
      database: { name: shown.database.name, oid: shown.database.oid, connection: shown.database.connection },
      redis: shown.redis,
      pgbouncer: shown.pgbouncer,
      tenants: shown.database.tenantIds,
      migrations: shown.schema.migrations,
    },
    appUrl: contract.appUrl,
    contextKey: contract.contextKey,
  };
}

async function up(toolchain: PulumiToolchain, stack: string, config: LocalStackConfig): Promise<StackSummary> {
  const t0 = Date.now();
  progress(`${stack}: servers`);
  const services = await startRegionServices(REPO_ROOT, stack, config, { onProgress: (m) => progress(`  ${m}`) });
  // A cluster this run started may be a new one (wiped data directory): let the providers' read find out.
  const refresh = alwaysRefresh || services.services.some((x) => x.name === "postgres" && x.state === "started");
  progress(`${stack}: pulumi up${refresh ? " --refresh" : ""}`);
  const s = await openStack(toolchain, stack, true);
  const result = await s.up({
    refresh,
    color: "never",
    onEvent: onEvent(stack),
    onOutput: verbose ? (out) => process.stderr.write(out) : undefined,
  });
  const changes = result.summary.resourceChanges ?? {};
  const changed = Object.entries(changes).some(([op, n]) => op !== "same" && (n ?? 0) > 0);
  // PgBouncer last: its auth file carries the verifiers of the roles the stack just made sure of.
  const { summary: outputs, appUrl, contextKey } = readOutputs(stack, result.outputs);
  const pgbouncer = await startRegionPgbouncer(REPO_ROOT, stack, config, outputs.database!.name, { onProgress: (m) => progress(`  ${m}`) });
  appUrls.set(stack, appUrl);
  // The services' tenant-context key (ADR-005), from the stack's secret output to a 0600 file.
  if (contextKey) {
    writeContextKeyFile(contextKeyFile(regionDataDir(REPO_ROOT, stack, config)), contextKey);
    contextKeys.set(stack, contextKey);
  }
  progress(`${stack}: ${changed ? "updated" : "no changes"} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  return {
    stack,
    region: config.region,
    services: services.services.map((x) => (x.name === "pgbouncer" ? pgbouncer : x)),
    changes,
    changed,
    durationMs: Date.now() - t0,
    ...outputs,
  };
}

async function status(toolchain: PulumiToolchain | undefined, stack: string, config: LocalStackConfig): Promise<StackSummary> {
  const services = await regionServicesStatus(REPO_ROOT, stack, config);
  let outputs: Partial<StackSummary> = {};
  if (toolchain) {
    let stackOutputs: OutputMap | undefined;
    try {
      stackOutputs = await (await openStack(toolchain, stack, false)).outputs();
    } catch {
      // No stack yet: `npm run local` creates it.
    }
    // Outputs that break the contract are reported (exit 2), naming the output: `npm run local` rewrites them.
    if (stackOutputs && Object.keys(stackOutputs).length) outputs = readOutputs(stack, stackOutputs).summary;
  }
  return { stack, region: config.region, services, ...outputs };
}

async function reset(toolchain: PulumiToolchain, stack: string, config: LocalStackConfig): Promise<StackSummary> {
  // A local region is thrown away whole, on purpose: its cluster's data directory holds the database,
  // so removing it removes every tenant's rows with it. Not `pulumi destroy`, which refuses while
  // tenants are registered (docs/data-safety.md); the stack is removed with what it recorded.
  const services = await stopRegionServices(REPO_ROOT, stack, config, { removeData: true });
  try {
    const s = await openStack(toolchain, stack, false);
    progress(`${stack}: removing the stack (its servers' data is gone)`);
    await s.workspace.removeStack(stack, { force: true, preserveConfig: true }); // the stack file is in git
  } catch (err) {
    if (!/no stack named|not found/i.test((err as Error).message)) throw err;
  }
  progress(`${stack}: reset (servers stopped, data removed)`);
  return { stack, region: config.region, services };
}

function render(command: LocalCommand, summaries: StackSummary[], audit: RegionAudit[] | undefined): string {
  const lines: string[] = [];
  lines.push(
    table(
      ["stack", "region", "postgres", "redis", "pgbouncer", "executor", "pulumi", "tenants"],
      summaries.map((s) => {
        const svc = (name: string) => {
          const x = s.services.find((v) => v.name === name);
          return x ? `${x.port} ${x.state}` : "";
        };
        const changes = s.changes
          ? Object.entries(s.changes)
              .map(([op, n]) => `${op} ${n}`)
              .join(", ")
          : "";
        return [
          s.stack,
          s.region,
          svc("postgres"),
          svc("redis"),
          svc("pgbouncer"),
          svc("executor"),
          changes,
          s.tenants ? Object.keys(s.tenants).join(", ") : "",
        ];
      }),
    ),
  );
  if (audit) {
    lines.push("", "Isolation audit:");
    for (const a of audit) {
      lines.push(
        `  ${a.stack} (${a.region}): ${a.findings.length === 0 ? "clean" : `${a.findings.length} finding(s)`} — ${a.checks.join("; ")}`,
      );
      for (const f of a.findings) lines.push(`    ✗ ${f}`);
    }
  }
  if (command === "up") {
    const changed = summaries.some((s) => s.changed);
    lines.push(
      "",
      `${changed ? "Applied changes" : "No changes"} in ${((Date.now() - started) / 1000).toFixed(1)} s. Servers keep running: \`npm run local -- down\` stops them.`,
    );
  }
  return lines.join("\n");
}

const USAGE = "usage: npm run local -- [up|status|down|reset] [--stack <name>]... [--refresh] [--verbose] [--json] | env <stack> [--json]";

const main = entryPoint({
  program: "local",
  usage: USAGE,
  help: () => headerComment(__filename),
  options: {
    stack: { type: "string", multiple: true },
    verbose: { type: "boolean", default: false },
    refresh: { type: "boolean", default: false },
  },
  allowPositionals: true,
  async run({ values, positionals }) {
    json = values.json;
    verbose = values.verbose;
    alwaysRefresh = values.refresh;
    try {
      return await local(positionals, values.stack);
    } catch (err) {
      // --verbose: the stack of an unexpected failure too (bad input is explained by its message).
      if (verbose && err instanceof Error && !(err instanceof UsageError) && !(err instanceof StackConfigError))
        process.stderr.write(`${err.stack}\n`);
      throw err;
    }
  },
});

/** `env <stack>`: the exports that point tenancy at one local region; nothing is started or changed. */
function printEnvironment(args: string[], stackFlags: string[] | undefined): number {
  const stacks = [...args, ...(stackFlags ?? [])];
  if (stacks.length !== 1) throw new UsageError("name exactly one local stack, e.g. env local-eu", "stack");
  const [stack] = stacks;
  if (stacksWithoutFile(REPO_ROOT, stacks).length) throw new UsageError(`no stack file stacks/Pulumi.${stack}.yaml`, "stack");
  const config = readLocalStackConfig(REPO_ROOT, stack);
  const env = regionEnvironment(REPO_ROOT, stack, config);
  process.stdout.write((json ? JSON.stringify({ stack, env }, null, 2) : shellExports(env)) + "\n");
  return 0;
}

async function local(positionals: string[], stackFlags: string[] | undefined): Promise<number> {
  const command = (positionals[0] ?? "up") as LocalCommand;
  if (command === "env") return printEnvironment(positionals.slice(1), stackFlags);
  if (!COMMANDS.includes(command) || positionals.length > 1)
    throw new UsageError(`unknown command "${positionals.join(" ")}"; expected one of ${COMMANDS.join(", ")}`, "command");
  const stacks = stackFlags ?? LOCAL_STACKS;
  const unknown = stacksWithoutFile(REPO_ROOT, stacks);
  if (unknown.length) throw new UsageError(`no stack file stacks/Pulumi.<name>.yaml for ${unknown.join(", ")}`, "--stack");
  const configs = stacks.map((stack) => ({ stack, config: readLocalStackConfig(REPO_ROOT, stack) }));
  for (const { stack, config } of configs) if (config.kind !== "local") throw new UsageError(`${stack} is not a local stack`, "--stack");

  const lookup = findPulumiToolchain();
  if (!lookup.ok && (command === "up" || command === "reset")) throw new Error(`the Pulumi toolchain is unavailable: ${lookup.reason}`);
  const toolchain = lookup.ok ? lookup.toolchain : undefined;

  const summaries: StackSummary[] = [];
  for (const { stack, config } of configs) {
    if (command === "up") summaries.push(await up(toolchain!, stack, config));
    else if (command === "status") summaries.push(await status(toolchain, stack, config));
    else if (command === "down")
      summaries.push({ stack, region: config.region, services: await stopRegionServices(REPO_ROOT, stack, config) });
    else summaries.push(await reset(toolchain!, stack, config));
  }

  let audit: RegionAudit[] | undefined;
  if (
    command === "up" ||
    (command === "status" && summaries.every((s) => s.services.find((x) => x.name === "postgres")?.state !== "stopped" && s.database))
  ) {
    progress("isolation audit");
    audit = await auditRegions(
      summaries.map((s) => ({
        stack: s.stack,
        region: s.region as LocalStackConfig["region"],
        adminUrl: adminUrlOf(s),
        expectedTenants: s.tenants ?? {},
        pooledAppUrl: pooledAppUrlOf(s),
        contextKey: contextKeys.get(s.stack),
      })),
    );
  }
  const findings = audit?.reduce((n, a) => n + a.findings.length, 0) ?? 0;
  const result = { command, ok: findings === 0, durationMs: Date.now() - started, stacks: summaries, audit };
  if (json) process.stdout.write(JSON.stringify(result, null, 2) + "\n");
  else process.stdout.write(render(command, summaries, audit) + "\n");
  return findings === 0 ? 0 : 1;
}

/** The app role's URL through the region's PgBouncer, when this run knows the password and PgBouncer is up. */
function pooledAppUrlOf(s: StackSummary): string | undefined {
  const app = appUrls.get(s.stack);
  const bouncer = s.services.find((x) => x.name === "pgbouncer");
  if (!app || !bouncer || bouncer.state === "stopped") return undefined;
  const url = new URL(app);
  url.port = String(bouncer.port);
  return url.toString();
}

/**
 * The operator's superuser URL of the region's database (trust on loopback): the audit reads the
 * cluster directly whatever transport the stack's providers use.
 */
function adminUrlOf(s: StackSummary): string {
  const postgres = s.services.find((x) => x.name === "postgres")!;
  return `postgres://postgres@127.0.0.1:${postgres.port}/${s.database!.name}`;
}

runMain(main);
