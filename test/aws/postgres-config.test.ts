import { mkdtempSync, writeFileSync, chmodSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  composeSettings,
  connectionSettings,
  extensionSettings,
  loggingSettings,
  memorySettings,
  pgbackrestArchiveCommand,
  pgbackrestRestoreCommand,
  renderPgHba,
  renderPostgresqlConf,
  replicationSettings,
  settingLiteral,
  walArchivingSettings,
  PostgresConfigError,
} from "../../lib/platform/postgres-config";
import { runServerProgram, serviceDirectory } from "../../lib/local/processes";

describe("settingLiteral", () => {
  it.each([
    [true, "on"],
    [false, "off"],
    [0, "0"],
    [60, "60"],
    [1.5, "1.5"],
    ["replica", "'replica'"],
    ["", "''"],
    ["it's", "'it''s'"],
    ["C:\\path", "'C:\\\\path'"],
    ["pgbackrest --stanza=main archive-push %p", "'pgbackrest --stanza=main archive-push %p'"],
  ])("%j → %s", (value, literal) => {
    expect(settingLiteral("x", value)).toBe(literal);
  });

  it.each([
    ["a\nb", 'setting "x": value contains a line break or NUL'],
    [Number.NaN, 'setting "x": NaN is not a finite number'],
    [Infinity, 'setting "x": Infinity is not a finite number'],
  ])("refuses %j", (value, message) => {
    expect(() => settingLiteral("x", value)).toThrow(new PostgresConfigError(message));
  });
});

describe("renderPostgresqlConf", () => {
  it("renders one line per setting, in order, under the header", () => {
    expect(
      renderPostgresqlConf({ wal_level: "replica", hot_standby: true, "timescaledb.max_background_workers": 8 }, ["Generated", ""]),
    ).toBe("# Generated\n#\nwal_level = 'replica'\nhot_standby = on\ntimescaledb.max_background_workers = 8\n");
  });

  it.each(["Shared_Buffers", "shared buffers", "a.b.c", "1abc", "x;y"])("refuses setting name %j", (name) => {
    expect(() => renderPostgresqlConf({ [name]: 1 })).toThrow(`invalid setting name "${name}"`);
  });
});

describe("composeSettings", () => {
  it("merges fragments and accepts the same value twice", () => {
    expect(composeSettings({ wal_level: "replica", a: 1 }, { wal_level: "replica", b: 2 })).toEqual({ wal_level: "replica", a: 1, b: 2 });
  });

  it("refuses one fragment silently overriding another, naming both values", () => {
    expect(() => composeSettings({ wal_level: "replica" }, { wal_level: "logical" })).toThrow(
      new PostgresConfigError(`setting "wal_level" is set twice with different values: 'replica' and 'logical'`),
    );
  });
});

describe("fragments", () => {
  it("WAL archiving to pgBackRest", () => {
    expect(walArchivingSettings({ stanza: "main" })).toEqual({
      wal_level: "replica",
      archive_mode: "on",
      archive_command: "pgbackrest --stanza=main archive-push %p",
      archive_timeout: 60,
    });
    expect(walArchivingSettings({ stanza: "local", configPath: "/tmp/x/pgbackrest.conf", archiveTimeoutSeconds: 5 }).archive_command).toBe(
      "pgbackrest --config=/tmp/x/pgbackrest.conf --stanza=local archive-push %p",
    );
    expect(pgbackrestRestoreCommand({ stanza: "main", binary: "/usr/bin/pgbackrest" })).toBe(
      '/usr/bin/pgbackrest --stanza=main archive-get %f "%p"',
    );
  });

  it.each([
    [{ stanza: "main; rm -rf /" }, 'stanza "main; rm -rf /" must match'],
    [{ stanza: "main", configPath: "/tmp/a b.conf" }, 'pgbackrest config path "/tmp/a b.conf" must match'],
    [{ stanza: "$(id)" }, 'stanza "$(id)" must match'],
  ])("archive command refuses shell-unsafe %j", (options, message) => {
    expect(() => pgbackrestArchiveCommand(options)).toThrow(message);
  });

  it("replication defaults", () => {
    expect(replicationSettings()).toEqual({
      wal_level: "replica",
      max_wal_senders: 10,
      max_replication_slots: 10,
      wal_keep_size: "1024MB",
      max_slot_wal_keep_size: "51200MB",
      hot_standby: true,
      hot_standby_feedback: true,
      wal_log_hints: true,
    });
  });

  it("extensions: TimescaleDB preloaded, telemetry off", () => {
    expect(extensionSettings()).toEqual({
      shared_preload_libraries: "timescaledb,pg_stat_statements",
      "timescaledb.telemetry_level": "off",
      "timescaledb.max_background_workers": 8,
    });
    expect(extensionSettings({ sharedPreloadLibraries: ["pg_stat_statements"] })).toEqual({
      shared_preload_libraries: "pg_stat_statements",
    });
    expect(() => extensionSettings({ sharedPreloadLibraries: ["timescaledb,evil"] })).toThrow('invalid library name "timescaledb,evil"');
  });

  it.each([
    [4096, 200, { shared_buffers: "1024MB", effective_cache_size: "3072MB", maintenance_work_mem: "204MB", work_mem: "4MB" }],
    [32768, 250, { shared_buffers: "8192MB", effective_cache_size: "24576MB", maintenance_work_mem: "1638MB", work_mem: "24MB" }],
    [131072, 200, { shared_buffers: "32768MB", effective_cache_size: "98304MB", maintenance_work_mem: "2048MB", work_mem: "122MB" }],
  ])("memory for %i MiB, %i connections", (memoryMiB, maxConnections, expected) => {
    expect(memorySettings({ memoryMiB, maxConnections })).toEqual({ max_connections: maxConnections, ...expected });
  });

  it("memory refuses a machine too small to size", () => {
    expect(() => memorySettings({ memoryMiB: 512 })).toThrow("memoryMiB must be an integer of at least 1024, got 512");
  });
});

