/**
 * Tenant stack operations as data, and the bulk runner that executes many of them with bounded
 * concurrency. The runner knows nothing about Pulumi: it calls a `TenantStackDriver`, which is the
 * Automation API in production (lib/tenant-stacks/automation.ts, one process per stack through
 * lib/tenant-stacks/process-driver.ts) and a fake in the unit tests.
 */
import pLimit from "p-limit";
import type { StackFailure } from "./errors";
import type { Removal } from "./removal";
import { tenantStackName } from "./names";
import type { TenantStackSpec } from "./spec";

export const TENANT_ACTIONS = ["up", "preview", "destroy"] as const;
export type TenantAction = (typeof TENANT_ACTIONS)[number];

export type TenantJob =
  | { action: "up" | "preview"; spec: TenantStackSpec }
  | {
      action: "destroy";
      slug: string;
      /** Directory for the offboarding export; `null` skips the export (explicit `--skip-export`). */
      exportDir: string | null;
      /** `--export-dir` was given (not the default): refused for an AWS tenant, whose export stays in the region. */
      exportDirGiven?: boolean;
      /** `--platform`: the platform stack the tenant stack must belong to (refused otherwise, nothing changed). */
      platform?: string;
      /** Days the offboarded tenant's rows are kept before a purge may run. @default 30 (lib/tenant/registry.ts) */
      retentionDays?: number;
      /** Offboard and destroy nothing: report the steps and the planned destroy. @default false */
      dryRun?: boolean;
    };

/** Resource operations of one stack operation, as the engine counts them (create, update, delete, replace, same, ...). */
export type ChangeCounts = Record<string, number>;

export interface TenantJobResult {
  slug: string;
  stack: string;
  action: TenantAction;
  ok: boolean;
  /** The stack did not exist before this `up` (a new tenant). */
  createdStack?: boolean;
  /** Resource operations (planned for preview, done for up/destroy). */
  changes: ChangeCounts;
  durationMs: number;
  tier?: string;
  region?: string;
  platform?: string;
  /** Non-secret stack outputs after `up` (tenant id, placement, ...). */
  outputs?: Record<string, unknown>;
  /** Where `destroy` wrote the tenant's export before offboarding it. */
  exportFile?: string;
  /** `destroy`: the tenant is offboarded, its rows kept until this time (ISO), then `tenancy tenant purge`. */
  purgeAfter?: string;
  /** `destroy`: rows in the verified export. */
  exportedRows?: number;
  /** `destroy`: SHA-256 of the export as read back where it is kept (the region's S3 bucket on AWS). */
  exportSha256?: string;
  /** `destroy`: what the stack destroy removed (dry run: would remove), from the stack's state, with each effect. */
  removed?: Removal[];
  /** `destroy`: what the offboarding did, or (dry run) would do, in order. */
  steps?: string[];
  /** `destroy --dry-run`: nothing was changed; `changes` are the planned ones. */
  dryRun?: boolean;
  failure?: StackFailure;
}

export const PHASES = ["queued", "platform", "stack", "preview", "update", "export", "destroy", "done"] as const;
export type Phase = (typeof PHASES)[number];

export interface JobEvent {
  slug: string;
  phase: Phase;
  message: string;
  /** Resource steps finished so far in this phase. */
  steps?: number;
}

export interface TenantStackDriver {
  /** Runs one job. Never throws for a failed stack operation: the failure is in the result. */
  run(job: TenantJob, onEvent: (event: JobEvent) => void): Promise<TenantJobResult>;
}

export function jobSlug(job: TenantJob): string {
  return job.action === "destroy" ? job.slug : job.spec.slug;
}

/** Operations that change nothing: an unchanged resource, a read of the platform StackReference (and its discard on destroy). */
export const NON_CHANGES: readonly string[] = ["same", "read", "discard"];

/** Total of the counts that are changes. */
export function changeTotal(changes: ChangeCounts): number {
  return Object.entries(changes).reduce((n, [op, count]) => (NON_CHANGES.includes(op) ? n : n + count), 0);
}

/** `{ create: 3, same: 1 }` → `+3`; `{}` → `no changes`. Order: create, update, replace, delete, then others. */
export function formatChanges(changes: ChangeCounts): string {
  const symbols: Record<string, string> = {
    create: "+",
    update: "~",
    replace: "+-",
    delete: "-",
    "create-replacement": "++",
    "delete-replaced": "--",
  };
  const order = ["create", "update", "replace", "delete"];
  const ops = Object.keys(changes)
    .filter((op) => !NON_CHANGES.includes(op) && changes[op] > 0)
    .sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99) || a.localeCompare(b));
  if (ops.length === 0) return "no changes";
  return ops.map((op) => `${symbols[op] ?? `${op} `}${changes[op]}`).join(" ");
}

export interface BulkOptions {
  /** At most this many stack operations at once. */
  concurrency: number;
  /** Start nothing new after the first failure (the rollout); bulk provisioning goes on by default. */
  haltOnFailure?: boolean;
  onEvent?: (event: JobEvent) => void;
  onResult?: (result: TenantJobResult, index: number) => void;
}

/** A result for a job that never ran (halted, or the driver itself broke). */
export function notRunResult(job: TenantJob, failure: StackFailure): TenantJobResult {
  const slug = jobSlug(job);
  return { slug, stack: tenantStackName(slug), action: job.action, ok: false, changes: {}, durationMs: 0, failure };
}

/**
 * Runs every job through `driver`, at most `concurrency` at once, and returns the results in input
 * order. A driver that throws (instead of returning a failed result) counts as that job's failure.
 */
export async function runJobs(jobs: readonly TenantJob[], driver: TenantStackDriver, options: BulkOptions): Promise<TenantJobResult[]> {
  if (!Number.isInteger(options.concurrency) || options.concurrency < 1)
    throw new RangeError(`concurrency must be a positive integer, got ${options.concurrency}`);
  const limit = pLimit(options.concurrency);
  const onEvent = options.onEvent ?? (() => {});
  let halted: string | undefined;
  const run = async (job: TenantJob, index: number): Promise<TenantJobResult> => {
    let result: TenantJobResult;
    if (halted !== undefined) {
      result = notRunResult(job, { kind: "skipped", message: `not started: ${halted} failed first` });
    } else {
      try {
        result = await driver.run(job, onEvent);
      } catch (err) {
        result = notRunResult(job, { kind: "failed", message: (err as Error).message ?? String(err) });
      }
      if (!result.ok && options.haltOnFailure && halted === undefined) halted = result.stack;
    }
    options.onResult?.(result, index);
    return result;
  };
  for (const job of jobs) onEvent({ slug: jobSlug(job), phase: "queued", message: "queued" });
  return Promise.all(jobs.map((job, i) => limit(() => run(job, i))));
}

export interface BulkSummary {
  total: number;
  succeeded: number;
  failed: number;
  skipped: number;
  /** Stacks whose operation changed (or, for preview, would change) something. */
  changed: number;
  durationMs: number;
}

export function summarize(results: readonly TenantJobResult[], durationMs: number): BulkSummary {
  const skipped = results.filter((r) => r.failure?.kind === "skipped").length;
  const failed = results.filter((r) => !r.ok).length - skipped;
  return {
    total: results.length,
    succeeded: results.filter((r) => r.ok).length,
    failed,
    skipped,
    changed: results.filter((r) => r.ok && changeTotal(r.changes) > 0).length,
    durationMs,
  };
}
