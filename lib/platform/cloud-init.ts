/**
 * The cloud-init user data of a self-managed PostgreSQL + TimescaleDB node on EC2, as a pure function.
 *
 * The user data carries configuration and static scripts, never a secret: passwords stay in Secrets
 * Manager and the node fetches them with its instance role at boot (user data is readable by anyone
 * with ec2:DescribeInstanceAttribute). The scripts are idempotent, so re-running the bootstrap
 * (`sudo /usr/local/sbin/alphapulse-pg-bootstrap` through SSM) converges the node: it never
 * reformats a volume that has a file system and never re-initialises a data directory that exists.
 *
 * The image is expected to carry the packages (a golden image, see docs/aws.md): the VPC has no
 * internet path, so nothing is installed at boot. The bootstrap checks for them and fails loudly.
 */
import { stringify } from "yaml";

export type NodeRole = "primary" | "replica";

/** A login role the bootstrap creates (or re-passwords) on the primary, password from Secrets Manager. */
export interface BootstrapRole {
  name: string;
  /** Role attributes besides LOGIN, e.g. "REPLICATION" or "SUPERUSER". */
  attributes: string;
  /** ARN of a Secrets Manager secret whose SecretString is JSON with a `password` field. */
  secretArn: string;
}

export interface PostgresNodeParams {
  role: NodeRole;
  /** Cluster name: CloudWatch metric dimension and log stream prefix. */
  cluster: string;
  region: string;
  /** PostgreSQL major version installed on the image. */
  majorVersion: number;
  stanza: string;
  /** Block device of the data volume as attached (`/dev/sdf`; the image's udev rules link NVMe devices to it). */
  dataDevice: string;
  /** Where the data volume is mounted: the postgres user's home, holding `<major>/main`. */
  dataMount: string;
  /** DNS name of the primary (the replica streams from it). */
  primaryHost: string;
  /** Replication slot the replica streams through (created by pg_basebackup). */
  replicationSlot: string;
  /**
   * Rendered by lib/platform/postgres-config.ts and lib/platform/pgbackrest-config.ts; the two
   * database-bootstrap scripts by lib/platform/database-bootstrap.ts (run as `postgres` on the
   * primary after the login roles: the superuser-only part of the data layer).
   */
  files: { postgresqlConf: string; pgHba: string; pgbackrestConf: string; bootstrapClusterSql: string; bootstrapTemplateSql: string };
  /** Login roles created on the primary; the replica reads the replication role's secret from here. */
  roles: readonly BootstrapRole[];
  /** The role the replica connects as (must be in `roles`, with REPLICATION). */
  replicationRole: string;
  /** systemd OnCalendar expressions for pgBackRest backups (run on whichever node is primary). */
  backupSchedule: { full: string; diff: string };
  metricsNamespace: string;
  /** CloudWatch log group for the PostgreSQL and pgBackRest logs. */
  logGroupName: string;
}

export class CloudInitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CloudInitError";
  }
}

/** Values written unquoted into a shell-sourced env file and a TSV: a conservative alphabet, no spaces. */
const ENV_SAFE = /^[A-Za-z0-9_.:/@+=,-]+$/;
const NAME_SAFE = /^[a-z_][a-z0-9_]{0,62}$/;
const CALENDAR_SAFE = /^[A-Za-z0-9 *:.,/-]+$/;
const ATTRIBUTES = /^(?:(?:SUPERUSER|REPLICATION|CREATEROLE|CREATEDB|NOINHERIT)(?: |$))*$/;

function envSafe(what: string, value: string): string {
  if (!ENV_SAFE.test(value)) throw new CloudInitError(`${what} "${value}" must match ${ENV_SAFE}`);
  return value;
}

function nameSafe(what: string, value: string): string {
  if (!NAME_SAFE.test(value)) throw new CloudInitError(`${what} "${value}" must match ${NAME_SAFE}`);
  return value;
}

