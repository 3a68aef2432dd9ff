/**
 * The Automation API behind `TenantStackDriver`: one tenant stack operation, in this process.
 *
 * Isolation: every operation gets its own workspace (a fresh directory under
 * .pulumi-local/workspaces, removed afterwards), so concurrent operations never rewrite each other's
 * Pulumi.yaml (pulumi/pulumi issue 8186). Bulk runs go further and run each operation in its own
 * process (lib/tenant-stacks/process-driver.ts), because inline programs in one Node process share
 * the SDK's global state. The directory sits inside the repository so that the dynamic-provider
 * plugin, started there by the engine, resolves @pulumi/pulumi and pg from the repository's
 * node_modules; ALPHAPULSE_REPO_ROOT tells the providers where lib/ is.
 *
 * This module imports the Automation API only (not the resource SDK): the tenant program is handed
 * in (components/tenant/program.ts), so the orchestration stays testable without the engine.
 */
import {
  LocalWorkspace,
  PulumiCommand,
  type EngineEvent,
  type LocalWorkspaceOptions,
  type PulumiFn,
  type Stack,
} from "@pulumi/pulumi/automation";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import path from "node:path";
import pLimit from "p-limit";
import { findPulumiToolchain, pulumiEnvironment } from "../pulumi/env";
import { classifyFailure, type StackFailure } from "./errors";
import { formatChanges, type JobEvent, type Phase, type TenantJob, type TenantJobResult, type TenantStackDriver } from "./jobs";
import { DEFAULT_RETENTION_DAYS } from "../tenant/registry";
import { PLATFORM_PROJECT, slugOfTenantStack, stackReferenceName, TENANT_PROJECT, tenantStackName } from "./names";
import { parsePlatformContract, type PlatformContract } from "../platform/contract";
import { ownershipProblem, PlatformStackError, platformSummary, residencyProblem, unwrapOutputs, type PlatformSummary } from "./platform";
import { ResidencyError } from "../platform/residency";
import { TenantSpecError, type TenantStackSpec } from "./spec";
import { specFromTags, tagChanges } from "./tags";
import { protectionToLift, removalPlan, type StateResource } from "./removal";

/**
 * Offboarding before a tenant stack is destroyed (docs/data-safety.md): the shared path of
 * lib/tenant/offboarding.ts (the same as `tenancy tenant delete`): verified export first (unless
 * `exportDir` is null), then `offboarded` with a purge date, so the stack's delete releases the
 * tenant instead of refusing. Its rows stay until `tenancy tenant purge`. A dry run changes nothing
 * and returns the steps.
 */
export type TenantOffboarder = (request: {
  slug: string;
  tenantId: string;
  /** The platform stack's contract, for the database connection. */
  platform: PlatformContract;
  /** Directory of the verified export; `null` skips it (explicit `--skip-export`). */
  exportDir: string | null;
  retentionDays: number;
  dryRun: boolean;
}) => Promise<{
  steps: string[];
  exportFile?: string;
  exportedRows?: number;
  /** null: the export was written unsigned (no tenant-context key installed). */
  exportSignedWith?: string | null;
  /** SHA-256 (hex) of the export as read back from where it is kept (the S3 bucket on AWS). */
  exportSha256?: string;
  purgeAfter?: string;
}>;

/** How the tenant program runs besides its spec (components/tenant/program.ts TenantProgramOptions). */
export interface ProgramOptions {
  /** Declare the AWS Redis secret unprotected: only the destroy of an offboarded tenant. */
  releaseForDestroy?: boolean;
}

export interface AutomationOptions {
  repoRoot: string;
  /** Directory holding `pulumi` (lib/pulumi/env.ts findPulumiToolchain). */
  binDir: string;
  /** The tenant program for a spec (components/tenant/program.ts). */
  program: (spec: TenantStackSpec, options?: ProgramOptions) => PulumiFn;
  /**
   * Without it, `destroy` refuses an export (nothing is deleted), and destroying a stack whose
   * tenant was not offboarded by hand is refused by the Tenant resource.
   */
  offboarder?: TenantOffboarder;
  /** Extra environment for the CLI and the plugins (tests point the backend elsewhere). */
  env?: Record<string, string>;
}

export class AutomationContext {
  private constructor(
    readonly options: AutomationOptions,
    readonly pulumiCommand: PulumiCommand,
    readonly envVars: Record<string, string>,
  ) {}

  static async create(options: AutomationOptions): Promise<AutomationContext> {
    const pulumiCommand = await PulumiCommand.get({ root: path.dirname(options.binDir) });
    const envVars = {
      ...pulumiEnvironment(options.repoRoot, { binDir: options.binDir }),
      ALPHAPULSE_REPO_ROOT: options.repoRoot,
      ...options.env,
    };
    return new AutomationContext(options, pulumiCommand, envVars);
  }

