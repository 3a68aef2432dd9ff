/**
 * The summary of a batch of tenant stack operations: rows for the table, and the JSON document that
 * `--json` prints. Pure.
 */
import { formatChanges, summarize, type BulkSummary, type TenantJobResult } from "./jobs";
import { seconds } from "./progress";
import { describeRemoval } from "./removal";

export const SUMMARY_HEAD = ["tenant", "stack", "action", "tier", "region", "platform", "result", "changes", "time"];

export function summaryRows(results: readonly TenantJobResult[]): string[][] {
  return results.map((r) => [
    r.slug,
    r.stack,
    r.action,
    r.tier ?? "",
    r.region ?? "",
    r.platform ?? "",
    r.ok ? (r.createdStack ? "ok (new stack)" : "ok") : (r.failure?.kind ?? "failed"),
    r.ok ? formatChanges(r.changes) : "",
    seconds(r.durationMs),
  ]);
}

/** One line under the table: `10 stacks: 9 ok, 1 failed, 0 skipped; 9 changed; 42.0 s`. */
export function summaryLine(summary: BulkSummary): string {
  return `${summary.total} stack(s): ${summary.succeeded} ok, ${summary.failed} failed, ${summary.skipped} skipped; ${summary.changed} changed; ${seconds(summary.durationMs)}`;
}

/** Failure details, one paragraph per failed stack (the table only names the kind). */
export function failureDetails(results: readonly TenantJobResult[]): string[] {
  return results.filter((r) => !r.ok && r.failure).map((r) => `${r.stack}: [${r.failure!.kind}] ${r.failure!.message}`);
}

/**
 * What each `destroy` did (or, dry run, would do) for the tenant's data: the offboarding steps in
 * order, the verified export, the purge date, and what the stack destroy removed (would remove),
 * resource by resource (docs/data-safety.md).
 */
export function offboardingLines(results: readonly TenantJobResult[]): string[] {
  return results
    .filter((r) => r.action === "destroy" && r.steps?.length)
    .flatMap((r) => [
      `${r.slug}${r.dryRun ? " (dry run: nothing was changed; it would)" : ""}:`,
      ...r.steps!.map((step, i) => `  ${i + 1}. ${step}`),
      ...(r.exportFile ? [`  verified export: ${r.exportFile}${r.exportedRows === undefined ? "" : ` (${r.exportedRows} row(s))`}`] : []),
      ...(r.purgeAfter ? [`  rows kept until ${r.purgeAfter}; then \`tenancy tenant purge ${r.slug}\``] : []),
      ...(r.removed?.length
        ? [`  ${r.dryRun ? "the destroy would remove" : "removed"}:`, ...r.removed.map((x) => `    - ${describeRemoval(x)}`)]
        : []),
    ]);
}

export interface BatchReport {
  action: string;
  summary: BulkSummary;
  results: TenantJobResult[];
}

export function batchReport(action: string, results: TenantJobResult[], durationMs: number): BatchReport {
  return { action, summary: summarize(results, durationMs), results };
}
