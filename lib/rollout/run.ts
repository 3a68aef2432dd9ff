/**
 * The region rollout: for each wave in order, preview every platform stack of the wave, then update
 * them one by one, then bring the wave's tenant stacks to the current tenant program with bounded
 * concurrency. It halts at the first failure (a failed preview stops the wave before any update; a
 * failed tenant stops new tenant operations, the running ones finish) and says what failed, what was
 * done and what remains. Every completed step is recorded in the state file, so running the same
 * rollout again resumes after the last completed step. `dryRun` previews everything (platform and
 * tenant stacks), changes nothing, records nothing, and goes on past failures to show them all.
 *
 * Before a wave's tenant stacks run, the outputs of each platform stack they belong to are read
 * through the platform contract (lib/platform/contract.ts), as the tenant program will read them: a
 * missing or mistyped output halts the rollout there (step `platform-contract`, naming the output and
 * the stack) instead of failing every tenant stack of the wave with the same message.
 *
 * Pure orchestration: the stacks are reached through `PlatformOps` and a `TenantStackDriver`, the
 * Automation API in production (lib/rollout/automation.ts) and fakes in test/rollout.
 */
import {
  changeTotal,
  runJobs,
  type ChangeCounts,
  type JobEvent,
  type TenantJob,
  type TenantJobResult,
  type TenantStackDriver,
} from "../tenant-stacks/jobs";
import type { PlatformContract } from "../platform/contract";
import type { TenantStackSpec } from "../tenant-stacks/spec";
import {
  finish,
  isDone,
  newState,
  platformKey,
  record,
  RolloutStateError,
  samePlan,
  tenantKey,
  type RolloutState,
  type StateStore,
} from "./state";
import { planRollout, RolloutRefusedError, type RolloutPlan } from "./plan";
import type { Wave } from "./waves";
import type { ResidencyRegion } from "../tenant/model";

export interface PlatformOps {
  /** Resource changes the update would make. Throws when the preview fails. */
  preview(stack: string): Promise<ChangeCounts>;
  /** Resource changes made. Throws when the update fails. */
  update(stack: string): Promise<ChangeCounts>;
  /** The stack's outputs read through the platform contract. Throws PlatformContractError (output and stack named). */
  contract(stack: string): Promise<PlatformContract>;
}

export interface RecordedTenantStack {
  stack: string;
  /** The spec its tags record; absent when they cannot be read (see `problem`). */
  spec?: TenantStackSpec;
  problem?: string;
}

export interface TenantOps {
  /** Every tenant stack on the backend with its recorded spec. */
  list(): Promise<RecordedTenantStack[]>;
  driver: TenantStackDriver;
}

export type StepKind = "platform-preview" | "platform-update" | "platform-contract" | "tenant-up" | "tenant-preview";
export type StepStatus = "done" | "already-done" | "failed" | "skipped";

export interface StepResult {
  wave: string;
  kind: StepKind;
  stack: string;
  status: StepStatus;
  changes?: ChangeCounts;
  message?: string;
  durationMs: number;
}

export interface RolloutEvent {
  kind: "wave" | "step" | "tenants";
  wave: string;
  message: string;
  step?: StepResult;
}

export interface RolloutOptions {
  environment: string;
  waves: Wave[];
  platform: PlatformOps;
  tenants: TenantOps;
  store: StateStore;
  /** Tenant stack operations at once. */
  concurrency: number;
  dryRun?: boolean;
  /** Discard an unfinished rollout recorded in the store instead of resuming it. */
  restart?: boolean;
  /**
   * Residency of each platform stack (lib/rollout/plan.ts platformRegions over the stack files): a
   * tenant stack of another residency anywhere in the waves refuses the rollout before any stack
   * operation (RolloutRefusedError). @default none known (no check)
   */
  regions?: ReadonlyMap<string, ResidencyRegion>;
  onEvent?: (event: RolloutEvent) => void;
  onTenantEvent?: (event: JobEvent) => void;
  onTenantResult?: (result: TenantJobResult) => void;
  now?: () => Date;
}

