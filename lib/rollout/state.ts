/**
 * The rollout's state file: what an unfinished rollout has done, so running the same command again
 * resumes after the last completed step instead of starting over. Written after every step (a crash
 * loses at most the step that was running, and every step is an idempotent stack operation).
 *
 *   { version, id, environment, waves, startedAt, updatedAt, finishedAt?, steps: { <key>: record } }
 *
 * Keys: `platform:<stack>` (the platform stack's update) and `tenant:<stack>` (a tenant stack's up).
 * Pure, except FileStateStore.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import type { Wave } from "./waves";

export const STATE_VERSION = 1;

const StepRecord = z.object({
  status: z.enum(["done", "failed"]),
  at: z.string(),
  changes: z.record(z.string(), z.number()).optional(),
  message: z.string().optional(),
});
export type StepRecord = z.infer<typeof StepRecord>;

export const RolloutState = z.object({
  version: z.literal(STATE_VERSION),
  id: z.string(),
  environment: z.string(),
  waves: z.array(z.object({ name: z.string(), stacks: z.array(z.string()) })),
  startedAt: z.string(),
  updatedAt: z.string(),
  finishedAt: z.string().optional(),
  steps: z.record(z.string(), StepRecord),
});
export type RolloutState = z.infer<typeof RolloutState>;

export const platformKey = (stack: string) => `platform:${stack}`;
export const tenantKey = (stack: string) => `tenant:${stack}`;

export function newState(id: string, environment: string, waves: Wave[], now: Date): RolloutState {
  return { version: STATE_VERSION, id, environment, waves, startedAt: now.toISOString(), updatedAt: now.toISOString(), steps: {} };
}

/** True when `state` is a rollout of exactly these waves (names and stacks) in this environment. */
export function samePlan(state: RolloutState, environment: string, waves: readonly Wave[]): boolean {
  return state.environment === environment && JSON.stringify(state.waves) === JSON.stringify(waves);
}

export function isDone(state: RolloutState, key: string): boolean {
  return state.steps[key]?.status === "done";
}

export function record(state: RolloutState, key: string, step: Omit<StepRecord, "at">, now: Date): RolloutState {
  return { ...state, updatedAt: now.toISOString(), steps: { ...state.steps, [key]: { ...step, at: now.toISOString() } } };
}

export function finish(state: RolloutState, now: Date): RolloutState {
  return { ...state, updatedAt: now.toISOString(), finishedAt: now.toISOString() };
}

export class RolloutStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RolloutStateError";
  }
}

export interface StateStore {
  /** Where it lives, for messages. */
  readonly location: string;
  /** Makes this process the only rollout using the store; throws RolloutStateError when another holds it. Returns the release. */
  lock(): () => void;
  load(): RolloutState | undefined;
  save(state: RolloutState): void;
}

/**
 * Whether a process with this pid exists. EPERM counts as existing (another user's rollout holds
 * the lock), unlike lib/local/processes.ts isProcessAlive, which asks whether we may signal it.
 */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** A JSON file, replaced atomically (write, then rename) so a crash never leaves half a file. */
export class FileStateStore implements StateStore {
  constructor(readonly location: string) {}

  /**
   * `<state file>.lock`, created exclusively with this process's pid: two rollouts of one
   * environment would otherwise interleave their steps and overwrite each other's record. A lock
   * whose process is gone (killed, crashed) is taken over.
   */
  lock(): () => void {
    mkdirSync(path.dirname(this.location), { recursive: true });
    const lockFile = `${this.location}.lock`;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        writeFileSync(lockFile, JSON.stringify({ pid: process.pid, since: new Date().toISOString() }) + "\n", { flag: "wx" });
        return () => rmSync(lockFile, { force: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      let holder: { pid?: unknown; since?: unknown } = {};
      try {
        holder = JSON.parse(readFileSync(lockFile, "utf8"));
      } catch {
        // Unreadable (being written this instant, or left empty by a crash): treated as held.
      }
      if (typeof holder.pid !== "number" || processAlive(holder.pid)) {
        const who = typeof holder.pid === "number" ? `pid ${holder.pid}, since ${String(holder.since)}` : "unknown process";
        throw new RolloutStateError(
          `another rollout is running with ${this.location} (${who}): wait for it to finish, or remove ${lockFile} if that process is gone`,
        );
      }
      rmSync(lockFile, { force: true }); // its process is gone
    }
    throw new RolloutStateError(`could not take ${lockFile}: another rollout keeps taking it`);
  }

  load(): RolloutState | undefined {
    if (!existsSync(this.location)) return undefined;
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(this.location, "utf8"));
    } catch (err) {
      throw new RolloutStateError(`${this.location} is not valid JSON (${(err as Error).message}); move it away or pass --restart`);
    }
    const parsed = RolloutState.safeParse(raw);
    if (!parsed.success)
      throw new RolloutStateError(
        `${this.location} is not a rollout state file (${parsed.error.issues[0].message}); move it away or pass --restart`,
      );
    return parsed.data;
  }

  save(state: RolloutState): void {
    mkdirSync(path.dirname(this.location), { recursive: true });
    const tmp = `${this.location}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(state, null, 2) + "\n");
    renameSync(tmp, this.location);
  }
}

/** In memory (unit tests, dry runs). */
export class MemoryStateStore implements StateStore {
  readonly location = "memory";
  saves = 0;
  locked = false;
  constructor(public state?: RolloutState) {}
  lock(): () => void {
    if (this.locked) throw new RolloutStateError("another rollout is running with memory");
    this.locked = true;
    return () => (this.locked = false);
  }
  load(): RolloutState | undefined {
    return this.state && structuredClone(this.state);
  }
  save(state: RolloutState): void {
    this.saves++;
    this.state = structuredClone(state);
  }
}
