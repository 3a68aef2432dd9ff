/**
 * pgbackrest.conf as a pure function of typed options: one renderer for the local repository the
 * PITR tests use (posix) and the region-local S3 repository of the AWS cluster (s3, instance-role
 * credentials, SSE-KMS). Pair it with lib/platform/postgres-config.ts `walArchivingSettings` on the server.
 */

export type PgbackrestValue = string | number | boolean;
export type PgbackrestSection = Readonly<Record<string, PgbackrestValue>>;

export interface PgbackrestConf {
  /** `[global]`: repository, retention, logging, parallelism. */
  global: PgbackrestSection;
  /** Per-command overrides, e.g. `{ "archive-push": { "compress-level": 3 } }` → `[global:archive-push]`. */
  commands?: Readonly<Record<string, PgbackrestSection>>;
  /** One section per stanza (cluster): `{ main: { "pg1-path": "/var/lib/postgresql/15/main" } }`. */
  stanzas: Readonly<Record<string, PgbackrestSection>>;
}

export class PgbackrestConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PgbackrestConfigError";
  }
}

const OPTION_NAME = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;
const SECTION_NAME = /^[A-Za-z0-9_.-]+$/;

function optionValue(section: string, name: string, value: PgbackrestValue): string {
  if (typeof value === "boolean") return value ? "y" : "n";
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new PgbackrestConfigError(`[${section}] ${name}: ${value} is not a finite number`);
    return String(value);
  }
  if (value === "" || /[\r\n\0]/.test(value) || value !== value.trim()) {
    throw new PgbackrestConfigError(`[${section}] ${name}: value must be non-empty, one line, without surrounding spaces`);
  }
  return value;
}

function checkSectionName(name: string): string {
  if (!SECTION_NAME.test(name)) throw new PgbackrestConfigError(`invalid section name "${name}"`);
  return name;
}

function renderSection(section: string, options: PgbackrestSection): string[] {
  const lines = [`[${section}]`];
  for (const [name, value] of Object.entries(options)) {
    if (!OPTION_NAME.test(name)) throw new PgbackrestConfigError(`[${section}]: invalid option name "${name}"`);
    lines.push(`${name}=${optionValue(section, name, value)}`);
  }
  return lines;
}

/** Renders the file: `[global]`, then `[global:<command>]` sections, then stanzas, each in the given order. */
export function renderPgbackrestConf(conf: PgbackrestConf, header: readonly string[] = []): string {
  const blocks: string[][] = [];
  if (header.length > 0) blocks.push(header.map((h) => `# ${h}`.trimEnd()));
  blocks.push(renderSection("global", conf.global));
  for (const [command, options] of Object.entries(conf.commands ?? {})) {
    blocks.push(renderSection(`global:${checkSectionName(command)}`, options));
  }
  const stanzas = Object.entries(conf.stanzas);
  if (stanzas.length === 0) throw new PgbackrestConfigError("at least one stanza is required");
  for (const [stanza, options] of stanzas) {
    if (stanza === "global" || stanza.startsWith("global:")) throw new PgbackrestConfigError(`stanza name "${stanza}" is reserved`);
    blocks.push(renderSection(checkSectionName(stanza), options));
  }
  return blocks.map((b) => b.join("\n")).join("\n\n") + "\n";
}

/** Where backups and archived WAL live. */
export type PgbackrestRepository =
  | {
      type: "s3";
      bucket: string;
      region: string;
      /** @default `s3.<region>.amazonaws.com` (reached through the VPC's S3 gateway endpoint) */
      endpoint?: string;
      /** Path inside the bucket. @default "/pgbackrest" */
      path?: string;
      /** SSE-KMS key for every object pgBackRest writes; the bucket's default encryption applies as well. */
      kmsKeyId?: string;
    }
  | {
      type: "posix";
      /** Repository directory (owned by the user running PostgreSQL). */
      path: string;
    };

