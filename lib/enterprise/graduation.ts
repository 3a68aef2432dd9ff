/**
 * Graduation (shared → dedicated schema) and demotion (dedicated → shared) of one tenant, as a
 * crash-safe state machine recorded in tenancy.tenant_moves (migration 0005):
 *
 *   planned ──provision target──▶ target_ready ──prefill──▶ prefilled ──cutover──▶ flipped ──remove source──▶ done
 *
 *   provision  graduate: the tenant's dedicated schema from the catalogue (lib/enterprise/dedicated.ts, the cap
 *              applies); demote: nothing (the shared schema exists).
 *   prefill    copy the tenant's rows source → target in one REPEATABLE READ snapshot, without
 *              holding the tenant's writes. Converging, not appending: it deletes gone keys,
 *              inserts missing rows and updates changed ones, so a re-run after a crash is cheap.
 *   cutover    ONE transaction: take the tenant's write gate exclusively (enter_tenant() takes it
 *              shared, so this waits for the tenant's running transactions and holds its new ones;
 *              other tenants' gates are other keys and never wait), bring the target up to date
 *              with what changed since the prefill (one full join per table finds the keys), verify
 *              per table in one more pass (row counts, content checksums of both sides, key
 *              anti-joins both ways, rows that differ), flip the placement, commit. A crash anywhere in it rolls
 *              all of it back; requests queued at the gate then read the new placement.
 *   remove     delete the tenant's rows from the source (graduate: batches in the shared tables;
 *              demote: drop the dedicated schema). Only after the flip is committed.
 *
 * Every step is idempotent and records its completion in the same or the next transaction, so
 * running the command again after a kill at any point finishes the move with every row exactly
 * once, in exactly one place. Copying runs as the maintenance role (BYPASSRLS) with an explicit
 * tenant filter; registry writes as the owner. A session-level advisory lock keeps two movers of
 * the same tenant apart.
 */
import { allColumns, catalogueFingerprint, TENANT_TABLES, tablesInDeleteOrder, type TenantTable } from "../schema/catalogue";
import { withTransaction, type Queryable } from "../db/client";
import { isLockTimeout, lockForTransaction, lockSession, tenantGateKey, tenantMoveKey } from "../db/locks";
import {
  DedicatedSchemaCapError,
  dropDedicatedSchema,
  provisionDedicatedSchema,
  RegistryBusyError,
  tenantLoginRoleExists,
} from "./dedicated";
import { ROLES } from "../schema/roles";
import type { CapacityInputs } from "./schema-capacity";
import { planSchema, readSchemaStates, readTenantContextMode, REGISTRY_SCHEMA, SHARED_SCHEMA } from "../schema/planner";
import { ident, qualified } from "../db/sql";
import { dedicatedSchemaName, type Placement, type Tenant } from "../tenant/model";
import { requireTenant, setTenantPlacement } from "../tenant/registry";
import {
  applyDiff,
  deleteGoneRows,
  diffTenantRows,
  renderForeignRows,
  syncTenantRows,
  upsertRows,
  verifyCopy,
  type TableVerification,
} from "./tenant-rows";

export type MoveDirection = "graduate" | "demote";
export const MOVE_STEPS = ["planned", "target_ready", "prefilled", "flipped", "done"] as const;
export type MoveStep = (typeof MOVE_STEPS)[number];

/** Named points where tests (and TENANCY_FAILPOINT) can crash a move. */
export const FAILPOINTS = [
  "after-plan",
  "after-provision",
  "during-prefill",
  "after-prefill",
  "cutover-gate-held",
  "cutover-before-commit",
  "after-flip",
  "during-removal",
  "after-removal",
] as const;
export type Failpoint = (typeof FAILPOINTS)[number];

export interface MoveProgress {
  step: MoveStep | "gate";
  message: string;
}

