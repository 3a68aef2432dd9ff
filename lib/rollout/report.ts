/** How a rollout report reads: a table of steps, then the outcome and how to resume. Pure. */
import { formatChanges } from "../tenant-stacks/jobs";
import { seconds } from "../tenant-stacks/progress";
import type { RolloutReport, StepResult } from "./run";

export const STEP_HEAD = ["wave", "step", "stack", "result", "changes", "time"];

export function stepRows(steps: readonly StepResult[]): string[][] {
  return steps.map((s) => [
    s.wave,
    s.kind,
    s.stack,
    s.status === "failed" ? `FAILED: ${(s.message ?? "").split("\n")[0].slice(0, 80)}` : s.status,
    s.changes ? formatChanges(s.changes) : "",
    s.status === "already-done" ? "" : seconds(s.durationMs),
  ]);
}

/** The lines after the table: outcome, first failure, what remains, how to resume. */
export function outcomeLines(report: RolloutReport, command = "npm run rollout --"): string[] {
  const plan = report.waves.map((w) => `${w.name} (${w.stacks.join(", ")})`).join(" → ");
  const lines = [
    `${report.dryRun ? "dry run" : "rollout"} ${report.id}${report.resumed ? " (resumed)" : ""}: environment ${report.environment}, waves ${plan}`,
  ];
  const failures = report.steps.filter((s) => s.status === "failed");
  if (report.dryRun) {
    lines.push(
      failures.length
        ? `dry run found ${failures.length} failure(s); nothing was changed`
        : "dry run: every preview succeeded; nothing was changed",
    );
  } else if (report.completed) {
    lines.push("completed: every wave is done");
  } else if (report.halt) {
    lines.push(
      `HALTED at wave ${report.halt.wave}, ${report.halt.kind} of ${report.halt.stack}:`,
      ...report.halt.message.split("\n").map((l) => `  ${l}`),
      `not done: ${report.remaining.join("; ") || "nothing"}`,
      `resume: fix the cause and run the same command again (${command} --waves ${report.waves.map((w) => w.name).join(",")}); ` +
        `completed steps are skipped (state: ${report.stateFile ?? "none"})`,
    );
  }
  for (const u of report.unreadable) lines.push(`left alone: ${u.stack}: ${u.problem}`);
  if (report.outside) lines.push(`left alone: ${report.outside} tenant stack(s) of platform stacks outside these waves`);
  return lines;
}
