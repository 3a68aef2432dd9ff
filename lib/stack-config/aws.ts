/**
 * The configuration of a regional AWS stack (stacks/Pulumi.eu-prod.yaml, us-prod, eu-staging): one
 * residency, one AWS region and account, the sizes of the cluster, pooler and cache, and the
 * tenants the stack serves. Validated with zod before any resource is declared; every error names
 * the key path (`alphapulse-platform:postgres.dataVolumeGiB: ...`, `aws:region: ...`) and the reason.
 *
 * The residency guard runs here first: the AWS region, every availability zone, the PgBouncer image
 * registry and every tenant must belong to the stack's residency. The components and the policy
 * rules check again what they declare.
 *
 * No Pulumi import: pure, tested without the engine (components/aws/config.ts reads it from pulumi.Config).
 */
import { z } from "zod";
import { checkAwsPoolBudget } from "../pgbouncer/aws";
import { assertImageAllowed, assertRegionAllowed, assertTenantsResident, assertZoneInRegion, ResidencyError } from "../platform/residency";
import { configKeyPath, ContextKeyIds, decodeConfigValue, SampleTenant, StackConfigError, CONFIG_NAMESPACE } from "./common";
import { ResidencyRegion, TenantId } from "../tenant/model";

/** A tenant served by a regional stack: the sample-tenant fields plus its id (Redis users and key namespaces use it). */
export const AwsTenant = z.object({ id: TenantId, ...SampleTenant.shape }).strict();
export type AwsTenant = z.infer<typeof AwsTenant>;

const Ipv4Cidr = z
  .string()
  .regex(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/, { message: "must be an IPv4 CIDR like 10.20.0.0/16" })
  .refine(
    (s) =>
      s
        .split(/[./]/)
        .slice(0, 4)
        .every((o) => Number(o) <= 255),
    { message: "octets must be 0-255" },
  );

/** AWS tag values: letters, digits, spaces and `_ . : / = + - @`, at most 256 characters. */
const TagValue = z.string().regex(/^[\p{L}\p{N} _.:/=+\-@]{1,256}$/u, {
  message: "must be a valid AWS tag value (1-256 of letters, digits, spaces, _ . : / = + - @)",
});

const InstanceType = z.string().regex(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, { message: "must be an EC2 instance type like r7g.xlarge" });

/** A systemd OnCalendar expression (what the backup timers take). */
const OnCalendar = z
  .string()
  .regex(/^[A-Za-z0-9 *:.,/-]+$/, { message: "must be a systemd OnCalendar expression like 'Sun *-*-* 01:00:00'" });

export const NetworkConfig = z
  .object({
    cidrBlock: Ipv4Cidr.refine((s) => Number(s.split("/")[1]) >= 16 && Number(s.split("/")[1]) <= 20, {
      message: "prefix must be /16 to /20",
    }),
    /** Plain availability zones of the stack's region; private subnets (and the replica) spread over them. */
    availabilityZones: z.array(z.string()).min(2, { message: "needs at least two availability zones" }).max(6),
  })
  .strict();

export const PostgresConfig = z
  .object({
    instanceType: InstanceType,
    /** Memory of the instance type in MiB, when instanceMemoryMiB() does not know the type. */
    memoryMiB: z.number().int().min(1024).optional(),
    /** gp3 data volume per node. */
    dataVolumeGiB: z.number().int().min(20).max(16384),
    dataVolumeIops: z.number().int().min(3000).max(16000).default(3000),
    dataVolumeThroughputMiBps: z.number().int().min(125).max(1000).default(125),
    maxConnections: z.number().int().min(20).max(5000).default(300),
    /** Name filter of the golden image (self-owned AMIs): PostgreSQL 15 + TimescaleDB + pgBackRest, see docs/aws.md. */
    imageNamePattern: z.string().min(1).default("alphapulse-postgresql-15-timescaledb-*"),
    backup: z
      .object({
        /** Full backups kept (count). WAL older than the oldest kept full backup expires with it. */
        retentionFull: z.number().int().min(1).max(52).default(4),
        /** Differential backups kept between fulls. */
        retentionDiff: z.number().int().min(1).max(31).default(7),
        fullSchedule: OnCalendar.default("Sun *-*-* 01:00:00"),
        diffSchedule: OnCalendar.default("Mon..Sat *-*-* 01:00:00"),
        /** Days a deleted (expired) backup object stays recoverable as a noncurrent S3 version. */
        noncurrentVersionDays: z.number().int().min(1).max(365).default(30),
      })
      .strict()
      .default({
        retentionFull: 4,
        retentionDiff: 7,
        fullSchedule: "Sun *-*-* 01:00:00",
        diffSchedule: "Mon..Sat *-*-* 01:00:00",
        noncurrentVersionDays: 30,
      }),
    alarms: z
      .object({
        replicationLagSeconds: z.number().int().min(1).default(60),
        diskUsedPercent: z.number().int().min(1).max(99).default(80),
        connectionsUsedPercent: z.number().int().min(1).max(100).default(80),
        /** Hours since the newest backup finished; the default allows one missed daily run. */
        backupAgeHours: z.number().int().min(1).default(49),
      })
      .strict()
      .default({ replicationLagSeconds: 60, diskUsedPercent: 80, connectionsUsedPercent: 80, backupAgeHours: 49 }),
  })
  .strict();