export interface MoveOptions {
  tables?: readonly TenantTable[];
  /** Capacity overrides for provisioning (lib/enterprise/schema-capacity.ts). */
  capacity?: Partial<CapacityInputs>;
  /** Longest wait for the tenant's running transactions at the gate before giving up (and retrying later). @default 10000 */
  gateTimeoutMs?: number;
  /** Rows per batch when deleting the source rows. @default 10000 */
  removeBatchSize?: number;
  /** Graduate tenants below the enterprise tier (tests, special cases). @default false */
  allowAnyTier?: boolean;
  onProgress?: (p: MoveProgress) => void;
  /** Called at each named point; tests crash the move here. */
  failpoint?: (point: Failpoint) => void | Promise<void>;
}

export interface MoveResult {
  tenant: { id: string; slug: string };
  direction: MoveDirection;
  from: string;
  to: string;
  /** True when the tenant was already where the command would put it and no move was open. */
  alreadyThere: boolean;
  /** True when this run finished a move an earlier (interrupted) run started. */
  resumed: boolean;
  moveId?: number;
  steps: { step: MoveStep; ms: number }[];
  verification: TableVerification[];
  rowsMoved: number;
  /** From requesting the gate to committing the flip: how long the tenant's writes were held. */
  writesHeldMs: number;
  durationMs: number;
  rowsPerSecond: number;
}

export class MoveConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MoveConflictError";
  }
}

export class MoveRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MoveRefusedError";
  }
}

export class VerificationError extends Error {
  constructor(readonly verification: TableVerification[]) {
    const bad = verification.filter((v) => !v.ok);
    super(
      `copy verification failed, nothing was flipped: ` +
        bad
          .map(
            (v) =>
              `${v.table} source ${v.sourceRows} rows/${v.sourceChecksum.slice(0, 8)} target ${v.targetRows} rows/${v.targetChecksum.slice(0, 8)}` +
              (v.missingInTarget.length ? ` missing ${v.missingInTarget.join(",")}` : "") +
              (v.different ? ` ${v.different} different` : "") +
              (v.extraInTarget.length ? ` extra ${v.extraInTarget.join(",")}` : ""),
          )
          .join("; "),
    );
    this.name = "VerificationError";
  }
}

interface MoveRow {
  id: number;
  tenant_id: string;
  direction: MoveDirection;
  source_schema: string;
  target_schema: string;
  step: MoveStep;
  attempts: number;
  verification: TableVerification[] | null;
  rows_moved: string | null;
  writes_held_ms: string | null;
}

const moves = qualified(REGISTRY_SCHEMA, "tenant_moves");

/** A failpoint hook from the environment: TENANCY_FAILPOINT=<point> kills this process there (crash tests). */
export function failpointFromEnv(env: NodeJS.ProcessEnv = process.env): ((point: Failpoint) => void) | undefined {
  const wanted = env.TENANCY_FAILPOINT;
  if (!wanted) return undefined;
  if (!(FAILPOINTS as readonly string[]).includes(wanted)) throw new Error(`TENANCY_FAILPOINT must be one of ${FAILPOINTS.join(", ")}`);
  return (point) => {
    if (point === wanted) process.kill(process.pid, "SIGKILL");
  };
}

export function graduateTenant(client: Queryable, ref: string, options: MoveOptions = {}): Promise<MoveResult> {
  return moveTenant(client, ref, "graduate", options);
}

export function demoteTenant(client: Queryable, ref: string, options: MoveOptions = {}): Promise<MoveResult> {
  return moveTenant(client, ref, "demote", options);
}

/** The open (unfinished) move of a tenant, if any. */
export async function openMove(client: Queryable, tenantId: string): Promise<MoveRow | undefined> {
  const { rows } = await client.query(`SELECT * FROM ${moves} WHERE tenant_id = $1 AND finished_at IS NULL`, [tenantId]);
  return rows[0];
}

async function moveTenant(client: Queryable, ref: string, direction: MoveDirection, options: MoveOptions): Promise<MoveResult> {
  const started = Date.now();
  const tenant = await requireTenant(client, ref);
  // Session-level: released when this process's connection ends, however it ends. A killed
  // predecessor's session can take a moment to be noticed, so wait a little before refusing.
  let release: () => Promise<void>;
  try {
    release = await lockSession(client, tenantMoveKey(tenant.id), { timeoutMs: 5000 });
  } catch (err) {
    if (isLockTimeout(err)) throw new MoveConflictError(`another move of tenant ${tenant.slug} is running`);
    throw err;
  }
  try {
    return await runMove(client, tenant, direction, options, started);
  } finally {
    await release().catch(() => {});
  }
}

