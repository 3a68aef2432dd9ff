import { beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_INTERFACE_ENDPOINTS, Network } from "../../components/aws/network";
import { ResidencyError } from "../../lib/platform/residency";
import { record, T, type Recorded } from "./harness";

const KEY = "arn:aws:kms:eu-central-1:111111111111:key/k";
let rec: Recorded;
let network: Network;

beforeAll(async () => {
  rec = await record((provider) => {
    network = new Network(
      "net",
      {
        region: "eu-central-1",
        cidrBlock: "10.20.0.0/16",
        availabilityZones: ["eu-central-1a", "eu-central-1b"],
        kmsKeyArn: KEY,
        privateZoneName: "test.alphapulse.internal",
      },
      { providers: { aws: provider } },
    );
  });
});

describe("Network", () => {
  it("declares exactly these resources, named from the component's name", () => {
    const children = rec.all
      .filter((r) => r.parent?.endsWith("alphapulse:aws:Network::net"))
      .map((r) => `${r.type.split(":").pop()} ${r.name}`);
    expect(children.sort()).toEqual(
      [
        "DefaultSecurityGroup net-default-sg",
        "FlowLog net-flow-log",
        "LogGroup net-flow-logs",
        "Role net-flow-logs",
        "RolePolicy net-flow-logs",
        "RouteTable net-private",
        "RouteTableAssociation net-private-eu-central-1a",
        "RouteTableAssociation net-private-eu-central-1b",
        "SecurityGroup net-app",
        "SecurityGroup net-executor",
        "SecurityGroup net-endpoints",
        "SecurityGroup net-pgbouncer",
        "SecurityGroupIngressRule net-endpoints-https",
        "Subnet net-private-eu-central-1a",
        "Subnet net-private-eu-central-1b",
        "Vpc net-vpc",
        "VpcEndpoint net-s3",
        ...DEFAULT_INTERFACE_ENDPOINTS.map((s) => `VpcEndpoint net-${s.replace(/\./g, "-")}`),
        "Zone net-internal",
      ].sort(),
    );
    expect(rec.get("alphapulse:aws:Network", "net").type).toBe("alphapulse:aws:Network");
  });

  it("every child uses the regional provider it was given", () => {
    const providerUrn = rec.get(T.provider, "test-aws").urn;
    const children = rec.all.filter((r) => r.parent?.endsWith("alphapulse:aws:Network::net"));
    expect(children.filter((r) => r.provider !== providerUrn).map((r) => r.name)).toEqual([]);
  });

  it("a VPC with private subnets only: no gateway to the internet, no public IPs", () => {
    expect(rec.get(T.vpc, "net-vpc").inputs).toEqual({ cidrBlock: "10.20.0.0/16", enableDnsHostnames: true, enableDnsSupport: true });
    expect(rec.ofType(T.subnet).map((s) => [s.inputs.availabilityZone, s.inputs.cidrBlock, s.inputs.mapPublicIpOnLaunch])).toEqual([
      ["eu-central-1a", "10.20.0.0/20", false],
      ["eu-central-1b", "10.20.16.0/20", false],
    ]);
    expect(rec.all.filter((r) => /internetGateway|natGateway|eip:Eip|route:Route$/.test(r.type))).toEqual([]);
    expect(network.subnets.map((s) => [s.availabilityZone, s.cidrBlock])).toEqual([
      ["eu-central-1a", "10.20.0.0/20"],
      ["eu-central-1b", "10.20.16.0/20"],
    ]);
  });

  it("endpoints for S3 (gateway) and the services the cluster needs (interface, private DNS)", () => {
    const s3 = rec.get(T.endpoint, "net-s3");
    expect(s3.inputs.serviceName).toBe("com.amazonaws.eu-central-1.s3");
    expect(s3.inputs.vpcEndpointType).toBe("Gateway");
    const interfaces = rec.ofType(T.endpoint).filter((e) => e.inputs.vpcEndpointType === "Interface");
    expect(interfaces.map((e) => e.inputs.serviceName).sort()).toEqual(
      ["ec2messages", "ecr.api", "ecr.dkr", "kms", "logs", "monitoring", "secretsmanager", "ssm", "ssmmessages"].map(
        (s) => `com.amazonaws.eu-central-1.${s}`,
      ),
    );
    for (const e of interfaces) {
      expect(e.inputs.privateDnsEnabled).toBe(true);
      expect((e.inputs.subnetIds as string[]).length).toBe(2);
    }
  });

  it("the endpoints accept HTTPS from the VPC only; the default security group is emptied", () => {
    expect(rec.ofType(T.ingress).map((r) => r.inputs)).toEqual([
      {
        cidrIpv4: "10.20.0.0/16",
        description: "HTTPS from the VPC",
        fromPort: 443,
        ipProtocol: "tcp",
        securityGroupId: expect.stringMatching(/^net-endpoints-/),
        toPort: 443,
      },
    ]);
    const defaultSg = rec.get("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "net-default-sg");
    expect(defaultSg.inputs.ingress).toBeUndefined();
    expect(defaultSg.inputs.egress).toBeUndefined();
  });

  it("flow logs go to a KMS-encrypted log group", () => {
    expect(rec.get(T.logGroup, "net-flow-logs").inputs).toEqual({
      name: "/alphapulse/net/vpc-flow-logs",
      retentionInDays: 90,
      kmsKeyId: KEY,
    });
    expect(rec.get("aws:ec2/flowLog:FlowLog", "net-flow-log").inputs).toMatchObject({
      trafficType: "ALL",
      logDestinationType: "cloud-watch-logs",
    });
  });

  it("validates its args before declaring anything", () => {
    const base = {
      region: "eu-central-1",
      cidrBlock: "10.20.0.0/16",
      availabilityZones: ["eu-central-1a", "eu-central-1b"],
      kmsKeyArn: KEY,
      privateZoneName: "x.internal",
    };
    expect(() => new Network("bad1", { ...base, availabilityZones: ["eu-central-1a"] })).toThrow(
      "Network bad1: availabilityZones needs at least two zones, got 1",
    );
    expect(() => new Network("bad2", { ...base, availabilityZones: ["eu-central-1a", "us-east-1a"] })).toThrow(
      new ResidencyError(
        `Network bad2 availabilityZones[1]: availability zone "us-east-1a" is in us-east-1, not in the stack's region eu-central-1`,
      ),
    );
    expect(() => new Network("bad3", { ...base, cidrBlock: "10.20.0.0/24" })).toThrow(
      "Network bad3: cidrBlock must be /16 to /20, got 10.20.0.0/24",
    );
  });
});