export const PgbouncerConfig = z
  .object({
    /** Private ECR image in the stack's residency (`<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>`). */
    image: z.string().min(1),
    desiredCount: z.number().int().min(2, { message: "must be at least 2 (one task per availability zone)" }).default(2),
    cpu: z.union([z.literal(256), z.literal(512), z.literal(1024), z.literal(2048), z.literal(4096)]).default(512),
    memoryMiB: z.number().int().min(512).max(30720).default(1024),
    /** App instances connecting as app_user. ADR-001: 10. */
    appInstances: z.number().int().min(1).default(10),
    /** Pool size of each app instance. ADR-001: 20. */
    appPoolPerInstance: z.number().int().min(1).default(20),
    /** Client connections each task accepts. */
    maxClientConnections: z.number().int().min(1).default(1000),
    /** Extra server connections per task for clients that waited (operators' ad-hoc sessions). */
    reservePoolSize: z.number().int().min(0).default(5),
  })
  .strict();

export const MAXMEMORY_POLICIES = [
  "noeviction",
  "allkeys-lru",
  "volatile-lru",
  "allkeys-lfu",
  "volatile-lfu",
  "allkeys-random",
  "volatile-random",
  "volatile-ttl",
] as const;

export const RedisConfig = z
  .object({
    nodeType: z.string().regex(/^cache\.[a-z0-9]+\.[a-z0-9]+$/, { message: "must be an ElastiCache node type like cache.r7g.large" }),
    engineVersion: z
      .string()
      .regex(/^7\.\d+$/, { message: "must be a Redis 7 engine version like 7.1" })
      .default("7.1"),
    /** Read replicas besides the primary (Multi-AZ needs at least one). */
    replicas: z.number().int().min(1, { message: "Multi-AZ needs at least one replica" }).max(5).default(1),
    /** Per-tenant quotas are enforced by lib/redis; eviction is the last line: volatile-* evicts only keys with a TTL. */
    maxmemoryPolicy: z.enum(MAXMEMORY_POLICIES).default("volatile-lru"),
    snapshotRetentionDays: z.number().int().min(1).max(35).default(7),
  })
  .strict();

export const AwsStackConfig = z
  .object({
    kind: z.literal("aws"),
    /** The stack's residency: "eu" or "us" (same key as the local stacks). */
    region: ResidencyRegion,
    /** From `aws:region`: the AWS region every resource of the stack lives in. */
    awsRegion: z.string().min(1),
    /** The only AWS account this stack may deploy to (the provider refuses any other). */
    // Pulumi hands a bare digit string to the program as JSON, so it may arrive as a number.
    accountId: z
      .union([z.string(), z.number().int()])
      .transform(String)
      .pipe(z.string().regex(/^\d{12}$/, { message: "must be a 12-digit AWS account id" })),
    environment: z.enum(["prod", "staging"]),
    costCentre: TagValue,
    network: NetworkConfig,
    postgres: PostgresConfig,
    pgbouncer: PgbouncerConfig,
    redis: RedisConfig,
    tenants: z.array(AwsTenant).default([]),
    /** Tenant-context key ids, oldest first; services sign with the last (components/aws/regional-platform.ts `contextKeys`). */
    contextKeys: ContextKeyIds.optional(),
  })
  .strict()
  .superRefine((config, ctx) => {
    const guard = (path: PropertyKey[], check: () => void) => {
      try {
        check();
      } catch (err) {
        if (!(err instanceof ResidencyError)) throw err;
        ctx.addIssue({ code: "custom", path, message: err.message });
      }
    };
    guard(["awsRegion"], () => assertRegionAllowed(config.region, config.awsRegion, "the stack's AWS region"));
    config.network.availabilityZones.forEach((zone, i) =>
      guard(["network", "availabilityZones", i], () => assertZoneInRegion(zone, config.awsRegion, "availability zone")),
    );
    const zones = config.network.availabilityZones;
    if (new Set(zones).size !== zones.length)
      ctx.addIssue({ code: "custom", path: ["network", "availabilityZones"], message: "availability zones must be distinct" });
    guard(["pgbouncer", "image"], () => assertImageAllowed(config.region, config.pgbouncer.image, "PgBouncer image"));
    config.tenants.forEach((tenant, i) => guard(["tenants", i, "region"], () => assertTenantsResident(config.region, [tenant], "tenant")));
    const seen = new Map<string, number>();
    config.tenants.forEach((t, i) => {
      for (const [field, value] of [
        ["slug", t.slug],
        ["id", t.id],
      ] as const) {
        const key = `${field}:${value}`;
        if (seen.has(key))
          ctx.addIssue({
            code: "custom",
            path: ["tenants", i, field],
            message: `duplicate ${field} "${value}" (also tenants[${seen.get(key)}])`,
          });
        else seen.set(key, i);
      }
    });
    // Session mode pins a server connection per app connection: app pools ≤ PgBouncer's pools ≤ max_connections.
    const budget = checkAwsPoolBudget({
      ...config.pgbouncer,
      tasks: config.pgbouncer.desiredCount,
      databaseHost: "pg-primary.internal",
      maxConnections: config.postgres.maxConnections,
    });
    for (const problem of budget.problems) {
      const path = BUDGET_FIELDS[problem.field] ?? ["pgbouncer"];
      ctx.addIssue({ code: "custom", path, message: problem.message });
    }
    if (config.postgres.memoryMiB === undefined && instanceMemoryMiB(config.postgres.instanceType) === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["postgres", "memoryMiB"],
        message: `unknown memory for ${config.postgres.instanceType}: set postgres.memoryMiB`,
      });
    }
  });
