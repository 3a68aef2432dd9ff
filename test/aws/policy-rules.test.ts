/**
 * The policy rules as pure predicates: the real eu-staging graph (synthesised in this process)
 * passes every rule, and each deliberate break of it is reported by exactly the rule it breaks,
 * naming the resource. Then the edge cases a preview brings (unknown values, JSON-encoded provider
 * inputs, default providers) and the adapter the policy pack uses.
 */
import type { PolicyResource } from "@pulumi/policy";
import { beforeAll, describe, expect, it } from "vitest";
import { evaluate, formatViolation, portsCovered, RULES, type ResourceView } from "../../policy/rules";
import { residencyFromProviders, viewsFromPolicy, viewsFromSynth } from "../../policy/views";
import { synthesize } from "../../scripts/synth";
import type { SynthDocument } from "../../lib/synth/mocks";

let doc: SynthDocument;
let base: ResourceView[];

beforeAll(async () => {
  doc = await synthesize({ stack: "eu-staging" });
  base = viewsFromSynth(doc.resources);
}, 60_000);

/** A deep copy of the graph with `edit` applied. */
function mutate(edit: (views: ResourceView[]) => void): ResourceView[] {
  const views = structuredClone(base);
  edit(views);
  return views;
}
const find = (views: ResourceView[], type: string, name: string) => {
  const found = views.find((v) => v.type === type && v.name === name);
  if (!found) throw new Error(`no ${type} ${name}`);
  return found;
};
/** Removes an input and where it came from (otherwise it would count as an unknown-but-set preview value). */
const unset = (view: ResourceView, key: string) => {
  delete view.inputs[key];
  delete view.propertyDependencies[key];
};
const found = (views: ResourceView[]) => evaluate(views, { residency: "eu" }).map((v) => [v.rule, v.name, v.message]);
const P = "eu-staging-postgres";
const providerUrn = () => find(base, "pulumi:providers:aws", "eu-staging-aws").urn;
const extra = (type: string, name: string, inputs: Record<string, unknown>): ResourceView => ({
  urn: `urn:pulumi:eu-staging::alphapulse-platform::${type}::${name}`,
  type,
  name,
  provider: providerUrn(),
  protect: false,
  inputs,
  propertyDependencies: {},
});

describe("the synthesised eu-staging graph", () => {
  it("passes every rule", () => {
    expect(evaluate(base, { residency: "eu" }).map(formatViolation)).toEqual([]);
    expect(RULES.map((r) => r.id)).toEqual([
      "encryption-at-rest",
      "no-world-ingress-to-data-ports",
      "region-pinning",
      "stateful-protection",
      "redis-tls",
      "default-tags",
      "no-public-path",
      "ssm-only-access",
      "backup-bucket-hardening",
      "executor-private",
      "executor-encryption",
      "database-ingress",
      "context-key-secret",
    ]);
  });

  it("negative control: judged as a US stack, every EU region is refused", () => {
    const violations = evaluate(base, { residency: "us" }).filter((v) => v.rule === "region-pinning");
    expect(violations.length).toBeGreaterThan(50);
    expect(violations[0].message).toMatch(/outside residency "us"|residency "us"|region eu-central-1/);
  });
});

const S3 = "aws:s3/bucket:Bucket";
const VOL = "aws:ebs/volume:Volume";
const INST = "aws:ec2/instance:Instance";
const RG = "aws:elasticache/replicationGroup:ReplicationGroup";
const SECRET = "aws:secretsmanager/secret:Secret";
const SV = "aws:secretsmanager/secretVersion:SecretVersion";
const CK = "eu-staging-context-key-eu-1";

