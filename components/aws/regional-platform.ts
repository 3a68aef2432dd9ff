/**
 * `alphapulse:aws:RegionalPlatform` — everything ADR-001 needs in one AWS region, for one residency:
 * the provider pinned to the region and account with the default tags, the region's KMS key and
 * alarm topic, the Network, the PostgresCluster, the PgBouncerService and the RedisCache; through
 * the DatabaseExecutor, the RegionalDatabase (the local stacks' component) with its tenant-context
 * keys, each kept in a Secrets Manager secret that only the application's read policy may read.
 *
 * Region: one explicit `aws` provider, passed to every child through `providers`; nothing in the
 * tree sets its own `region`. The residency guard (lib/platform/residency.ts) checks the region, the zones,
 * the image registry and the tenants before anything is declared.
 * Tags: stack, residency, component and cost centre on the provider's `defaultTags`, so every
 * taggable resource carries them without copying.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import {
  assertImageAllowed,
  assertRegionAllowed,
  assertTenantsResident,
  assertZoneInRegion,
  type ResidencyRegion,
} from "../../lib/platform/residency";
import type { AwsTenant } from "../../lib/stack-config/aws";
import { PgbouncerAuthFile } from "../db/pgbouncer-auth-file";
import { RegionalDatabase } from "../db/regional-database";
import { DatabaseExecutor } from "./executor";
import { Network } from "./network";
import { awsPgbouncerConfig, checkAwsPoolBudget, type AwsPgbouncerOptions } from "../../lib/pgbouncer/aws";
import { PgBouncerService } from "./pgbouncer-service";
import { PostgresCluster, type PostgresClusterArgs } from "./postgres-cluster";
import { RedisCache } from "./redis-cache";
import { TenantObservability } from "./tenant-observability";
import { contextKeyReadPolicy, TenantContextKeySecret } from "./tenant-context-key-secret";

/** The default-tag keys every taggable resource carries (the policy rule `default-tags` checks them). */
export const DEFAULT_TAG_KEYS = {
  stack: "alphapulse:stack",
  residency: "alphapulse:residency",
  component: "alphapulse:component",
  costCentre: "alphapulse:cost-centre",
} as const;

export interface RegionalPlatformArgs {
  /** Residency of the stack. Plain: the guard decides before anything is declared. */
  residency: ResidencyRegion;
  /** AWS region, one of the residency's. Plain: the provider and the zones are pinned to it. */
  awsRegion: string;
  /** The only account the provider may act in. */
  accountId: string;
  /** Stack name for the tags. @default pulumi.getStack() */
  stackName?: string;
  costCentre: string;
  environment: "prod" | "staging";
  network: { cidrBlock: string; availabilityZones: string[] };
  /**
   * The cluster's sizing, image, backups and alarms (documented on PostgresClusterArgs; `backup` and
   * `alarms` take any subset of their fields). `maxConnections` defaults to DEFAULT_MAX_CONNECTIONS
   * (300) here, not PostgresCluster's 200: the PgBouncer pool budget is checked against it.
   */
  postgres: Pick<
    PostgresClusterArgs,
    | "instanceType"
    | "memoryMiB"
    | "dataVolumeGiB"
    | "dataVolumeIops"
    | "dataVolumeThroughputMiBps"
    | "maxConnections"
    | "imageNamePattern"
    | "backup"
    | "alarms"
  >;
  pgbouncer: { image: string; desiredCount: number; cpu: number; memoryMiB: number } & Pick<
    AwsPgbouncerOptions,
    "appInstances" | "appPoolPerInstance" | "maxClientConnections" | "reservePoolSize"
  >;
  redis: { nodeType: string; engineVersion: string; replicas: number; maxmemoryPolicy: string; snapshotRetentionDays: number };
  /** Tenants of this residency (plain: one registry entry each in the database; their Redis users live in tenant stacks). @default [] */
  tenants?: Pick<AwsTenant, "id" | "slug" | "region" | "tier" | "displayName" | "renamedFrom">[];
  /**
   * Tenant-context key ids (ADR-005), oldest first; services sign with the last. Rotate: add the next
   * id and deploy (both verify; the contract's `contextKeys.current` names the new one), move the
   * services to it, then remove the old id, `pulumi state unprotect` its secret and deploy (the key is
   * retired; the last active key never is while tenants are active). docs/aws.md.
   * @default [`${residency}-1`] (RegionalDatabase)
   */
  contextKeys?: string[];
}

