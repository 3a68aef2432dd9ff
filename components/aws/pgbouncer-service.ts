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
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { PGBOUNCER_PORT, PGBOUNCER_RUN_DIR } from "../../lib/pgbouncer/aws";
import { renderPgbouncerIni, type PgbouncerConfigInput } from "../../lib/pgbouncer";
import { tcpRule, type TcpPeer } from "./tcp-rule";

export { PGBOUNCER_PORT, PGBOUNCER_RUN_DIR } from "../../lib/pgbouncer/aws";

export interface PgBouncerServiceArgs {
  vpcId: pulumi.Input<string>;
  /** Private subnets for the tasks and the NLB (one per availability zone). */
  subnetIds: pulumi.Input<string>[];
  /** Security group of the tasks (created by the Network: PostgreSQL refers to it). */
  taskSecurityGroupId: pulumi.Input<string>;
  /** Security groups allowed to connect to 6432 (the application's). */
  clientSecurityGroupIds: pulumi.Input<string>[];
  /** PostgreSQL's security group (egress 5432). */
  databaseSecurityGroupId: pulumi.Input<string>;
  endpointSecurityGroupId: pulumi.Input<string>;
  s3PrefixListId: pulumi.Input<string>;
  /**
   * One task's PgBouncer config (lib/pgbouncer/aws.ts `awsPgbouncerConfig`), rendered with lib/pgbouncer.
   * Plain: validated and rendered before anything is declared. Its authFile must be under PGBOUNCER_RUN_DIR.
   */
  config: PgbouncerConfigInput;
  /** Private ECR image with /bin/sh and pgbouncer on PATH. */
  image: pulumi.Input<string>;
  /** Tasks behind the NLB; the config's pools are per task. Plain: it must match the config's sizing. */
  desiredCount: number;
  /** Fargate CPU units. @default 512 */
  cpu?: number;
  /** @default 1024 */
  memoryMiB?: number;
  kmsKeyArn: pulumi.Input<string>;
  alarmTopicArn: pulumi.Input<string>;
  /** Secrets Manager name of the auth file, e.g. `alphapulse/eu-prod/pgbouncer/auth-file`. */
  authFileSecretName: pulumi.Input<string>;
  /** @default 30 */
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
    const cpu = args.cpu ?? 512;
    const memoryMiB = args.memoryMiB ?? 1024;
    if ((args.clientSecurityGroupIds ?? []).length === 0)
      throw new Error(`PgBouncerService ${name}: clientSecurityGroupIds must name at least one security group`);
    if ((args.subnetIds ?? []).length < 2)
      throw new Error(`PgBouncerService ${name}: subnetIds needs at least two subnets (availability zones)`);
    if (!Number.isInteger(args.desiredCount) || args.desiredCount < 2)
      throw new Error(`PgBouncerService ${name}: desiredCount must be an integer of at least 2, got ${args.desiredCount}`);
    if (!args.config.authFile.startsWith(`${PGBOUNCER_RUN_DIR}/`))
      throw new Error(`PgBouncerService ${name}: config.authFile must be under ${PGBOUNCER_RUN_DIR} (the task's writable volume)`);
    const ini = renderPgbouncerIni(args.config);
    const parent = { parent: this };

    const authFile = new aws.secretsmanager.Secret(
      `${name}-auth-file`,
      {
        name: args.authFileSecretName,
        description: `PgBouncer auth file (SCRAM verifiers) of ${name}, written by the data-layer stack`,
        kmsKeyId: args.kmsKeyArn,
        recoveryWindowInDays: 30,
      },
      { parent: this, protect: true },
    );