/** The move itself, under the tenant's move lock: open or resume it, run its steps to `done`, report. */
async function runMove(
  client: Queryable,
  tenant: Tenant,
  direction: MoveDirection,
  options: MoveOptions,
  started: number,
): Promise<MoveResult> {
  const tables = options.tables ?? TENANT_TABLES;
  const progress = options.onProgress ?? (() => {});
  const failpoint = options.failpoint ?? (() => {});
  const opened = await openOrResume(client, tenant, direction, tables, options);
  const from = direction === "graduate" ? SHARED_SCHEMA : dedicatedSchemaName(tenant.id);
  const to = direction === "graduate" ? dedicatedSchemaName(tenant.id) : SHARED_SCHEMA;
  const result: MoveResult = {
    tenant: { id: tenant.id, slug: tenant.slug },
    direction,
    from,
    to,
    alreadyThere: opened === "already-there",
    resumed: false,
    steps: [],
    verification: [],
    rowsMoved: 0,
    writesHeldMs: 0,
    durationMs: 0,
    rowsPerSecond: 0,
  };
  if (opened === "already-there") {
    result.durationMs = Date.now() - started;
    return result;
  }
  let move = opened;
  result.moveId = Number(move.id);
  result.resumed = move.attempts > 1;
  if (move.step === "planned") await failpoint("after-plan");
  const ctx: StepContext = { client, tenant, move, tables, options, progress, failpoint };
  while (move.step !== "done") {
    const stepStarted = Date.now();
    const step = move.step;
    const next = await runStep(ctx);
    move = { ...move, step: next };
    ctx.move = move;
    result.steps.push({ step, ms: Date.now() - stepStarted });
  }
  const final = (await client.query(`SELECT * FROM ${moves} WHERE id = $1`, [move.id])).rows[0] as MoveRow;
  result.verification = final.verification ?? [];
  result.rowsMoved = Number(final.rows_moved ?? 0);
  result.writesHeldMs = Number(final.writes_held_ms ?? 0);
  result.durationMs = Date.now() - started;
  result.rowsPerSecond = result.durationMs > 0 ? Math.round((result.rowsMoved * 1000) / result.durationMs) : 0;
  return result;
}

async function openOrResume(
  client: Queryable,
  tenant: Tenant,
  direction: MoveDirection,
  tables: readonly TenantTable[],
  options: MoveOptions,
): Promise<MoveRow | "already-there"> {
  return withTransaction(client, async (tx) => {
    await tx.query(`SET LOCAL ROLE ${ident(ROLES.owner)}`);
    const { rows } = await tx.query(`SELECT * FROM ${moves} WHERE tenant_id = $1 AND finished_at IS NULL FOR UPDATE`, [tenant.id]);
    const open = rows[0] as MoveRow | undefined;
    if (open) {
      if (open.direction !== direction) {
        const verb = open.direction === "graduate" ? "graduate" : "demote";
        throw new MoveConflictError(
          `a ${open.direction === "graduate" ? "graduation" : "demotion"} of ${tenant.slug} is in progress (step ${open.step}): run \`tenancy tenant ${verb} ${tenant.slug}\` to finish it first`,
        );
      }
      const { rows: updated } = await tx.query(
        `UPDATE ${moves} SET attempts = attempts + 1, updated_at = now() WHERE id = $1 RETURNING *`,
        [open.id],
      );
      return updated[0] as MoveRow;
    }
    const target: Placement = direction === "graduate" ? "dedicated" : "shared";
    if (tenant.placement === target) return "already-there";
    if (direction === "graduate" && tenant.tier !== "enterprise" && !options.allowAnyTier) {
      throw new MoveRefusedError(
        `${tenant.slug} is on the ${tenant.tier} tier: dedicated schemas are for enterprise tenants (change the tier first)`,
      );
    }
    if (direction === "demote" && (await tenantLoginRoleExists(tx, tenant))) {
      throw new MoveRefusedError(
        `${tenant.slug} has a dedicated login role (${dedicatedSchemaName(tenant.id)}_login) whose services would lose their schema: drop it first`,
      );
    }
    const source = direction === "graduate" ? SHARED_SCHEMA : dedicatedSchemaName(tenant.id);
    const targetSchema = direction === "graduate" ? dedicatedSchemaName(tenant.id) : SHARED_SCHEMA;
    const { rows: inserted } = await tx.query(
      `INSERT INTO ${moves} (tenant_id, direction, source_schema, target_schema, catalogue_fingerprint) VALUES ($1, $2, $3, $4, $5) RETURNING *`,
      [tenant.id, direction, source, targetSchema, catalogueFingerprint(tables)],
    );
    return inserted[0] as MoveRow;
  });
}

