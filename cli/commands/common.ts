/**
 * What several `tenancy` commands share, in one place rather than exported from a sibling command
 * (graphile/migrate's `_common`): the `<slug>` positional and the registry lookup behind it, how a
 * tenant is printed, the graduate/demote move, and byte counts. Connections (PostgreSQL, Redis)
 * come from the flags in cli/connection.ts.
 */
import { DedicatedSchemaCapError } from "../../lib/enterprise/dedicated";
import {
  failpointFromEnv,
  FAILPOINTS,
  MoveConflictError,
  MoveRefusedError,
  type graduateTenant,
  type MoveOptions,
  type MoveResult,
} from "../../lib/enterprise/graduation";
import type { Queryable } from "../../lib/db/client";
import { TenantId, TenantSlug, type Tenant } from "../../lib/tenant/model";
import { requireTenant, TenantNotFoundError } from "../../lib/tenant/registry";
import { optionalFlag, parseInteger, positionals } from "../args";
import type { CommandContext } from "../command";
import { CONNECTION_OPTIONS, withConnection } from "../connection";
import { CommandFailure, table, UsageError } from "../output";

// --- the <slug> positional and the registry lookup ---------------------------------------------

/** The one positional of the tenant commands: a slug (or a tenant id), validated before connecting. */
export function tenantRef(ctx: Pick<CommandContext, "args">): string {
  const { slug } = positionals(ctx, ["slug"]);
  if (TenantId.safeParse(slug).success) return slug.toLowerCase();
  const parsed = TenantSlug.safeParse(slug);
  if (!parsed.success) throw new UsageError(parsed.error.issues[0]?.message ?? "is invalid", "slug");
  return parsed.data;
}

/** The tenant, or a UsageError naming the slug when there is none. */
export async function findOrUsage(client: Queryable, ref: string): Promise<Tenant> {
  try {
    return await requireTenant(client, ref);
  } catch (err) {
    if (err instanceof TenantNotFoundError) throw new UsageError(`no tenant "${ref}"`, "slug");
    throw err;
  }
}

/** The tenant named by the `<slug>` positional (or a tenant id), from the registry. */
export async function lookupTenant(ctx: Pick<CommandContext, "args" | "flags" | "out">): Promise<Tenant> {
  const ref = tenantRef(ctx);
  return withConnection(ctx, (client) => findOrUsage(client, ref));
}

/** True when the positional is a tenant id (usable without the registry). */
export function isTenantId(ref: string): boolean {
  return TenantId.safeParse(ref).success;
}

// --- printing -------------------------------------------------------------------------------------

export function renderTenant(t: Tenant): string {
  return table(
    ["field", "value"],
    [
      ["slug", t.slug],
      ["id", t.id],
      ["name", t.displayName],
      ["tier", t.tier],
      ["region", t.region],
      ["placement", t.placement],
      ["status", t.status],
      ["created", t.createdAt.toISOString()],
      ["updated", t.updatedAt.toISOString()],
    ],
  );
}

/** Bytes in a human unit: 1536 → "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

// --- moves: `tenant graduate` and `tenant demote` -----------------------------------------------

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
      if (err instanceof MoveRefusedError || err instanceof DedicatedSchemaCapError || err instanceof MoveConflictError)
        throw new CommandFailure({ kind: "refused", message: err.message });
      throw err;
    }
  });
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