  /** With the repository's own toolchain; undefined (with the reason) when there is none. */
  static async forRepo(
    repoRoot: string,
    options: Omit<AutomationOptions, "repoRoot" | "binDir">,
  ): Promise<AutomationContext | { unavailable: string }> {
    const lookup = findPulumiToolchain({ repoRoot });
    if (!lookup.ok) return { unavailable: lookup.reason };
    return AutomationContext.create({ ...options, repoRoot, binDir: lookup.toolchain.binDir });
  }

  /** Runs `fn` with options for a fresh workspace of `project`; the directory is removed afterwards. */
  async withWorkspace<T>(project: string, label: string, fn: (opts: LocalWorkspaceOptions) => Promise<T>): Promise<T> {
    const parent = path.join(this.options.repoRoot, ".pulumi-local", "workspaces");
    mkdirSync(parent, { recursive: true });
    const workDir = mkdtempSync(path.join(parent, `${label}-`));
    try {
      return await fn({
        workDir,
        envVars: this.envVars,
        pulumiCommand: this.pulumiCommand,
        projectSettings: { name: project, runtime: "nodejs" },
      });
    } finally {
      rmSync(workDir, { recursive: true, force: true });
    }
  }

  /**
   * The contract of a platform stack, read from its outputs (secrets in plain text: they never leave
   * this process). PlatformStackError when the stack is missing, PlatformContractError (naming the
   * output and the stack) when its outputs do not fulfil the contract.
   */
  async platformContract(platform: string): Promise<PlatformContract> {
    const outputs = await this.withWorkspace(PLATFORM_PROJECT, "platform", async (opts) => {
      const ws = await LocalWorkspace.create(opts);
      try {
        return unwrapOutputs(await ws.stackOutputs(stackReferenceName(platform)));
      } catch (err) {
        if ((err as Error).name === "StackNotFoundError")
          throw new PlatformStackError(`platform stack ${platform} does not exist on this backend`, platform);
        throw err;
      }
    });
    return parsePlatformContract(outputs, platform);
  }

  async platformSummary(platform: string): Promise<PlatformSummary> {
    return platformSummary(await this.platformContract(platform));
  }

  /** The tenant stacks on the backend, with what their tags record. */
  async listTenantStacks(): Promise<{ stack: string; lastUpdate?: string; resourceCount?: number; updateInProgress?: boolean }[]> {
    return this.withWorkspace(TENANT_PROJECT, "list", async (opts) => {
      const ws = await LocalWorkspace.create(opts);
      const stacks = await ws.listStacks();
      return stacks.map((s) => ({
        stack: s.name,
        lastUpdate: s.lastUpdate,
        resourceCount: s.resourceCount,
        updateInProgress: s.updateInProgress,
      }));
    });
  }

  /** The tags of a tenant stack (its recorded spec). */
  async tenantTags(stack: string): Promise<Record<string, string>> {
    return this.withWorkspace(TENANT_PROJECT, stack, async (opts) => (await LocalWorkspace.create(opts)).listTags(stack));
  }

  /** Every tenant stack with the spec its tags record (or why they cannot be read), `concurrency` reads at once. */
  async recordedTenantStacks(concurrency = 4): Promise<RecordedTenantStackInfo[]> {
    const stacks = (await this.listTenantStacks()).filter((s) => slugOfTenantStack(s.stack) !== undefined);
    const limit = pLimit(concurrency);
    return Promise.all(
      stacks.map((s) =>
        limit(async () => {
          try {
            return { ...s, spec: specFromTags(await this.tenantTags(s.stack), s.stack) };
          } catch (err) {
            return { ...s, problem: (err as Error).message };
          }
        }),
      ),
    );
  }
}

export interface RecordedTenantStackInfo {
  stack: string;
  lastUpdate?: string;
  resourceCount?: number;
  updateInProgress?: boolean;
  spec?: TenantStackSpec;
  problem?: string;
}

/** Counts finished resource steps and reports what the engine is doing, as JobEvents. */
function engineEvents(slug: string, phase: Phase, onEvent: (e: JobEvent) => void): (event: EngineEvent) => void {
  let steps = 0;
  return (event) => {
    if (event.resOutputsEvent) {
      steps++;
      const { op, urn } = event.resOutputsEvent.metadata;
      onEvent({ slug, phase, message: `${op} ${urn.split("::").pop()}`, steps });
    } else if (event.diagnosticEvent?.severity === "error") {
      onEvent({ slug, phase, message: event.diagnosticEvent.message.trim().split("\n")[0], steps });
    }
  };
}

/** Runs tenant jobs through the Automation API in this process. */
export class AutomationDriver implements TenantStackDriver {
  constructor(private readonly ctx: AutomationContext) {}