interface StepContext {
  client: Queryable;
  tenant: Tenant;
  move: MoveRow;
  tables: readonly TenantTable[];
  options: MoveOptions;
  progress: (p: MoveProgress) => void;
  failpoint: (point: Failpoint) => void | Promise<void>;
}

async function setStep(
  tx: Queryable,
  moveId: number,
  step: MoveStep,
  extra: { verification?: TableVerification[]; rowsMoved?: number; writesHeldMs?: number } = {},
): Promise<void> {
  await tx.query(`SET LOCAL ROLE ${ident(ROLES.owner)}`);
  await tx.query(
    `UPDATE ${moves} SET step = $2, updated_at = now(), finished_at = CASE WHEN $2 = 'done' THEN now() END,
            verification = coalesce($3::jsonb, verification), rows_moved = coalesce($4, rows_moved), writes_held_ms = coalesce($5, writes_held_ms)
      WHERE id = $1`,
    [moveId, step, extra.verification ? JSON.stringify(extra.verification) : null, extra.rowsMoved ?? null, extra.writesHeldMs ?? null],
  );
}

/** Runs as its own transaction when no transaction is open. */
async function recordStep(client: Queryable, moveId: number, step: MoveStep): Promise<void> {
  await withTransaction(client, (tx) => setStep(tx, moveId, step));
}

/** Runs the move's current step and returns the step it reached; each step records itself. */
async function runStep(ctx: StepContext): Promise<MoveStep> {
  switch (ctx.move.step) {
    case "planned":
      return provisionTarget(ctx);
    case "target_ready":
      return prefill(ctx);
    case "prefilled":
      return cutover(ctx);
    case "flipped":
      return removeSource(ctx);
    case "done":
      return "done";
  }
}

/** planned → target_ready: graduate provisions the dedicated schema (the cap applies); demote has its target already. */
async function provisionTarget(ctx: StepContext): Promise<MoveStep> {
  const { client, tenant, move, tables, options, progress, failpoint } = ctx;
  const target = move.target_schema;
  if (move.direction === "graduate") {
    progress({ step: "planned", message: `provisioning ${target}` });
    try {
      await provisionDedicatedSchema(client, tenant, { tables, capacity: options.capacity });
    } catch (err) {
      // Nothing has moved yet: abandon the move so the tenant is not left with an open one.
      if (err instanceof DedicatedSchemaCapError)
        await withTransaction(client, async (tx) => {
          await tx.query(`SET LOCAL ROLE ${ident(ROLES.owner)}`);
          await tx.query(`DELETE FROM ${moves} WHERE id = $1 AND step = 'planned'`, [move.id]);
        });
      throw err;
    }
  }
  await failpoint("after-provision");
  await recordStep(client, move.id, "target_ready");
  return "target_ready";
}

