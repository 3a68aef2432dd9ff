/**
 * The PgBouncerService builders (components/aws/pgbouncer-service.ts): pure functions, called
 * directly with plain strings, exact values. What the component declares from them is
 * test/aws/pgbouncer-service.test.ts.
 */
import { describe, expect, it } from "vitest";
import {
  authFileSecretArgs,
  ECS_TASK_EXECUTION_POLICY_ARN,
  ECS_TASKS_ASSUME_ROLE_POLICY,
  executionRolePolicy,
  listenerArgs,
  loadBalancerArgs,
  pgbouncerContainer,
  pgbouncerLogGroupName,
  pgbouncerSecurityGroupRules,
  pgbouncerStartScript,
  serviceArgs,
  targetGroupArgs,
  taskDefinitionArgs,
  unhealthyTasksAlarmArgs,
  validatePgBouncerServiceArgs,
  type PgBouncerServiceArgs,
} from "../../components/aws/pgbouncer-service";
import { awsPgbouncerConfig } from "../../lib/pgbouncer/aws";

const KEY = "arn:aws:kms:eu-central-1:111111111111:key/k";
const TOPIC = "arn:aws:sns:eu-central-1:111111111111:alarms";

describe("validatePgBouncerServiceArgs", () => {
  const ok: Pick<PgBouncerServiceArgs, "clientSecurityGroupIds" | "subnetIds" | "desiredCount" | "config"> = {
    clientSecurityGroupIds: ["sg-app"],
    subnetIds: ["subnet-a", "subnet-b"],
    desiredCount: 2,
    config: awsPgbouncerConfig({
      databaseHost: "pg-primary.z",
      tasks: 2,
      appInstances: 10,
      appPoolPerInstance: 20,
      maxClientConnections: 1000,
      reservePoolSize: 5,
    }),
  };

  it("accepts two subnets, two tasks, a client group and an auth file on the task volume", () => {
    expect(() => validatePgBouncerServiceArgs("pgb", ok)).not.toThrow();
  });

  it.each([
    [{ clientSecurityGroupIds: [] }, "PgBouncerService pgb: clientSecurityGroupIds must name at least one security group"],
    [{ subnetIds: ["a"] }, "PgBouncerService pgb: subnetIds needs at least two subnets (availability zones)"],
    [{ desiredCount: 1 }, "PgBouncerService pgb: desiredCount must be an integer of at least 2, got 1"],
    [{ desiredCount: 2.5 }, "PgBouncerService pgb: desiredCount must be an integer of at least 2, got 2.5"],
    [
      { config: { ...ok.config, authFile: "/etc/pgbouncer/userlist.txt" } },
      "PgBouncerService pgb: config.authFile must be under /run/pgbouncer (the task's writable volume)",
    ],
    [
      { config: { ...ok.config, authFile: "/run/pgbouncer-other/userlist.txt" } },
      "PgBouncerService pgb: config.authFile must be under /run/pgbouncer (the task's writable volume)",
    ],
  ] as [Partial<typeof ok>, string][])("refuses %j", (override, message) => {
    expect(() => validatePgBouncerServiceArgs("pgb", { ...ok, ...override })).toThrow(message);
  });
});

describe("security group rules", () => {
  const base = {
    loadBalancerSecurityGroupId: "sg-nlb",
    taskSecurityGroupId: "sg-tasks",
    databaseSecurityGroupId: "sg-pg",
    endpointSecurityGroupId: "sg-endpoints",
    s3PrefixListId: "pl-s3",
  };
  const fixed = [
    ["pgb-nlb-to-tasks", "egress", "sg-nlb", { referencedSecurityGroupId: "sg-tasks" }, 6432, "NLB to PgBouncer tasks"],
    ["pgb-tasks-from-nlb", "ingress", "sg-tasks", { referencedSecurityGroupId: "sg-nlb" }, 6432, "PgBouncer from its NLB"],
    ["pgb-tasks-to-postgres", "egress", "sg-tasks", { referencedSecurityGroupId: "sg-pg" }, 5432, "PgBouncer to PostgreSQL"],
    [
      "pgb-tasks-to-endpoints",
      "egress",
      "sg-tasks",
      { referencedSecurityGroupId: "sg-endpoints" },
      443,
      "Secrets Manager, ECR, CloudWatch Logs endpoints",
    ],
    ["pgb-tasks-to-s3", "egress", "sg-tasks", { prefixListId: "pl-s3" }, 443, "ECR image layers from S3"],
  ];
  const client = (i: number, id: string) => [
    [`pgb-nlb-from-client-${i}`, "ingress", "sg-nlb", { referencedSecurityGroupId: id }, 6432, "PgBouncer from the application"],
    [`pgb-client-${i}-to-nlb`, "egress", id, { referencedSecurityGroupId: "sg-nlb" }, 6432, "Application to PgBouncer"],
  ];

  it.each([
    ["one client", ["sg-app"], [...client(0, "sg-app"), ...fixed]],
    ["two clients, both directions each, named by position", ["sg-a", "sg-b"], [...client(0, "sg-a"), ...client(1, "sg-b"), ...fixed]],
  ] as [string, string[], unknown[][]][])("%s", (_, clientSecurityGroupIds, expected) => {
    const rules = pgbouncerSecurityGroupRules("pgb", { ...base, clientSecurityGroupIds });
    expect(rules.map((r) => [r.name, r.args.direction, r.args.securityGroupId, r.args.peer, r.args.port, r.args.description])).toEqual(
      expected,
    );
    expect(rules.filter((r) => "cidrIpv4" in r.args.peer)).toEqual([]);
  });
});

