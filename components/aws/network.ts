/**
 * `alphapulse:aws:Network` — the VPC of a regional stack with no public path at all: private subnets
 * in two or more availability zones, no internet gateway, no NAT, no public IPs. Everything the data
 * services need from AWS goes through VPC endpoints (S3 as a gateway endpoint; SSM, Secrets Manager,
 * KMS, CloudWatch Logs and metrics, ECR as interface endpoints). The default security group is
 * emptied, flow logs go to an encrypted log group, and a private DNS zone names the database nodes.
 *
 * It also creates the security groups that other components refer to as identities — `app` (what
 * application workloads join to reach PgBouncer and Redis), `pgbouncer` (the pooler's tasks) and
 * `executor` (the database executor, components/aws/executor.ts) — without rules: each component
 * adds the rules for the traffic it receives (the executor its own egress).
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { cidrSubnet, parseCidr } from "../../lib/platform/cidr";
import { assertZoneInRegion } from "../../lib/platform/residency";
import { tcpRule } from "./tcp-rule";

/** Interface endpoints a private cluster needs: SSM sessions, secrets, keys, logs, metrics, images. */
export const DEFAULT_INTERFACE_ENDPOINTS = [
  "ssm",
  "ssmmessages",
  "ec2messages",
  "secretsmanager",
  "kms",
  "logs",
  "monitoring",
  "ecr.api",
  "ecr.dkr",
] as const;

export interface NetworkArgs {
  /** AWS region of the stack's provider. Plain: endpoint service names and zone checks are built from it. */
  region: string;
  /** VPC CIDR, /16 to /20. Plain: subnets are carved from it (each AZ gets a slice 4 bits smaller). Replaces the VPC. */
  cidrBlock: string;
  /** At least two plain availability zones of `region`, one private subnet each. Replaces subnets when changed. */
  availabilityZones: string[];
  /** KMS key for the flow-log group. */
  kmsKeyArn: pulumi.Input<string>;
  /** Private hosted zone for internal names, e.g. `eu-prod.alphapulse.internal`. */
  privateZoneName: string;
  /**
   * Interface endpoint services (the suffix after `com.amazonaws.<region>.`).
   * @default DEFAULT_INTERFACE_ENDPOINTS
   */
  interfaceEndpoints?: string[];
  /** @default 90 */
  flowLogRetentionDays?: pulumi.Input<number>;
}

export interface PrivateSubnet {
  id: pulumi.Output<string>;
  availabilityZone: string;
  cidrBlock: string;
}

export class Network extends pulumi.ComponentResource {
  readonly vpcId: pulumi.Output<string>;
  readonly cidrBlock: string;
  readonly subnets: PrivateSubnet[];
  readonly subnetIds: pulumi.Output<string>[];
  readonly routeTableId: pulumi.Output<string>;
  /** Prefix list of the S3 gateway endpoint: the egress target for S3 traffic. */
  readonly s3PrefixListId: pulumi.Output<string>;
  readonly endpointSecurityGroupId: pulumi.Output<string>;
  /** Security group application workloads join to reach PgBouncer and Redis. */
  readonly appSecurityGroupId: pulumi.Output<string>;
  /** Security group of the PgBouncer tasks (clients of PostgreSQL's 5432, with the executor). */
  readonly pgbouncerSecurityGroupId: pulumi.Output<string>;
  /** Security group of the database executor (the Lambda function that runs the data layer inside the VPC). */
  readonly executorSecurityGroupId: pulumi.Output<string>;
  readonly privateZoneId: pulumi.Output<string>;
  readonly privateZoneName: string;

