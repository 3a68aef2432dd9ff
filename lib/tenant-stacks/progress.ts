/**
 * The progress display of tenant stack operations, on stderr. The state and its rendering are pure
 * (`ProgressBoard`, `renderBoard`); `attachProgress` draws it: on a terminal, a block that is redrawn
 * in place (a header and one line per running stack); elsewhere (CI logs, pipes), one line per
 * stack when it starts and when it finishes, so logs stay readable.
 */
import { formatChanges, type JobEvent, type Phase, type TenantJobResult } from "./jobs";

export interface BoardEntry {
  slug: string;
  phase: Phase;
  message: string;
  steps: number;
  startedAt?: number;
  result?: TenantJobResult;
}

export class ProgressBoard {
  readonly entries = new Map<string, BoardEntry>();

  constructor(readonly action: string) {}

  apply(event: JobEvent, now: number): { started: boolean } {
    const entry = this.entries.get(event.slug) ?? { slug: event.slug, phase: "queued" as Phase, message: "queued", steps: 0 };
    const started = entry.startedAt === undefined && event.phase !== "queued";
    if (started) entry.startedAt = now;
    entry.phase = event.phase;
    entry.message = event.message;
    if (event.steps !== undefined) entry.steps = event.steps;
    this.entries.set(event.slug, entry);
    return { started };
  }

  finish(result: TenantJobResult): void {
    const entry = this.entries.get(result.slug) ?? { slug: result.slug, phase: "done" as Phase, message: "", steps: 0 };
    entry.phase = "done";
    entry.result = result;
    this.entries.set(result.slug, entry);
  }

  counts(): { total: number; done: number; failed: number; running: number; queued: number } {
    const all = [...this.entries.values()];
    const done = all.filter((e) => e.result);
    return {
      total: all.length,
      done: done.length,
      failed: done.filter((e) => !e.result!.ok).length,
      running: all.filter((e) => !e.result && e.startedAt !== undefined).length,
      queued: all.filter((e) => !e.result && e.startedAt === undefined).length,
    };
  }
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** One line for a finished stack: `✓ tenant-acme up +4 (12.3 s)` or `✗ tenant-acme up failed: …`. */
export function resultLine(result: TenantJobResult): string {
  if (result.ok) return `✓ ${result.stack} ${result.action}: ${formatChanges(result.changes)} (${seconds(result.durationMs)})`;
  const kind = result.failure?.kind === "skipped" ? "skipped" : "failed";
  return `✗ ${result.stack} ${result.action} ${kind}: ${result.failure?.message.split("\n")[0] ?? "unknown error"}`;
}

/** The redrawn block: header, then each running stack with its phase, steps and elapsed time. */
export function renderBoard(board: ProgressBoard, now: number): string[] {
  const c = board.counts();
  const header = `${board.action}: ${c.done}/${c.total} done${c.failed ? `, ${c.failed} failed` : ""}, ${c.running} running, ${c.queued} queued`;
  const running = [...board.entries.values()]
    .filter((e) => !e.result && e.startedAt !== undefined)
    .map(
      (e) =>
        `  … tenant-${e.slug} ${e.phase}${e.steps ? ` (${e.steps} steps)` : ""}: ${e.message.slice(0, 70)} ${seconds(now - e.startedAt!)}`,
    );
  return [header, ...running];
}

export interface ProgressSink {
  onEvent(event: JobEvent): void;
  onResult(result: TenantJobResult): void;
  /** Stops redrawing and leaves the final state on screen. */
  close(): void;
}

/** Draws the board on `stream` (stderr); silent when `enabled` is false (--json). */
export function attachProgress(action: string, stream: NodeJS.WriteStream, enabled: boolean): ProgressSink {
  const board = new ProgressBoard(action);
  if (!enabled) return { onEvent: (e) => board.apply(e, Date.now()), onResult: (r) => board.finish(r), close() {} };
  if (!stream.isTTY) {
    return {
      onEvent(event) {
        if (board.apply(event, Date.now()).started) stream.write(`→ tenant-${event.slug} started\n`);
      },
      onResult(result) {
        board.finish(result);
        const c = board.counts();
        stream.write(`[${c.done}/${c.total}] ${resultLine(result)}\n`);
      },
      close() {},
    };
  }
  let drawn = 0;
  const redraw = () => {
    const lines = renderBoard(board, Date.now());
    const clear = drawn ? `\x1b[${drawn}A\x1b[0J` : "";
    stream.write(clear + lines.map((l) => l.slice(0, (stream.columns ?? 120) - 1)).join("\n") + "\n");
    drawn = lines.length;
  };
  const timer = setInterval(redraw, 250);
  timer.unref();
  return {
    onEvent(event) {
      board.apply(event, Date.now());
    },
    onResult(result) {
      board.finish(result);
      // Finished lines scroll up above the live block.
      stream.write((drawn ? `\x1b[${drawn}A\x1b[0J` : "") + resultLine(result) + "\n");
      drawn = 0;
      redraw();
    },
    close() {
      clearInterval(timer);
      redraw();
    },
  };
}
