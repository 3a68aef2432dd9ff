/**
 * How many dedicated tenant schemas a cluster can carry, as a pure function of its connections and
 * memory, and the `max_locks_per_transaction` that number needs. Provisioning (lib/enterprise/dedicated.ts)
 * enforces the cap with a clear error; the cluster's configuration (lib/platform/postgres-config.ts) takes
 * `schemaCapacitySettings()`.
 *
 * Why schemas are not free (../shared/notes/performance.md, measured at 2,000 schemas):
 *  - every backend caches the catalog entries of every schema it touched, about 52 KB per tenant
 *    schema of 5 tables, and PostgreSQL 15 never evicts them. With PgBouncer every server
 *    connection serves every tenant, so in the worst case (the steady state of a busy cluster)
 *    each backend holds every schema: cap × max_connections × 52 KB must fit in the memory we
 *    allow the catalog caches;
 *  - pg_dump and pg_upgrade lock every table (and the restore side its indexes) in one
 *    transaction; the shared lock table has max_locks_per_transaction × (max_connections +
 *    max_prepared_transactions) slots, and "out of shared memory" is what happens when the
 *    relations do not fit.
 */
import { TENANT_TABLES, type TenantTable } from "../schema/catalogue";

/** Catalog cache per tenant schema per backend, measured with 5 tables (performance notes). */
export const CATALOG_CACHE_BYTES_PER_SCHEMA_MEASURED = 52 * 1024;
export const MEASURED_TABLES_PER_SCHEMA = 5;
/** PostgreSQL's default, and the floor we never derive below. */
export const DEFAULT_MAX_LOCKS_PER_TRANSACTION = 64;
/** Relations outside the tenant schemas that a dump or upgrade locks too (registry, market data, catalogs). */
export const BASE_LOCKABLE_RELATIONS = 256;
/** Headroom on the lock table: other sessions hold locks while a dump runs. */
export const LOCK_HEADROOM = 1.25;

export interface CapacityInputs {
  maxConnections: number;
  /** @default 0 */
  maxPreparedTransactions?: number;
  /** Memory of the machine the server has to itself, in MiB. */
  memoryMiB: number;
  /** Share of memory the catalog caches may take in the worst case. @default 0.25 */
  catalogCacheFraction?: number;
}

export interface SchemaCapacity {
  /** Dedicated schemas this cluster may hold (the shared schema is not counted). */
  maxDedicatedSchemas: number;
  catalogCacheBytesPerSchema: number;
  catalogCacheBudgetBytes: number;
  /** Tables, indexes and TOAST relations of one tenant schema. */
  lockableRelationsPerSchema: number;
  /** What max_locks_per_transaction must be for pg_dump/pg_upgrade to lock every relation at the cap. */
  maxLocksPerTransaction: number;
}

export class CapacityInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CapacityInputError";
  }
}

/** Relations one tenant schema adds: each table, its TOAST table and TOAST index, its primary key and indexes. */
export function lockableRelationsPerSchema(tables: readonly TenantTable[] = TENANT_TABLES): number {
  // Every catalogue table has text or numeric columns, hence a TOAST table with its index.
  return tables.reduce((n, t) => n + 1 + 2 + 1 + 1 + (t.indexes?.length ?? 0), 0);
}

/** Catalog cache per schema per backend, scaled from the 5-table measurement by the number of tables. */
export function catalogCacheBytesPerSchema(tables: readonly TenantTable[] = TENANT_TABLES): number {
  return Math.ceil((CATALOG_CACHE_BYTES_PER_SCHEMA_MEASURED * tables.length) / MEASURED_TABLES_PER_SCHEMA);
}

/** The lock slots per transaction needed for `schemas` dedicated schemas (plus the shared one). */
export function requiredMaxLocksPerTransaction(
  schemas: number,
  o: { maxConnections: number; maxPreparedTransactions?: number },
  tables: readonly TenantTable[] = TENANT_TABLES,
): number {
  const relations = (schemas + 1) * lockableRelationsPerSchema(tables) + BASE_LOCKABLE_RELATIONS;
  const slots = o.maxConnections + (o.maxPreparedTransactions ?? 0);
  return Math.max(DEFAULT_MAX_LOCKS_PER_TRANSACTION, Math.ceil((relations * LOCK_HEADROOM) / slots));
}

