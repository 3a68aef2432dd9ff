import { beforeAll, describe, expect, it } from "vitest";
import { PgBouncerService, type PgBouncerServiceArgs } from "../../components/aws/pgbouncer-service";
import { awsPgbouncerConfig } from "../../lib/pgbouncer/aws";
import { renderPgbouncerIni } from "../../lib/pgbouncer";
import { record, T, type Recorded } from "./harness";

const KEY = "arn:aws:kms:eu-central-1:111111111111:key/k";
const IMAGE = "111111111111.dkr.ecr.eu-central-1.amazonaws.com/alphapulse/pgbouncer:1.23.1";
const args: PgBouncerServiceArgs = {
  region: "eu-central-1",
  vpcId: "vpc-1",
  subnetIds: ["subnet-a", "subnet-b"],
  taskSecurityGroupId: "sg-tasks",
  clientSecurityGroupIds: ["sg-app"],
  databaseSecurityGroupId: "sg-postgres",
  endpointSecurityGroupId: "sg-endpoints",
  s3PrefixListId: "pl-s3",
  config: awsPgbouncerConfig({
    databaseHost: "pg-primary.test.alphapulse.internal",
    tasks: 2,
    appInstances: 10,
    appPoolPerInstance: 20,
    maxClientConnections: 1000,
    reservePoolSize: 5,
  }),
  image: IMAGE,
  desiredCount: 2,
  kmsKeyArn: KEY,
  alarmTopicArn: "arn:aws:sns:eu-central-1:111111111111:alarms",
  authFileSecretName: "alphapulse/test/pgbouncer/auth-file",
};

let rec: Recorded;
beforeAll(async () => {
  rec = await record((provider) => new PgBouncerService("pgb", args, { providers: { aws: provider } }));
});

describe("PgBouncerService", () => {
  it("clients → NLB:6432 → tasks:6432 → PostgreSQL:5432, nothing else", () => {
    expect(
      rec
        .ofType(T.ingress)
        .map((r) => [r.name, r.inputs.securityGroupId, r.inputs.referencedSecurityGroupId, r.inputs.fromPort, r.inputs.cidrIpv4]),
    ).toEqual([
      ["pgb-nlb-from-client-0", expect.stringMatching(/^pgb-nlb-/), "sg-app", 6432, undefined],
      ["pgb-tasks-from-nlb", "sg-tasks", expect.stringMatching(/^pgb-nlb-/), 6432, undefined],
    ]);
    expect(
      rec
        .ofType(T.egress)
        .map((r) => [r.name, r.inputs.securityGroupId, r.inputs.referencedSecurityGroupId ?? r.inputs.prefixListId, r.inputs.fromPort]),
    ).toEqual([
      ["pgb-client-0-to-nlb", "sg-app", expect.stringMatching(/^pgb-nlb-/), 6432],
      ["pgb-nlb-to-tasks", expect.stringMatching(/^pgb-nlb-/), "sg-tasks", 6432],
      ["pgb-tasks-to-endpoints", "sg-tasks", "sg-endpoints", 443],
      ["pgb-tasks-to-postgres", "sg-tasks", "sg-postgres", 5432],
      ["pgb-tasks-to-s3", "sg-tasks", "pl-s3", 443],
    ]);
  });

  it("an internal NLB with a long TCP idle timeout for session pooling", () => {
    expect(rec.get("aws:lb/loadBalancer:LoadBalancer", "pgb-nlb").inputs).toMatchObject({
      internal: true,
      loadBalancerType: "network",
      subnets: ["subnet-a", "subnet-b"],
    });
    expect(rec.get("aws:lb/listener:Listener", "pgb-listener").inputs).toMatchObject({
      port: 6432,
      protocol: "TCP",
      tcpIdleTimeoutSeconds: 3600,
    });
    expect(rec.get("aws:lb/targetGroup:TargetGroup", "pgb-tg").inputs).toMatchObject({
      port: 6432,
      protocol: "TCP",
      targetType: "ip",
      deregistrationDelay: 300,
    });
  });

  it("Fargate tasks: no public IP, read-only root, ini from the renderer, auth file from Secrets Manager", () => {
    const service = rec.get("aws:ecs/service:Service", "pgb-service").inputs;
    expect(service).toMatchObject({
      launchType: "FARGATE",
      desiredCount: 2,
      networkConfiguration: { assignPublicIp: false, securityGroups: ["sg-tasks"], subnets: ["subnet-a", "subnet-b"] },
    });
    const task = rec.get("aws:ecs/taskDefinition:TaskDefinition", "pgb-task").inputs;
    const [container] = JSON.parse(String(task.containerDefinitions));
    const authSecret = rec.get(T.secret, "pgb-auth-file");
    expect(authSecret.protect).toBe(true);
    expect(authSecret.inputs).toMatchObject({ name: "alphapulse/test/pgbouncer/auth-file", kmsKeyId: KEY });
    expect(container.image).toBe(IMAGE);
    expect(container.readonlyRootFilesystem).toBe(true);
    expect(container.command[0]).toContain(`printf '%s' "$PGBOUNCER_AUTH_FILE" > /run/pgbouncer/userlist.txt`);
    expect(container.environment).toEqual([{ name: "PGBOUNCER_INI", value: renderPgbouncerIni(args.config) }]);
    expect(container.secrets).toEqual([
      {
        name: "PGBOUNCER_AUTH_FILE",
        valueFrom: expect.stringMatching(
          /^arn:aws:secretsmanager:eu-central-1:111111111111:secret:alphapulse\/test\/pgbouncer\/auth-file-/,
        ),
      },
    ]);
    expect(container.logConfiguration.options["awslogs-group"]).toBe("/alphapulse/pgb/pgbouncer");
  });

  it("validates its args", () => {
    expect(() => new PgBouncerService("no-clients", { ...args, clientSecurityGroupIds: [] })).toThrow(
      "PgBouncerService no-clients: clientSecurityGroupIds must name at least one security group",
    );
    expect(() => new PgBouncerService("one-task", { ...args, desiredCount: 1 })).toThrow(
      "PgBouncerService one-task: desiredCount must be an integer of at least 2, got 1",
    );
    expect(
      () => new PgBouncerService("auth-file", { ...args, config: { ...args.config, authFile: "/etc/pgbouncer/userlist.txt" } }),
    ).toThrow("PgBouncerService auth-file: config.authFile must be under /run/pgbouncer (the task's writable volume)");
    expect(() => new PgBouncerService("one-subnet", { ...args, subnetIds: ["a"] })).toThrow(
      "PgBouncerService one-subnet: subnetIds needs at least two subnets (availability zones)",
    );
  });
});