/** Paths on the node. */
export const NODE_PATHS = {
  env: "/etc/alphapulse/postgres.env",
  roles: "/etc/alphapulse/roles.tsv",
  roleSql: "/etc/alphapulse/role.sql",
  bootstrapClusterSql: "/etc/alphapulse/bootstrap-cluster.sql",
  bootstrapTemplateSql: "/etc/alphapulse/bootstrap-template.sql",
  postgresqlConf: "/etc/alphapulse/postgresql.conf",
  pgHba: "/etc/alphapulse/pg_hba.conf",
  pgbackrestConf: "/etc/pgbackrest/pgbackrest.conf",
  bootstrap: "/usr/local/sbin/alphapulse-pg-bootstrap",
  ifPrimary: "/usr/local/sbin/alphapulse-pg-if-primary",
  metrics: "/usr/local/sbin/alphapulse-pg-metrics",
  cloudwatchAgent: "/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json",
} as const;

/**
 * The bootstrap. Same text on both roles; ROLE in the env file decides the first-boot path only
 * (init + roles + stanza on the primary, pg_basebackup on the replica). Later runs just converge
 * the configuration and services. The header names this renderer by the path it had when the
 * first nodes were built (lib/cloud-init/postgres-node.ts): the text is part of every node's user
 * data, and a re-layout of the repo is no reason to change what is deployed.
 */
export const BOOTSTRAP_SCRIPT = `#!/bin/bash
# AlphaPulse PostgreSQL node bootstrap (rendered by lib/cloud-init/postgres-node.ts). Idempotent.
set -euo pipefail
source ${NODE_PATHS.env}
PGBIN="/usr/lib/postgresql/$PG_MAJOR/bin"
PGDATA="$DATA_MOUNT/$PG_MAJOR/main"
PGCONF="/etc/postgresql/$PG_MAJOR/main"

for bin in "$PGBIN/postgres" /usr/bin/pgbackrest /usr/bin/aws /usr/bin/jq /usr/sbin/mkfs.xfs; do
  [ -x "$bin" ] || { echo "bootstrap: $bin missing: build the image with the packages in docs/aws.md" >&2; exit 1; }
done
compgen -G "/usr/lib/postgresql/$PG_MAJOR/lib/timescaledb*.so" >/dev/null \\
  || { echo "bootstrap: TimescaleDB for PostgreSQL $PG_MAJOR missing from the image" >&2; exit 1; }

# The data volume: formatted once (never when a file system exists), mounted by label.
for _ in $(seq 1 120); do [ -e "$DATA_DEVICE" ] && break; sleep 5; done
[ -e "$DATA_DEVICE" ] || { echo "bootstrap: data volume $DATA_DEVICE never appeared" >&2; exit 1; }
blkid "$DATA_DEVICE" >/dev/null 2>&1 || mkfs.xfs -L pgdata "$DATA_DEVICE"
mkdir -p "$DATA_MOUNT"
grep -q '^LABEL=pgdata ' /etc/fstab || echo "LABEL=pgdata $DATA_MOUNT xfs defaults,noatime,nofail 0 2" >>/etc/fstab
mountpoint -q "$DATA_MOUNT" || mount "$DATA_MOUNT"
chown postgres:postgres "$DATA_MOUNT"
install -d -o postgres -g postgres -m 0750 /var/log/pgbackrest /var/spool/pgbackrest

secret_password() {
  aws secretsmanager get-secret-value --region "$AWS_REGION" --secret-id "$1" --query SecretString --output text | jq -er .password
}
as_postgres() { runuser -u postgres -- "$@"; }

if [ ! -s "$PGDATA/PG_VERSION" ] && [ "$ROLE" = replica ]; then
  repl_arn=$(awk -F'\\t' -v r="$REPLICATION_ROLE" '$1 == r { print $3 }' ${NODE_PATHS.roles})
  umask 077
  printf '%s:5432:*:%s:%s\\n' "$PRIMARY_HOST" "$REPLICATION_ROLE" "$(secret_password "$repl_arn")" >"$DATA_MOUNT/.pgpass"
  chown postgres:postgres "$DATA_MOUNT/.pgpass"
  until as_postgres "$PGBIN/pg_isready" -q -h "$PRIMARY_HOST" -p 5432; do sleep 5; done
  # A rebuilt replica reuses its slot name: drop the stale slot first (absent on first build).
  as_postgres "$PGBIN/pg_receivewal" --drop-slot --slot="$REPLICATION_SLOT" -h "$PRIMARY_HOST" -U "$REPLICATION_ROLE" -w 2>/dev/null || true
  as_postgres "$PGBIN/pg_basebackup" -h "$PRIMARY_HOST" -U "$REPLICATION_ROLE" -w -D "$PGDATA" \\
    -X stream -C -S "$REPLICATION_SLOT" -R --checkpoint=fast
fi

# Register the data directory with the Debian cluster tools (creates it on a fresh primary, adopts it otherwise).
if [ ! -d "$PGCONF" ]; then
  pg_createcluster "$PG_MAJOR" main -d "$PGDATA" -- --data-checksums --auth-local=peer --auth-host=scram-sha-256
fi
install -o postgres -g postgres -m 0640 ${NODE_PATHS.postgresqlConf} "$PGCONF/conf.d/alphapulse.conf"
install -o postgres -g postgres -m 0640 ${NODE_PATHS.pgHba} "$PGCONF/pg_hba.conf"
systemctl enable postgresql@"$PG_MAJOR"-main
systemctl restart postgresql@"$PG_MAJOR"-main
until as_postgres "$PGBIN/pg_isready" -q; do sleep 2; done

if [ "$(as_postgres psql -XAtqc 'SELECT pg_is_in_recovery()')" = f ]; then
  # Login roles: each password goes through the environment into psql's \\getenv, never onto a command line.
  while IFS=$'\\t' read -r name attributes arn; do
    password=$(secret_password "$arn")
    ROLE_PASSWORD="$password" as_postgres psql -XAtq -v ON_ERROR_STOP=1 -v role_name="$name" -v role_attributes="$attributes" -f ${NODE_PATHS.roleSql}
  done <${NODE_PATHS.roles}
  # The superuser-only part of the data layer; everything else runs as the executor's role (docs/aws.md).
  as_postgres psql -XAtq -d postgres -f ${NODE_PATHS.bootstrapClusterSql}
  as_postgres psql -XAtq -d template1 -f ${NODE_PATHS.bootstrapTemplateSql}
  as_postgres pgbackrest --stanza="$STANZA" stanza-create
  as_postgres pgbackrest --stanza="$STANZA" check
  as_postgres pgbackrest --stanza="$STANZA" --output=json info | jq -e '.[0].backup | length > 0' >/dev/null \\
    || as_postgres pgbackrest --stanza="$STANZA" --type=full backup
fi

systemctl daemon-reload
systemctl enable --now alphapulse-pg-metrics.timer pgbackrest-full.timer pgbackrest-diff.timer
/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s -c file:${NODE_PATHS.cloudwatchAgent}
`;