export function schemaCapacity(inputs: CapacityInputs, tables: readonly TenantTable[] = TENANT_TABLES): SchemaCapacity {
  const { maxConnections, memoryMiB } = inputs;
  const maxPreparedTransactions = inputs.maxPreparedTransactions ?? 0;
  const fraction = inputs.catalogCacheFraction ?? 0.25;
  if (!Number.isInteger(maxConnections) || maxConnections < 1)
    throw new CapacityInputError(`maxConnections must be a positive integer, got ${maxConnections}`);
  if (!Number.isInteger(maxPreparedTransactions) || maxPreparedTransactions < 0) {
    throw new CapacityInputError(`maxPreparedTransactions must be a non-negative integer, got ${maxPreparedTransactions}`);
  }
  if (!Number.isFinite(memoryMiB) || memoryMiB <= 0) throw new CapacityInputError(`memoryMiB must be positive, got ${memoryMiB}`);
  if (!(fraction > 0 && fraction <= 1)) throw new CapacityInputError(`catalogCacheFraction must be in (0, 1], got ${fraction}`);

  const perSchema = catalogCacheBytesPerSchema(tables);
  const budget = Math.floor(memoryMiB * 1024 * 1024 * fraction);
  const maxDedicatedSchemas = Math.floor(budget / (perSchema * maxConnections));
  return {
    maxDedicatedSchemas,
    catalogCacheBytesPerSchema: perSchema,
    catalogCacheBudgetBytes: budget,
    lockableRelationsPerSchema: lockableRelationsPerSchema(tables),
    maxLocksPerTransaction: requiredMaxLocksPerTransaction(maxDedicatedSchemas, { maxConnections, maxPreparedTransactions }, tables),
  };
}

/** Settings for postgresql.conf: the lock table sized for the cap, and the memory the cap was derived from. */
export function schemaCapacitySettings(inputs: CapacityInputs, tables: readonly TenantTable[] = TENANT_TABLES): Record<string, number> {
  return {
    max_locks_per_transaction: schemaCapacity(inputs, tables).maxLocksPerTransaction,
    // A custom setting provisioning reads back (lib/enterprise/dedicated.ts readCapacityInputs).
    [MEMORY_SETTING]: inputs.memoryMiB,
  };
}

/** Custom server setting naming the machine's memory in MiB (PostgreSQL itself does not know it). */
export const MEMORY_SETTING = "alphapulse.memory_mib";

export type CapacityRefusal = { kind: "cap"; message: string } | { kind: "locks"; message: string; required: number };

/**
 * Whether one more dedicated schema fits. `existing` counts the dedicated schemas already there;
 * `serverMaxLocks` is the running server's max_locks_per_transaction.
 */
export function checkCapacity(
  inputs: CapacityInputs,
  existing: number,
  serverMaxLocks: number,
  tables: readonly TenantTable[] = TENANT_TABLES,
): CapacityRefusal | undefined {
  const capacity = schemaCapacity(inputs, tables);
  if (existing + 1 > capacity.maxDedicatedSchemas) {
    const perSchemaKb = Math.round(capacity.catalogCacheBytesPerSchema / 1024);
    return {
      kind: "cap",
      message:
        `dedicated schema cap reached: ${existing} of ${capacity.maxDedicatedSchemas} in use. The cap comes from ` +
        `max_connections=${inputs.maxConnections} and ${inputs.memoryMiB} MiB of memory ` +
        `(${Math.round((inputs.catalogCacheFraction ?? 0.25) * 100)}% for catalog caches, ~${perSchemaKb} KB per schema per backend). ` +
        `Lower max_connections behind PgBouncer, give the cluster more memory, or demote a tenant.`,
    };
  }
  const required = requiredMaxLocksPerTransaction(existing + 1, inputs, tables);
  if (serverMaxLocks < required) {
    return {
      kind: "locks",
      required,
      message:
        `max_locks_per_transaction is ${serverMaxLocks}, but ${existing + 1} dedicated schemas need ${required} for pg_dump/pg_upgrade ` +
        `to lock every relation: set max_locks_per_transaction = ${capacity.maxLocksPerTransaction} (sized for the cap) and restart`,
    };
  }
  return undefined;
}
