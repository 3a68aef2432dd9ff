/** A valid platform contract of each kind (lib/platform/contract.ts), for the readers' unit tests. */
import type { AwsPlatformContract, LocalPlatformContract } from "../../lib/platform/contract";

const ID = "0b5e8f3c-1d2a-4c8e-9f1a-2b3c4d5e6f70";
const ARN = (what: string) => `arn:aws:secretsmanager:eu-central-1:123456789012:secret:${what}`;

export const LOCAL: LocalPlatformContract = {
  kind: "local",
  stack: "local-eu",
  region: "eu",
  database: {
    name: "alphapulse",
    oid: 16384,
    connection: { host: "127.0.0.1", port: 55432, user: "postgres" },
    tenantIds: { "acme-capital": ID },
  },
  schema: { fingerprint: "abc123", migrations: ["0001_init"], roles: { app: "alphapulse_app", migrator: "alphapulse_migrator" } },
  pgbouncer: { host: "127.0.0.1", port: 56432 },
  redis: { host: "127.0.0.1", port: 56379, tls: false, adminUser: "admin", adminPassword: "s3cret-admin" },
  contextKey: { kid: "eu-1", region: "eu", secret: "ab".repeat(32) },
  appUrl: "postgres://alphapulse_app:s3cret-app@127.0.0.1:55432/alphapulse",
  migratorUrl: "postgres://alphapulse_migrator:s3cret-mig@127.0.0.1:55432/alphapulse",
};

export const AWS: AwsPlatformContract = {
  kind: "aws",
  stack: "eu-prod",
  region: "eu",
  database: {
    name: "alphapulse",
    oid: 16384,
    connection: { kind: "executor", functionName: "eu-prod-db-executor", region: "eu-central-1", server: "eu-prod/pg" },
    tenantIds: {},
  },
  schema: { fingerprint: "abc123", migrations: ["0001_init"], roles: { app: "alphapulse_app" } },
  pgbouncer: { host: "pgbouncer.eu-prod.internal", port: 6432, authFileSecretArn: ARN("auth"), cluster: "c", service: "s" },
  redis: {
    host: "master.redis",
    readerHost: "replica.redis",
    port: 6379,
    tls: true,
    adminUser: "alphapulse_admin",
    adminSecretArn: ARN("redis-admin"),
    userGroupId: "eu-prod-redis-users",
    tenantSecretPrefix: "alphapulse/eu-prod/redis/tenants/",
  },
  postgres: {
    primaryHost: "pg-primary.internal",
    replicaHost: "pg-replica.internal",
    port: 5432,
    primaryInstanceId: "i-0123",
    replicaInstanceId: "i-0456",
    adminSecretArn: ARN("pg-admin"),
    executorSecretArn: ARN("pg-executor"),
    backupBucket: "eu-prod-backups",
    logGroupName: "/alphapulse/eu-prod/postgres",
  },
  contextKeys: {
    current: { kid: "eu-2", secretArn: ARN("alphapulse/eu-prod/tenant-context/eu-2") },
    keys: [
      { kid: "eu-1", secretArn: ARN("alphapulse/eu-prod/tenant-context/eu-1") },
      { kid: "eu-2", secretArn: ARN("alphapulse/eu-prod/tenant-context/eu-2") },
    ],
    readPolicyArn: "arn:aws:iam::123456789012:policy/eu-prod-context-key-read",
  },
  executor: {
    functionName: "eu-prod-db-executor",
    functionArn: "arn:aws:lambda:eu-central-1:123456789012:function:eu-prod-db-executor",
    roleArn: "arn:aws:iam::123456789012:role/eu-prod-db-executor",
    securityGroupId: "sg-2",
    invokePolicyArn: "arn:aws:iam::123456789012:policy/eu-prod-db-executor-invoke",
    logGroupName: "/aws/lambda/eu-prod-db-executor",
  },
  aws: {
    region: "eu-central-1",
    accountId: "123456789012",
    costCentre: "CC-4100 data-platform",
    vpcId: "vpc-1",
    appSecurityGroupId: "sg-1",
    privateSubnetIds: ["subnet-1", "subnet-2"],
    kmsKeyArn: "arn:aws:kms:eu-central-1:123456789012:key/1",
    alarmTopicArn: "arn:aws:sns:eu-central-1:123456789012:alarms",
    tenantDashboard: "eu-prod-tenants",
    tenantMetricNamespace: "AlphaPulse/Tenants",
  },
};
