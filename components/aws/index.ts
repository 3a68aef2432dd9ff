/**
 * The regional AWS platform (issue 7). index.ts calls `awsPlatform()` for stacks whose
 * `alphapulse-platform:kind` is `aws`; its return value is the stack's outputs.
 */
import * as pulumi from "@pulumi/pulumi";
import { loadAwsStackConfig, regionalPlatformArgs } from "./config";
import { RegionalPlatform } from "./regional-platform";

export * from "./config";
export * from "./credential";
export * from "./executor";
export * from "./network";
export * from "./pgbouncer-service";
export * from "./postgres-cluster";
export * from "./redis-cache";
export * from "./regional-platform";
export * from "./tenant-observability";

/**
 * Declares the stack's RegionalPlatform from its validated config and returns the stack outputs:
 * endpoints, instance ids for SSM, and the ARNs of every generated secret (never the values).
 * Throws lib/stack-config/local.ts StackConfigError (key path + reason) on a bad stack file.
 */
export function awsPlatform() {
  const config = loadAwsStackConfig();
  const stack = pulumi.getStack();
  const platform = new RegionalPlatform(stack, regionalPlatformArgs(config, stack));
  return {
    kind: "aws",
    region: config.region,
    awsRegion: config.awsRegion,
    // Tenant stacks read these (lib/tenant-stacks/aws-platform.ts): their provider's account and cost centre,
    // and the slugs this stack declares itself (a tenant stack may not claim them).
    accountId: config.accountId,
    costCentre: config.costCentre,
    tenants: Object.fromEntries(config.tenants.map((t) => [t.slug, t.id])),
    vpcId: platform.network.vpcId,
    appSecurityGroupId: platform.network.appSecurityGroupId,
    privateSubnetIds: platform.network.subnetIds,
    postgres: {
      primaryHost: platform.postgres.primaryHost,
      replicaHost: platform.postgres.replicaHost,
      port: platform.postgres.port,
      primaryInstanceId: platform.postgres.primaryInstanceId,
      replicaInstanceId: platform.postgres.replicaInstanceId,
      adminSecretArn: platform.postgres.adminSecretArn,
      executorSecretArn: platform.postgres.executorSecretArn,
      backupBucket: platform.postgres.backupBucketName,
      logGroupName: platform.postgres.logGroupName,
      tenantDashboard: platform.observability.dashboardName,
      tenantMetricNamespace: platform.observability.metricNamespace,
    },
    pgbouncer: {
      host: platform.pgbouncer.endpoint,
      port: platform.pgbouncer.port,
      authFileSecretArn: platform.pgbouncer.authFileSecretArn,
      cluster: platform.pgbouncer.clusterName,
      service: platform.pgbouncer.serviceName,
    },
    redis: {
      host: platform.redis.primaryEndpoint,
      readerHost: platform.redis.readerEndpoint,
      port: platform.redis.port,
      tls: true,
      adminSecretArn: platform.redis.adminSecretArn,
      userGroupId: platform.redis.userGroupId,
      tenantSecretPrefix: platform.redis.tenantSecretPrefix,
    },
    database: {
      name: platform.database.database.name,
      oid: platform.database.database.oid,
      connection: platform.executor.connection,
      tenantIds: platform.database.tenantIds,
    },
    executor: {
      functionName: platform.executor.functionName,
      functionArn: platform.executor.functionArn,
      roleArn: platform.executor.roleArn,
      securityGroupId: platform.executor.securityGroupId,
      invokePolicyArn: platform.executor.invokePolicyArn,
      logGroupName: platform.executor.logGroupName,
    },
    kmsKeyArn: platform.kmsKeyArn,
    alarmTopicArn: platform.alarmTopicArn,
  };
}