export class RegionalPlatform extends pulumi.ComponentResource {
  readonly provider: aws.Provider;
  readonly kmsKeyArn: pulumi.Output<string>;
  readonly alarmTopicArn: pulumi.Output<string>;
  readonly network: Network;
  readonly postgres: PostgresCluster;
  readonly pgbouncer: PgBouncerService;
  readonly redis: RedisCache;
  /** The Lambda function that runs the data layer inside the VPC (ADR-004); what the database resources call. */
  readonly executor: DatabaseExecutor;
  /**
   * The region's database with the design applied and its tenants registered: the same component as
   * the local stacks, through the executor instead of a direct connection. Protected.
   */
  readonly database: RegionalDatabase;
  /** Per-tenant dashboard, metric filters, saved queries and alarms on the cluster's log group (issue 10). */
  readonly observability: TenantObservability;
  /** Each declared tenant-context key's Secrets Manager home, oldest first; services sign with the last. */
  readonly contextKeySecrets: TenantContextKeySecret[];
  /** Managed policy for the application's task role: read exactly the context-key secrets (never attached to the executor). */
  readonly contextKeyReadPolicyArn: pulumi.Output<string>;

  constructor(name: string, args: RegionalPlatformArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("alphapulse:aws:RegionalPlatform", name, {}, opts);
    // Residency first: nothing is declared for a stack that would place data outside its residency.
    validateRegionalPlatformArgs(name, args);
    const tenants = args.tenants ?? [];
    const stack = args.stackName ?? pulumi.getStack();
    const maxConnections = args.postgres.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    const pgbouncerSizing = { ...args.pgbouncer, tasks: args.pgbouncer.desiredCount };
    const zones = args.network.availabilityZones;

    this.provider = new aws.Provider(
      `${name}-aws`,
      {
        region: args.awsRegion,
        allowedAccountIds: [args.accountId],
        defaultTags: { tags: defaultTags({ stack, residency: args.residency, costCentre: args.costCentre }) },
      },
      { parent: this },
    );
    const inRegion = { parent: this, provider: this.provider };
    const children = { parent: this, providers: { aws: this.provider } };

    // One key per region for every encrypted thing: volumes, bucket, secrets, logs, cache, topic.
    const key = new aws.kms.Key(
      `${name}-key`,
      {
        description: `AlphaPulse ${stack} data key (${args.awsRegion})`,
        enableKeyRotation: true,
        deletionWindowInDays: 30,
        policy: JSON.stringify(keyPolicy(args.accountId, args.awsRegion)),
      },
      { ...inRegion, protect: true, retainOnDelete: true },
    );
    new aws.kms.Alias(`${name}-key`, { name: `alias/alphapulse/${stack}`, targetKeyId: key.keyId }, inRegion);
    const topic = new aws.sns.Topic(`${name}-alarms`, { kmsMasterKeyId: key.arn }, inRegion);

    this.network = new Network(
      `${name}-network`,
      {
        region: args.awsRegion,
        cidrBlock: args.network.cidrBlock,
        availabilityZones: zones,
        kmsKeyArn: key.arn,
        privateZoneName: `${stack}.alphapulse.internal`,
      },
      children,
    );
    const subnet = (i: number) => ({ id: this.network.subnets[i].id, availabilityZone: this.network.subnets[i].availabilityZone });

    this.postgres = new PostgresCluster(
      `${name}-postgres`,
      {
        ...args.postgres,
        maxConnections,
        region: args.awsRegion,
        vpcId: this.network.vpcId,
        vpcCidr: this.network.cidrBlock,
        primarySubnet: subnet(0),
        replicaSubnet: subnet(1),
        kmsKeyArn: key.arn,
        alarmTopicArn: topic.arn,
        clientSecurityGroupIds: [this.network.pgbouncerSecurityGroupId],
        endpointSecurityGroupId: this.network.endpointSecurityGroupId,
        executor: { securityGroupId: this.network.executorSecurityGroupId, subnetCidrs: this.network.subnets.map((s) => s.cidrBlock) },
        s3PrefixListId: this.network.s3PrefixListId,
        privateZoneId: this.network.privateZoneId,
        privateZoneName: this.network.privateZoneName,
        backupBucketName: `alphapulse-${stack}-pgbackrest-${args.accountId}`,
        secretNamePrefix: `alphapulse/${stack}/postgres`,
      },
      children,
    );

    this.observability = new TenantObservability(
      `${name}-tenants`,
      {
        region: args.awsRegion,
        clusterName: `${name}-postgres`,
        logGroupName: this.postgres.logGroupName,
        alarmTopicArn: topic.arn,
      },
      children,
    );

    this.executor = new DatabaseExecutor(
      `${name}-executor`,
      {
        region: args.awsRegion,
        functionName: executorFunctionName(stack),
        server: databaseServerId(stack),
        subnetIds: this.network.subnetIds,
        securityGroupId: this.network.executorSecurityGroupId,
        databaseSecurityGroupId: this.postgres.securityGroupId,
        endpointSecurityGroupId: this.network.endpointSecurityGroupId,
        database: { host: this.postgres.primaryHost, port: this.postgres.port, secretArn: this.postgres.executorSecretArn },
        kmsKeyArn: key.arn,
        // Offboarding exports (issue 20): `tenant-exports/` of the backup bucket, SSE-KMS under the region key.
        exportBucket: { name: this.postgres.backupBucketName, s3PrefixListId: this.network.s3PrefixListId },
      },
      children,
    );

    // The data layer: the same RegionalDatabase as the local stacks; only the transport differs. Its
    // connection's functionName comes from the function, so nothing is called before it exists.
    this.database = new RegionalDatabase(
      `${name}-data`,
      {
        connection: this.executor.connection,
        database: REGIONAL_DATABASE_NAME,
        region: args.residency,
        tenants: tenants.map((t) => ({
          slug: t.slug,
          tier: t.tier,
          region: t.region,
          displayName: t.displayName,
          renamedFrom: t.renamedFrom,
        })),
        protect: true,
        contextKeys: args.contextKeys,
      },
      { parent: this },
    );

    // The tenant-context keys: generated and installed by RegionalDatabase through the executor (as
    // locally), their values kept in Secrets Manager for the application, which alone may read them.
    this.contextKeySecrets = this.database.contextKeys.map(
      ({ kid, key: contextKey }) =>
        new TenantContextKeySecret(
          `${name}-context-key-${kid}`,
          { key: contextKey, kid, secretNamePrefix: contextKeySecretPrefix(stack), kmsKeyArn: key.arn },
          children,
        ),
    );
    const readPolicy = new aws.iam.Policy(
      `${name}-context-key-read`,
      {
        description: `Read the tenant-context keys of ${stack} (attach to the application's task role, never to the executor)`,
        policy: pulumi.jsonStringify(
          contextKeyReadPolicy({
            secretArns: this.contextKeySecrets.map((s) => s.secretArn),
            kmsKeyArn: key.arn,
            awsRegion: args.awsRegion,
          }),
        ),
      },
      inRegion,
    );
    this.contextKeyReadPolicyArn = readPolicy.arn;

    // PgBouncer's auth file: the verifiers the database holds, read through the executor after the
    // schema set the login roles' passwords; PgBouncerService writes it and redeploys on a change.
    const authFile = new PgbouncerAuthFile(
      `${name}-pgbouncer-auth-file`,
      {
        connection: this.executor.connection,
        after: pulumi.interpolate`${this.database.schema.appliedFingerprint}/${this.database.schema.versions.apply((v) => (v ?? []).join(","))}`,
      },
      { parent: this, dependsOn: [this.database.schema] },
    );

    this.pgbouncer = new PgBouncerService(
      `${name}-pgbouncer`,
      {
        region: args.awsRegion,
        vpcId: this.network.vpcId,
        subnetIds: this.network.subnetIds,
        taskSecurityGroupId: this.network.pgbouncerSecurityGroupId,
        clientSecurityGroupIds: [this.network.appSecurityGroupId],
        databaseSecurityGroupId: this.postgres.securityGroupId,
        endpointSecurityGroupId: this.network.endpointSecurityGroupId,
        s3PrefixListId: this.network.s3PrefixListId,
        config: awsPgbouncerConfig({ ...pgbouncerSizing, databaseHost: this.postgres.primaryHost }),
        image: args.pgbouncer.image,
        desiredCount: args.pgbouncer.desiredCount,
        cpu: args.pgbouncer.cpu,
        memoryMiB: args.pgbouncer.memoryMiB,
        kmsKeyArn: key.arn,
        alarmTopicArn: topic.arn,
        authFileSecretName: `alphapulse/${stack}/pgbouncer/auth-file`,
        authFile: { content: authFile.authFile, revision: authFile.revision },
      },
      children,
    );

    this.redis = new RedisCache(
      `${name}-redis`,
      {
        region: args.awsRegion,
        vpcId: this.network.vpcId,
        subnetIds: this.network.subnetIds,
        availabilityZones: zones,
        clientSecurityGroupIds: [this.network.appSecurityGroupId],
        kmsKeyArn: key.arn,
        alarmTopicArn: topic.arn,
        nodeType: args.redis.nodeType,
        engineVersion: args.redis.engineVersion,
        replicas: args.redis.replicas,
        maxmemoryPolicy: args.redis.maxmemoryPolicy,
        snapshotRetentionDays: args.redis.snapshotRetentionDays,
        secretNamePrefix: `alphapulse/${stack}/redis`,
        regionalTenants: tenants.map((t) => ({ id: t.id, slug: t.slug })),
      },
      children,
    );

    this.kmsKeyArn = key.arn;
    this.alarmTopicArn = topic.arn;
    this.registerOutputs({
      kmsKeyArn: this.kmsKeyArn,
      alarmTopicArn: this.alarmTopicArn,
      vpcId: this.network.vpcId,
      pgbouncerEndpoint: this.pgbouncer.endpoint,
      redisEndpoint: this.redis.primaryEndpoint,
      contextKeyReadPolicyArn: this.contextKeyReadPolicyArn,
    });
  }
}