const breaks: [string, (v: ResourceView[]) => void, [string, string, string][]][] = [
  [
    "an unencrypted data volume",
    (v) => (find(v, VOL, `${P}-primary-data`).inputs.encrypted = false),
    [["encryption-at-rest", `${P}-primary-data`, "EBS volume is not encrypted (encrypted must be true)"]],
  ],
  [
    "a volume under the AWS-managed key",
    (v) => unset(find(v, VOL, `${P}-replica-data`), "kmsKeyId"),
    [["encryption-at-rest", `${P}-replica-data`, "EBS volume is encrypted with the AWS-managed key: set kmsKeyId to the region's key"]],
  ],
  [
    "a bucket without SSE-KMS",
    (v) =>
      v.splice(
        v.findIndex((x) => x.type.endsWith("BucketServerSideEncryptionConfiguration")),
        1,
      ),
    [["encryption-at-rest", `${P}-backups`, "bucket has no BucketServerSideEncryptionConfiguration with SSE-KMS"]],
  ],
  [
    "a cache without at-rest encryption",
    (v) => (find(v, RG, "eu-staging-redis-group").inputs.atRestEncryptionEnabled = false),
    [["encryption-at-rest", "eu-staging-redis-group", "at-rest encryption is off (atRestEncryptionEnabled must be true)"]],
  ],
  [
    "an unencrypted log group",
    (v) => unset(find(v, "aws:cloudwatch/logGroup:LogGroup", `${P}-logs`), "kmsKeyId"),
    [["encryption-at-rest", `${P}-logs`, "log group is not encrypted with the region's key (kmsKeyId)"]],
  ],
  [
    "PostgreSQL open to the world (a rule resource)",
    (v) =>
      v.push(
        extra("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "oops", {
          ipProtocol: "tcp",
          fromPort: 5000,
          toPort: 6000,
          cidrIpv4: "0.0.0.0/0",
        }),
      ),
    [["no-world-ingress-to-data-ports", "oops", "ingress from 0.0.0.0/0 reaches data port(s) 5432"]],
  ],
  [
    "Redis and PgBouncer open to the IPv6 world (inline, all protocols)",
    (v) =>
      v.push(
        extra("aws:ec2/securityGroup:SecurityGroup", "wide", {
          ingress: [{ protocol: "-1", fromPort: 0, toPort: 0, ipv6CidrBlocks: ["::/0"] }],
        }),
      ),
    [
      ["no-world-ingress-to-data-ports", "wide", "ingress from ::/0 reaches data port(s) 5432, 6432, 6379"],
      ["ssm-only-access", "wide", "ingress to SSH (22): access is through SSM Session Manager"],
    ],
  ],
  [
    "the provider moved to a US region",
    (v) => (find(v, "pulumi:providers:aws", "eu-staging-aws").inputs.region = "us-east-1"),
    [
      [
        "region-pinning",
        "eu-staging-aws",
        'AWS provider region "us-east-1" is outside residency "eu" (allowed: eu-central-1, eu-west-1, eu-west-3, eu-north-1, eu-south-1, eu-south-2)',
      ],
    ],
  ],
  [
    "a resource on the default provider",
    (v) => delete find(v, S3, `${P}-backups`).provider,
    [["region-pinning", `${P}-backups`, "uses the default AWS provider: pass the stack's regional provider"]],
  ],
  [
    "a volume encrypted under a key in another residency",
    (v) => (find(v, VOL, `${P}-primary-data`).inputs.kmsKeyId = "arn:aws:kms:us-east-1:333333333333:key/x"),
    [["region-pinning", `${P}-primary-data`, "kmsKeyId refers to arn:aws:kms:us-east-1:… in region us-east-1"]],
  ],
  [
    "a per-resource region override (provider v7)",
    (v) => (find(v, S3, `${P}-backups`).inputs.region = "us-west-2"),
    [["region-pinning", `${P}-backups`, 'region "us-west-2" is outside residency "eu"']],
  ],
  [
    "a subnet in a US zone",
    (v) => (find(v, "aws:ec2/subnet:Subnet", "eu-staging-network-private-eu-central-1b").inputs.availabilityZone = "us-east-1b"),
    [["region-pinning", "eu-staging-network-private-eu-central-1b", 'availabilityZone "us-east-1b" is not a zone of residency "eu"']],
  ],
  [
    "a PgBouncer image pulled from the US registry",
    (v) => {
      const task = find(v, "aws:ecs/taskDefinition:TaskDefinition", "eu-staging-pgbouncer-task");
      task.inputs.containerDefinitions = String(task.inputs.containerDefinitions).replace("dkr.ecr.eu-central-1", "dkr.ecr.us-east-1");
    },
    [
      [
        "region-pinning",
        "eu-staging-pgbouncer-task",
        "[0].image pulls image 333333333333.dkr.ecr.us-east-1.amazonaws.com/alphapulse/pgbouncer:1.23.1 from region us-east-1",
      ],
    ],
  ],
  [
    "an interface endpoint of another region",
    (v) => (find(v, "aws:ec2/vpcEndpoint:VpcEndpoint", "eu-staging-network-kms").inputs.serviceName = "com.amazonaws.us-east-1.kms"),
    [["region-pinning", "eu-staging-network-kms", 'serviceName "com.amazonaws.us-east-1.kms" is an endpoint service of region us-east-1']],
  ],
  [
    "an unprotected backup bucket that can be force-destroyed",
    (v) => {
      const b = find(v, S3, `${P}-backups`);
      b.protect = false;
      b.inputs.forceDestroy = true;
    },
    [
      ["stateful-protection", `${P}-backups`, "stateful resource is not protected (protect: true)"],
      ["stateful-protection", `${P}-backups`, "bucket has forceDestroy: deleting it would delete every backup"],
    ],
  ],
  [
    "a database node without termination protection",
    (v) => (find(v, INST, `${P}-primary`).inputs.disableApiTermination = false),
    [["stateful-protection", `${P}-primary`, "database node can be terminated by API (disableApiTermination must be true)"]],
  ],
  [
    "a cache without a final snapshot",
    (v) => unset(find(v, RG, "eu-staging-redis-group"), "finalSnapshotIdentifier"),
    [["stateful-protection", "eu-staging-redis-group", "replication group takes no final snapshot (finalSnapshotIdentifier)"]],
  ],
  [
    "Redis TLS only preferred",
    (v) => (find(v, RG, "eu-staging-redis-group").inputs.transitEncryptionMode = "preferred"),
    [["redis-tls", "eu-staging-redis-group", 'TLS is not enforced (transitEncryptionMode is "preferred", must be "required")']],
  ],
  [
    "Redis without TLS, with a shared AUTH token",
    (v) => {
      const g = find(v, RG, "eu-staging-redis-group");
      g.inputs.transitEncryptionEnabled = false;
      g.inputs.authToken = "[secret]";
    },
    [
      ["redis-tls", "eu-staging-redis-group", "TLS in transit is off (transitEncryptionEnabled must be true)"],
      ["redis-tls", "eu-staging-redis-group", "uses a shared AUTH token: use RBAC user groups"],
    ],
  ],
  [
    "a provider without the cost-centre tag",
    (v) => {
      const p = find(v, "pulumi:providers:aws", "eu-staging-aws");
      const tags = JSON.parse(String(p.inputs.defaultTags));
      delete tags.tags["alphapulse:cost-centre"];
      p.inputs.defaultTags = JSON.stringify(tags);
    },
    [["default-tags", "eu-staging-aws", "provider defaultTags lack alphapulse:cost-centre"]],
  ],
  [
    "an internet gateway and an internet-facing NLB",
    (v) => {
      v.push(extra("aws:ec2/internetGateway:InternetGateway", "igw", { vpcId: "vpc" }));
      find(v, "aws:lb/loadBalancer:LoadBalancer", "eu-staging-pgbouncer-nlb").inputs.internal = false;
    },
    [
      ["no-public-path", "eu-staging-pgbouncer-nlb", "load balancer is internet-facing (internal must be true)"],
      ["no-public-path", "igw", "internet gateway: the data platform's VPC has no path to or from the internet"],
    ],
  ],
  [
    "a node with a public IP",
    (v) => (find(v, INST, `${P}-replica`).inputs.associatePublicIpAddress = true),
    [["no-public-path", `${P}-replica`, "instance may get a public IP (associatePublicIpAddress must be false)"]],
  ],
  [
    "a bucket whose public access is not blocked",
    (v) => (find(v, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", `${P}-backups`).inputs.restrictPublicBuckets = false),
    [["no-public-path", `${P}-backups`, "bucket has no BucketPublicAccessBlock with all four settings true"]],
  ],
  [
    "a node with a key pair and IMDSv1",
    (v) => {
      const i = find(v, INST, `${P}-primary`);
      i.inputs.keyName = "ops";
      i.inputs.metadataOptions = { httpTokens: "optional" };
    },
    [
      ["ssm-only-access", `${P}-primary`, "instance has a key pair (keyName): use SSM Session Manager"],
      ["ssm-only-access", `${P}-primary`, 'instance metadata allows IMDSv1 (metadataOptions.httpTokens must be "required")'],
    ],
  ],
  [
    "SSH open inside the VPC",
    (v) =>
      v.push(
        extra("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "ssh", {
          ipProtocol: "tcp",
          fromPort: 22,
          toPort: 22,
          cidrIpv4: "10.120.0.0/16",
        }),
      ),
    [["ssm-only-access", "ssh", "ingress to SSH (22): access is through SSM Session Manager"]],
  ],
  [
    "an unversioned bucket without lifecycle",
    (v) => {
      find(v, "aws:s3/bucketVersioning:BucketVersioning", `${P}-backups`).inputs.versioningConfiguration = { status: "Suspended" };
      v.splice(
        v.findIndex((x) => x.type.endsWith("BucketLifecycleConfiguration")),
        1,
      );
    },
    [
      ["backup-bucket-hardening", `${P}-backups`, "bucket is not versioned (BucketVersioning status Enabled)"],
      ["backup-bucket-hardening", `${P}-backups`, "bucket has no lifecycle configuration"],
    ],
  ],
  [
    "a strict database's key with no secret holding it (an AWS region left keyless)",
    (v) =>
      v.splice(
        v.findIndex((x) => x.type === SV && x.name === `${CK}-value`),
        1,
      ),
    [["context-key-secret", "eu-staging-data-context-key-eu-1", "tenant-context key has no Secrets Manager secret holding its value"]],
  ],
  [
    "the context key's secret under the AWS-managed key",
    (v) => unset(find(v, SECRET, `${CK}-secret`), "kmsKeyId"),
    [
      ["encryption-at-rest", `${CK}-secret`, "secret is encrypted with the AWS-managed key"],
      ["context-key-secret", `${CK}-secret`, "is not encrypted with a KMS key this stack declares (kmsKeyId must be the region's key)"],
    ],
  ],
  [
    "the context key's secret under a key of another account, named by ARN",
    (v) => {
      const secret = find(v, SECRET, `${CK}-secret`);
      secret.inputs.kmsKeyId = "arn:aws:kms:eu-central-1:999999999999:key/elsewhere";
      delete secret.propertyDependencies.kmsKeyId;
    },
    [["context-key-secret", `${CK}-secret`, "is not encrypted with a KMS key this stack declares"]],
  ],
  [
    "the context key's secret unprotected",
    (v) => (find(v, SECRET, `${CK}-secret`).protect = false),
    [
      ["stateful-protection", `${CK}-secret`, "stateful resource is not protected (protect: true)"],
      ["context-key-secret", `${CK}-secret`, "is not protected: removing the key would delete it"],
    ],
  ],
];