export interface RolloutReport {
  id: string;
  environment: string;
  dryRun: boolean;
  /** This run continued an unfinished rollout. */
  resumed: boolean;
  completed: boolean;
  waves: Wave[];
  steps: StepResult[];
  /** The first failure, which stopped the rollout (the first of several in a dry run). */
  halt?: { wave: string; kind: StepKind; stack: string; message: string };
  /** What the rollout does, wave by wave (lib/rollout/plan.ts). */
  plan: RolloutPlan;
  /** What is not done yet, per wave (platform stacks by name, tenant stacks by count), when halted. */
  remaining: string[];
  /** Tenant stacks whose recorded spec could not be read (left alone). */
  unreadable: { stack: string; problem: string }[];
  /** Tenant stacks of platform stacks outside these waves (left alone). */
  outside: number;
  stateFile?: string;
}

function message(err: unknown): string {
  return (err as Error)?.message ?? String(err);
}

/** Loads or starts the state: resumes an unfinished rollout of the same plan, refuses one of another plan. */
function openState(options: RolloutOptions, now: Date): { state: RolloutState; resumed: boolean } {
  const fresh = () => newState(now.toISOString().replace(/[:.]/g, "-"), options.environment, options.waves, now);
  if (options.dryRun) return { state: fresh(), resumed: false };
  const existing = options.store.load();
  if (!existing || existing.finishedAt || options.restart) return { state: fresh(), resumed: false };
  if (!samePlan(existing, options.environment, options.waves)) {
    const plan = existing.waves.map((w) => `${w.name} (${w.stacks.join(", ")})`).join(" → ");
    throw new RolloutStateError(
      `an unfinished rollout ${existing.id} of environment "${existing.environment}" with waves ${plan} is recorded in ${options.store.location}: ` +
        `run it again with the same waves to resume it, or pass --restart to discard it`,
    );
  }
  return { state: existing, resumed: true };
}

/** Runs the rollout while holding the store's lock (a dry run records nothing and takes none). */
export async function runRollout(options: RolloutOptions): Promise<RolloutReport> {
  const release = options.dryRun ? undefined : options.store.lock();
  try {
    return await rollout(options);
  } finally {
    release?.();
  }
}