describe("secret, role and logs", () => {
  it("the auth-file secret", () => {
    expect(authFileSecretArgs("pgb", { authFileSecretName: "alphapulse/test/pgbouncer/auth-file", kmsKeyArn: KEY })).toEqual({
      name: "alphapulse/test/pgbouncer/auth-file",
      description: "PgBouncer auth file (SCRAM verifiers) of pgb, written by the data-layer stack",
      kmsKeyId: KEY,
      recoveryWindowInDays: 30,
    });
  });

  it("the execution role: ECS tasks assume it, it reads the auth file and decrypts with the region key, nothing else", () => {
    expect(JSON.stringify(ECS_TASKS_ASSUME_ROLE_POLICY)).toBe(
      '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}',
    );
    expect(ECS_TASK_EXECUTION_POLICY_ARN).toBe("arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy");
    expect(executionRolePolicy("arn:secret", KEY)).toEqual({
      Version: "2012-10-17",
      Statement: [
        { Sid: "AuthFile", Effect: "Allow", Action: "secretsmanager:GetSecretValue", Resource: "arn:secret" },
        { Sid: "RegionKey", Effect: "Allow", Action: "kms:Decrypt", Resource: KEY },
      ],
    });
  });

  it.each([
    ["pgb", "/alphapulse/pgb/pgbouncer"],
    ["eu-prod-pgbouncer", "/alphapulse/eu-prod-pgbouncer/pgbouncer"],
  ])("log group of %s is %s", (service, group) => {
    expect(pgbouncerLogGroupName(service)).toBe(group);
  });
});

describe("task", () => {
  it.each([["/run/pgbouncer/userlist.txt"], ["/run/pgbouncer/auth/users.txt"]])(
    "start script writes the auth file to %s, then forgets it",
    (authFile) => {
      expect(pgbouncerStartScript(authFile)).toBe(
        [
          "set -eu",
          "umask 077",
          `printf '%s' "$PGBOUNCER_INI" > /run/pgbouncer/pgbouncer.ini`,
          `printf '%s' "$PGBOUNCER_AUTH_FILE" > ${authFile}`,
          "unset PGBOUNCER_AUTH_FILE",
          "exec pgbouncer /run/pgbouncer/pgbouncer.ini",
        ].join("\n"),
      );
    },
  );

  it("the container: read-only root, ini as a value, auth file as a secret, awslogs", () => {
    expect(
      pgbouncerContainer({
        image: "img:1",
        ini: "[pgbouncer]\n",
        authFile: "/run/pgbouncer/userlist.txt",
        authFileSecretArn: "arn:secret",
        logGroupName: "/alphapulse/pgb/pgbouncer",
        region: "eu-central-1",
      }),
    ).toEqual({
      name: "pgbouncer",
      image: "img:1",
      essential: true,
      entryPoint: ["/bin/sh", "-c"],
      command: [pgbouncerStartScript("/run/pgbouncer/userlist.txt")],
      portMappings: [{ containerPort: 6432, protocol: "tcp" }],
      environment: [{ name: "PGBOUNCER_INI", value: "[pgbouncer]\n" }],
      secrets: [{ name: "PGBOUNCER_AUTH_FILE", valueFrom: "arn:secret" }],
      readonlyRootFilesystem: true,
      mountPoints: [{ sourceVolume: "run", containerPath: "/run/pgbouncer", readOnly: false }],
      ulimits: [{ name: "nofile", softLimit: 65536, hardLimit: 65536 }],
      logConfiguration: {
        logDriver: "awslogs",
        options: { "awslogs-group": "/alphapulse/pgb/pgbouncer", "awslogs-region": "eu-central-1", "awslogs-stream-prefix": "pgbouncer" },
      },
    });
  });

  it.each([
    [{}, "512", "1024"],
    [{ cpu: 1024, memoryMiB: 2048 }, "1024", "2048"],
  ] as [Pick<PgBouncerServiceArgs, "cpu" | "memoryMiB">, string, string][])("task definition sizes %j", (sizes, cpu, memory) => {
    expect(taskDefinitionArgs("pgb", sizes)).toEqual({
      family: "pgb",
      cpu,
      memory,
      networkMode: "awsvpc",
      requiresCompatibilities: ["FARGATE"],
      runtimePlatform: { operatingSystemFamily: "LINUX", cpuArchitecture: "ARM64" },
      volumes: [{ name: "run" }],
    });
  });
});