const FN = "aws:lambda/function:Function";
const EX = "eu-staging-executor-function";
const INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule";
const SG = "aws:ec2/securityGroup:SecurityGroup";
const urnOf = (views: ResourceView[], type: string, name: string) => find(views, type, name).urn;

/** The database executor (issue 19): each deliberate break, and the rule that reports it. */
breaks.push(
  [
    "the executor outside the VPC",
    (v) => unset(find(v, FN, EX), "vpcConfig"),
    [
      ["executor-private", EX, "function runs outside the VPC"],
      // Its group no longer belongs to any client: the 5432 rule for it admits a group nothing uses.
      ["database-ingress", `${P}-from-executor`, "admits eu-staging-network-executor to PostgreSQL 5432"],
    ],
  ],
  [
    "the executor in a subnet that assigns public IPs",
    (v) => (find(v, "aws:ec2/subnet:Subnet", "eu-staging-network-private-eu-central-1a").inputs.mapPublicIpOnLaunch = true),
    [
      ["no-public-path", "eu-staging-network-private-eu-central-1a", "subnet assigns public IPs"],
      ["executor-private", EX, 'runs in subnet "eu-staging-network-private-eu-central-1a", which assigns public IPs'],
    ],
  ],
  [
    "the executor in a subnet the stack does not declare",
    (v) => {
      const fn = find(v, FN, EX);
      (fn.inputs.vpcConfig as { subnetIds: string[] }).subnetIds.push("subnet-0123456789abcdef0");
    },
    [["executor-private", EX, "names 1 subnet(s) this stack does not declare"]],
  ],
  [
    "a function URL",
    (v) =>
      v.push(
        extra("aws:lambda/functionUrl:FunctionUrl", "executor-url", { functionName: "eu-staging-db-executor", authorizationType: "NONE" }),
      ),
    [["executor-private", "executor-url", "function URL: a public HTTPS endpoint"]],
  ],
  [
    "an invoke permission for everyone",
    (v) =>
      v.push(
        extra("aws:lambda/permission:Permission", "executor-anyone", {
          action: "lambda:InvokeFunction",
          function: "eu-staging-db-executor",
          principal: "*",
        }),
      ),
    [["executor-private", "executor-anyone", 'lets "*" invoke a function']],
  ],
  [
    "the executor's environment under the AWS-managed key",
    (v) => unset(find(v, FN, EX), "kmsKeyArn"),
    [["executor-encryption", EX, "environment is encrypted with the AWS-managed key"]],
  ],
  [
    "the executor's log group left to Lambda",
    (v) => {
      v.splice(
        v.findIndex((x) => x.name === "eu-staging-executor-logs"),
        1,
      );
      unset(find(v, FN, EX), "loggingConfig");
    },
    [["executor-encryption", EX, "its log group /aws/lambda/eu-staging-db-executor is not declared by the stack"]],
  ],
  [
    "the executor's log group unencrypted",
    (v) => unset(find(v, "aws:cloudwatch/logGroup:LogGroup", "eu-staging-executor-logs"), "kmsKeyId"),
    [
      ["encryption-at-rest", "eu-staging-executor-logs", "log group is not encrypted"],
      ["executor-encryption", EX, 'its log group "eu-staging-executor-logs" is not encrypted'],
    ],
  ],
  [
    "PostgreSQL 5432 from a VPC address range",
    (v) => {
      const rule = extra(INGRESS, "pg-from-vpc", {
        securityGroupId: "sg",
        cidrIpv4: "10.30.0.0/16",
        ipProtocol: "tcp",
        fromPort: 5432,
        toPort: 5432,
      });
      rule.propertyDependencies = { securityGroupId: [urnOf(v, SG, `${P}-sg`)] };
      v.push(rule);
    },
    [["database-ingress", "pg-from-vpc", "admits an address range to PostgreSQL 5432"]],
  ],
  [
    "the executor's rule pointed at the application group",
    (v) =>
      (find(v, INGRESS, `${P}-from-executor`).propertyDependencies.referencedSecurityGroupId = [urnOf(v, SG, "eu-staging-network-app")]),
    [["database-ingress", `${P}-from-executor`, "admits eu-staging-network-app to PostgreSQL 5432"]],
  ],
  [
    "the executor's rule pointed at a group the stack does not declare",
    (v) => {
      const rule = find(v, INGRESS, `${P}-from-executor`);
      rule.inputs.referencedSecurityGroupId = "sg-0123456789abcdef0";
      rule.propertyDependencies.referencedSecurityGroupId = [];
    },
    [["database-ingress", `${P}-from-executor`, "admits a security group this stack does not declare"]],
  ],
);