    // Traffic: clients → NLB:6432 → tasks:6432 → PostgreSQL:5432. Nothing else.
    const lbSg = new aws.ec2.SecurityGroup(
      `${name}-nlb`,
      { vpcId: args.vpcId, description: `PgBouncer NLB of ${name}`, tags: { Name: `${name}-nlb` } },
      parent,
    );
    const rule = (
      suffix: string,
      direction: "ingress" | "egress",
      securityGroupId: pulumi.Input<string>,
      peer: TcpPeer,
      port: number,
      description: string,
    ) => tcpRule(`${name}-${suffix}`, { direction, securityGroupId, peer, port, description }, parent);
    args.clientSecurityGroupIds.forEach((client, i) => {
      rule(
        `nlb-from-client-${i}`,
        "ingress",
        lbSg.id,
        { referencedSecurityGroupId: client },
        PGBOUNCER_PORT,
        "PgBouncer from the application",
      );
      rule(`client-${i}-to-nlb`, "egress", client, { referencedSecurityGroupId: lbSg.id }, PGBOUNCER_PORT, "Application to PgBouncer");
    });
    rule(
      "nlb-to-tasks",
      "egress",
      lbSg.id,
      { referencedSecurityGroupId: args.taskSecurityGroupId },
      PGBOUNCER_PORT,
      "NLB to PgBouncer tasks",
    );
    rule(
      "tasks-from-nlb",
      "ingress",
      args.taskSecurityGroupId,
      { referencedSecurityGroupId: lbSg.id },
      PGBOUNCER_PORT,
      "PgBouncer from its NLB",
    );
    rule(
      "tasks-to-postgres",
      "egress",
      args.taskSecurityGroupId,
      { referencedSecurityGroupId: args.databaseSecurityGroupId },
      5432,
      "PgBouncer to PostgreSQL",
    );
    rule(
      "tasks-to-endpoints",
      "egress",
      args.taskSecurityGroupId,
      { referencedSecurityGroupId: args.endpointSecurityGroupId },
      443,
      "Secrets Manager, ECR, CloudWatch Logs endpoints",
    );
    rule("tasks-to-s3", "egress", args.taskSecurityGroupId, { prefixListId: args.s3PrefixListId }, 443, "ECR image layers from S3");

    const logGroup = new aws.cloudwatch.LogGroup(
      `${name}-logs`,
      { name: `/alphapulse/${name}/pgbouncer`, retentionInDays: args.logRetentionDays ?? 30, kmsKeyId: args.kmsKeyArn },
      parent,
    );

