/**
 * postgresql.conf and pg_hba.conf fragments, as pure functions of typed settings.
 *
 * The same fragments configure the local clusters (tests, local stacks, the pgBackRest/PITR work)
 * and the self-managed cluster on AWS (lib/platform/cloud-init.ts writes them into
 * `conf.d/`). A fragment is a plain record of setting → value; `composeSettings` merges fragments
 * and refuses to let one silently override another; `renderPostgresqlConf` quotes every value the
 * way PostgreSQL's configuration file lexer reads it back.
 */
import { SLOW_LOG_SETTINGS } from "../observability/slow-log";

export type PgSettingValue = string | number | boolean;
export type PgSettings = Readonly<Record<string, PgSettingValue>>;

/** Setting names as PostgreSQL accepts them: `name` or `extension.name` (custom placeholders). */
export const SETTING_NAME_PATTERN = /^[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)?$/;

export class PostgresConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PostgresConfigError";
  }
}

/**
 * A value as postgresql.conf spells it: booleans `on`/`off`, finite numbers bare, strings always
 * single-quoted with `'` doubled and `\` doubled (the lexer reads backslash escapes in quoted
 * strings). Line breaks cannot be written in a setting and are refused.
 */
export function settingLiteral(name: string, value: PgSettingValue): string {
  if (typeof value === "boolean") return value ? "on" : "off";
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new PostgresConfigError(`setting "${name}": ${value} is not a finite number`);
    return String(value);
  }
  if (/[\r\n\0]/.test(value)) throw new PostgresConfigError(`setting "${name}": value contains a line break or NUL`);
  return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;
}

/** Renders settings one per line (`name = value`), in the record's order, under an optional comment header. */
export function renderPostgresqlConf(settings: PgSettings, header: readonly string[] = []): string {
  const lines = header.map((h) => `# ${h}`.trimEnd());
  for (const [name, value] of Object.entries(settings)) {
    if (!SETTING_NAME_PATTERN.test(name)) throw new PostgresConfigError(`invalid setting name "${name}"`);
    lines.push(`${name} = ${settingLiteral(name, value)}`);
  }
  return lines.join("\n") + "\n";
}

/** Merges fragments left to right. The same setting twice with different values is an error naming both. */
export function composeSettings(...fragments: PgSettings[]): PgSettings {
  const out: Record<string, PgSettingValue> = {};
  for (const fragment of fragments) {
    for (const [name, value] of Object.entries(fragment)) {
      if (name in out && out[name] !== value) {
        throw new PostgresConfigError(
          `setting "${name}" is set twice with different values: ${settingLiteral(name, out[name])} and ${settingLiteral(name, value)}`,
        );
      }
      out[name] = value;
    }
  }
  return out;
}

/** Paths and stanza names end up inside shell commands (archive_command): keep them to a safe alphabet. */
const SHELL_SAFE = /^[A-Za-z0-9_./-]+$/;

function shellSafe(what: string, value: string): string {
  if (!SHELL_SAFE.test(value)) throw new PostgresConfigError(`${what} "${value}" must match ${SHELL_SAFE}`);
  return value;
}

export interface PgbackrestCommandOptions {
  /** The pgBackRest stanza (one per cluster). */
  stanza: string;
  /** pgbackrest.conf path when it is not the default /etc/pgbackrest/pgbackrest.conf (local clusters). */
  configPath?: string;
  /** The pgbackrest binary. @default "pgbackrest" */
  binary?: string;
}

function pgbackrestPrefix(o: PgbackrestCommandOptions): string {
  const parts = [shellSafe("pgbackrest binary", o.binary ?? "pgbackrest")];
  if (o.configPath !== undefined) parts.push(`--config=${shellSafe("pgbackrest config path", o.configPath)}`);
  parts.push(`--stanza=${shellSafe("stanza", o.stanza)}`);
  return parts.join(" ");
}

/** `archive_command` pushing each WAL segment to the pgBackRest repository. */
export function pgbackrestArchiveCommand(o: PgbackrestCommandOptions): string {
  return `${pgbackrestPrefix(o)} archive-push %p`;
}

/** `restore_command` fetching WAL from the pgBackRest repository (standby catch-up and PITR). */
export function pgbackrestRestoreCommand(o: PgbackrestCommandOptions): string {
  return `${pgbackrestPrefix(o)} archive-get %f "%p"`;
}