export type AwsStackConfig = z.infer<typeof AwsStackConfig>;

/** Where lib/pgbouncer's pool-budget problems point in the stack config. */
const BUDGET_FIELDS: Record<string, PropertyKey[]> = {
  "postgres.maxConnections": ["postgres", "maxConnections"],
  appPools: ["pgbouncer", "appInstances"],
  maxClientConn: ["pgbouncer", "maxClientConnections"],
};

/** Config keys outside the project namespace that the schema reads, by schema field. */
const FOREIGN_KEYS: Record<string, string> = { awsRegion: "aws:region" };

/** `["postgres", "dataVolumeGiB"]` → `alphapulse-platform:postgres.dataVolumeGiB`; `["awsRegion"]` → `aws:region`. */
export function awsConfigKeyPath(segments: readonly PropertyKey[]): string {
  const [head, ...rest] = segments;
  const foreign = typeof head === "string" ? FOREIGN_KEYS[head] : undefined;
  if (foreign !== undefined && rest.length === 0) return foreign;
  return configKeyPath(segments);
}

/**
 * Parses a regional stack's config from `pulumi.runtime.allConfig()`-shaped input (`"ns:key" →
 * string`, structured values JSON-encoded). Project keys are checked strictly (a typo fails);
 * other namespaces are ignored except `aws:region`. Throws a StackConfigError naming the key path.
 */
export function parseAwsStackConfig(all: Record<string, string>): AwsStackConfig {
  const prefix = `${CONFIG_NAMESPACE}:`;
  const values: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(all)) {
    if (key.startsWith(prefix)) values[key.slice(prefix.length)] = decodeConfigValue(raw);
  }
  if (all["aws:region"] !== undefined) values.awsRegion = all["aws:region"];
  const result = AwsStackConfig.safeParse(values);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = issue.code === "unrecognized_keys" ? [...issue.path, issue.keys[0]] : issue.path;
  const message = issue.code === "unrecognized_keys" ? "unknown key" : issue.message;
  throw new StackConfigError(
    path.length === 1 && path[0] === "awsRegion" && issue.code === "invalid_type" ? "is required" : message,
    awsConfigKeyPath(path),
  );
}

const MEMORY_GIB_PER_VCPU: Record<string, number> = { m: 4, r: 8, c: 2 };
const SIZE_VCPUS: Record<string, number> = {
  large: 2,
  xlarge: 4,
  "2xlarge": 8,
  "4xlarge": 16,
  "8xlarge": 32,
  "12xlarge": 48,
  "16xlarge": 64,
  "24xlarge": 96,
};

/**
 * Memory of generation 5-8 general purpose (m), memory optimised (r) and compute (c) instances:
 * vCPUs × GiB per vCPU (`r7g.xlarge` → 4 × 8 GiB). Undefined for other families (burstable t*,
 * storage i*, x*, older generations whose ratios differ) and sizes: set postgres.memoryMiB for those.
 */
export function instanceMemoryMiB(instanceType: string): number | undefined {
  const match = /^([mrc])([5-8])[a-z]*\.([0-9]*x?large)$/.exec(instanceType);
  if (match === null) return undefined;
  const [, family, , size] = match;
  const vcpus = SIZE_VCPUS[size];
  if (vcpus === undefined) return undefined;
  return vcpus * MEMORY_GIB_PER_VCPU[family] * 1024;
}
