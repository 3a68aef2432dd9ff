/**
 * `alphapulse:aws:PgBouncerService` — PgBouncer in session mode (ADR-001: the tenant is a session
 * setting) on ECS Fargate behind an internal Network Load Balancer.
 *
 * - Clients reach 6432 only from the client security groups (the `app` group), through the NLB;
 *   the tasks accept 6432 only from the NLB and reach PostgreSQL's 5432 only on the cluster's group.
 * - pgbouncer.ini is rendered by lib/pgbouncer `renderPgbouncerIni` — the renderer the local stacks
 *   use — from lib/pgbouncer/aws.ts `awsPgbouncerConfig`, and passed as an environment value (it
 *   holds no secret). The auth file (SCRAM verifiers, lib/pgbouncer/auth.ts) comes from a Secrets Manager
 *   secret this component declares and the data-layer stack fills (docs/aws.md): the verifiers
 *   belong to passwords the data layer generates, and PostgreSQL must hold the identical verifier.
 * - The root file system is read-only; the config is written to an ephemeral task volume.
 * - The NLB's TCP idle timeout is raised to an hour (the default, 350 s, cuts idle sessions): app
 *   pools must close idle connections sooner or send TCP keepalives (docs/aws.md).
 *
 * Layout as in postgres-cluster.ts: module-level builders return plain values (rules, policy
 * documents, the container definition, resource inputs; test/aws/pgbouncer-service-builders.test.ts),
 * the constructor validates and declares.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { PGBOUNCER_PORT, PGBOUNCER_RUN_DIR } from "../../lib/pgbouncer/aws";
import { renderPgbouncerIni, type PgbouncerConfigInput } from "../../lib/pgbouncer";
import { tcpRule, type TcpRuleArgs } from "./tcp-rule";

export { PGBOUNCER_PORT, PGBOUNCER_RUN_DIR } from "../../lib/pgbouncer/aws";

/**
 * Args of {@link PgBouncerService}. "Caution" marks an arg whose change replaces a resource.
 * Anything that reaches the task definition (`config`, `image`, `cpu`, `memoryMiB`, `region`)
 * registers a new revision and rolls the tasks: the service keeps 100% healthy during the
 * deployment, the circuit breaker rolls a failing one back, and a draining task keeps its
 * sessions for up to 300 s.
 */
export interface PgBouncerServiceArgs {
  /** Caution: changing it replaces the NLB's security group and the target group. */
  vpcId: pulumi.Input<string>;
  /** Private subnets for the tasks and the NLB (one per availability zone, at least two). */
  subnetIds: pulumi.Input<string>[];
  /** Security group of the tasks (created by the Network: PostgreSQL refers to it). */
  taskSecurityGroupId: pulumi.Input<string>;
  /** Security groups allowed to connect to 6432 (the application's), two rules each, named by position. */
  clientSecurityGroupIds: pulumi.Input<string>[];
  /** PostgreSQL's security group (egress 5432). */
  databaseSecurityGroupId: pulumi.Input<string>;
  /** Security group of the interface endpoints (egress 443: Secrets Manager, ECR, CloudWatch Logs). */
  endpointSecurityGroupId: pulumi.Input<string>;
  /** Prefix list of the S3 gateway endpoint (egress 443: ECR image layers). */
  s3PrefixListId: pulumi.Input<string>;
  /**
   * One task's PgBouncer config (lib/pgbouncer/aws.ts `awsPgbouncerConfig`), rendered with lib/pgbouncer.
   * Plain: validated and rendered before anything is declared. Its authFile must be under PGBOUNCER_RUN_DIR.
   */
  config: PgbouncerConfigInput;
  /** Private ECR image with /bin/sh and pgbouncer on PATH. */
  image: pulumi.Input<string>;
  /** Tasks behind the NLB, at least 2; the config's pools are per task. Plain: it must match the config's sizing. */
  desiredCount: number;
  /** Fargate CPU units. @default 512 */
  cpu?: number;
  /** Fargate task memory, MiB. @default 1024 */
  memoryMiB?: number;
  /** Region KMS key (ARN) for the auth-file secret and the log group (both in place). */
  kmsKeyArn: pulumi.Input<string>;
  /** SNS topic for the health alarm. */
  alarmTopicArn: pulumi.Input<string>;
  /**
   * Secrets Manager name of the auth file, e.g. `alphapulse/eu-prod/pgbouncer/auth-file`.
   * Caution: changing it replaces the secret (protected: refused).
   */
  authFileSecretName: pulumi.Input<string>;
  /**
   * The auth file as the data layer read it (components/db PgbouncerAuthFile, a secret) and its
   * revision: written as a new version of the auth-file secret; a new revision redeploys the tasks
   * (`forceNewDeployment` + `triggers`), which read the secret at start. @default none: the secret
   * is written out of band (docs/aws.md runbook step 8)
   */
  authFile?: { content: pulumi.Input<string>; revision: pulumi.Input<string> };
  /** Retention of the task-log group, days (in place). @default 30 */
  logRetentionDays?: pulumi.Input<number>;
  /** Region of the log group (plain: the awslogs driver needs it). */
  region: string;
}