/** Secrets Manager name prefix of a regional stack's tenant-context keys: `alphapulse/<stack>/tenant-context`. */
export function contextKeySecretPrefix(stack: string): string {
  return `alphapulse/${stack}/tenant-context`;
}

/** The region's database (what PgBouncer's config names too: lib/pgbouncer/aws.ts). */
export const REGIONAL_DATABASE_NAME = "alphapulse";

/** The database executor's Lambda function name: `<stack>-db-executor`. */
export function executorFunctionName(stack: string): string {
  return `${stack}-db-executor`;
}

/** The stable identity of a regional stack's PostgreSQL server in the providers' state: `<stack>/postgres`. */
export function databaseServerId(stack: string): string {
  return `${stack}/postgres`;
}

/** PostgreSQL max_connections of a regional cluster unless configured (the pool budget is checked against it). */
export const DEFAULT_MAX_CONNECTIONS = 300;

/**
 * The checks that need no resource, in the order they matter: residency of the region, the zones,
 * the PgBouncer image and the tenants (lib/platform/residency.ts); the account id; the pool budget
 * of PgBouncer against max_connections. Throws naming the field.
 */
export function validateRegionalPlatformArgs(
  name: string,
  args: Pick<RegionalPlatformArgs, "residency" | "awsRegion" | "accountId" | "network" | "postgres" | "pgbouncer" | "tenants">,
): void {
  assertRegionAllowed(args.residency, args.awsRegion, `RegionalPlatform ${name}`);
  args.network.availabilityZones.forEach((z, i) =>
    assertZoneInRegion(z, args.awsRegion, `RegionalPlatform ${name} network.availabilityZones[${i}]`),
  );
  assertImageAllowed(args.residency, args.pgbouncer.image, `RegionalPlatform ${name} pgbouncer.image`);
  assertTenantsResident(args.residency, args.tenants ?? [], `RegionalPlatform ${name}`);
  if (!/^\d{12}$/.test(args.accountId)) throw new Error(`RegionalPlatform ${name}: accountId must be 12 digits, got "${args.accountId}"`);
  const budget = checkAwsPoolBudget({
    ...args.pgbouncer,
    tasks: args.pgbouncer.desiredCount,
    databaseHost: "pg-primary.internal",
    maxConnections: args.postgres.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
  });
  if (!budget.ok) throw new Error(`RegionalPlatform ${name}: ${budget.problems.map((p) => `${p.field}: ${p.message}`).join("; ")}`);
}

