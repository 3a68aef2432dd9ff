import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  pgbackrestGlobalOptions,
  pgbackrestStanzaOptions,
  renderPgbackrestConf,
  PgbackrestConfigError,
} from "../../lib/platform/pgbackrest-config";

const s3 = pgbackrestGlobalOptions({
  repository: {
    type: "s3",
    bucket: "alphapulse-eu-prod-pgbackrest-111111111111",
    region: "eu-central-1",
    kmsKeyId: "arn:aws:kms:eu-central-1:111111111111:key/k",
  },
  retention: { full: 4, diff: 7 },
  archiveAsync: true,
  spoolPath: "/var/spool/pgbackrest",
});

describe("pgbackrestGlobalOptions", () => {
  it("S3 repository with instance-role credentials, SSE-KMS and count retention", () => {
    expect(s3).toEqual({
      "repo1-type": "s3",
      "repo1-path": "/pgbackrest",
      "repo1-s3-bucket": "alphapulse-eu-prod-pgbackrest-111111111111",
      "repo1-s3-region": "eu-central-1",
      "repo1-s3-endpoint": "s3.eu-central-1.amazonaws.com",
      "repo1-s3-key-type": "auto",
      "repo1-s3-kms-key-id": "arn:aws:kms:eu-central-1:111111111111:key/k",
      "repo1-retention-full-type": "count",
      "repo1-retention-full": 4,
      "repo1-retention-diff": 7,
      "process-max": 2,
      "compress-type": "zst",
      "start-fast": true,
      delta: true,
      "archive-async": true,
      "spool-path": "/var/spool/pgbackrest",
      "log-path": "/var/log/pgbackrest",
      "log-level-file": "detail",
    });
  });

  it("posix repository for local clusters, time-based retention", () => {
    expect(
      pgbackrestGlobalOptions({
        repository: { type: "posix", path: "/tmp/repo" },
        retention: { full: 14, fullType: "time" },
        processMax: 1,
        compressType: "lz4",
        logPath: "/tmp/log",
        lockPath: "/tmp/lock",
        logLevelFile: "off",
      }),
    ).toEqual({
      "repo1-type": "posix",
      "repo1-path": "/tmp/repo",
      "repo1-retention-full-type": "time",
      "repo1-retention-full": 14,
      "process-max": 1,
      "compress-type": "lz4",
      "start-fast": true,
      delta: true,
      "log-path": "/tmp/log",
      "log-level-file": "off",
      "lock-path": "/tmp/lock",
    });
  });

  it.each([
    [{ full: 0 }, "retention.full must be a positive integer, got 0"],
    [{ full: 2, diff: 1.5 }, "retention.diff must be a positive integer, got 1.5"],
  ])("refuses retention %j", (retention, message) => {
    expect(() => pgbackrestGlobalOptions({ repository: { type: "posix", path: "/r" }, retention })).toThrow(
      new PgbackrestConfigError(message),
    );
  });

  it("archiveAsync needs a spool path", () => {
    expect(() =>
      pgbackrestGlobalOptions({ repository: { type: "posix", path: "/r" }, retention: { full: 1 }, archiveAsync: true }),
    ).toThrow("archiveAsync needs spoolPath");
  });
});

describe("pgbackrestStanzaOptions", () => {
  it.each([
    [{ pgPath: "/var/lib/postgresql/15/main" }, { "pg1-path": "/var/lib/postgresql/15/main" }],
    [{ pgPath: "/d", pgPort: 5432, pgUser: "postgres" }, { "pg1-path": "/d" }],
    [
      { pgPath: "/d", pgPort: 55432, pgSocketPath: "/tmp/s", pgUser: "admin" },
      { "pg1-path": "/d", "pg1-port": 55432, "pg1-socket-path": "/tmp/s", "pg1-user": "admin" },
    ],
  ])("%j", (options, expected) => {
    expect(pgbackrestStanzaOptions(options)).toEqual(expected);
  });
});

describe("renderPgbackrestConf", () => {
  it("renders global, command and stanza sections in order", () => {
    expect(
      renderPgbackrestConf(
        {
          global: { "repo1-type": "posix", "repo1-path": "/r", "start-fast": true, delta: false },
          commands: { "archive-push": { "compress-level": 3 } },
          stanzas: { main: { "pg1-path": "/d" } },
        },
        ["generated"],
      ),
    ).toBe(
      "# generated\n\n[global]\nrepo1-type=posix\nrepo1-path=/r\nstart-fast=y\ndelta=n\n\n[global:archive-push]\ncompress-level=3\n\n[main]\npg1-path=/d\n",
    );
  });

  it.each([
    [{ global: {}, stanzas: {} }, "at least one stanza is required"],
    [{ global: {}, stanzas: { global: {} } }, 'stanza name "global" is reserved'],
    [{ global: { "Repo1-Type": "s3" }, stanzas: { m: {} } }, '[global]: invalid option name "Repo1-Type"'],
    [
      { global: { "repo1-path": "/a\n[evil]" }, stanzas: { m: {} } },
      "[global] repo1-path: value must be non-empty, one line, without surrounding spaces",
    ],
    [{ global: { "repo1-path": " /a" }, stanzas: { m: {} } }, "[global] repo1-path: value must be non-empty"],
    [{ global: {}, stanzas: { "m]\n[x": {} } }, 'invalid section name "m]\n[x"'],
    [{ global: { "process-max": Number.NaN }, stanzas: { m: {} } }, "[global] process-max: NaN is not a finite number"],
  ])("refuses %j", (conf, message) => {
    expect(() => renderPgbackrestConf(conf)).toThrow(message);
  });
});

/** pgBackRest 2.45 itself parses the rendered file (`help` reads the config and warns on unknown options). */
describe("pgBackRest reads the rendered file back", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "pgbr-conf-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const help = (conf: string, command = "backup") => {
    const file = path.join(dir, `${Math.random().toString(36).slice(2)}.conf`);
    writeFileSync(file, conf);
    return execFileSync("pgbackrest", [`--config=${file}`, "--stanza=main", "help", command], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  };

  it("the AWS S3 repository: every option known, values as rendered", () => {
    const out = help(
      renderPgbackrestConf({ global: s3, stanzas: { main: pgbackrestStanzaOptions({ pgPath: "/var/lib/postgresql/15/main" }) } }),
    );
    expect(out).not.toMatch(/WARN/);
    expect(out).toMatch(/--repo-s3-bucket\s+S3 repository bucket\s+\[current=alphapulse-eu-prod-pgbackrest-111111111111\]/);
    expect(out).toMatch(/--repo-retention-full\s+full backup retention count\/time\s+\[current=4\]/);
    expect(out).toMatch(/--repo-s3-key-type\s+S3 repository key type\s+\[current=auto/);
  });

  it("negative control: a misspelled option is reported by the same check", () => {
    const out = execFileSync(
      "bash",
      [
        "-c",
        `pgbackrest --config=<(printf '[global]\\nrepo1-retention-ful=4\\n\\n[main]\\npg1-path=/d\\n') --stanza=main help backup 2>&1`,
      ],
      { encoding: "utf8" },
    );
    expect(out).toMatch(/WARN: configuration file contains invalid option 'repo1-retention-ful'/);
  });
});
