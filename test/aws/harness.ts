/**
 * Component tests under Pulumi's mocks: `record()` installs the platform mocks and the recorder
 * (lib/synth/mocks.ts), runs `build`, waits for every registration and returns what the
 * engine would have received. One recording per test file (Pulumi's runtime state is global; vitest
 * runs each file in its own process).
 */
import * as aws from "@pulumi/aws";
import { parse as parseYaml } from "yaml";
import type { RegionalPlatformArgs } from "../../components/aws/regional-platform";
import { PlatformMocks, startRecording, type SynthResource } from "../../lib/synth/mocks";

export const ACCOUNT_ID = "111111111111";

/** A resident EU region with one tenant: the RegionalPlatform the component tests record. */
export const REGIONAL_PLATFORM_ARGS: RegionalPlatformArgs = {
  residency: "eu",
  awsRegion: "eu-central-1",
  accountId: ACCOUNT_ID,
  stackName: "eu-test",
  costCentre: "CC-1",
  environment: "staging",
  network: { cidrBlock: "10.20.0.0/16", availabilityZones: ["eu-central-1a", "eu-central-1b"] },
  postgres: { instanceType: "m7g.large", memoryMiB: 8192, dataVolumeGiB: 100 },
  pgbouncer: {
    image: "111111111111.dkr.ecr.eu-central-1.amazonaws.com/pgbouncer:1",
    desiredCount: 2,
    cpu: 512,
    memoryMiB: 1024,
    appInstances: 10,
    appPoolPerInstance: 20,
    maxClientConnections: 1000,
    reservePoolSize: 5,
  },
  redis: { nodeType: "cache.t4g.medium", engineVersion: "7.1", replicas: 1, maxmemoryPolicy: "volatile-lru", snapshotRetentionDays: 7 },
  tenants: [{ id: "1d7499b2-0c1e-4f32-8233-b121324410da", slug: "acme-capital", tier: "pro", region: "eu" }],
};

export interface Recorded {
  all: SynthResource[];
  /** The resource of this type and logical name; fails the test when missing. */
  get(type: string, name: string): SynthResource;
  ofType(type: string): SynthResource[];
  /** Logical names of the resources of a type, sorted. */
  names(type: string): string[];
  /** Waits for registrations made after `record` (e.g. by a constructor that then threw) and returns them all. */
  again(): Promise<SynthResource[]>;
}

export async function record(build: (provider: aws.Provider) => void, stack = "test"): Promise<Recorded> {
  const recording = await startRecording(new PlatformMocks({ accountId: ACCOUNT_ID }), "alphapulse-platform", stack);
  const provider = new aws.Provider("test-aws", { region: "eu-central-1", allowedAccountIds: [ACCOUNT_ID] });
  build(provider);
  await recording.settle();
  const all = recording.resources();
  const ofType = (type: string) => all.filter((r) => r.type === type);
  return {
    all,
    ofType,
    names: (type) =>
      ofType(type)
        .map((r) => r.name)
        .sort(),
    again: async () => {
      await recording.settle();
      return recording.resources();
    },
    get(type, name) {
      const found = all.find((r) => r.type === type && r.name === name);
      if (found === undefined)
        throw new Error(
          `no ${type} named ${name}; have: ${
            ofType(type)
              .map((r) => r.name)
              .join(", ") || "none of that type"
          }`,
        );
      return found;
    },
  };
}

/** The files of a cloud-init document, by path. */
export function cloudInitFiles(userData: unknown): Record<string, string> {
  const doc = parseYaml(String(userData).replace(/^#cloud-config\n/, "")) as { write_files: { path: string; content: string }[] };
  return Object.fromEntries(doc.write_files.map((f) => [f.path, f.content]));
}

export const T = {
  provider: "pulumi:providers:aws",
  vpc: "aws:ec2/vpc:Vpc",
  subnet: "aws:ec2/subnet:Subnet",
  sg: "aws:ec2/securityGroup:SecurityGroup",
  ingress: "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
  egress: "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
  endpoint: "aws:ec2/vpcEndpoint:VpcEndpoint",
  instance: "aws:ec2/instance:Instance",
  volume: "aws:ebs/volume:Volume",
  bucket: "aws:s3/bucket:Bucket",
  secret: "aws:secretsmanager/secret:Secret",
  secretVersion: "aws:secretsmanager/secretVersion:SecretVersion",
  alarm: "aws:cloudwatch/metricAlarm:MetricAlarm",
  logGroup: "aws:cloudwatch/logGroup:LogGroup",
  ecUser: "aws:elasticache/user:User",
  ecUserGroup: "aws:elasticache/userGroup:UserGroup",
  replicationGroup: "aws:elasticache/replicationGroup:ReplicationGroup",
  kmsKey: "aws:kms/key:Key",
} as const;