describe("each break is reported by exactly its rule, naming the resource", () => {
  it.each(breaks)("%s", (_, edit, expected) => {
    expect(found(mutate(edit))).toEqual(expected.map(([rule, name, message]) => [rule, name, expect.stringContaining(message)]));
  });
});

describe("preview edge cases", () => {
  const volume = (inputs: Record<string, unknown>, propertyDependencies: Record<string, string[]> = {}): ResourceView => ({
    urn: "urn:pulumi:s::p::aws:ebs/volume:Volume::v",
    type: VOL,
    name: "v",
    provider: "urn:pulumi:s::p::pulumi:providers:aws::regional",
    protect: true,
    inputs,
    propertyDependencies,
  });
  const provider: ResourceView = {
    urn: "urn:pulumi:s::p::pulumi:providers:aws::regional",
    type: "pulumi:providers:aws",
    name: "regional",
    protect: false,
    // Not JSON-encoded this time: rules accept both forms.
    inputs: {
      region: "eu-west-1",
      defaultTags: {
        tags: { "alphapulse:stack": "s", "alphapulse:residency": "eu", "alphapulse:component": "c", "alphapulse:cost-centre": "cc" },
      },
    },
    propertyDependencies: {},
  };

  it("a key ARN unknown during a preview counts as set when it comes from another resource", () => {
    const unknownKey = volume(
      { encrypted: true, finalSnapshot: true, availabilityZone: "eu-west-1a" },
      { kmsKeyId: ["urn:pulumi:s::p::aws:kms/key:Key::k"] },
    );
    expect(evaluate([provider, unknownKey], { residency: "eu" })).toEqual([]);
    const noKey = volume({ encrypted: true, finalSnapshot: true, availabilityZone: "eu-west-1a" });
    expect(evaluate([provider, noKey], { residency: "eu" }).map((v) => v.rule)).toEqual(["encryption-at-rest"]);
  });

  it("a context key counts as the executor's when its connection, unknown in a preview, comes from a Lambda function; a local key needs no secret", () => {
    const key = (inputs: Record<string, unknown>, propertyDependencies: Record<string, string[]> = {}): ResourceView => ({
      urn: "urn:pulumi:s::p::pulumi-nodejs:dynamic/db:TenantContextKey::k",
      type: "pulumi-nodejs:dynamic/db:TenantContextKey",
      name: "k",
      protect: false,
      inputs,
      propertyDependencies,
    });
    const rules = RULES.filter((r) => r.id === "context-key-secret");
    const fromLambda = key({ kid: "eu-1" }, { connection: ["urn:pulumi:s::p::aws:lambda/function:Function::f"] });
    const fn: ResourceView = { ...extra(FN, "f", {}), urn: "urn:pulumi:s::p::aws:lambda/function:Function::f" };
    expect(evaluate([fromLambda, fn], { residency: "eu" }, rules).map((v) => v.name)).toEqual(["k"]);
    const local = key({ kid: "eu-1", connection: { host: "127.0.0.1", port: 5432, user: "postgres" } });
    expect(evaluate([local], { residency: "eu" }, rules)).toEqual([]);
  });

  it("default providers (engine-created, named default_<version>) are refused", () => {
    const onDefault = {
      ...volume({ encrypted: true, kmsKeyId: "k", finalSnapshot: true }),
      provider: "urn:pulumi:s::p::pulumi:providers:aws::default_7_48_0",
    };
    const defaultProvider = { ...provider, urn: "urn:pulumi:s::p::pulumi:providers:aws::default_7_48_0", name: "default_7_48_0" };
    expect(evaluate([provider, defaultProvider, onDefault], { residency: "eu" }).map((v) => [v.rule, v.name])).toEqual([
      ["region-pinning", "v"],
    ]);
  });

  it.each([
    [{ protocol: "tcp", from: 5432, to: 5432 }, [5432]],
    [{ protocol: "tcp", from: 6000, to: 6500 }, [6432, 6379]],
    [{ protocol: "6", from: 0, to: 65535 }, [5432, 6432, 6379]],
    [{ protocol: "-1", from: 0, to: 0 }, [5432, 6432, 6379]],
    [{ protocol: "udp", from: 0, to: 65535 }, []],
    [{ protocol: "tcp", from: 443, to: 443 }, []],
  ])("portsCovered(%j)", (entry, ports) => {
    expect(portsCovered(entry, [5432, 6432, 6379])).toEqual(ports);
  });
});