    const executionRole = new aws.iam.Role(
      `${name}-execution`,
      {
        assumeRolePolicy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Principal: { Service: "ecs-tasks.amazonaws.com" }, Action: "sts:AssumeRole" }],
        }),
      },
      parent,
    );
    new aws.iam.RolePolicyAttachment(
      `${name}-execution`,
      { role: executionRole.name, policyArn: "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy" },
      parent,
    );
    new aws.iam.RolePolicy(
      `${name}-execution`,
      {
        role: executionRole.id,
        policy: pulumi.jsonStringify({
          Version: "2012-10-17",
          Statement: [
            { Sid: "AuthFile", Effect: "Allow", Action: "secretsmanager:GetSecretValue", Resource: authFile.arn },
            { Sid: "RegionKey", Effect: "Allow", Action: "kms:Decrypt", Resource: args.kmsKeyArn },
          ],
        }),
      },
      parent,
    );

    const cluster = new aws.ecs.Cluster(`${name}-cluster`, { settings: [{ name: "containerInsights", value: "enabled" }] }, parent);
    const startScript = [
      "set -eu",
      "umask 077",
      `printf '%s' "$PGBOUNCER_INI" > ${PGBOUNCER_RUN_DIR}/pgbouncer.ini`,
      `printf '%s' "$PGBOUNCER_AUTH_FILE" > ${args.config.authFile}`,
      "unset PGBOUNCER_AUTH_FILE",
      `exec pgbouncer ${PGBOUNCER_RUN_DIR}/pgbouncer.ini`,
    ].join("\n");
    const taskDefinition = new aws.ecs.TaskDefinition(
      `${name}-task`,
      {
        family: name,
        cpu: String(cpu),
        memory: String(memoryMiB),
        networkMode: "awsvpc",
        requiresCompatibilities: ["FARGATE"],
        runtimePlatform: { operatingSystemFamily: "LINUX", cpuArchitecture: "ARM64" },
        executionRoleArn: executionRole.arn,
        volumes: [{ name: "run" }],
        containerDefinitions: pulumi.jsonStringify([
          {
            name: "pgbouncer",
            image: args.image,
            essential: true,
            entryPoint: ["/bin/sh", "-c"],
            command: [startScript],
            portMappings: [{ containerPort: PGBOUNCER_PORT, protocol: "tcp" }],
            environment: [{ name: "PGBOUNCER_INI", value: ini }],
            secrets: [{ name: "PGBOUNCER_AUTH_FILE", valueFrom: authFile.arn }],
            readonlyRootFilesystem: true,
            mountPoints: [{ sourceVolume: "run", containerPath: PGBOUNCER_RUN_DIR, readOnly: false }],
            ulimits: [{ name: "nofile", softLimit: 65536, hardLimit: 65536 }],
            logConfiguration: {
              logDriver: "awslogs",
              options: { "awslogs-group": logGroup.name, "awslogs-region": args.region, "awslogs-stream-prefix": "pgbouncer" },
            },
          },
        ]),
      },
      parent,
    );

    const lb = new aws.lb.LoadBalancer(
      `${name}-nlb`,
      {
        internal: true,
        loadBalancerType: "network",
        subnets: args.subnetIds,
        securityGroups: [lbSg.id],
        enableCrossZoneLoadBalancing: true,
        ipAddressType: "ipv4",
      },
      parent,
    );
    const targetGroup = new aws.lb.TargetGroup(
      `${name}-tg`,
      {
        vpcId: args.vpcId,
        port: PGBOUNCER_PORT,
        protocol: "TCP",
        targetType: "ip",
        // Session pooling: give draining tasks time to finish their sessions.
        deregistrationDelay: 300,
        healthCheck: { protocol: "TCP", port: "traffic-port", interval: 10, healthyThreshold: 3, unhealthyThreshold: 3 },
      },
      parent,
    );
    new aws.lb.Listener(
      `${name}-listener`,
      {
        loadBalancerArn: lb.arn,
        port: PGBOUNCER_PORT,
        protocol: "TCP",
        tcpIdleTimeoutSeconds: 3600,
        defaultActions: [{ type: "forward", targetGroupArn: targetGroup.arn }],
      },
      parent,
    );
    const service = new aws.ecs.Service(
      `${name}-service`,
      {
        cluster: cluster.arn,
        taskDefinition: taskDefinition.arn,
        desiredCount: args.desiredCount,
        launchType: "FARGATE",
        availabilityZoneRebalancing: "ENABLED",
        networkConfiguration: { subnets: args.subnetIds, securityGroups: [args.taskSecurityGroupId], assignPublicIp: false },
        loadBalancers: [{ targetGroupArn: targetGroup.arn, containerName: "pgbouncer", containerPort: PGBOUNCER_PORT }],
        deploymentCircuitBreaker: { enable: true, rollback: true },
        deploymentMinimumHealthyPercent: 100,
        deploymentMaximumPercent: 200,
        propagateTags: "SERVICE",
        enableEcsManagedTags: true,
        enableExecuteCommand: false,
      },
      parent,
    );

    new aws.cloudwatch.MetricAlarm(
      `${name}-unhealthy`,
      {
        alarmDescription: "PgBouncer tasks failing the NLB health check",
        namespace: "AWS/NetworkELB",
        metricName: "UnHealthyHostCount",
        dimensions: { LoadBalancer: lb.arnSuffix, TargetGroup: targetGroup.arnSuffix },
        statistic: "Maximum",
        period: 60,
        evaluationPeriods: 3,
        threshold: 0,
        comparisonOperator: "GreaterThanThreshold",
        treatMissingData: "breaching",
        alarmActions: [args.alarmTopicArn],
        okActions: [args.alarmTopicArn],
      },
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
