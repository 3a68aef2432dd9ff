/**
 * Which `tenancy` commands run inside the VPC through the database executor (`npm run ops`, the
 * `tenancy` operation of lib/executor/operations.ts), and why the others are refused. Pure: the
 * table below is the whole policy, and test/cli/executor-policy.test.ts checks it row by row.
 *
 * The executor is a Lambda function (ADR-004): its session is its own (the executor role, TLS +
 * SCRAM), its network reaches PostgreSQL only (one security-group rule, 5432), its environment holds
 * no secret of the operator, its /tmp is gone when the invocation ends, and an invocation ends after
 * 15 minutes at most. A command is therefore refused (exit 2, before it runs, naming the argument)
 * when it would read or write a file of the operator's machine, need Redis, take a secret from an
 * environment variable, or never return. Every command has a row: a new command is refused until
 * someone decides (the test fails on a command without one).
 */
import type { Flags } from "./command";

/** Why a command may not run in the executor: the argument at fault, and the reason. */
export interface ExecutorRefusal {
  field: string;
  reason: string;
}

/** What the executor the command runs in can do beyond its session. */
export interface ExecutorAbilities {
  /** It keeps offboarding exports (the region's backup bucket: EXECUTOR_EXPORT_BUCKET is set). */
  keepsExports: boolean;
}

type Rule = (flags: Flags, abilities: ExecutorAbilities) => ExecutorRefusal | undefined;

const ALLOWED: Rule = () => undefined;

/** Refused whatever its flags: `field` names the argument that cannot work inside the executor. */
function refused(field: string, reason: string): Rule {
  return () => ({ field, reason });
}

/** Refused when `flag` is given; allowed otherwise (then `rest` decides). */
function unless(flag: string, reason: string, rest: Rule = ALLOWED): Rule {
  return (flags, abilities) => (flags[flag] !== undefined ? { field: `--${flag}`, reason } : rest(flags, abilities));
}

const EPHEMERAL_TMP =
  "the executor is a Lambda function: a file there lives in its /tmp, which is gone when the invocation ends, and nothing carries it to or from your machine";
const NO_REDIS =
  "the executor reaches PostgreSQL only (its security group has one rule, 5432) and holds no Redis credential: run cache commands where the region's Redis is reachable";
const redisRule = (rest: Rule = ALLOWED) => unless("redis-url", NO_REDIS, rest);

/**
 * Offboarding writes its verified export before anything changes. Inside the executor it is kept in
 * the region's backup bucket (tenant-exports/<tenant id>/, SSE-KMS, read back and verified), never in
 * a directory: `--export-dir` would name the executor's /tmp. An executor without the bucket keeps
 * no export, so only `--skip-export` (said explicitly) or `--dry-run` may run there.
 */
const offboardingRule: Rule = unless("redis-url", NO_REDIS, (flags, { keepsExports }) => {
  if (flags["export-dir"] !== undefined)
    return {
      field: "--export-dir",
      reason: `${EPHEMERAL_TMP}; inside the region the export is kept in its backup bucket (tenant-exports/<tenant id>/): leave --export-dir out`,
    };
  if (keepsExports || flags["dry-run"] === true || flags["skip-export"] === true) return undefined;
  return {
    field: "--export-dir",
    reason:
      "offboarding writes a verified export first, and this executor keeps none (EXECUTOR_EXPORT_BUCKET is not set: deploy the stack's executor with its export bucket); pass --skip-export to offboard without a file (the rows stay until `tenant purge`), or --dry-run to see the steps",
  };
});

/** The policy, by command words (cli/commands/index.ts). */
export const EXECUTOR_POLICY: Readonly<Record<string, Rule>> = {
  migrate: ALLOWED,
  "tenant create": ALLOWED,
  "tenant list": ALLOWED,
  "tenant show": ALLOWED,
  "tenant suspend": redisRule(),
  "tenant resume": ALLOWED,
  "tenant delete": offboardingRule,
  // purgeTenant refuses before the purge date by the database's clock; nothing here loosens that.
  "tenant purge": redisRule(),
  seed: refused("command", "`seed` writes synthetic rows for benchmarks; it never runs against a region's database"),
  audit: ALLOWED,
  "context-key install": refused(
    "--secret-env",
    "the secret would come from the executor's environment, which holds none of yours: keys reach the database through the platform stack (the installContextKey operation), never through a command",
  ),
  "context-key retire": ALLOWED,
  "context-key list": ALLOWED,
  "tenant graduate": ALLOWED,
  "tenant demote": ALLOWED,
  "tenant login-role": ALLOWED,
  capacity: ALLOWED,
  "tenant export": refused("--out", EPHEMERAL_TMP),
  "tenant import": refused("--in", EPHEMERAL_TMP),
  "tenant restore": refused(
    "--pgbackrest-config",
    "a tenant restore restores the cluster into a scratch cluster on the host that runs it: it needs the pgBackRest repository, disk for a copy of the cluster and more than 15 minutes, none of which a Lambda has; run it on a PostgreSQL node (SSM session, docs/aws.md)",
  ),
  "cache grant": refused("--redis-url", NO_REDIS),
  "cache revoke": refused("--redis-url", NO_REDIS),
  "cache usage": refused("--redis-url", NO_REDIS),
  "pgbouncer render": refused(
    "--out",
    `${EPHEMERAL_TMP}; on AWS the platform stack writes PgBouncer's auth file as a Secrets Manager secret (the pgbouncerAuthFile operation)`,
  ),
  top: unless("watch", "an invocation returns once: `top` without --watch prints one snapshot"),
  slow: unless("log-file", `${EPHEMERAL_TMP}; without --log-file, \`slow\` reads the server's own log`),
};

/**
 * Why `tenancy <words> <flags>` may not run inside the executor, or undefined when it may. A
 * `--database-url` is always refused: the executor connects with its own credential, never one from
 * the command line.
 */
export function executorRefusal(
  words: readonly string[],
  flags: Flags,
  abilities: ExecutorAbilities = { keepsExports: false },
): ExecutorRefusal | undefined {
  if (flags["database-url"] !== undefined)
    return {
      field: "--database-url",
      reason: "the executor connects with its own credential (Secrets Manager), never one from the command line",
    };
  const rule = EXECUTOR_POLICY[words.join(" ")];
  if (!rule)
    return { field: "command", reason: `\`${words.join(" ")}\` has no row in cli/executor-policy.ts: it is not run inside the executor` };
  return rule(flags, abilities);
}