/** The provider's default tags: every taggable resource of the stack carries them (policy rule `default-tags`). */
export function defaultTags(o: { stack: string; residency: ResidencyRegion; costCentre: string }): Record<string, string> {
  return {
    [DEFAULT_TAG_KEYS.stack]: o.stack,
    [DEFAULT_TAG_KEYS.residency]: o.residency,
    [DEFAULT_TAG_KEYS.component]: "regional-platform",
    [DEFAULT_TAG_KEYS.costCentre]: o.costCentre,
  };
}

/**
 * The region key's policy: the account administers it through IAM; CloudWatch Logs may use it for
 * this region's log groups only; CloudWatch alarms may publish to the encrypted topic.
 */
export function keyPolicy(accountId: string, region: string): object {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "AccountAdministersThroughIam",
        Effect: "Allow",
        Principal: { AWS: `arn:aws:iam::${accountId}:root` },
        Action: "kms:*",
        Resource: "*",
      },
      {
        Sid: "CloudWatchLogsOfThisRegion",
        Effect: "Allow",
        Principal: { Service: `logs.${region}.amazonaws.com` },
        Action: ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
        Resource: "*",
        Condition: { ArnLike: { "kms:EncryptionContext:aws:logs:arn": `arn:aws:logs:${region}:${accountId}:log-group:*` } },
      },
      {
        Sid: "CloudWatchAlarmsToEncryptedTopic",
        Effect: "Allow",
        Principal: { Service: "cloudwatch.amazonaws.com" },
        Action: ["kms:Decrypt", "kms:GenerateDataKey*"],
        Resource: "*",
      },
    ],
  };
}