describe("renderPgHba", () => {
  it("renders rules in order", () => {
    expect(
      renderPgHba(
        [
          { type: "local", database: "all", user: "postgres", method: "peer" },
          { type: "host", database: "all", user: "alphapulse_admin", address: "127.0.0.1/32", method: "scram-sha-256" },
          { type: "hostssl", database: "replication", user: "replicator", address: "10.20.0.0/16", method: "scram-sha-256" },
          { type: "host", database: "all", user: "all", address: "0.0.0.0/0", method: "reject" },
        ],
        ["header"],
      ),
    ).toBe(
      "# header\nlocal all postgres peer\nhost all alphapulse_admin 127.0.0.1/32 scram-sha-256\nhostssl replication replicator 10.20.0.0/16 scram-sha-256\nhost all all 0.0.0.0/0 reject\n",
    );
  });

  it.each([
    [
      { type: "host", database: "all", user: "app", method: "scram-sha-256" },
      "pg_hba host rule for app needs an IPv4 CIDR address, got none",
    ],
    [
      { type: "local", database: "all", user: "app", address: "1.2.3.4/32", method: "peer" },
      "pg_hba local rule for app must not have an address",
    ],
    [{ type: "host", database: "all", user: "a b", address: "1.2.3.4/32", method: "peer" }, 'pg_hba user "a b" must match'],
    [{ type: "hostssl", database: "all", user: "app", address: "10.0.0.0", method: "peer" }, "needs an IPv4 CIDR address, got 10.0.0.0"],
  ] as const)("refuses %j", (rule, message) => {
    expect(() => renderPgHba([rule])).toThrow(message);
  });
});

/**
 * The rendered file read back by PostgreSQL 15 itself (`postgres --config-file=… -C name`): every
 * name is a real setting and every value round-trips through the server's own lexer.
 */
describe("PostgreSQL reads the rendered file back", () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it("the AWS primary composition", async () => {
    const settings = composeSettings(
      connectionSettings({ listenAddresses: "*", port: 5432, ssl: false }),
      memorySettings({ memoryMiB: 32768, maxConnections: 250 }),
      // Preload is checked at start, not by -C, so TimescaleDB need not be installed here.
      extensionSettings(),
      replicationSettings(),
      walArchivingSettings({ stanza: "main" }),
      loggingSettings({ logLinePrefix: "%m [%p] it's \\ %q%u@%d " }),
    );
    const dir = serviceDirectory("pgconf");
    dirs.push(dir);
    const data = path.join(dir, "data");
    const conf = path.join(dir, "postgresql.conf");
    await runServerProgram("mkdir", [data]);
    writeFileSync(
      conf,
      `data_directory = '${data}'\nhba_file = '${dir}/hba'\nident_file = '${dir}/ident'\n` + renderPostgresqlConf(settings),
    );
    chmodSync(conf, 0o644);
    const bin = "/usr/lib/postgresql/15/bin/postgres";
    const read = async (name: string) => (await runServerProgram(bin, [`--config-file=${conf}`, "-C", name])).replace(/\n$/, "");
    expect(await read("archive_command")).toBe("pgbackrest --stanza=main archive-push %p");
    expect(await read("log_line_prefix")).toBe("%m [%p] it's \\ %q%u@%d ");
    expect(await read("shared_buffers")).toBe("1048576"); // 8 GiB in 8 kB pages
    expect(await read("hot_standby")).toBe("on");
    expect(await read("wal_keep_size")).toBe("1024");
    expect(await read("shared_preload_libraries")).toBe("timescaledb,pg_stat_statements");
    const known = new Set((await runServerProgram(bin, ["--describe-config"])).split("\n").map((line) => line.split("\t")[0]));
    expect(Object.keys(settings).filter((n) => !n.includes(".") && !known.has(n))).toEqual([]);
  });

  it("negative control: an unknown setting makes the same check fail", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "pgconf-bad-"));
    dirs.push(dir);
    const conf = path.join(dir, "postgresql.conf");
    writeFileSync(conf, `data_directory = '${dir}'\n` + renderPostgresqlConf({ archive_comand: "x" }));
    chmodSync(conf, 0o644);
    chmodSync(dir, 0o755);
    await expect(
      runServerProgram("/usr/lib/postgresql/15/bin/postgres", [`--config-file=${conf}`, "-C", "archive_command"]),
    ).rejects.toThrow('unrecognized configuration parameter "archive_comand"');
  });
});