describe("the policy pack's adapter", () => {
  const providerResource = {
    type: "pulumi:providers:aws",
    urn: "urn:pulumi:s::p::pulumi:providers:aws::regional",
    name: "regional",
    props: { region: "eu-central-1", defaultTags: JSON.stringify({ tags: { "alphapulse:residency": "eu" } }) },
  };
  const key = { urn: "urn:pulumi:s::p::aws:kms/key:Key::k", type: "aws:kms/key:Key", name: "k" };
  const resources = [
    {
      type: VOL,
      urn: "urn:pulumi:s::p::aws:ebs/volume:Volume::v",
      name: "v",
      props: { encrypted: true },
      opts: {
        protect: true,
        ignoreChanges: [],
        aliases: [],
        customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
        additionalSecretOutputs: [],
      },
      provider: providerResource,
      dependencies: [key],
      propertyDependencies: { kmsKeyId: [key] },
    },
  ] as unknown as PolicyResource[];

  it("builds views with URNs for provider, parent and property dependencies, and adds the provider", () => {
    expect(viewsFromPolicy(resources)).toEqual([
      {
        urn: "urn:pulumi:s::p::aws:ebs/volume:Volume::v",
        type: VOL,
        name: "v",
        parent: undefined,
        provider: providerResource.urn,
        protect: true,
        inputs: { encrypted: true },
        propertyDependencies: { kmsKeyId: [key.urn] },
      },
      {
        urn: providerResource.urn,
        type: "pulumi:providers:aws",
        name: "regional",
        protect: false,
        inputs: providerResource.props,
        propertyDependencies: {},
      },
    ]);
  });

  it("reads the residency from the providers' default tags, only when they agree", () => {
    const views = viewsFromPolicy(resources);
    expect(residencyFromProviders(views)).toBe("eu");
    const other = { ...views[1], urn: "urn:x", inputs: { defaultTags: { tags: { "alphapulse:residency": "us" } } } };
    expect(residencyFromProviders([...views, other])).toBeUndefined();
    expect(residencyFromProviders([views[0]])).toBeUndefined();
  });
});