async function rollout(options: RolloutOptions): Promise<RolloutReport> {
  const now = options.now ?? (() => new Date());
  const emit = options.onEvent ?? (() => {});
  const dryRun = !!options.dryRun;
  // The plan and the residency rule first: a refused rollout records nothing and touches no stack.
  const recorded = await options.tenants.list();
  const readable = recorded.filter((t): t is RecordedTenantStack & { spec: TenantStackSpec } => !!t.spec);
  const plan = planRollout(options.waves, readable, options.regions ?? new Map());
  if (plan.residencyProblems.length) throw new RolloutRefusedError(plan.residencyProblems);
  const opened = openState(options, now());
  let state = opened.state;
  const resumed = opened.resumed;
  const save = () => {
    if (!dryRun) options.store.save(state);
  };
  save();

  const report: RolloutReport = {
    id: state.id,
    environment: options.environment,
    dryRun,
    resumed,
    completed: false,
    waves: options.waves,
    steps: [],
    remaining: [],
    unreadable: [],
    outside: 0,
    plan,
    stateFile: dryRun ? undefined : options.store.location,
  };
  const step = (result: StepResult) => {
    report.steps.push(result);
    emit({ kind: "step", wave: result.wave, message: `${result.kind} ${result.stack}: ${result.status}`, step: result });
    if (result.status === "failed" && !report.halt)
      report.halt = { wave: result.wave, kind: result.kind, stack: result.stack, message: result.message ?? "failed" };
  };
  const halted = () => !!report.halt && !dryRun;

  // The tenant stacks and the wave each belongs to (by its platform stack).
  const waveOf = new Map(options.waves.flatMap((w) => w.stacks.map((s) => [s, w.name] as const)));
  report.unreadable = recorded.filter((t) => !t.spec).map((t) => ({ stack: t.stack, problem: t.problem ?? "no recorded spec" }));
  const tenants = recorded.filter((t): t is RecordedTenantStack & { spec: TenantStackSpec } => !!t.spec);
  report.outside = tenants.filter((t) => !waveOf.has(t.spec.platform)).length;

  for (const wave of options.waves) {
    if (halted()) break;
    emit({ kind: "wave", wave: wave.name, message: `wave ${wave.name}: ${wave.stacks.join(", ")}` });
    const failedStep = (kind: StepResult["kind"], stack: string, err: unknown, started: number) =>
      step({ wave: wave.name, kind, stack, status: "failed", message: message(err), durationMs: Date.now() - started });
    const pending = wave.stacks.filter((s) => dryRun || !isDone(state, platformKey(s)));
    for (const stack of wave.stacks.filter((s) => !pending.includes(s))) {
      step({
        wave: wave.name,
        kind: "platform-update",
        stack,
        status: "already-done",
        changes: state.steps[platformKey(stack)].changes,
        durationMs: 0,
      });
    }

    // 1. Preview every platform stack of the wave before updating any of them.
    for (const stack of pending) {
      const started = Date.now();
      try {
        const changes = await options.platform.preview(stack);
        step({ wave: wave.name, kind: "platform-preview", stack, status: "done", changes, durationMs: Date.now() - started });
      } catch (err) {
        failedStep("platform-preview", stack, err, started);
        if (!dryRun) break;
      }
    }
    if (halted()) break;

    // 2. Update them, one at a time.
    if (!dryRun) {
      for (const stack of pending) {
        const started = Date.now();
        try {
          const changes = await options.platform.update(stack);
          state = record(state, platformKey(stack), { status: "done", changes }, now());
          save();
          step({ wave: wave.name, kind: "platform-update", stack, status: "done", changes, durationMs: Date.now() - started });
        } catch (err) {
          state = record(state, platformKey(stack), { status: "failed", message: message(err) }, now());
          save();
          failedStep("platform-update", stack, err, started);
          break;
        }
      }
      if (halted()) break;
    }

    // 3. The contract of each platform stack the wave's tenant stacks read (only failures are steps).
    const mine = tenants.filter((t) => waveOf.get(t.spec.platform) === wave.name);
    for (const stack of wave.stacks.filter((s) => mine.some((t) => t.spec.platform === s))) {
      const started = Date.now();
      try {
        await options.platform.contract(stack);
      } catch (err) {
        failedStep("platform-contract", stack, err, started);
        if (!dryRun) break;
      }
    }
    if (halted()) break;

    // 4. The wave's tenant stacks, with bounded concurrency, halting at the first failure.
    const todo = mine.filter((t) => dryRun || !isDone(state, tenantKey(t.stack)));
    for (const t of mine.filter((t) => !todo.includes(t))) {
      step({
        wave: wave.name,
        kind: "tenant-up",
        stack: t.stack,
        status: "already-done",
        changes: state.steps[tenantKey(t.stack)].changes,
        durationMs: 0,
      });
    }
    emit({
      kind: "tenants",
      wave: wave.name,
      message: `wave ${wave.name}: ${todo.length} tenant stack(s)${mine.length > todo.length ? ` (${mine.length - todo.length} already done)` : ""}`,
    });
    const jobs: TenantJob[] = todo.map((t) => ({ action: dryRun ? "preview" : "up", spec: t.spec }));
    const results = await runJobs(jobs, options.tenants.driver, {
      concurrency: options.concurrency,
      haltOnFailure: !dryRun,
      onEvent: options.onTenantEvent,
      onResult: (result) => {
        if (!dryRun && result.failure?.kind !== "skipped") {
          state = record(
            state,
            tenantKey(result.stack),
            result.ok ? { status: "done", changes: result.changes } : { status: "failed", message: result.failure?.message },
            now(),
          );
          save();
        }
        options.onTenantResult?.(result);
      },
    });
    for (const result of results) {
      step({
        wave: wave.name,
        kind: dryRun ? "tenant-preview" : "tenant-up",
        stack: result.stack,
        status: result.ok ? "done" : result.failure?.kind === "skipped" ? "skipped" : "failed",
        changes: result.ok ? result.changes : undefined,
        message: result.failure?.message,
        durationMs: result.durationMs,
      });
    }
  }

  if (report.halt && !dryRun) {
    report.remaining = options.waves.flatMap((w) => {
      const stacks = w.stacks.filter((s) => !isDone(state, platformKey(s)));
      const open = tenants.filter((t) => waveOf.get(t.spec.platform) === w.name && !isDone(state, tenantKey(t.stack))).length;
      return [...stacks.map((s) => `${w.name}: platform stack ${s}`), ...(open ? [`${w.name}: ${open} tenant stack(s)`] : [])];
    });
  } else if (!report.halt) {
    report.completed = true;
    if (!dryRun) {
      state = finish(state, now());
      save();
    }
  }
  return report;
}

/** Steps that changed something (or, in a dry run, would). */
export function changedSteps(report: RolloutReport): StepResult[] {
  return report.steps.filter((s) => s.status === "done" && s.changes && changeTotal(s.changes) > 0);
}