/** target_ready → prefilled: copy the tenant's rows into the target in one snapshot, without holding its writes. */
async function prefill(ctx: StepContext): Promise<MoveStep> {
  const { client, tenant, move, tables, progress, failpoint } = ctx;
  const source = move.source_schema;
  const target = move.target_schema;
  await checkColumns(client, [source, target], tables);
  progress({ step: "target_ready", message: `prefilling ${target} from ${source} (tenant writes continue)` });
  await withTransaction(client, async (tx) => {
    await tx.query(`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ`);
    await tx.query(`SET LOCAL ROLE ${ident(ROLES.maintenance)}`);
    await tx.query(`SET LOCAL statement_timeout = 0`);
    // A dedicated schema holds one tenant; anything else in it is a bug we will not spread.
    const dedicated = move.direction === "graduate" ? target : source;
    for (const table of tables) {
      const { rows } = await tx.query(renderForeignRows(dedicated, table), [tenant.id]);
      if (Number(rows[0].n) > 0)
        throw new MoveRefusedError(`${dedicated}.${table.name} holds ${rows[0].n} row(s) of other tenants: refusing to move`);
    }
    // A fresh dedicated schema is bulk-loaded: without its secondary indexes and foreign keys,
    // which are rebuilt afterwards (in one pass each instead of one update per row: ~4× faster).
    const bulk = move.direction === "graduate" && (await isEmpty(tx, target, tables));
    if (bulk) await dropForBulkLoad(tx, target, tables);
    else await deleteGoneRows(tx, source, target, tables, tenant.id);
    let first = true;
    for (const table of tables) {
      const written = await upsertRows(tx, source, target, table, tenant.id);
      progress({ step: "target_ready", message: `prefilled ${table.name}: ${written} row(s) written${bulk ? " (bulk)" : ""}` });
      if (first) await failpoint("during-prefill");
      first = false;
    }
    if (bulk) {
      const rebuilt = await rebuildAfterBulkLoad(tx, target, tables);
      progress({ step: "target_ready", message: `rebuilt ${rebuilt} index(es) and constraint(s) of ${target}` });
    }
  });
  // Foreign keys rebuilt NOT VALID are validated outside that transaction: validation holds only
  // weak locks (the registry stays writable), and a re-run after a crash validates them too.
  await validateForeignKeys(client, target, progress);
  await failpoint("after-prefill");
  await recordStep(client, move.id, "prefilled");
  return "prefilled";
}

/** prefilled → flipped: one transaction behind the tenant's write gate — catch up, verify, flip the placement. */
async function cutover(ctx: StepContext): Promise<MoveStep> {
  const { client, tenant, move, tables, options, progress, failpoint } = ctx;
  const source = move.source_schema;
  const target = move.target_schema;
  await checkColumns(client, [source, target], tables);
  const gateTimeout = options.gateTimeoutMs ?? 10_000;
  progress({
    step: "gate",
    message: `holding ${tenant.slug}'s writes (gate), waiting at most ${gateTimeout} ms for its running transactions`,
  });
  let gateRequested = 0;
  const held = await withTransaction(client, async (tx) => {
    // READ COMMITTED on purpose: every statement after the gate sees every write committed before it.
    await tx.query(`SET TRANSACTION ISOLATION LEVEL READ COMMITTED`);
    // No bound on the work behind the gate: the gate's own wait is bounded by gateTimeout alone.
    await tx.query(`SET LOCAL lock_timeout = 0`);
    await tx.query(`SET LOCAL statement_timeout = 0`);
    gateRequested = Date.now();
    await lockForTransaction(tx, tenantGateKey(tenant.id), { timeoutMs: gateTimeout });
    await tx.query(`SET LOCAL ROLE ${ident(ROLES.maintenance)}`);
    // Hash joins over the tenant's rows, in memory: this transaction is what the tenant waits for.
    await tx.query(`SET LOCAL work_mem = '256MB'`);
    await tx.query(`SAVEPOINT sync`);
    try {
      // What changed since the prefill, as key lists (one full join per table), then applied by key.
      const diffs = await diffTenantRows(tx, source, target, tables, tenant.id);
      if (diffs) await applyDiff(tx, source, target, diffs, tenant.id);
      else await syncTenantRows(tx, source, target, tables, tenant.id);
    } catch (err) {
      // A unique key moved between rows (e.g. two rows swapped a client_order_id) cannot be
      // updated row by row: start the target over from the source.
      if ((err as { code?: string }).code !== "23505") throw err;
      await tx.query(`ROLLBACK TO SAVEPOINT sync`);
      progress({ step: "gate", message: `a unique key moved between rows since the prefill: rewriting ${target} from ${source}` });
      for (const table of tablesInDeleteOrder(tables))
        await tx.query(`DELETE FROM ${qualified(target, table.name)} WHERE tenant_id = $1`, [tenant.id]);
      await syncTenantRows(tx, source, target, tables, tenant.id);
    }
    const verification = await verifyCopy(tx, source, target, tables, tenant.id);
    if (verification.some((v) => !v.ok)) throw new VerificationError(verification);
    await failpoint("cutover-gate-held");
    await tx.query(`SET LOCAL ROLE ${ident(ROLES.owner)}`);
    await setTenantPlacement(tx, tenant.id, move.direction === "graduate" ? "dedicated" : "shared");
    const rowsMoved = verification.reduce((n, v) => n + v.targetRows, 0);
    await setStep(tx, move.id, "flipped", { verification, rowsMoved, writesHeldMs: Date.now() - gateRequested });
    await failpoint("cutover-before-commit");
    return verification;
  });
  const heldMs = Date.now() - gateRequested;
  await withTransaction(client, async (tx) => {
    await tx.query(`SET LOCAL ROLE ${ident(ROLES.owner)}`);
    await tx.query(`UPDATE ${moves} SET writes_held_ms = $2 WHERE id = $1`, [move.id, heldMs]);
  });
  progress({
    step: "gate",
    message: `placement flipped to ${target}; ${tenant.slug}'s writes were held ${heldMs} ms; ${held.length} table(s) verified`,
  });
  return "flipped";
}

