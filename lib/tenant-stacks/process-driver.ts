/**
 * A `TenantStackDriver` that runs every job in its own Node process (scripts/tenant-stack-worker.ts),
 * which runs the Automation API for that one stack. This is how bulk runs keep stack operations
 * apart: inline programs in one process share the Pulumi SDK's global state, and a process per stack
 * also contains a crash or a leak to one tenant.
 *
 * Protocol: the job goes to the worker's stdin as JSON; the worker writes newline-delimited JSON
 * messages (`{ event }` …, then one `{ result }`) on file descriptor 3, so whatever the program or
 * the SDK prints on stdout/stderr cannot corrupt it. Those streams are kept (the last few KB) to
 * explain a worker that died without a result.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { notRunResult, type JobEvent, type TenantJob, type TenantJobResult, type TenantStackDriver } from "./jobs";

export type WorkerMessage = { event: JobEvent } | { result: TenantJobResult };

const TAIL_BYTES = 4096;

export interface ProcessDriverOptions {
  repoRoot: string;
  /** The worker script; default `<repo>/scripts/tenant-stack-worker.ts`. */
  workerScript?: string;
  /** Environment for the worker's Pulumi runs, over lib/pulumi/env.ts (tests point the backend at a temporary directory). */
  env?: Record<string, string>;
}

/** Splits a stream of chunks into complete lines, keeping the remainder. */
export function lineSplitter(onLine: (line: string) => void): (chunk: Buffer | string) => void {
  let rest = "";
  return (chunk) => {
    rest += chunk.toString();
    let newline: number;
    while ((newline = rest.indexOf("\n")) >= 0) {
      const line = rest.slice(0, newline);
      rest = rest.slice(newline + 1);
      if (line.trim()) onLine(line);
    }
  };
}

export class ProcessDriver implements TenantStackDriver {
  constructor(private readonly options: ProcessDriverOptions) {}

  run(job: TenantJob, onEvent: (event: JobEvent) => void): Promise<TenantJobResult> {
    const script = this.options.workerScript ?? path.join(this.options.repoRoot, "scripts", "tenant-stack-worker.ts");
    return new Promise((resolve) => {
      const child = spawn(process.execPath, ["--import", "tsx", script], {
        cwd: this.options.repoRoot,
        // The worker layers these over lib/pulumi/env.ts (which would otherwise set the backend itself).
        env: { ...process.env, ALPHAPULSE_TENANT_ENV_JSON: JSON.stringify(this.options.env ?? {}) },
        stdio: ["pipe", "pipe", "pipe", "pipe"],
      });
      let result: TenantJobResult | undefined;
      let output = "";
      const keep = (chunk: Buffer) => {
        output = (output + chunk.toString()).slice(-TAIL_BYTES);
      };
      child.stdout.on("data", keep);
      child.stderr.on("data", keep);
      const messages = child.stdio[3] as NodeJS.ReadableStream;
      messages.on(
        "data",
        lineSplitter((line) => {
          let message: WorkerMessage;
          try {
            message = JSON.parse(line) as WorkerMessage;
          } catch {
            return; // not ours
          }
          if ("event" in message) onEvent(message.event);
          else if ("result" in message) result = message.result;
        }),
      );
      child.on("error", (err) => resolve(notRunResult(job, { kind: "failed", message: `could not start the worker: ${err.message}` })));
      child.on("close", (code, signal) => {
        if (result) return resolve(result);
        const tail = output.trim().split("\n").slice(-8).join("\n");
        resolve(
          notRunResult(job, {
            kind: "failed",
            message: `worker exited (${signal ?? `code ${code}`}) without a result${tail ? `:\n${tail}` : ""}`,
          }),
        );
      });
      child.stdin.end(JSON.stringify(job));
    });
  }
}
