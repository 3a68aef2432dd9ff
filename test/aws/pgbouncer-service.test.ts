import { beforeAll, describe, expect, it } from "vitest";
import { PgBouncerService, renderPgbouncerIniSeam, type PgBouncerServiceArgs } from "../../components/aws/pgbouncer-service";
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
  databaseHost: "pg-primary.test.alphapulse.internal",
  image: IMAGE,
  kmsKeyArn: KEY,
  alarmTopicArn: "arn:aws:sns:eu-central-1:111111111111:alarms",
  authFileSecretName: "alphapulse/test/pgbouncer/auth-file",
};

let rec: Recorded;
beforeAll(async () => {
  rec = await record((provider) => new PgBouncerService("pgb", args, { providers: { aws: provider } }));
});

describe("renderPgbouncerIniSeam", () => {
  it("session pooling with the ADR's sizes, DISCARD ALL, SCRAM from the auth file, TLS to the server", () => {
    expect(
      renderPgbouncerIniSeam({
        databaseHost: "db.internal",
        databasePort: 5432,
        databaseName: "alphapulse",
        authFile: "/run/pgbouncer/userlist.txt",
        defaultPoolSize: 20,
        maxClientConnections: 1000,
        maxDbConnections: 200,
      }),
    ).toBe(
      [
        "[databases]",
        "alphapulse = host=db.internal port=5432 dbname=alphapulse",
        "",
        "[pgbouncer]",
        "listen_addr = 0.0.0.0",
        "listen_port = 6432",
        "auth_type = scram-sha-256",
        "auth_file = /run/pgbouncer/userlist.txt",
        "pool_mode = session",
        "server_reset_query = DISCARD ALL",
        "default_pool_size = 20",
        "max_client_conn = 1000",
        "max_db_connections = 200",
        "reserve_pool_size = 0",
        "query_wait_timeout = 30",
        "server_idle_timeout = 600",
        "server_lifetime = 3600",
        "server_tls_sslmode = require",
        "tcp_keepalive = 1",
        "tcp_keepidle = 60",
        "tcp_keepintvl = 15",
        "ignore_startup_parameters = extra_float_digits",
        "log_connections = 0",
        "log_disconnections = 0",
        "",
      ].join("\n"),
    );
  });

  it("refuses values that could add INI lines", () => {
    expect(() =>
      renderPgbouncerIniSeam({
        databaseHost: "db\nauth_type = trust",
        databasePort: 5432,
        databaseName: "a",
        authFile: "/f",
        defaultPoolSize: 1,
        maxClientConnections: 1,
        maxDbConnections: 1,
      }),
    ).toThrow('pgbouncer.ini databaseHost "db\nauth_type = trust" has characters outside [A-Za-z0-9_./-]');
  });
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
    expect(container.environment).toEqual([
      {
        name: "PGBOUNCER_INI",
        value: renderPgbouncerIniSeam({
          databaseHost: args.databaseHost,
          databasePort: 5432,
          databaseName: "alphapulse",
          authFile: "/run/pgbouncer/userlist.txt",
          defaultPoolSize: 20,
          maxClientConnections: 1000,
          maxDbConnections: 200,
        }),
      },
    ]);
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
    expect(() => new PgBouncerService("one-subnet", { ...args, subnetIds: ["a"] })).toThrow(
      "PgBouncerService one-subnet: subnetIds needs at least two subnets (availability zones)",
    );
  });
});