/**
 * Creates a login role if missing and (re)sets its attributes and password. psql variables:
 * `role_name`, `role_attributes` (checked by renderRolesTsv) and the password from the environment
 * variable ROLE_PASSWORD. Idempotent.
 */
export const ROLE_SQL = `\\getenv role_password ROLE_PASSWORD
-- A failed secret read must not clear a password: refuse a missing (syntax error) or short one.
SELECT length(:'role_password') >= 16 AS password_ok \\gset
\\if :password_ok
SELECT format('CREATE ROLE %I LOGIN', :'role_name') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role_name') \\gexec
SELECT format('ALTER ROLE %I LOGIN %s PASSWORD %L', :'role_name', :'role_attributes', :'role_password') \\gexec
\\else
\\warn 'refusing role' :role_name ': password shorter than 16 characters'
DO $$ BEGIN RAISE EXCEPTION 'refusing to set a password shorter than 16 characters'; END $$;
\\endif
`;

/** Runs its arguments only on the node that is currently primary (backup timers exist on both nodes and survive a failover). */
export const IF_PRIMARY_SCRIPT = `#!/bin/bash
set -euo pipefail
[ "$(runuser -u postgres -- psql -XAtqc 'SELECT pg_is_in_recovery()')" = f ] || exit 0
exec runuser -u postgres -- "$@"
`;

/**
 * Publishes the metrics the CloudWatch alarms watch, every minute: disk and connection use on both
 * nodes, replication lag on the replica, backup age and WAL archiving failures on the primary.
 */