  async run(job: TenantJob, onEvent: (event: JobEvent) => void): Promise<TenantJobResult> {
    const started = Date.now();
    const slug = job.action === "destroy" ? job.slug : job.spec.slug;
    const stack = tenantStackName(slug);
    const base: TenantJobResult = { slug, stack, action: job.action, ok: false, changes: {}, durationMs: 0 };
    if (job.action !== "destroy") Object.assign(base, { tier: job.spec.tier, region: job.spec.region, platform: job.spec.platform });
    try {
      const done =
        job.action === "destroy" ? await this.destroy(job, base, onEvent) : await this.upOrPreview(job.action, job.spec, base, onEvent);
      onEvent({ slug, phase: "done", message: "done" });
      return { ...done, ok: true, durationMs: Date.now() - started };
    } catch (err) {
      const failure: StackFailure = classifyFailure(err, stack);
      onEvent({ slug, phase: "done", message: `failed: ${failure.message}` });
      return { ...base, ok: false, durationMs: Date.now() - started, failure };
    }
  }

  /** Residency and ownership against the platform stack's outputs: throws before any stack is touched. */
  private async checkPlatform(spec: TenantStackSpec, onEvent: (e: JobEvent) => void): Promise<void> {
    onEvent({ slug: spec.slug, phase: "platform", message: `reading platform stack ${spec.platform}` });
    const platform = await this.ctx.platformSummary(spec.platform);
    const residency = residencyProblem(spec, platform);
    if (residency) throw new ResidencyError(residency);
    const ownership = ownershipProblem(spec.slug, platform);
    if (ownership) throw new TenantSpecError(ownership, "slug");
  }

  private async upOrPreview(
    action: "up" | "preview",
    spec: TenantStackSpec,
    base: TenantJobResult,
    onEvent: (e: JobEvent) => void,
  ): Promise<TenantJobResult> {
    await this.checkPlatform(spec, onEvent);
    const stackName = tenantStackName(spec.slug);
    const program = this.ctx.options.program(spec);
    return this.ctx.withWorkspace(TENANT_PROJECT, stackName, async (opts) => {
      onEvent({ slug: spec.slug, phase: "stack", message: `selecting ${stackName}` });
      let stack: Stack;
      let created = false;
      try {
        stack = await LocalWorkspace.createStack({ projectName: TENANT_PROJECT, stackName, program }, opts);
        created = true;
      } catch (err) {
        if ((err as Error).name !== "StackAlreadyExistsError") throw err;
        stack = await LocalWorkspace.selectStack({ projectName: TENANT_PROJECT, stackName, program }, opts);
      }
      if (action === "preview") {
        try {
          onEvent({ slug: spec.slug, phase: "preview", message: "previewing" });
          const preview = await stack.preview({ onEvent: engineEvents(spec.slug, "preview", onEvent) });
          return { ...base, createdStack: created, changes: preview.changeSummary };
        } finally {
          // A preview of a tenant that has no stack yet leaves nothing behind.
          if (created) await stack.workspace.removeStack(stackName);
        }
      }
      const changes = tagChanges(spec, created ? {} : await stack.workspace.listTags(stackName));
      for (const [tag, value] of Object.entries(changes.set)) await stack.workspace.setTag(stackName, tag, value);
      for (const tag of changes.remove) await stack.workspace.removeTag(stackName, tag);
      onEvent({ slug: spec.slug, phase: "update", message: "updating" });
      const result = await stack.up({ onEvent: engineEvents(spec.slug, "update", onEvent) });
      const outputs = Object.fromEntries(
        Object.entries(result.outputs)
          .filter(([, o]) => !o.secret)
          .map(([k, o]) => [k, o.value]),
      );
      return { ...base, createdStack: created, changes: result.summary.resourceChanges ?? {}, outputs };
    });
  }