export class PgBouncerService extends pulumi.ComponentResource {
  /** Internal DNS name of the NLB: clients connect to `<endpoint>:6432`. */
  readonly endpoint: pulumi.Output<string>;
  readonly port = PGBOUNCER_PORT;
  readonly loadBalancerSecurityGroupId: pulumi.Output<string>;
  /** The secret the data-layer stack writes the auth file into. */
  readonly authFileSecretArn: pulumi.Output<string>;
  readonly clusterName: pulumi.Output<string>;
  readonly serviceName: pulumi.Output<string>;

  constructor(name: string, args: PgBouncerServiceArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("alphapulse:aws:PgBouncerService", name, {}, opts);
    validatePgBouncerServiceArgs(name, args);
    const ini = renderPgbouncerIni(args.config);
    const parent = { parent: this };

    const authFile = new aws.secretsmanager.Secret(`${name}-auth-file`, authFileSecretArgs(name, args), { parent: this, protect: true });
    // The verifiers as the data layer read them: a new secret version, before any task restarts.
    const authFileVersion = args.authFile
      ? new aws.secretsmanager.SecretVersion(
          `${name}-auth-file-value`,
          { secretId: authFile.id, secretString: pulumi.secret(args.authFile.content) },
          parent,
        )
      : undefined;

    // Traffic: clients → NLB:6432 → tasks:6432 → PostgreSQL:5432. Nothing else.
    const lbSg = new aws.ec2.SecurityGroup(
      `${name}-nlb`,
      { vpcId: args.vpcId, description: `PgBouncer NLB of ${name}`, tags: { Name: `${name}-nlb` } },
      parent,
    );
    for (const rule of pgbouncerSecurityGroupRules(name, { ...args, loadBalancerSecurityGroupId: lbSg.id })) {
      tcpRule(rule.name, rule.args, parent);
    }

    const logGroup = new aws.cloudwatch.LogGroup(
      `${name}-logs`,
      { name: pgbouncerLogGroupName(name), retentionInDays: args.logRetentionDays ?? 30, kmsKeyId: args.kmsKeyArn },
      parent,
    );

    const executionRole = new aws.iam.Role(`${name}-execution`, { assumeRolePolicy: JSON.stringify(ECS_TASKS_ASSUME_ROLE_POLICY) }, parent);
    new aws.iam.RolePolicyAttachment(`${name}-execution`, { role: executionRole.name, policyArn: ECS_TASK_EXECUTION_POLICY_ARN }, parent);
    new aws.iam.RolePolicy(
      `${name}-execution`,
      { role: executionRole.id, policy: pulumi.jsonStringify(executionRolePolicy(authFile.arn, args.kmsKeyArn)) },
      parent,
    );

    const cluster = new aws.ecs.Cluster(`${name}-cluster`, { settings: [{ name: "containerInsights", value: "enabled" }] }, parent);
    const container = pgbouncerContainer({
      image: args.image,
      ini,
      authFile: args.config.authFile,
      authFileSecretArn: authFile.arn,
      logGroupName: logGroup.name,
      region: args.region,
    });
    const taskDefinition = new aws.ecs.TaskDefinition(
      `${name}-task`,
      { ...taskDefinitionArgs(name, args), executionRoleArn: executionRole.arn, containerDefinitions: pulumi.jsonStringify([container]) },
      parent,
    );

    const lb = new aws.lb.LoadBalancer(`${name}-nlb`, loadBalancerArgs(args.subnetIds, lbSg.id), parent);
    const targetGroup = new aws.lb.TargetGroup(`${name}-tg`, targetGroupArgs(args.vpcId), parent);
    new aws.lb.Listener(`${name}-listener`, listenerArgs(lb.arn, targetGroup.arn), parent);
    const service = new aws.ecs.Service(
      `${name}-service`,
      serviceArgs({
        clusterArn: cluster.arn,
        taskDefinitionArn: taskDefinition.arn,
        targetGroupArn: targetGroup.arn,
        desiredCount: args.desiredCount,
        subnetIds: args.subnetIds,
        taskSecurityGroupId: args.taskSecurityGroupId,
        authFileRevision: args.authFile?.revision,
      }),
      { parent: this, dependsOn: authFileVersion ? [authFileVersion] : [] },
    );

    new aws.cloudwatch.MetricAlarm(
      `${name}-unhealthy`,
      unhealthyTasksAlarmArgs({ loadBalancer: lb.arnSuffix, targetGroup: targetGroup.arnSuffix, alarmTopicArn: args.alarmTopicArn }),
      parent,
    );

    this.endpoint = lb.dnsName;
    this.loadBalancerSecurityGroupId = lbSg.id;
    this.authFileSecretArn = authFile.arn;
    this.clusterName = cluster.name;
    this.serviceName = service.name;
    this.registerOutputs({
      endpoint: this.endpoint,
      authFileSecretArn: this.authFileSecretArn,
      clusterName: this.clusterName,
      serviceName: this.serviceName,
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Builders: pure, module-level, plain values in and out (Inputs pass through untouched).
// ---------------------------------------------------------------------------------------------

/** The checks that need no resource. Throws naming the field. */
export function validatePgBouncerServiceArgs(
  name: string,
  args: Pick<PgBouncerServiceArgs, "clientSecurityGroupIds" | "subnetIds" | "desiredCount" | "config">,
): void {
  if ((args.clientSecurityGroupIds ?? []).length === 0)
    throw new Error(`PgBouncerService ${name}: clientSecurityGroupIds must name at least one security group`);
  if ((args.subnetIds ?? []).length < 2)
    throw new Error(`PgBouncerService ${name}: subnetIds needs at least two subnets (availability zones)`);
  if (!Number.isInteger(args.desiredCount) || args.desiredCount < 2)
    throw new Error(`PgBouncerService ${name}: desiredCount must be an integer of at least 2, got ${args.desiredCount}`);
  if (!args.config.authFile.startsWith(`${PGBOUNCER_RUN_DIR}/`))
    throw new Error(`PgBouncerService ${name}: config.authFile must be under ${PGBOUNCER_RUN_DIR} (the task's writable volume)`);
}

export function pgbouncerLogGroupName(service: string): string {
  return `/alphapulse/${service}/pgbouncer`;
}

export function authFileSecretArgs(service: string, args: Pick<PgBouncerServiceArgs, "authFileSecretName" | "kmsKeyArn">) {
  return {
    name: args.authFileSecretName,
    description: `PgBouncer auth file (SCRAM verifiers) of ${service}, written by the data-layer stack`,
    kmsKeyId: args.kmsKeyArn,
    recoveryWindowInDays: 30,
  };
}

/**
 * Every rule of the path, one resource each: per client group (named by position) 6432 into the
 * NLB and out of the client; NLB → tasks 6432; tasks → PostgreSQL 5432, the endpoints and S3 443.
 */
export function pgbouncerSecurityGroupRules(
  service: string,
  o: {
    loadBalancerSecurityGroupId: pulumi.Input<string>;
    clientSecurityGroupIds: readonly pulumi.Input<string>[];
    taskSecurityGroupId: pulumi.Input<string>;
    databaseSecurityGroupId: pulumi.Input<string>;
    endpointSecurityGroupId: pulumi.Input<string>;
    s3PrefixListId: pulumi.Input<string>;
  },
): { name: string; args: TcpRuleArgs }[] {
  const rule = (suffix: string, args: TcpRuleArgs) => ({ name: `${service}-${suffix}`, args });
  const lb = o.loadBalancerSecurityGroupId;
  const tasks = o.taskSecurityGroupId;
  return [
    ...o.clientSecurityGroupIds.flatMap((client, i) => [
      rule(`nlb-from-client-${i}`, {
        direction: "ingress",
        securityGroupId: lb,
        peer: { referencedSecurityGroupId: client },
        port: PGBOUNCER_PORT,
        description: "PgBouncer from the application",
      }),
      rule(`client-${i}-to-nlb`, {
        direction: "egress",
        securityGroupId: client,
        peer: { referencedSecurityGroupId: lb },
        port: PGBOUNCER_PORT,
        description: "Application to PgBouncer",
      }),
    ]),
    rule("nlb-to-tasks", {
      direction: "egress",
      securityGroupId: lb,
      peer: { referencedSecurityGroupId: tasks },
      port: PGBOUNCER_PORT,
      description: "NLB to PgBouncer tasks",
    }),
    rule("tasks-from-nlb", {
      direction: "ingress",
      securityGroupId: tasks,
      peer: { referencedSecurityGroupId: lb },
      port: PGBOUNCER_PORT,
      description: "PgBouncer from its NLB",
    }),
    rule("tasks-to-postgres", {
      direction: "egress",
      securityGroupId: tasks,
      peer: { referencedSecurityGroupId: o.databaseSecurityGroupId },
      port: 5432,
      description: "PgBouncer to PostgreSQL",
    }),
    rule("tasks-to-endpoints", {
      direction: "egress",
      securityGroupId: tasks,
      peer: { referencedSecurityGroupId: o.endpointSecurityGroupId },
      port: 443,
      description: "Secrets Manager, ECR, CloudWatch Logs endpoints",
    }),
    rule("tasks-to-s3", {
      direction: "egress",
      securityGroupId: tasks,
      peer: { prefixListId: o.s3PrefixListId },
      port: 443,
      description: "ECR image layers from S3",
    }),
  ];
}

/** Who may assume the execution role: ECS tasks only. */
export const ECS_TASKS_ASSUME_ROLE_POLICY = {
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { Service: "ecs-tasks.amazonaws.com" }, Action: "sts:AssumeRole" }],
} as const;

export const ECS_TASK_EXECUTION_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy";

/** The execution role's own policy: read the auth file, decrypt with the region key. `T` is a string in tests, an Output here. */
export function executionRolePolicy<T>(authFileSecretArn: T, kmsKeyArn: T) {
  return {
    Version: "2012-10-17",
    Statement: [
      { Sid: "AuthFile", Effect: "Allow", Action: "secretsmanager:GetSecretValue", Resource: authFileSecretArn },
      { Sid: "RegionKey", Effect: "Allow", Action: "kms:Decrypt", Resource: kmsKeyArn },
    ],
  };
}

/**
 * The container's entry script: write pgbouncer.ini and the auth file to the task volume (owner
 * only), drop the auth file from the environment, exec PgBouncer.
 */
export function pgbouncerStartScript(authFile: string): string {
  return [
    "set -eu",
    "umask 077",
    `printf '%s' "$PGBOUNCER_INI" > ${PGBOUNCER_RUN_DIR}/pgbouncer.ini`,
    `printf '%s' "$PGBOUNCER_AUTH_FILE" > ${authFile}`,
    "unset PGBOUNCER_AUTH_FILE",
    `exec pgbouncer ${PGBOUNCER_RUN_DIR}/pgbouncer.ini`,
  ].join("\n");
}

/** The one container: read-only root, the ini as a plain value, the auth file from its secret, logs to CloudWatch. */
export function pgbouncerContainer<T>(o: {
  image: T;
  ini: string;
  authFile: string;
  authFileSecretArn: T;
  logGroupName: T;
  region: string;
}) {
  return {
    name: "pgbouncer",
    image: o.image,
    essential: true,
    entryPoint: ["/bin/sh", "-c"],
    command: [pgbouncerStartScript(o.authFile)],
    portMappings: [{ containerPort: PGBOUNCER_PORT, protocol: "tcp" }],
    environment: [{ name: "PGBOUNCER_INI", value: o.ini }],
    secrets: [{ name: "PGBOUNCER_AUTH_FILE", valueFrom: o.authFileSecretArn }],
    readonlyRootFilesystem: true,
    mountPoints: [{ sourceVolume: "run", containerPath: PGBOUNCER_RUN_DIR, readOnly: false }],
    ulimits: [{ name: "nofile", softLimit: 65536, hardLimit: 65536 }],
    logConfiguration: {
      logDriver: "awslogs",
      options: { "awslogs-group": o.logGroupName, "awslogs-region": o.region, "awslogs-stream-prefix": "pgbouncer" },
    },
  };
}

/** The Fargate task definition, without its role and containers (the constructor adds those). */
export function taskDefinitionArgs(service: string, args: Pick<PgBouncerServiceArgs, "cpu" | "memoryMiB">) {
  return {
    family: service,
    cpu: String(args.cpu ?? 512),
    memory: String(args.memoryMiB ?? 1024),
    networkMode: "awsvpc",
    requiresCompatibilities: ["FARGATE"],
    runtimePlatform: { operatingSystemFamily: "LINUX", cpuArchitecture: "ARM64" },
    volumes: [{ name: "run" }],
  };
}

/** An internal NLB across the subnets, cross-zone. */
export function loadBalancerArgs(subnetIds: pulumi.Input<string>[], securityGroupId: pulumi.Input<string>): aws.lb.LoadBalancerArgs {
  return {
    internal: true,
    loadBalancerType: "network",
    subnets: subnetIds,
    securityGroups: [securityGroupId],
    enableCrossZoneLoadBalancing: true,
    ipAddressType: "ipv4",
  };
}

export function targetGroupArgs(vpcId: pulumi.Input<string>): aws.lb.TargetGroupArgs {
  return {
    vpcId,
    port: PGBOUNCER_PORT,
    protocol: "TCP",
    targetType: "ip",
    // Session pooling: give draining tasks time to finish their sessions.
    deregistrationDelay: 300,
    healthCheck: { protocol: "TCP", port: "traffic-port", interval: 10, healthyThreshold: 3, unhealthyThreshold: 3 },
  };
}

/** TCP 6432 with an hour's idle timeout (the default 350 s cuts idle sessions). */
export function listenerArgs(loadBalancerArn: pulumi.Input<string>, targetGroupArn: pulumi.Input<string>): aws.lb.ListenerArgs {
  return {
    loadBalancerArn,
    port: PGBOUNCER_PORT,
    protocol: "TCP",
    tcpIdleTimeoutSeconds: 3600,
    defaultActions: [{ type: "forward", targetGroupArn }],
  };
}

/** The Fargate service: private, behind the target group, rolling with a circuit breaker, no ECS Exec. */
export function serviceArgs(o: {
  clusterArn: pulumi.Input<string>;
  taskDefinitionArn: pulumi.Input<string>;
  targetGroupArn: pulumi.Input<string>;
  desiredCount: number;
  subnetIds: pulumi.Input<string>[];
  taskSecurityGroupId: pulumi.Input<string>;
  /** A new value redeploys the tasks (they read the auth-file secret at start). */
  authFileRevision?: pulumi.Input<string>;
}): aws.ecs.ServiceArgs {
  return {
    cluster: o.clusterArn,
    taskDefinition: o.taskDefinitionArn,
    desiredCount: o.desiredCount,
    launchType: "FARGATE",
    availabilityZoneRebalancing: "ENABLED",
    networkConfiguration: { subnets: o.subnetIds, securityGroups: [o.taskSecurityGroupId], assignPublicIp: false },
    loadBalancers: [{ targetGroupArn: o.targetGroupArn, containerName: "pgbouncer", containerPort: PGBOUNCER_PORT }],
    deploymentCircuitBreaker: { enable: true, rollback: true },
    deploymentMinimumHealthyPercent: 100,
    deploymentMaximumPercent: 200,
    propagateTags: "SERVICE",
    enableEcsManagedTags: true,
    enableExecuteCommand: false,
    ...(o.authFileRevision !== undefined ? { forceNewDeployment: true, triggers: { authFile: o.authFileRevision } } : {}),
  };
}

/** Any task failing the NLB health check for 3 minutes (or no data) alarms. */
export function unhealthyTasksAlarmArgs(o: {
  loadBalancer: pulumi.Input<string>;
  targetGroup: pulumi.Input<string>;
  alarmTopicArn: pulumi.Input<string>;
}): aws.cloudwatch.MetricAlarmArgs {
  return {
    alarmDescription: "PgBouncer tasks failing the NLB health check",
    namespace: "AWS/NetworkELB",
    metricName: "UnHealthyHostCount",
    dimensions: { LoadBalancer: o.loadBalancer, TargetGroup: o.targetGroup },
    statistic: "Maximum",
    period: 60,
    evaluationPeriods: 3,
    threshold: 0,
    comparisonOperator: "GreaterThanThreshold",
    treatMissingData: "breaching",
    alarmActions: [o.alarmTopicArn],
    okActions: [o.alarmTopicArn],
  };
}
