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
import type { JobEvent, Phase, TenantJob, TenantJobResult, TenantStackDriver } from "./jobs";
import { PLATFORM_PROJECT, slugOfTenantStack, stackReferenceName, TENANT_PROJECT, tenantStackName } from "./names";
import {
  ownershipProblem,
  PlatformStackError,
  readPlatformSummary,
  residencyProblem,
  unwrapOutputs,
  type PlatformSummary,
} from "./platform";
import { ResidencyError } from "../platform/residency";
import { TenantSpecError, type TenantStackSpec } from "./spec";
import { specFromTags, tagChanges } from "./tags";

/** Offboarding export (issue 6, lib/enterprise/export.ts): writes one tenant's data to a file in `dir`, verified. */
export type TenantExporter = (request: {
  slug: string;
  tenantId: string;
  /** The platform stack's outputs (plain values), for the database connection. */
  platformOutputs: Record<string, unknown>;
  dir: string;
}) => Promise<{ file: string; rows?: number; /** null: written unsigned (no context key installed). */ signedWith?: string | null }>;

/**
 * Offboarding before a tenant stack is destroyed (docs/data-safety.md): marks the tenant `offboarded`
 * with a purge date, after the export, so the stack's delete releases it instead of refusing. Its
 * rows stay until `tenancy tenant purge`.
 */
export type TenantOffboarder = (request: {
  slug: string;
  tenantId: string;
  platformOutputs: Record<string, unknown>;
  exportFile?: string;
}) => Promise<{ purgeAfter: string }>;

export interface AutomationOptions {
  repoRoot: string;
  /** Directory holding `pulumi` (lib/pulumi/env.ts findPulumiToolchain). */
  binDir: string;
  /** The tenant program for a spec (components/tenant/program.ts). */
  program: (spec: TenantStackSpec) => PulumiFn;
  exporter?: TenantExporter;
  /** Without it, destroying a stack whose tenant was not offboarded by hand is refused by the Tenant resource. */
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

  /** The outputs of a platform stack (secrets in plain text: they never leave this process). */
  async platformOutputs(platform: string): Promise<Record<string, unknown>> {
    return this.withWorkspace(PLATFORM_PROJECT, "platform", async (opts) => {
      const ws = await LocalWorkspace.create(opts);
      try {
        return unwrapOutputs(await ws.stackOutputs(stackReferenceName(platform)));
      } catch (err) {
        if ((err as Error).name === "StackNotFoundError")
          throw new PlatformStackError(`platform stack ${platform} does not exist on this backend`, platform);
        throw err;
      }
    });
  }

  async platformSummary(platform: string): Promise<PlatformSummary> {
    return readPlatformSummary(platform, await this.platformOutputs(platform));
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
        job.action === "destroy"
          ? await this.destroy(job.slug, job.exportDir, base, onEvent)
          : await this.upOrPreview(job.action, job.spec, base, onEvent);
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
    slug: string,
    exportDir: string | null,
    base: TenantJobResult,
    onEvent: (e: JobEvent) => void,
  ): Promise<TenantJobResult> {
    const stackName = tenantStackName(slug);
    return this.ctx.withWorkspace(TENANT_PROJECT, stackName, async (opts) => {
      onEvent({ slug, phase: "stack", message: `selecting ${stackName}` });
      const noProgram: PulumiFn = () => Promise.reject(new Error("destroy runs no program"));
      const stack = await LocalWorkspace.selectStack({ projectName: TENANT_PROJECT, stackName, program: noProgram }, opts);
      const spec = specFromTags(await stack.workspace.listTags(stackName), stackName);
      const result: TenantJobResult = { ...base, tier: spec.tier, region: spec.region, platform: spec.platform };
      const outputs = unwrapOutputs(await stack.outputs());
      if (exportDir !== null && typeof outputs.tenantId === "string") {
        onEvent({ slug, phase: "export", message: `exporting to ${exportDir}` });
        const exporter = this.ctx.options.exporter;
        if (!exporter) {
          const err = new Error(
            `offboarding export is not available in this checkout (lib/enterprise/export.ts); nothing was deleted. Pass --skip-export to offboard without an export`,
          );
          err.name = "TenantExportError";
          throw err;
        }
        const platformOutputs = await this.ctx.platformOutputs(spec.platform);
        try {
          const exported = await exporter({ slug, tenantId: outputs.tenantId, platformOutputs, dir: exportDir });
          result.exportFile = exported.file;
          if (exported.signedWith === null)
            onEvent({
              slug,
              phase: "export",
              message: `the export is UNSIGNED (no tenant-context key installed): importing it needs --allow-unsigned`,
            });
        } catch (err) {
          const wrapped = new Error(`export of ${slug} failed, nothing was deleted: ${(err as Error).message}`);
          wrapped.name = "TenantExportError";
          throw wrapped;
        }
      }
      if (typeof outputs.tenantId === "string" && this.ctx.options.offboarder) {
        onEvent({ slug, phase: "export", message: "offboarding (rows kept until the purge)" });
        const platformOutputs = await this.ctx.platformOutputs(spec.platform);
        const offboarded = await this.ctx.options.offboarder({
          slug,
          tenantId: outputs.tenantId,
          platformOutputs,
          exportFile: result.exportFile,
        });
        result.purgeAfter = offboarded.purgeAfter;
      }
      onEvent({ slug, phase: "destroy", message: "destroying" });
      const destroyed = await stack.destroy({ onEvent: engineEvents(slug, "destroy", onEvent) });
      await stack.workspace.removeStack(stackName);
      return { ...result, changes: destroyed.summary.resourceChanges ?? {} };
    });
  }
}