export const METRICS_SCRIPT = `#!/bin/bash
set -euo pipefail
source ${NODE_PATHS.env}
q() { runuser -u postgres -- psql -XAtqc "$1"; }
role=primary
[ "$(q 'SELECT pg_is_in_recovery()')" = t ] && role=replica
metrics=$(jq -n '[]')
add() { metrics=$(jq --arg n "$1" --argjson v "$2" --arg u "$3" '. + [{MetricName: $n, Value: $v, Unit: $u}]' <<<"$metrics"); }
add DiskUsedPercent "$(df --output=pcent "$DATA_MOUNT" | tail -n 1 | tr -dc 0-9)" Percent
add ConnectionsUsedPercent "$(q "SELECT round(100.0 * count(*) / current_setting('max_connections')::int, 2) FROM pg_stat_activity WHERE backend_type = 'client backend'")" Percent
if [ "$role" = replica ]; then
  add ReplicationLagSeconds "$(q "SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END::int")" Seconds
else
  stop=$(runuser -u postgres -- pgbackrest --stanza="$STANZA" --output=json info | jq -r '[.[0].backup[]?.timestamp.stop] | max // 0')
  add BackupAgeHours "$(( ($(date +%s) - stop) / 3600 ))" Count
  add WalArchiveFailing "$(q "SELECT (coalesce(last_failed_time, 'epoch') > coalesce(last_archived_time, 'epoch'))::int FROM pg_stat_archiver")" Count
fi
aws cloudwatch put-metric-data --region "$AWS_REGION" --namespace "$METRICS_NAMESPACE" \\
  --metric-data "$(jq --arg c "$CLUSTER" --arg r "$role" 'map(. + {Dimensions: [{Name: "Cluster", Value: $c}, {Name: "Role", Value: $r}]})' <<<"$metrics")"
`;

function systemdUnits(p: PostgresNodeParams): { path: string; content: string }[] {
  const backupService = (type: "full" | "diff") => ({
    path: `/etc/systemd/system/pgbackrest-${type}.service`,
    content: [
      "[Unit]",
      `Description=pgBackRest ${type} backup of stanza ${p.stanza} (primary only)`,
      `After=postgresql@${p.majorVersion}-main.service`,
      "",
      "[Service]",
      "Type=oneshot",
      `ExecStart=${NODE_PATHS.ifPrimary} pgbackrest --stanza=${p.stanza} --type=${type} backup`,
      "",
    ].join("\n"),
  });
  const timer = (unit: string, description: string, onCalendar: string) => ({
    path: `/etc/systemd/system/${unit}.timer`,
    content: [
      "[Unit]",
      `Description=${description}`,
      "",
      "[Timer]",
      `OnCalendar=${onCalendar}`,
      "Persistent=true",
      "",
      "[Install]",
      "WantedBy=timers.target",
      "",
    ].join("\n"),
  });
  return [
    backupService("full"),
    timer("pgbackrest-full", "Weekly full backup", p.backupSchedule.full),
    backupService("diff"),
    timer("pgbackrest-diff", "Differential backup", p.backupSchedule.diff),
    {
      path: "/etc/systemd/system/alphapulse-pg-metrics.service",
      content: [
        "[Unit]",
        "Description=Publish PostgreSQL health metrics to CloudWatch",
        "",
        "[Service]",
        "Type=oneshot",
        `ExecStart=${NODE_PATHS.metrics}`,
        "",
      ].join("\n"),
    },
    timer("alphapulse-pg-metrics", "Every minute: PostgreSQL health metrics", "*-*-* *:*:00"),
  ];
}

/**
 * The CloudWatch agent ships the server and pgBackRest logs to the cluster's log group. The server
 * log goes as jsonlog (lib/platform/postgres-config.ts loggingSettings): one event per line, with the fields
 * the tenant metric filters and Logs Insights queries read (lib/observability/cloudwatch.ts).
 */
export function cloudwatchAgentConfig(p: Pick<PostgresNodeParams, "majorVersion" | "dataMount" | "logGroupName" | "role">): string {
  const stream = (kind: string) => `${p.role}-{instance_id}-${kind}`;
  const config = {
    agent: { run_as_user: "root" },
    logs: {
      logs_collected: {
        files: {
          collect_list: [
            {
              file_path: `${p.dataMount}/${p.majorVersion}/main/log/postgresql-*.json`,
              log_group_name: p.logGroupName,
              log_stream_name: stream("postgresql"),
              timestamp_format: "%Y-%m-%d %H:%M:%S.%f %Z",
            },
            { file_path: "/var/log/pgbackrest/*.log", log_group_name: p.logGroupName, log_stream_name: stream("pgbackrest") },
          ],
        },
      },
    },
  };
  return JSON.stringify(config, null, 2) + "\n";
}

