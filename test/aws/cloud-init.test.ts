import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import {
  BOOTSTRAP_SCRIPT,
  IF_PRIMARY_SCRIPT,
  METRICS_SCRIPT,
  NODE_PATHS,
  ROLE_SQL,
  renderNodeEnv,
  renderPostgresNodeCloudInit,
  renderRolesTsv,
  type PostgresNodeParams,
} from "../../lib/platform/cloud-init";
import { verifierMatches } from "../../lib/pgbouncer/auth";
import { adminUrl } from "../support/postgres";

const execFileAsync = promisify(execFile);

const ADMIN_ARN = "arn:aws:secretsmanager:eu-central-1:111111111111:secret:alphapulse/eu-prod/postgres/alphapulse_admin-AbCdEf";
const REPL_ARN = "arn:aws:secretsmanager:eu-central-1:111111111111:secret:alphapulse/eu-prod/postgres/replicator-GhIjKl";

const params: PostgresNodeParams = {
  role: "replica",
  cluster: "eu-prod-postgres",
  region: "eu-central-1",
  majorVersion: 15,
  stanza: "main",
  dataDevice: "/dev/sdf",
  dataMount: "/var/lib/postgresql",
  primaryHost: "pg-primary.eu-prod.alphapulse.internal",
  replicationSlot: "replica_eu_central_1b",
  files: {
    postgresqlConf: "wal_level = 'replica'\n",
    pgHba: "local all postgres peer\n",
    pgbackrestConf: "[global]\nrepo1-type=s3\n\n[main]\npg1-path=/d\n",
    bootstrapClusterSql: "-- cluster\n",
    bootstrapTemplateSql: "-- template\n",
  },
  roles: [
    { name: "alphapulse_admin", attributes: "SUPERUSER", secretArn: ADMIN_ARN },
    { name: "replicator", attributes: "REPLICATION", secretArn: REPL_ARN },
  ],
  replicationRole: "replicator",
  backupSchedule: { full: "Sun *-*-* 01:00:00", diff: "Mon..Sat *-*-* 01:00:00" },
  metricsNamespace: "AlphaPulse/Postgres",
  logGroupName: "/alphapulse/eu-prod-postgres/postgresql",
};

interface WrittenFile {
  path: string;
  content: string;
  permissions: string;
  owner: string;
}

function parse(text: string): { package_update: boolean; package_upgrade: boolean; write_files: WrittenFile[]; runcmd: string[][] } {
  expect(text.startsWith("#cloud-config\n")).toBe(true);
  return parseYaml(text);
}