export interface WalArchivingOptions extends PgbackrestCommandOptions {
  /** Force a segment switch after this many seconds of low traffic, bounding the data a PITR can lose. @default 60 */
  archiveTimeoutSeconds?: number;
}

/** WAL archiving to pgBackRest: what point-in-time recovery needs on the primary. */
export function walArchivingSettings(o: WalArchivingOptions): PgSettings {
  return {
    wal_level: "replica",
    archive_mode: "on",
    archive_command: pgbackrestArchiveCommand(o),
    archive_timeout: o.archiveTimeoutSeconds ?? 60,
  };
}

export interface ReplicationOptions {
  /** @default 10 */
  maxWalSenders?: number;
  /** @default 10 */
  maxReplicationSlots?: number;
  /** WAL kept for standbys that fall behind without a slot, in MiB. @default 1024 */
  walKeepSizeMiB?: number;
  /** Cap on WAL a slot may retain before the standby is cut off, in MiB (protects the primary's disk). @default 51200 */
  maxSlotWalKeepSizeMiB?: number;
}

/** Streaming replication, valid on primary and standby alike (a standby keeps them for after promotion). */
export function replicationSettings(o: ReplicationOptions = {}): PgSettings {
  return {
    wal_level: "replica",
    max_wal_senders: o.maxWalSenders ?? 10,
    max_replication_slots: o.maxReplicationSlots ?? 10,
    wal_keep_size: `${o.walKeepSizeMiB ?? 1024}MB`,
    max_slot_wal_keep_size: `${o.maxSlotWalKeepSizeMiB ?? 51200}MB`,
    hot_standby: true,
    hot_standby_feedback: true,
    wal_log_hints: true,
  };
}

export interface PreloadOptions {
  /** Libraries loaded at server start; TimescaleDB must be one of them. @default ["timescaledb", "pg_stat_statements"] */
  sharedPreloadLibraries?: readonly string[];
  /** @default 8 */
  timescaledbMaxBackgroundWorkers?: number;
}

/** TimescaleDB (and pg_stat_statements for per-query statistics), telemetry off. */
export function extensionSettings(o: PreloadOptions = {}): PgSettings {
  const libraries = o.sharedPreloadLibraries ?? ["timescaledb", "pg_stat_statements"];
  for (const lib of libraries) {
    if (!/^[a-z_][a-z0-9_]*$/.test(lib)) throw new PostgresConfigError(`invalid library name "${lib}"`);
  }
  const out: Record<string, PgSettingValue> = { shared_preload_libraries: libraries.join(",") };
  if (libraries.includes("timescaledb")) {
    out["timescaledb.telemetry_level"] = "off";
    out["timescaledb.max_background_workers"] = o.timescaledbMaxBackgroundWorkers ?? 8;
  }
  return out;
}

export interface ConnectionOptions {
  /** @default "localhost" */
  listenAddresses?: string;
  /** @default 5432 */
  port?: number;
  /** TLS with the server's certificate (Debian's snakeoil certificate on a fresh node). @default false */
  ssl?: boolean;
}

/** Where the server listens and how passwords are stored (SCRAM only). */
export function connectionSettings(o: ConnectionOptions = {}): PgSettings {
  return {
    listen_addresses: o.listenAddresses ?? "localhost",
    port: o.port ?? 5432,
    ssl: o.ssl ?? false,
    password_encryption: "scram-sha-256",
  };
}

export interface MemoryOptions {
  /** Memory of the machine the server has to itself, in MiB. */
  memoryMiB: number;
  /** @default 200 */
  maxConnections?: number;
}

/**
 * Memory settings derived from the machine: shared_buffers 25%, effective_cache_size 75%,
 * maintenance_work_mem 5% capped at 2 GiB, work_mem what is left per connection (at least 4 MiB).
 */
export function memorySettings(o: MemoryOptions): PgSettings {
  if (!Number.isInteger(o.memoryMiB) || o.memoryMiB < 1024) {
    throw new PostgresConfigError(`memoryMiB must be an integer of at least 1024, got ${o.memoryMiB}`);
  }
  const maxConnections = o.maxConnections ?? 200;
  const sharedBuffers = Math.floor(o.memoryMiB / 4);
  const workMem = Math.max(4, Math.floor((o.memoryMiB - sharedBuffers) / (maxConnections * 4)));
  return {
    max_connections: maxConnections,
    shared_buffers: `${sharedBuffers}MB`,
    effective_cache_size: `${Math.floor((o.memoryMiB * 3) / 4)}MB`,
    maintenance_work_mem: `${Math.min(2048, Math.floor(o.memoryMiB / 20))}MB`,
    work_mem: `${workMem}MB`,
  };
}

