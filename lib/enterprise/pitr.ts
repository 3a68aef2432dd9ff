/**
 * Point-in-time recovery with pgBackRest, and "restore one tenant as of time T":
 *
 *   1. restore the cluster's backup + archived WAL to T into a scratch data directory
 *      (`pgbackrest restore --type=time --target=T --target-action=promote --archive-mode=off`),
 *   2. start it on a free loopback port and wait until recovery has reached T and promoted,
 *   3. export the tenant from the scratch cluster (lib/enterprise/export.ts: verified against the
 *      scratch database), signed with the LIVE database's export key (the scratch copy's keys are as
 *      old as the backup; unsigned when the live database has none: the file never leaves this
 *      process's private directory), and
 *   4. import it into the live database with `replace`, naming the tenant by id (the tenant's writes
 *      are held for that one transaction; every other tenant is untouched), verified against the file
 *      and its MAC;
 *   5. stop and remove the scratch cluster and the file.
 *
 * The configuration is rendered by the shared pure renderers: lib/platform/pgbackrest-config.ts
 * (pgbackrest.conf) and lib/platform/postgres-config.ts (walArchivingSettings, the archive/restore
 * commands), the same ones the AWS cluster's bootstrap uses. This module adds the local layout
 * and the commands; the runbook is docs/enterprise.md.
 */
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { withConnection, type Queryable } from "../db/client";
import { startPostgres, type PostgresServer } from "../local/postgres-server";
import { ensureServiceDirectory, freePort, runServerProgram, serviceDirectory } from "../local/processes";
import { pgbackrestGlobalOptions, pgbackrestStanzaOptions, renderPgbackrestConf } from "../platform/pgbackrest-config";
import { composeSettings, settingLiteral, walArchivingSettings, type PgSettings } from "../platform/postgres-config";
import { exportTenant, type ExportReport } from "./export";
import { importTenant, type ImportReport } from "./import";
import { readExportKeys, signingKey } from "./export-key";
import { findTenant } from "../tenant/registry";

export class PitrError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PitrError";
  }
}

// --- pure: configuration and commands --------------------------------------------------------------

export interface LocalPitrLayout {
  /** Directory holding everything below (owned by the user PostgreSQL runs as). */
  root: string;
  stanza: string;
  /** The archived cluster. */
  pgPath: string;
  pgPort: number;
  pgSocketPath: string;
}

/** Where the pieces of a local PITR setup live, under one root. */
export function localPitrPaths(root: string) {
  return {
    config: path.join(root, "pgbackrest.conf"),
    repository: path.join(root, "repo"),
    log: path.join(root, "log"),
    lock: path.join(root, "lock"),
  };
}

/** pgbackrest.conf for a local (posix) repository, e.g. tests and single-host installations. */
export function localPgbackrestConf(l: LocalPitrLayout): string {
  const p = localPitrPaths(l.root);
  return renderPgbackrestConf(
    {
      global: pgbackrestGlobalOptions({
        repository: { type: "posix", path: p.repository },
        retention: { full: 2 },
        processMax: 2,
        compressType: "lz4",
        logPath: p.log,
        lockPath: p.lock,
        logLevelFile: "info",
      }),
      stanzas: { [l.stanza]: pgbackrestStanzaOptions({ pgPath: l.pgPath, pgPort: l.pgPort, pgSocketPath: l.pgSocketPath }) },
    },
    ["Rendered by lib/enterprise/pitr.ts localPgbackrestConf: local repository for point-in-time recovery."],
  );
}

/** postgresql.conf settings for a cluster whose WAL is archived to pgBackRest. */
export function archivedClusterSettings(o: { stanza: string; configPath: string }): PgSettings {
  return composeSettings(walArchivingSettings({ stanza: o.stanza, configPath: o.configPath, archiveTimeoutSeconds: 60 }), {
    max_wal_senders: 3,
  });
}

/** An unambiguous point in time: ISO 8601 date and time with an explicit offset (Z or ±hh[:mm]). */
export const RECOVERY_TARGET_PATTERN = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)$/;

/** Parses a user-given point in time; throws PitrError saying what is expected. */
export function parseRecoveryTarget(value: string): string {
  const invalid = () => new PitrError(`must be a timestamp with a time zone, like 2025-10-20T14:05:00Z or 2025-10-20 16:05:00.123+02:00`);
  if (!RECOVERY_TARGET_PATTERN.test(value)) throw invalid();
  // One shape JavaScript parses everywhere: T separator, ±hh:mm offsets.
  const iso = value.replace(" ", "T").replace(/([+-]\d{2}):?(\d{2})?$/, (_m, h: string, m?: string) => `${h}:${m ?? "00"}`);
  if (Number.isNaN(new Date(iso).getTime())) throw invalid();
  return formatRecoveryTarget(iso);
}

