/**
 * The regional AWS platform (issue 7). index.ts calls `awsPlatform()` for stacks whose
 * `alphapulse-platform:kind` is `aws`; its return value is the stack's outputs.
 */
import * as pulumi from "@pulumi/pulumi";
import { awsPlatformOutputs } from "../../lib/platform/contract";
import { loadAwsStackConfig, regionalPlatformArgs } from "./config";
import { ADMIN_USER_NAME } from "./redis-cache";
import { RegionalPlatform } from "./regional-platform";

export * from "./config";
export * from "./credential";
export * from "./executor";
export * from "./network";
export * from "./pgbouncer-service";
export * from "./postgres-cluster";
export * from "./redis-cache";
export * from "./regional-platform";
export * from "./tenant-context-key-secret";
export * from "./tenant-observability";

/**
 * Declares the stack's RegionalPlatform from its validated config and returns the stack outputs:
 * exactly the platform contract (lib/platform/contract.ts `awsPlatformOutputs`) — endpoints, instance
 * ids for SSM, and the ARNs of every generated secret (never the values).
 * Throws lib/stack-config/local.ts StackConfigError (key path + reason) on a bad stack file.
 */
export function awsPlatform() {
  const config = loadAwsStackConfig();
  const stack = pulumi.getStack();
  const platform = new RegionalPlatform(stack, regionalPlatformArgs(config, stack));
  const current = platform.contextKeySecrets[platform.contextKeySecrets.length - 1];
  return awsPlatformOutputs(stack, {
    region: config.region,
    database: {
      name: platform.database.database.name,
      oid: platform.database.database.oid,
      connection: platform.executor.connection,
      tenantIds: platform.database.tenantIds,
    },
    schema: {
      fingerprint: platform.database.schema.appliedFingerprint,
      migrations: platform.database.schema.versions,
      roles: platform.database.schema.roles,
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
      adminUser: ADMIN_USER_NAME,
      adminSecretArn: platform.redis.adminSecretArn,
      userGroupId: platform.redis.userGroupId,
      tenantSecretPrefix: platform.redis.tenantSecretPrefix,
    },
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
    },
    contextKeys: {
      current: { kid: current.kid, secretArn: current.secretArn },
      keys: platform.contextKeySecrets.map((s) => ({ kid: s.kid, secretArn: s.secretArn })),
      readPolicyArn: platform.contextKeyReadPolicyArn,
    },
    executor: {
      functionName: platform.executor.functionName,
      functionArn: platform.executor.functionArn,
      roleArn: platform.executor.roleArn,
      securityGroupId: platform.executor.securityGroupId,
      invokePolicyArn: platform.executor.invokePolicyArn,
      logGroupName: platform.executor.logGroupName,
    },
    aws: {
      region: config.awsRegion,
      accountId: config.accountId,
      costCentre: config.costCentre,
      vpcId: platform.network.vpcId,
      appSecurityGroupId: platform.network.appSecurityGroupId,
      privateSubnetIds: platform.network.subnetIds,
      kmsKeyArn: platform.kmsKeyArn,
      alarmTopicArn: platform.alarmTopicArn,
      tenantDashboard: platform.observability.dashboardName,
      tenantMetricNamespace: platform.observability.metricNamespace,
    },
  });
}