/** flipped → done: delete the tenant's rows from the source, only once the flip is committed. */
async function removeSource(ctx: StepContext): Promise<MoveStep> {
  const { client, tenant, move, tables, options, progress, failpoint } = ctx;
  const source = move.source_schema;
  await failpoint("after-flip");
  const current = await requireTenant(client, tenant.id);
  const expected: Placement = move.direction === "graduate" ? "dedicated" : "shared";
  if (current.placement !== expected)
    throw new MoveConflictError(`move ${move.id} is flipped but ${tenant.slug} is ${current.placement}: refusing to remove its rows`);
  if (move.direction === "graduate") {
    const batch = options.removeBatchSize ?? 10_000;
    let first = true;
    for (const table of tablesInDeleteOrder(tables)) {
      let removed = 0;
      for (;;) {
        const { rowCount } = await withTransaction(client, async (tx) => {
          await tx.query(`SET LOCAL ROLE ${ident(ROLES.maintenance)}`);
          return tx.query(
            `DELETE FROM ${qualified(source, table.name)} WHERE tenant_id = $1 AND id IN (SELECT id FROM ${qualified(source, table.name)} WHERE tenant_id = $1 LIMIT $2)`,
            [tenant.id, batch],
          );
        });
        removed += rowCount ?? 0;
        if (first && (rowCount ?? 0) > 0) {
          first = false;
          await failpoint("during-removal");
        }
        if ((rowCount ?? 0) < batch) break;
      }
      progress({ step: "flipped", message: `removed ${removed} row(s) from ${source}.${table.name}` });
    }
  } else {
    await failpoint("during-removal");
    try {
      await dropDedicatedSchema(client, source, (attempt) =>
        progress({ step: "flipped", message: `dropping ${source}: registry busy, retrying (${attempt})` }),
      );
    } catch (err) {
      if (err instanceof RegistryBusyError) throw new MoveConflictError(err.message);
      throw err;
    }
    progress({ step: "flipped", message: `dropped ${source}` });
  }
  await failpoint("after-removal");
  await recordStep(client, move.id, "done");
  return "done";
}

/** True when no table of the schema holds any row (of any tenant). */
async function isEmpty(tx: Queryable, schema: string, tables: readonly TenantTable[]): Promise<boolean> {
  const { rows } = await tx.query(
    `SELECT NOT (${tables.map((t) => `EXISTS (SELECT 1 FROM ${qualified(schema, t.name)})`).join(" OR ")}) AS empty`,
  );
  return rows[0].empty;
}

