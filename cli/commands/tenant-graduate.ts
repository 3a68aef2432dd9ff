/**
 * `tenancy tenant graduate <slug>`: moves an Enterprise tenant from the shared tables to its own
 * schema (lib/enterprise/graduation.ts). Holds only that tenant's writes, only for the cutover; verifies every
 * table before flipping; safe to kill and run again (it resumes). Progress on stderr; the result
 * says how long the tenant's writes were held and the rows per second.
 *
 * TENANCY_FAILPOINT=<point> kills the process at that point (crash tests, docs/enterprise.md).
 */
import { DedicatedSchemaCapError } from "../../lib/enterprise/dedicated";
import {
  failpointFromEnv,
  FAILPOINTS,
  graduateTenant,
  MoveConflictError,
  MoveRefusedError,
  type MoveOptions,
  type MoveResult,
} from "../../lib/enterprise/graduation";
import { optionalFlag, parseInteger } from "../args";
import { CONNECTION_OPTIONS, withConnection } from "../connection";
import { printCommandError, table, UsageError } from "../output";
import type { Command, CommandContext } from "../command";
import { findOrUsage, tenantRef } from "./tenant-show";

export const MOVE_OPTIONS = {
  ...CONNECTION_OPTIONS,
  "gate-timeout-ms": { type: "string" },
} as const;

/** Validates the flags common to graduate and demote, before connecting. */
export function moveOptions(ctx: CommandContext): MoveOptions {
  const gate = optionalFlag(ctx, "gate-timeout-ms");
  let failpoint: MoveOptions["failpoint"];
  try {
    failpoint = failpointFromEnv();
  } catch {
    throw new UsageError(`must be one of ${FAILPOINTS.join(", ")}`, "TENANCY_FAILPOINT");
  }
  return {
    gateTimeoutMs: gate === undefined ? undefined : parseInteger(gate, "--gate-timeout-ms", 100, 600_000),
    failpoint,
    onProgress: (p) => ctx.out.progress(`[${p.step}] ${p.message}`),
  };
}

/** Runs a move; refusals (tier, cap, conflicting move) are printed as kind "refused" with their reason (exit 1). */
export async function runMove(ctx: CommandContext, move: typeof graduateTenant, options: MoveOptions): Promise<number> {
  const ref = tenantRef(ctx);
  const result = await withConnection(ctx, async (client) => {
    const tenant = await findOrUsage(client, ref);
    try {
      return await move(client, tenant.id, options);
    } catch (err) {
      if (err instanceof MoveRefusedError || err instanceof DedicatedSchemaCapError || err instanceof MoveConflictError) {
        printCommandError("tenancy", ctx.out.json, { kind: "refused", message: err.message });
        return undefined;
      }
      throw err;
    }
  });
  if (!result) return 1;
  ctx.out.result(result, () => renderMove(result));
  return 0;
}

export function renderMove(r: MoveResult): string {
  const verb = r.direction === "graduate" ? "graduated" : "demoted";
  if (r.alreadyThere) return `${r.tenant.slug} is already in ${r.to}: nothing to do`;
  return [
    `${verb} ${r.tenant.slug}: ${r.from} → ${r.to}${r.resumed ? " (resumed an interrupted move)" : ""}`,
    table(
      ["table", "source rows", "target rows", "checksum", "verified"],
      r.verification.map((v) => [v.table, v.sourceRows, v.targetRows, v.targetChecksum.slice(0, 12), v.ok ? "yes" : "NO"]),
    ),
    `${r.rowsMoved} row(s) in ${r.durationMs} ms (${r.rowsPerSecond} rows/s); ${r.tenant.slug}'s writes were held ${Math.round(r.writesHeldMs)} ms`,
  ].join("\n");
}

export const tenantGraduateCommand: Command = {
  words: ["tenant", "graduate"],
  summary: "move an enterprise tenant from the shared tables to its own schema (resumable, verified)",
  usage: "tenant graduate <slug> [--gate-timeout-ms N]",
  options: MOVE_OPTIONS,
  async run(ctx) {
    tenantRef(ctx);
    return runMove(ctx, graduateTenant, moveOptions(ctx));
  },
};