  constructor(name: string, args: NetworkArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("alphapulse:aws:Network", name, {}, opts);
    const zones = args.availabilityZones ?? [];
    if (zones.length < 2) throw new Error(`Network ${name}: availabilityZones needs at least two zones, got ${zones.length}`);
    zones.forEach((zone, i) => assertZoneInRegion(zone, args.region, `Network ${name} availabilityZones[${i}]`));
    const { prefix } = parseCidr(args.cidrBlock);
    if (prefix < 16 || prefix > 20) throw new Error(`Network ${name}: cidrBlock must be /16 to /20, got ${args.cidrBlock}`);
    const endpoints = args.interfaceEndpoints ?? [...DEFAULT_INTERFACE_ENDPOINTS];
    const parent = { parent: this };

    const vpc = new aws.ec2.Vpc(`${name}-vpc`, { cidrBlock: args.cidrBlock, enableDnsHostnames: true, enableDnsSupport: true }, parent);
    // Take over the default security group and leave it without rules (nothing should ever use it).
    new aws.ec2.DefaultSecurityGroup(`${name}-default-sg`, { vpcId: vpc.id }, parent);

    const routeTable = new aws.ec2.RouteTable(`${name}-private`, { vpcId: vpc.id }, parent);
    this.subnets = zones.map((zone, i) => {
      const cidrBlock = cidrSubnet(args.cidrBlock, 4, i);
      const subnet = new aws.ec2.Subnet(
        `${name}-private-${zone}`,
        { vpcId: vpc.id, availabilityZone: zone, cidrBlock, mapPublicIpOnLaunch: false, tags: { Name: `${name}-private-${zone}` } },
        parent,
      );
      new aws.ec2.RouteTableAssociation(`${name}-private-${zone}`, { subnetId: subnet.id, routeTableId: routeTable.id }, parent);
      return { id: subnet.id, availabilityZone: zone, cidrBlock };
    });
    const subnetIds = this.subnets.map((s) => s.id);

    const securityGroup = (suffix: string, description: string) =>
      new aws.ec2.SecurityGroup(`${name}-${suffix}`, { vpcId: vpc.id, description, tags: { Name: `${name}-${suffix}` } }, parent);
    const endpointSg = securityGroup("endpoints", "VPC interface endpoints: HTTPS from inside the VPC only");
    tcpRule(
      `${name}-endpoints-https`,
      {
        direction: "ingress",
        securityGroupId: endpointSg.id,
        peer: { cidrIpv4: args.cidrBlock },
        port: 443,
        description: "HTTPS from the VPC",
      },
      parent,
    );
    const appSg = securityGroup("app", "Application workloads: clients of PgBouncer and Redis");
    const pgbouncerSg = securityGroup("pgbouncer", "PgBouncer tasks: the only clients of PostgreSQL");
    const executorSg = securityGroup("executor", "Database executor: runs the data layer (migrate, tenants) against PostgreSQL");

    const s3 = new aws.ec2.VpcEndpoint(
      `${name}-s3`,
      { vpcId: vpc.id, serviceName: `com.amazonaws.${args.region}.s3`, vpcEndpointType: "Gateway", routeTableIds: [routeTable.id] },
      parent,
    );
    for (const service of endpoints) {
      new aws.ec2.VpcEndpoint(
        `${name}-${service.replace(/\./g, "-")}`,
        {
          vpcId: vpc.id,
          serviceName: `com.amazonaws.${args.region}.${service}`,
          vpcEndpointType: "Interface",
          privateDnsEnabled: true,
          subnetIds,
          securityGroupIds: [endpointSg.id],
        },
        parent,
      );
    }

    const flowLogGroup = new aws.cloudwatch.LogGroup(
      `${name}-flow-logs`,
      { name: `/alphapulse/${name}/vpc-flow-logs`, retentionInDays: args.flowLogRetentionDays ?? 90, kmsKeyId: args.kmsKeyArn },
      parent,
    );
    const flowLogRole = new aws.iam.Role(
      `${name}-flow-logs`,
      {
        assumeRolePolicy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Principal: { Service: "vpc-flow-logs.amazonaws.com" }, Action: "sts:AssumeRole" }],
        }),
      },
      parent,
    );
    new aws.iam.RolePolicy(
      `${name}-flow-logs`,
      {
        role: flowLogRole.id,
        policy: pulumi.jsonStringify({
          Version: "2012-10-17",
          Statement: [
            {
              Effect: "Allow",
              Action: ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups", "logs:DescribeLogStreams"],
              Resource: [flowLogGroup.arn, pulumi.interpolate`${flowLogGroup.arn}:*`],
            },
          ],
        }),
      },
      parent,
    );
    new aws.ec2.FlowLog(
      `${name}-flow-log`,
      {
        vpcId: vpc.id,
        trafficType: "ALL",
        logDestinationType: "cloud-watch-logs",
        logDestination: flowLogGroup.arn,
        iamRoleArn: flowLogRole.arn,
        maxAggregationInterval: 60,
      },
      parent,
    );

    const zone = new aws.route53.Zone(
      `${name}-internal`,
      { name: args.privateZoneName, comment: `Private names of ${name}`, vpcs: [{ vpcId: vpc.id, vpcRegion: args.region }] },
      parent,
    );

    this.vpcId = vpc.id;
    this.cidrBlock = args.cidrBlock;
    this.subnetIds = subnetIds;
    this.routeTableId = routeTable.id;
    this.s3PrefixListId = s3.prefixListId;
    this.endpointSecurityGroupId = endpointSg.id;
    this.appSecurityGroupId = appSg.id;
    this.pgbouncerSecurityGroupId = pgbouncerSg.id;
    this.executorSecurityGroupId = executorSg.id;
    this.privateZoneId = zone.zoneId;
    this.privateZoneName = args.privateZoneName;
    this.registerOutputs({
      vpcId: this.vpcId,
      subnetIds: this.subnetIds,
      appSecurityGroupId: this.appSecurityGroupId,
      pgbouncerSecurityGroupId: this.pgbouncerSecurityGroupId,
      executorSecurityGroupId: this.executorSecurityGroupId,
      privateZoneId: this.privateZoneId,
    });
  }
}