  private async destroy(
    job: Extract<TenantJob, { action: "destroy" }>,
    base: TenantJobResult,
    onEvent: (e: JobEvent) => void,
  ): Promise<TenantJobResult> {
    const { slug, exportDir } = job;
    const dryRun = job.dryRun ?? false;
    const stackName = tenantStackName(slug);
    return this.ctx.withWorkspace(TENANT_PROJECT, stackName, async (opts) => {
      onEvent({ slug, phase: "stack", message: `selecting ${stackName}` });
      const noProgram: PulumiFn = () => Promise.reject(new Error("destroy runs no program"));
      const stack = await LocalWorkspace.selectStack({ projectName: TENANT_PROJECT, stackName, program: noProgram }, opts);
      const spec = specFromTags(await stack.workspace.listTags(stackName), stackName);
      if (job.platform !== undefined && job.platform !== spec.platform)
        throw new PlatformStackError(
          `tenant stack ${stackName} belongs to platform stack ${spec.platform}, not ${job.platform} (--platform): nothing was changed`,
          job.platform,
        );
      const result: TenantJobResult = { ...base, tier: spec.tier, region: spec.region, platform: spec.platform, dryRun };
      const outputs = unwrapOutputs(await stack.outputs());
      // What the destroy will remove, from the state, before anything changes: the plan of a dry run,
      // the record of a real one. Protection is lifted only from the tenant's Redis secret.
      const removal = removalPlan(((await stack.exportStack()).deployment as { resources?: StateResource[] }).resources ?? []);
      const { lift, refused } = protectionToLift(removal);
      if (refused.length > 0)
        throw new Error(
          `${stackName} holds protected resources a tenant destroy does not release (${refused.map((r) => r.name).join(", ")}): nothing was changed`,
        );
      const offboarder = this.ctx.options.offboarder;
      if (typeof outputs.tenantId === "string" && offboarder) {
        const platform = await this.ctx.platformContract(spec.platform);
        // Through an executor the export is kept where the executor keeps exports, never in --export-dir.
        const connection = platform.database.connection;
        const executorKeeps =
          platform.kind === "aws"
            ? `s3://${platform.postgres.backupBucket}/tenant-exports/${outputs.tenantId}/ (inside the region)`
            : connection.kind === "executor"
              ? `the exports directory of its local executor ${connection.functionName} (<region data>/exports/)`
              : undefined;
        if (executorKeeps !== undefined && job.exportDirGiven) {
          const err = new Error(
            `--export-dir applies to regions reached directly: on ${platform.stack} the export is kept in ${executorKeeps}; nothing was changed`,
          );
          err.name = "TenantExportError";
          throw err;
        }
        const destination =
          exportDir === null
            ? "no export"
            : platform.kind === "aws"
              ? `export to s3://${platform.postgres.backupBucket}/tenant-exports/ through ${platform.executor.functionName}`
              : connection.kind === "executor"
                ? `export to ${executorKeeps}`
                : `export to ${exportDir}`;
        onEvent({ slug, phase: "export", message: `offboarding (${destination})` });
        try {
          const offboarded = await offboarder({
            slug,
            tenantId: outputs.tenantId,
            platform,
            exportDir,
            retentionDays: job.retentionDays ?? DEFAULT_RETENTION_DAYS,
            dryRun,
          });
          const { exportSignedWith, ...rest } = offboarded;
          Object.assign(result, rest);
          if (exportSignedWith === null && rest.exportFile)
            onEvent({
              slug,
              phase: "export",
              message: `the export is UNSIGNED (no tenant-context key installed): importing it needs --allow-unsigned`,
            });
        } catch (err) {
          const wrapped = new Error(`offboarding of ${slug} failed, nothing was deleted: ${(err as Error).message}`);
          wrapped.name = "TenantExportError";
          throw wrapped;
        }
      } else if (exportDir !== null && typeof outputs.tenantId === "string") {
        const err = new Error(
          `offboarding export is not available here; nothing was deleted. Pass --skip-export to destroy without an export`,
        );
        err.name = "TenantExportError";
        throw err;
      }
      const liftStep = (names: string) =>
        `lift the protection of ${names} (one \`up\` of the tenant program declaring it unprotected; nothing else changes)`;
      if (dryRun) {
        // A protected resource fails a destroy preview, so with one to lift the plan is the state's.
        let changes: Record<string, number>;
        if (lift.length === 0) {
          onEvent({ slug, phase: "preview", message: "previewing the destroy" });
          changes = (await stack.previewDestroy({ onEvent: engineEvents(slug, "preview", onEvent) })).changeSummary;
        } else changes = { delete: removal.length };
        const steps = [
          ...(result.steps ?? []),
          ...(lift.length ? [liftStep(lift.map((r) => r.name).join(", "))] : []),
          `destroy stack ${stackName} (${formatChanges(changes)}): ${removal.length} resource(s), each below`,
        ];
        return { ...result, steps, changes, removed: removal };
      }
      if (lift.length > 0) {
        onEvent({ slug, phase: "update", message: liftStep(lift.map((r) => r.name).join(", ")) });
        const releasing = await LocalWorkspace.selectStack(
          { projectName: TENANT_PROJECT, stackName, program: this.ctx.options.program(spec, { releaseForDestroy: true }) },
          opts,
        );
        await releasing.up({ onEvent: engineEvents(slug, "update", onEvent) });
      }
      onEvent({ slug, phase: "destroy", message: "destroying" });
      const destroyed = await stack.destroy({ onEvent: engineEvents(slug, "destroy", onEvent) });
      await stack.workspace.removeStack(stackName);
      return { ...result, changes: destroyed.summary.resourceChanges ?? {}, removed: removal };
    });
  }
}