describe("renderPostgresNodeCloudInit", () => {
  const doc = parse(renderPostgresNodeCloudInit(params));
  const file = (p: string) => doc.write_files.find((f) => f.path === p) as WrittenFile;

  it("writes exactly these files, with these owners and modes, then runs the bootstrap", () => {
    expect(doc.write_files.map((f) => [f.path, f.permissions, f.owner])).toEqual([
      ["/etc/alphapulse/postgres.env", "0640", "root:root"],
      ["/etc/alphapulse/roles.tsv", "0640", "root:root"],
      ["/etc/alphapulse/role.sql", "0644", "root:root"],
      ["/etc/alphapulse/bootstrap-cluster.sql", "0644", "root:root"],
      ["/etc/alphapulse/bootstrap-template.sql", "0644", "root:root"],
      ["/etc/alphapulse/postgresql.conf", "0644", "root:root"],
      ["/etc/alphapulse/pg_hba.conf", "0644", "root:root"],
      ["/etc/pgbackrest/pgbackrest.conf", "0640", "root:postgres"],
      ["/usr/local/sbin/alphapulse-pg-bootstrap", "0755", "root:root"],
      ["/usr/local/sbin/alphapulse-pg-if-primary", "0755", "root:root"],
      ["/usr/local/sbin/alphapulse-pg-metrics", "0755", "root:root"],
      ["/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json", "0644", "root:root"],
      ["/etc/systemd/system/pgbackrest-full.service", "0644", "root:root"],
      ["/etc/systemd/system/pgbackrest-full.timer", "0644", "root:root"],
      ["/etc/systemd/system/pgbackrest-diff.service", "0644", "root:root"],
      ["/etc/systemd/system/pgbackrest-diff.timer", "0644", "root:root"],
      ["/etc/systemd/system/alphapulse-pg-metrics.service", "0644", "root:root"],
      ["/etc/systemd/system/alphapulse-pg-metrics.timer", "0644", "root:root"],
    ]);
    expect(doc.runcmd).toEqual([[NODE_PATHS.bootstrap]]);
    expect(doc.package_update).toBe(false);
    expect(doc.package_upgrade).toBe(false);
  });

  it("carries the config fragments byte for byte", () => {
    expect(file(NODE_PATHS.postgresqlConf).content).toBe(params.files.postgresqlConf);
    expect(file(NODE_PATHS.pgHba).content).toBe(params.files.pgHba);
    expect(file(NODE_PATHS.pgbackrestConf).content).toBe(params.files.pgbackrestConf);
    expect(file(NODE_PATHS.bootstrap).content).toBe(BOOTSTRAP_SCRIPT);
    expect(file(NODE_PATHS.roleSql).content).toBe(ROLE_SQL);
    expect(file(NODE_PATHS.bootstrapClusterSql).content).toBe(params.files.bootstrapClusterSql);
    expect(file(NODE_PATHS.bootstrapTemplateSql).content).toBe(params.files.bootstrapTemplateSql);
  });

  it("the env file and the roles table", () => {
    expect(file(NODE_PATHS.env).content).toBe(
      [
        "ROLE=replica",
        "CLUSTER=eu-prod-postgres",
        "AWS_REGION=eu-central-1",
        "PG_MAJOR=15",
        "STANZA=main",
        "DATA_DEVICE=/dev/sdf",
        "DATA_MOUNT=/var/lib/postgresql",
        "PRIMARY_HOST=pg-primary.eu-prod.alphapulse.internal",
        "REPLICATION_SLOT=replica_eu_central_1b",
        "REPLICATION_ROLE=replicator",
        "METRICS_NAMESPACE=AlphaPulse/Postgres",
        "",
      ].join("\n"),
    );
    expect(file(NODE_PATHS.roles).content).toBe(`alphapulse_admin\tSUPERUSER\t${ADMIN_ARN}\nreplicator\tREPLICATION\t${REPL_ARN}\n`);
  });

  it("backups run on whichever node is primary, on the configured calendar", () => {
    expect(file("/etc/systemd/system/pgbackrest-full.service").content).toBe(
      "[Unit]\nDescription=pgBackRest full backup of stanza main (primary only)\nAfter=postgresql@15-main.service\n\n[Service]\nType=oneshot\nExecStart=/usr/local/sbin/alphapulse-pg-if-primary pgbackrest --stanza=main --type=full backup\n",
    );
    expect(file("/etc/systemd/system/pgbackrest-diff.timer").content).toBe(
      "[Unit]\nDescription=Differential backup\n\n[Timer]\nOnCalendar=Mon..Sat *-*-* 01:00:00\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n",
    );
  });

  it("the CloudWatch agent ships the server and pgBackRest logs to the cluster's log group", () => {
    const agent = JSON.parse(file(NODE_PATHS.cloudwatchAgent).content);
    expect(
      agent.logs.logs_collected.files.collect_list.map((c: Record<string, string>) => [c.file_path, c.log_group_name, c.log_stream_name]),
    ).toEqual([
      ["/var/lib/postgresql/15/main/log/postgresql-*.json", params.logGroupName, "replica-{instance_id}-postgresql"],
      ["/var/log/pgbackrest/*.log", params.logGroupName, "replica-{instance_id}-pgbackrest"],
    ]);
  });

  it("holds no secret: roles are named by secret ARN only, and the scripts read passwords at boot", () => {
    expect(
      renderRolesTsv(params.roles)
        .split("\n")
        .filter(Boolean)
        .map((l) => l.split("\t")[2]),
    ).toEqual([ADMIN_ARN, REPL_ARN]);
    expect(BOOTSTRAP_SCRIPT).toContain('aws secretsmanager get-secret-value --region "$AWS_REGION" --secret-id "$1"');
    expect(renderNodeEnv(params)).not.toMatch(/PASSWORD/i);
  });

  it("is deterministic", () => {
    expect(renderPostgresNodeCloudInit(params)).toBe(renderPostgresNodeCloudInit({ ...params, roles: [...params.roles] }));
  });

  it.each([
    [{ replicationRole: "alphapulse_admin" }, 'replicationRole "alphapulse_admin" must be one of the roles, with REPLICATION'],
    [{ primaryHost: "pg primary" }, 'primaryHost "pg primary" must match'],
    [{ primaryHost: "$(reboot)" }, 'primaryHost "$(reboot)" must match'],
    [{ stanza: "main\nROLE=primary" }, "must match"],
    [{ replicationSlot: "Replica-1" }, 'replicationSlot "Replica-1" must match'],
    [
      { roles: [...params.roles, { name: "monitor", attributes: "REPLICATION; DROP", secretArn: REPL_ARN }] },
      'role monitor: attributes "REPLICATION; DROP" must be among',
    ],
    [
      { roles: [{ name: "replicator", attributes: "REPLICATION", secretArn: "arn with space" }] },
      'role replicator secretArn "arn with space" must match',
    ],
    [
      { backupSchedule: { full: "Sun\nExecStart=/bin/sh", diff: "daily" } },
      'backupSchedule.full "Sun\nExecStart=/bin/sh" is not a systemd OnCalendar expression',
    ],
  ] as [Partial<PostgresNodeParams>, string][])("refuses %j", (override, message) => {
    expect(() => renderPostgresNodeCloudInit({ ...params, ...override })).toThrow(message);
  });
});