export interface RetentionOptions {
  /** Full backups to keep (count), or days (time). Archived WAL older than the oldest kept full backup expires. */
  full: number;
  /** @default "count" */
  fullType?: "count" | "time";
  /** Differential backups to keep; unset keeps all within the full retention. */
  diff?: number;
}

export interface PgbackrestGlobalOptions {
  repository: PgbackrestRepository;
  retention: RetentionOptions;
  /** Parallel processes for backup/restore. @default 2 */
  processMax?: number;
  /** @default "zst" */
  compressType?: "gz" | "lz4" | "zst" | "none";
  /** Asynchronous archive-push with a local spool: WAL archiving keeps up with bursts. Needs `spoolPath`. */
  archiveAsync?: boolean;
  spoolPath?: string;
  /** @default "/var/log/pgbackrest" */
  logPath?: string;
  /** Override lock directory (local clusters run as an unprivileged user). */
  lockPath?: string;
  /** @default "detail" */
  logLevelFile?: "off" | "error" | "warn" | "info" | "detail" | "debug";
}

function positiveInteger(what: string, n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new PgbackrestConfigError(`${what} must be a positive integer, got ${n}`);
  return n;
}

/** The `[global]` section for a repository, retention and logging. */
export function pgbackrestGlobalOptions(o: PgbackrestGlobalOptions): PgbackrestSection {
  const out: Record<string, PgbackrestValue> = {};
  const repo = o.repository;
  if (repo.type === "s3") {
    out["repo1-type"] = "s3";
    out["repo1-path"] = repo.path ?? "/pgbackrest";
    out["repo1-s3-bucket"] = repo.bucket;
    out["repo1-s3-region"] = repo.region;
    out["repo1-s3-endpoint"] = repo.endpoint ?? `s3.${repo.region}.amazonaws.com`;
    // Temporary credentials of the instance role from the metadata service: no keys on disk.
    out["repo1-s3-key-type"] = "auto";
    if (repo.kmsKeyId !== undefined) out["repo1-s3-kms-key-id"] = repo.kmsKeyId;
  } else {
    out["repo1-type"] = "posix";
    out["repo1-path"] = repo.path;
  }
  out["repo1-retention-full-type"] = o.retention.fullType ?? "count";
  out["repo1-retention-full"] = positiveInteger("retention.full", o.retention.full);
  if (o.retention.diff !== undefined) out["repo1-retention-diff"] = positiveInteger("retention.diff", o.retention.diff);
  out["process-max"] = positiveInteger("processMax", o.processMax ?? 2);
  out["compress-type"] = o.compressType ?? "zst";
  out["start-fast"] = true;
  out["delta"] = true;
  if (o.archiveAsync) {
    if (o.spoolPath === undefined) throw new PgbackrestConfigError("archiveAsync needs spoolPath");
    out["archive-async"] = true;
    out["spool-path"] = o.spoolPath;
  }
  out["log-path"] = o.logPath ?? "/var/log/pgbackrest";
  out["log-level-file"] = o.logLevelFile ?? "detail";
  if (o.lockPath !== undefined) out["lock-path"] = o.lockPath;
  return out;
}

export interface PgbackrestStanzaOptions {
  /** The cluster's data directory. */
  pgPath: string;
  /** @default 5432 */
  pgPort?: number;
  /** Unix socket directory when not the default (/var/run/postgresql). */
  pgSocketPath?: string;
  /** Database user pgBackRest connects as. @default "postgres" */
  pgUser?: string;
}

/** One stanza section: how pgBackRest reaches the local cluster. */
export function pgbackrestStanzaOptions(o: PgbackrestStanzaOptions): PgbackrestSection {
  const out: Record<string, PgbackrestValue> = { "pg1-path": o.pgPath };
  if (o.pgPort !== undefined && o.pgPort !== 5432) out["pg1-port"] = o.pgPort;
  if (o.pgSocketPath !== undefined) out["pg1-socket-path"] = o.pgSocketPath;
  if (o.pgUser !== undefined && o.pgUser !== "postgres") out["pg1-user"] = o.pgUser;
  return out;
}