/** recovery_target_time as PostgreSQL parses it, in UTC with microseconds. */
export function formatRecoveryTarget(at: Date | string): string {
  const date = typeof at === "string" ? new Date(at) : at;
  if (Number.isNaN(date.getTime())) throw new PitrError(`not a timestamp: ${String(at)}`);
  // Keep microseconds when the input string has them (PostgreSQL timestamps do); Date keeps only milliseconds.
  const micros = typeof at === "string" ? /\.(\d{1,6})/.exec(at)?.[1]?.padEnd(6, "0") : undefined;
  const iso = date.toISOString(); // 2025-01-02T03:04:05.678Z
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${micros ?? iso.slice(20, 23) + "000"}+00`;
}

export interface RestoreCommand {
  configPath: string;
  stanza: string;
  /** Data directory to restore into (empty or absent). */
  pgPath: string;
  /** Point in time; omit for the end of the archive. */
  target?: Date | string;
}

/** Arguments for `pgbackrest restore` into a scratch directory: to a time, promote, never archive from it. */
export function restoreArguments(o: RestoreCommand): string[] {
  const args = [
    `--config=${o.configPath}`,
    `--stanza=${o.stanza}`,
    `--pg1-path=${o.pgPath}`,
    "--archive-mode=off",
    "--log-level-console=warn",
  ];
  if (o.target !== undefined) args.push("--type=time", `--target=${formatRecoveryTarget(o.target)}`, "--target-action=promote");
  args.push("restore");
  return args;
}

/** What a restored scratch cluster must override from the production postgresql.conf it was restored with. */
export function scratchClusterSettings(o: { port: number; socketDir: string }): PgSettings {
  return {
    listen_addresses: "127.0.0.1",
    port: o.port,
    unix_socket_directories: o.socketDir,
    archive_mode: "off",
    // A scratch copy is throwaway: no need to wait on disks.
    fsync: false,
    synchronous_commit: "off",
  };
}

// --- commands ---------------------------------------------------------------------------------------

/** pgBackRest commands against one stanza, run as the PostgreSQL system user. */
export class PgBackRest {
  constructor(
    readonly configPath: string,
    readonly stanza: string,
  ) {}

  private run(args: string[]): Promise<string> {
    return runServerProgram("pgbackrest", [`--config=${this.configPath}`, `--stanza=${this.stanza}`, "--log-level-console=warn", ...args]);
  }

  stanzaCreate(): Promise<string> {
    return this.run(["stanza-create"]);
  }

  /** Forces a WAL switch and waits until that segment is archived: everything committed so far is recoverable. */
  check(): Promise<string> {
    return this.run(["check"]);
  }

  backup(type: "full" | "diff" | "incr" = "full"): Promise<string> {
    return this.run([`--type=${type}`, "backup"]);
  }

  async info(): Promise<unknown> {
    return JSON.parse(await this.run(["--output=json", "info"]));
  }
}

/** Writes a local pgBackRest setup (config, repository, log and lock directories) under `layout.root`. */
export function writeLocalPitrSetup(layout: LocalPitrLayout): string {
  const p = localPitrPaths(layout.root);
  for (const dir of [p.repository, p.log, p.lock]) ensureServiceDirectory(dir);
  writeFileSync(p.config, localPgbackrestConf(layout), { mode: 0o644 });
  return p.config;
}

export interface ScratchRestore {
  server: PostgresServer;
  /** Seconds spent in pgbackrest restore, and in recovery until promotion. */
  restoreMs: number;
  recoveryMs: number;
  remove(): Promise<void>;
}

/**
 * Restores the stanza to `target` into a fresh scratch directory and starts it on a free port.
 * Resolves once recovery has reached the target and the cluster has promoted.
 */
export async function restoreToScratch(o: {
  configPath: string;
  stanza: string;
  target?: Date | string;
  recoveryTimeoutMs?: number;
}): Promise<ScratchRestore> {
  const root = serviceDirectory("alphapulse-scratch");
  const dataDir = path.join(root, "data");
  const socketDir = path.join(root, "sockets");
  ensureServiceDirectory(socketDir);
  const remove = () => rmSync(root, { recursive: true, force: true });
  let server: PostgresServer | undefined;
  try {
    const started = Date.now();
    await runServerProgram(
      "pgbackrest",
      restoreArguments({ configPath: o.configPath, stanza: o.stanza, pgPath: dataDir, target: o.target }),
    );
    const restoreMs = Date.now() - started;
    const port = await freePort();
    const overrides = scratchClusterSettings({ port, socketDir });
    appendFileSync(
      path.join(dataDir, "postgresql.conf"),
      "\n# scratch restore (lib/enterprise/pitr.ts)\n" +
        Object.entries(overrides)
          .map(([k, v]) => `${k} = ${settingLiteral(k, v)}`)
          .join("\n") +
        "\n",
    );
    const recoveryStarted = Date.now();
    server = await startPostgres({ dataDir, port });
    await waitForPromotion(server.adminUrl, o.recoveryTimeoutMs ?? 120_000, path.join(root, "postgres.log"));
    const s = server;
    return {
      server: s,
      restoreMs,
      recoveryMs: Date.now() - recoveryStarted,
      async remove() {
        await s.stop({ mode: "immediate" });
        remove();
      },
    };
  } catch (err) {
    await server?.stop({ mode: "immediate" }).catch(() => {});
    remove();
    throw err;
  }
}

async function waitForPromotion(url: string, timeoutMs: number, log: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const { rows } = await withConnection(url, (client) => client.query(`SELECT pg_is_in_recovery() AS recovering`));
      if (!rows[0].recovering) return;
    } catch {
      // starting up or shutting down after a failed recovery: look again
    }
    if (Date.now() > deadline) {
      const tail = existsSync(log) ? readFileSync(log, "utf8").split("\n").slice(-15).join("\n") : "";
      throw new PitrError(`the restored cluster did not finish recovery within ${timeoutMs} ms\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

export interface TenantRestoreOptions {
  configPath: string;
  stanza: string;
  /** The database (same name on the scratch copy); defaults to the live connection's. */
  database?: string;
  onProgress?: (message: string) => void;
}

export interface TenantRestoreReport {
  asOf: string;
  /** Per tenant; the export file named there is removed afterwards. */
  tenants: { ref: string; export: ExportReport; import: ImportReport }[];
  restoreMs: number;
  recoveryMs: number;
  durationMs: number;
}

/**
 * Restores tenants as of `asOf`: one scratch restore, then for each tenant an export from it and
 * an import into the live database that replaces the tenant's current rows. Other tenants are not
 * touched. A tenant that no longer exists live is recreated with its id. The scratch cluster and
 * the export files are removed afterwards, also on failure.
 */
export async function restoreTenantsAsOf(
  live: Queryable,
  refs: string[],
  asOf: Date | string,
  o: TenantRestoreOptions,
): Promise<TenantRestoreReport> {
  const progress = o.onProgress ?? (() => {});
  const started = Date.now();
  const target = formatRecoveryTarget(asOf);
  const database = o.database ?? (await live.query(`SELECT current_database() AS db`)).rows[0].db;
  const { rows: settings } = await live.query(`SELECT region FROM tenancy.database_settings`);
  const liveKeys = await readExportKeys(live);
  // Keys of another region than the database's are refused at installation, so any active one is the region's.
  const key = signingKey(liveKeys, (settings[0]?.region as string | null) ?? liveKeys[0]?.region ?? "");
  if (!key) progress(`no tenant-context key is installed in the live database: the restore's transfer file is unsigned`);
  progress(`restoring stanza ${o.stanza} to ${target} into a scratch cluster`);
  const scratch = await restoreToScratch({ configPath: o.configPath, stanza: o.stanza, target: asOf });
  progress(`restored in ${scratch.restoreMs} ms, recovered to the target in ${scratch.recoveryMs} ms (port ${scratch.server.port})`);
  const workDir = mkdtempSync(path.join(os.tmpdir(), "alphapulse-restore-"));
  try {
    const tenants = await withConnection(scratch.server.urlFor(database), async (client) => {
      const restored: TenantRestoreReport["tenants"] = [];
      for (const ref of refs) {
        // The id is what identifies a tenant across time (a slug can be reused after offboarding).
        const tenant = (await findTenant(live, ref)) ?? (await findTenant(client, ref));
        if (!tenant) throw new PitrError(`tenant ${ref} exists neither now nor at ${target}`);
        if (!(await findTenant(client, tenant.id))) throw new PitrError(`tenant ${ref} did not exist at ${target}`);
        const file = path.join(workDir, `${tenant.id}.jsonl`);
        const exported = await exportTenant(client, tenant.id, file, {
          signWith: key,
          allowUnsigned: !key,
          onProgress: (m) => progress(`export ${tenant.slug} as of ${target}: ${m}`),
        });
        const imported = await importTenant(live, file, {
          replace: true,
          tenant: tenant.id,
          allowUnsigned: !key,
          acceptRenamed: true, // the file is this process's own export of the same tenant id, from the backup
          onProgress: (m) => progress(`import ${tenant.slug}: ${m}`),
        });
        rmSync(file, { force: true });
        restored.push({ ref, export: exported, import: imported });
      }
      return restored;
    });
    return { asOf: target, tenants, restoreMs: scratch.restoreMs, recoveryMs: scratch.recoveryMs, durationMs: Date.now() - started };
  } finally {
    await scratch.remove();
    rmSync(workDir, { recursive: true, force: true });
  }
}