describe("the node scripts", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "cloud-init-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ["bootstrap", BOOTSTRAP_SCRIPT],
    ["if-primary", IF_PRIMARY_SCRIPT],
    ["metrics", METRICS_SCRIPT],
  ])("%s is valid bash", (name, script) => {
    const file = path.join(dir, name);
    writeFileSync(file, script);
    expect(() => execFileSync("bash", ["-n", file], { stdio: "pipe" })).not.toThrow();
  });

  it("negative control: bash -n catches a broken script", () => {
    const file = path.join(dir, "broken");
    writeFileSync(file, BOOTSTRAP_SCRIPT.replace("fi\n", "\n"));
    expect(() => execFileSync("bash", ["-n", file], { stdio: "pipe" })).toThrow();
  });

  it("the bootstrap never formats a volume that has a file system and never re-initialises a data directory", () => {
    expect(BOOTSTRAP_SCRIPT).toContain('blkid "$DATA_DEVICE" >/dev/null 2>&1 || mkfs.xfs -L pgdata "$DATA_DEVICE"');
    expect(BOOTSTRAP_SCRIPT).toContain('if [ ! -s "$PGDATA/PG_VERSION" ] && [ "$ROLE" = replica ]; then');
    expect(BOOTSTRAP_SCRIPT).toContain('if [ ! -d "$PGCONF" ]; then');
  });
});

/** role.sql against the real test cluster: creates, re-passwords, and refuses an empty password. */
describe("role.sql on PostgreSQL", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "role-sql-"));
  const sqlFile = path.join(dir, "role.sql");
  writeFileSync(sqlFile, ROLE_SQL);
  const role = `cloudinit_${randomBytes(4).toString("hex")}`;
  const psql = (password: string | undefined, attributes = "") =>
    execFileAsync(
      "psql",
      [adminUrl(), "-XAtq", "-v", "ON_ERROR_STOP=1", "-v", `role_name=${role}`, "-v", `role_attributes=${attributes}`, "-f", sqlFile],
      {
        env: { ...process.env, ...(password === undefined ? {} : { ROLE_PASSWORD: password }) },
      },
    );
  const rolpassword = async () => {
    const c = new pg.Client({ connectionString: adminUrl() });
    await c.connect();
    try {
      const { rows } = await c.query("SELECT rolpassword, rolreplication, rolcanlogin FROM pg_authid WHERE rolname = $1", [role]);
      return rows[0];
    } finally {
      await c.end();
    }
  };
  afterAll(async () => {
    const c = new pg.Client({ connectionString: adminUrl() });
    await c.connect();
    await c.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(role)}`);
    await c.end();
    rmSync(dir, { recursive: true, force: true });
  });

  it("creates the role with the password from the environment, then changes it idempotently", async () => {
    await psql("first-password-0123456789", "REPLICATION");
    let row = await rolpassword();
    expect(row.rolcanlogin).toBe(true);
    expect(row.rolreplication).toBe(true);
    expect(verifierMatches("first-password-0123456789", row.rolpassword)).toBe(true);
    await psql("second-password-0123456789", "REPLICATION");
    row = await rolpassword();
    expect(verifierMatches("second-password-0123456789", row.rolpassword)).toBe(true);
  });

  it("refuses a missing or short password and leaves the current one in place", async () => {
    await expect(psql("short")).rejects.toThrow(
      /refusing role cloudinit_[0-9a-f]+ : password shorter than 16 characters[\s\S]*refusing to set a password shorter than 16 characters/,
    );
    await expect(psql("")).rejects.toThrow(/refusing to set a password shorter than 16 characters/);
    await expect(psql(undefined)).rejects.toThrow(/syntax error/);
    expect(verifierMatches("second-password-0123456789", (await rolpassword()).rolpassword)).toBe(true);
  });
});