export interface LoggingOptions {
  /** Statements slower than this are logged with their duration. @default SLOW_LOG_SETTINGS.log_min_duration_statement */
  logMinDurationStatementMs?: number;
  /** @default SLOW_LOG_SETTINGS.log_line_prefix (application_name, %a, carries the tenant tag: issue 10) */
  logLinePrefix?: string;
}

/**
 * Server log settings. The collector writes every event twice, in `log/` under the data directory:
 *  - `postgresql-<date>.log`, text with SLOW_LOG_SETTINGS' prefix: what `tenancy slow` reads
 *    (through pg_read_file, or a copied file) and what a human reads on the node;
 *  - `postgresql-<date>.json`, PostgreSQL 15's jsonlog: what the CloudWatch agent ships. The metric
 *    filters and Logs Insights queries (lib/observability/cloudwatch.ts) match its fields
 *    (application_name, message, state_code): one event per line even for multi-line statements,
 *    and no dependence on how CloudWatch splits text on runs of spaces.
 * The slow-statement settings themselves come from SLOW_LOG_SETTINGS, the one source the local
 * clusters use too.
 */
export function loggingSettings(o: LoggingOptions = {}): PgSettings {
  return {
    logging_collector: true,
    log_destination: "stderr,jsonlog",
    log_directory: "log",
    log_filename: "postgresql-%Y-%m-%d.log",
    log_rotation_age: "1d",
    log_line_prefix: o.logLinePrefix ?? SLOW_LOG_SETTINGS.log_line_prefix,
    log_min_duration_statement: o.logMinDurationStatementMs ?? SLOW_LOG_SETTINGS.log_min_duration_statement,
    log_connections: true,
    log_disconnections: true,
    log_lock_waits: true,
    log_temp_files: 0,
    log_checkpoints: true,
  };
}

export interface HbaRule {
  type: "local" | "host" | "hostssl";
  database: string;
  user: string;
  /** CIDR; required for host and hostssl, absent for local. */
  address?: string;
  method: "peer" | "scram-sha-256" | "reject";
}

const HBA_TOKEN = /^[a-z_][a-z0-9_]*$/;
const CIDR = /^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/;

/** pg_hba.conf lines, first match wins. Anything not matched is refused by PostgreSQL itself. */
export function renderPgHba(rules: readonly HbaRule[], header: readonly string[] = []): string {
  const lines = header.map((h) => `# ${h}`.trimEnd());
  for (const r of rules) {
    for (const [what, token] of [
      ["database", r.database],
      ["user", r.user],
    ] as const) {
      if (!HBA_TOKEN.test(token)) throw new PostgresConfigError(`pg_hba ${what} "${token}" must match ${HBA_TOKEN}`);
    }
    if (r.type === "local") {
      if (r.address !== undefined) throw new PostgresConfigError(`pg_hba local rule for ${r.user} must not have an address`);
      lines.push(["local", r.database, r.user, r.method].join(" "));
    } else {
      if (r.address === undefined || !CIDR.test(r.address)) {
        throw new PostgresConfigError(`pg_hba ${r.type} rule for ${r.user} needs an IPv4 CIDR address, got ${r.address ?? "none"}`);
      }
      lines.push([r.type, r.database, r.user, r.address, r.method].join(" "));
    }
  }
  return lines.join("\n") + "\n";
}

/**
 * A login role admitted only from the given subnets, over TLS with SCRAM, and refused from anywhere
 * else: one `hostssl` line per subnet, then a `host ... 0.0.0.0/0 reject` (which also catches
 * `hostssl`). Placed before a broader rule (first match wins), it keeps that rule from admitting the
 * role. The regional clusters use it for the database executor (components/aws/postgres-cluster.ts).
 */
export function loginFromSubnetsOnly(user: string, subnetCidrs: readonly string[]): HbaRule[] {
  return [
    ...subnetCidrs.map((address): HbaRule => ({ type: "hostssl", database: "all", user, address, method: "scram-sha-256" })),
    { type: "host", database: "all", user, address: "0.0.0.0/0", method: "reject" },
  ];
}