/** The node's env file: every value checked against a conservative alphabet, written unquoted. */
export function renderNodeEnv(p: PostgresNodeParams): string {
  const env: [string, string][] = [
    ["ROLE", p.role],
    ["CLUSTER", envSafe("cluster", p.cluster)],
    ["AWS_REGION", envSafe("region", p.region)],
    ["PG_MAJOR", String(p.majorVersion)],
    ["STANZA", envSafe("stanza", p.stanza)],
    ["DATA_DEVICE", envSafe("dataDevice", p.dataDevice)],
    ["DATA_MOUNT", envSafe("dataMount", p.dataMount)],
    ["PRIMARY_HOST", envSafe("primaryHost", p.primaryHost)],
    ["REPLICATION_SLOT", nameSafe("replicationSlot", p.replicationSlot)],
    ["REPLICATION_ROLE", nameSafe("replicationRole", p.replicationRole)],
    ["METRICS_NAMESPACE", envSafe("metricsNamespace", p.metricsNamespace)],
  ];
  return env.map(([k, v]) => `${k}=${v}`).join("\n") + "\n";
}

/** roles.tsv: `name<TAB>attributes<TAB>secret ARN`, one line per login role. */
export function renderRolesTsv(roles: readonly BootstrapRole[]): string {
  return roles
    .map((r) => {
      nameSafe("role name", r.name);
      if (!ATTRIBUTES.test(r.attributes))
        throw new CloudInitError(
          `role ${r.name}: attributes "${r.attributes}" must be among SUPERUSER REPLICATION CREATEROLE CREATEDB NOINHERIT`,
        );
      return [r.name, r.attributes, envSafe(`role ${r.name} secretArn`, r.secretArn)].join("\t");
    })
    .join("\n")
    .concat("\n");
}

/** The whole `#cloud-config` document. Deterministic: same params, same bytes. */
export function renderPostgresNodeCloudInit(p: PostgresNodeParams): string {
  if (!p.roles.some((r) => r.name === p.replicationRole && r.attributes.split(" ").includes("REPLICATION"))) {
    throw new CloudInitError(`replicationRole "${p.replicationRole}" must be one of the roles, with REPLICATION`);
  }
  for (const [what, value] of [
    ["backupSchedule.full", p.backupSchedule.full],
    ["backupSchedule.diff", p.backupSchedule.diff],
  ] as const) {
    if (!CALENDAR_SAFE.test(value)) throw new CloudInitError(`${what} "${value}" is not a systemd OnCalendar expression`);
  }
  const file = (path: string, content: string, permissions: string, owner = "root:root") => ({ path, content, permissions, owner });
  const doc = {
    // Never let cloud-init touch packages: the VPC has no route to a mirror, and the image is the contract.
    package_update: false,
    package_upgrade: false,
    write_files: [
      file(NODE_PATHS.env, renderNodeEnv(p), "0640"),
      file(NODE_PATHS.roles, renderRolesTsv(p.roles), "0640"),
      file(NODE_PATHS.roleSql, ROLE_SQL, "0644"),
      file(NODE_PATHS.bootstrapClusterSql, p.files.bootstrapClusterSql, "0644"),
      file(NODE_PATHS.bootstrapTemplateSql, p.files.bootstrapTemplateSql, "0644"),
      file(NODE_PATHS.postgresqlConf, p.files.postgresqlConf, "0644"),
      file(NODE_PATHS.pgHba, p.files.pgHba, "0644"),
      file(NODE_PATHS.pgbackrestConf, p.files.pgbackrestConf, "0640", "root:postgres"),
      file(NODE_PATHS.bootstrap, BOOTSTRAP_SCRIPT, "0755"),
      file(NODE_PATHS.ifPrimary, IF_PRIMARY_SCRIPT, "0755"),
      file(NODE_PATHS.metrics, METRICS_SCRIPT, "0755"),
      file(NODE_PATHS.cloudwatchAgent, cloudwatchAgentConfig(p), "0644"),
      ...systemdUnits(p).map((u) => file(u.path, u.content, "0644")),
    ],
    runcmd: [[NODE_PATHS.bootstrap]],
  };
  return "#cloud-config\n" + stringify(doc, { lineWidth: 0 });
}