/** Drops the secondary indexes and foreign keys of an empty dedicated schema's tables (the primary keys stay). */
async function dropForBulkLoad(tx: Queryable, schema: string, tables: readonly TenantTable[]): Promise<void> {
  await tx.query(`SET LOCAL ROLE ${ident(ROLES.owner)}`);
  const names = tables.map((t) => t.name);
  // Only the keys between the schema's own tables. The keys to tenancy.tenants stay: dropping one
  // removes triggers on the registry, which takes an ACCESS EXCLUSIVE lock on it until commit, and
  // every tenant transaction reads the registry in enter_tenant() (the first benchmark stalled every
  // tenant for the length of the copy).
  const { rows: fks } = await tx.query(
    `SELECT c.relname AS table, k.conname AS name FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_class r ON r.oid = k.confrelid
      WHERE n.nspname = $1 AND c.relname = ANY($2) AND k.contype = 'f' AND r.relnamespace = n.oid`,
    [schema, names],
  );
  for (const fk of fks) await tx.query(`ALTER TABLE ${qualified(schema, fk.table)} DROP CONSTRAINT ${ident(fk.name)}`);
  const { rows: indexes } = await tx.query(
    `SELECT i.relname AS name FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE n.nspname = $1 AND t.relname = ANY($2) AND NOT x.indisprimary`,
    [schema, names],
  );
  for (const index of indexes) await tx.query(`DROP INDEX ${qualified(schema, index.name)}`);
  await tx.query(`SET LOCAL ROLE ${ident(ROLES.maintenance)}`);
}

/**
 * Re-creates what dropForBulkLoad removed, from the catalogue planner itself (so the schema ends up
 * exactly as provisioning makes it), with foreign keys NOT VALID and validated afterwards in short
 * transactions: validating inside this one would keep the tables locked for the scan.
 */
async function rebuildAfterBulkLoad(tx: Queryable, schema: string, tables: readonly TenantTable[]): Promise<number> {
  await tx.query(`SET LOCAL ROLE ${ident(ROLES.owner)}`);
  const statements = planSchema(
    schema,
    (await readSchemaStates(tx, [schema], tables)).get(schema)!,
    tables,
    await readTenantContextMode(tx),
  );
  for (const statement of statements) await tx.query(/ FOREIGN KEY /.test(statement) ? `${statement} NOT VALID` : statement);
  await tx.query(`SET LOCAL ROLE ${ident(ROLES.maintenance)}`);
  return statements.length;
}

/** Validates every NOT VALID foreign key of the schema, one short transaction each. */
async function validateForeignKeys(client: Queryable, schema: string, progress: (p: MoveProgress) => void): Promise<void> {
  const { rows } = await client.query(
    `SELECT c.relname AS table, k.conname AS name FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND k.contype = 'f' AND NOT k.convalidated ORDER BY c.relname, k.conname`,
    [schema],
  );
  for (const fk of rows) {
    await withTransaction(client, async (tx) => {
      await tx.query(`SET LOCAL ROLE ${ident(ROLES.owner)}`);
      await tx.query(`SET LOCAL statement_timeout = 0`);
      await tx.query(`ALTER TABLE ${qualified(schema, fk.table)} VALIDATE CONSTRAINT ${ident(fk.name)}`);
    });
  }
  if (rows.length) progress({ step: "target_ready", message: `validated ${rows.length} foreign key(s) of ${schema}` });
}

/** Source and target must hold exactly the catalogue's columns, or the copy would drop data. */
async function checkColumns(client: Queryable, schemas: string[], tables: readonly TenantTable[]): Promise<void> {
  const states = await readSchemaStates(client, schemas, tables);
  for (const schema of schemas) {
    for (const table of tables) {
      const have = states.get(schema)?.tables.get(table.name);
      const want = allColumns(table)
        .map((c) => c.name)
        .sort();
      const got = [...(have?.columns.keys() ?? [])].sort();
      if (JSON.stringify(want) !== JSON.stringify(got)) {
        throw new MoveRefusedError(
          `${schema}.${table.name} has columns [${got.join(", ")}] but the catalogue says [${want.join(", ")}]: run \`tenancy migrate\` with this version first`,
        );
      }
    }
  }
}