describe("load balancing and service", () => {
  it("NLB, target group, listener", () => {
    expect(loadBalancerArgs(["subnet-a", "subnet-b"], "sg-nlb")).toEqual({
      internal: true,
      loadBalancerType: "network",
      subnets: ["subnet-a", "subnet-b"],
      securityGroups: ["sg-nlb"],
      enableCrossZoneLoadBalancing: true,
      ipAddressType: "ipv4",
    });
    expect(targetGroupArgs("vpc-1")).toEqual({
      vpcId: "vpc-1",
      port: 6432,
      protocol: "TCP",
      targetType: "ip",
      deregistrationDelay: 300,
      healthCheck: { protocol: "TCP", port: "traffic-port", interval: 10, healthyThreshold: 3, unhealthyThreshold: 3 },
    });
    expect(listenerArgs("arn:lb", "arn:tg")).toEqual({
      loadBalancerArn: "arn:lb",
      port: 6432,
      protocol: "TCP",
      tcpIdleTimeoutSeconds: 3600,
      defaultActions: [{ type: "forward", targetGroupArn: "arn:tg" }],
    });
  });

  it.each([2, 4])("service with %i tasks: private, rolling with a circuit breaker, no ECS Exec", (desiredCount) => {
    expect(
      serviceArgs({
        clusterArn: "arn:cluster",
        taskDefinitionArn: "arn:task",
        targetGroupArn: "arn:tg",
        desiredCount,
        subnetIds: ["subnet-a", "subnet-b"],
        taskSecurityGroupId: "sg-tasks",
      }),
    ).toEqual({
      cluster: "arn:cluster",
      taskDefinition: "arn:task",
      desiredCount,
      launchType: "FARGATE",
      availabilityZoneRebalancing: "ENABLED",
      networkConfiguration: { subnets: ["subnet-a", "subnet-b"], securityGroups: ["sg-tasks"], assignPublicIp: false },
      loadBalancers: [{ targetGroupArn: "arn:tg", containerName: "pgbouncer", containerPort: 6432 }],
      deploymentCircuitBreaker: { enable: true, rollback: true },
      deploymentMinimumHealthyPercent: 100,
      deploymentMaximumPercent: 200,
      propagateTags: "SERVICE",
      enableEcsManagedTags: true,
      enableExecuteCommand: false,
    });
  });

  it("a new auth-file revision redeploys the tasks (they read the secret at start); without one, nothing forces a deployment", () => {
    const base = {
      clusterArn: "arn:cluster",
      taskDefinitionArn: "arn:task",
      targetGroupArn: "arn:tg",
      desiredCount: 2,
      subnetIds: ["subnet-a", "subnet-b"],
      taskSecurityGroupId: "sg-tasks",
    };
    const withRevision = serviceArgs({ ...base, authFileRevision: "ab12" });
    expect([withRevision.forceNewDeployment, withRevision.triggers]).toEqual([true, { authFile: "ab12" }]);
    const without = serviceArgs(base);
    expect([without.forceNewDeployment, without.triggers]).toEqual([undefined, undefined]);
  });

  it("unhealthy-task alarm: any unhealthy task for 3 minutes, silence breaches", () => {
    expect(unhealthyTasksAlarmArgs({ loadBalancer: "net/lb/1", targetGroup: "targetgroup/tg/2", alarmTopicArn: TOPIC })).toEqual({
      alarmDescription: "PgBouncer tasks failing the NLB health check",
      namespace: "AWS/NetworkELB",
      metricName: "UnHealthyHostCount",
      dimensions: { LoadBalancer: "net/lb/1", TargetGroup: "targetgroup/tg/2" },
      statistic: "Maximum",
      period: 60,
      evaluationPeriods: 3,
      threshold: 0,
      comparisonOperator: "GreaterThanThreshold",
      treatMissingData: "breaching",
      alarmActions: [TOPIC],
      okActions: [TOPIC],
    });
  });
});
