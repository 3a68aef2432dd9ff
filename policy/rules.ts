/**
 * The platform's policy rules as pure predicates over a resource graph. One implementation, two
 * callers:
 *   - offline, over the JSON `npm run synth` writes (scripts/synth.ts `--check`, test/aws), and
 *   - the @pulumi/policy pack (policy/index.ts) during a real `pulumi preview --policy-pack policy`.
 *
 * Both hand the rules `ResourceView`s (policy/views.ts builds them from either source). A rule never
 * throws on a value it cannot see: during a preview, inputs computed from other resources are
 * unknown; such an input counts as set when `propertyDependencies` shows where it comes from.
 * A violation names the rule, the resource (URN, type and logical name) and what is wrong.
 */
import {
  allowedRegions,
  isRegionAllowed,
  regionOfAvailabilityZone,
  regionOfEcrImage,
  type ResidencyRegion,
} from "../lib/platform/residency";

export interface ResourceView {
  urn: string;
  type: string;
  name: string;
  parent?: string;
  /** URN of the provider resource; undefined for the default provider. */
  provider?: string;
  protect: boolean;
  inputs: Record<string, unknown>;
  /** Input name → URNs of the resources its value came from. */
  propertyDependencies: Record<string, string[]>;
}

export interface PolicyContext {
  /** The stack's residency: which regions everything must stay in. */
  residency: ResidencyRegion;
}

export interface Violation {
  rule: string;
  urn: string;
  type: string;
  name: string;
  message: string;
}

export interface Rule {
  id: string;
  description: string;
  check(resources: readonly ResourceView[], ctx: PolicyContext): Violation[];
}

/** Ports of the data services: PostgreSQL, PgBouncer, Redis. */
export const DATA_PORTS = [5432, 6432, 6379] as const;
/** Default-tag keys every AWS provider must set (components/aws/regional-platform.ts DEFAULT_TAG_KEYS). */
export const REQUIRED_TAG_KEYS = ["alphapulse:stack", "alphapulse:residency", "alphapulse:component", "alphapulse:cost-centre"] as const;

const T = {
  provider: "pulumi:providers:aws",
  volume: "aws:ebs/volume:Volume",
  instance: "aws:ec2/instance:Instance",
  bucket: "aws:s3/bucket:Bucket",
  bucketSse: "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
  bucketVersioning: "aws:s3/bucketVersioning:BucketVersioning",
  bucketPab: "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
  bucketLifecycle: "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
  replicationGroup: "aws:elasticache/replicationGroup:ReplicationGroup",
  cacheCluster: "aws:elasticache/cluster:Cluster",
  secret: "aws:secretsmanager/secret:Secret",
  logGroup: "aws:cloudwatch/logGroup:LogGroup",
  topic: "aws:sns/topic:Topic",
  key: "aws:kms/key:Key",
  rdsInstance: "aws:rds/instance:Instance",
  rdsCluster: "aws:rds/cluster:Cluster",
  securityGroup: "aws:ec2/securityGroup:SecurityGroup",
  securityGroupRule: "aws:ec2/securityGroupRule:SecurityGroupRule",
  ingressRule: "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
  internetGateway: "aws:ec2/internetGateway:InternetGateway",
  egressOnlyGateway: "aws:ec2/egressOnlyInternetGateway:EgressOnlyInternetGateway",
  natGateway: "aws:ec2/natGateway:NatGateway",
  eip: "aws:ec2/eip:Eip",
  subnet: "aws:ec2/subnet:Subnet",
  loadBalancer: "aws:lb/loadBalancer:LoadBalancer",
  ecsService: "aws:ecs/service:Service",
  keyPair: "aws:ec2/keyPair:KeyPair",
  lambda: "aws:lambda/function:Function",
  lambdaUrl: "aws:lambda/functionUrl:FunctionUrl",
  lambdaPermission: "aws:lambda/permission:Permission",
  secretVersion: "aws:secretsmanager/secretVersion:SecretVersion",
  contextKey: "pulumi-nodejs:dynamic/db:TenantContextKey",
} as const;

/** True when the value is present, or computed from another resource (unknown during a preview). */
function isSet(r: ResourceView, key: string): boolean {
  const v = r.inputs[key];
  return (v !== undefined && v !== null && v !== "") || (r.propertyDependencies[key]?.length ?? 0) > 0;
}

function violation(rule: string, r: ResourceView, message: string): Violation {
  return { rule, urn: r.urn, type: r.type, name: r.name, message };
}

const ofType = (resources: readonly ResourceView[], type: string) => resources.filter((r) => r.type === type);
const isAws = (r: ResourceView) => r.type.startsWith("aws:");

/** Provider inputs hold nested values as JSON text (the SDK serialises them); accept both forms. */
function maybeJson(value: unknown): unknown {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

/** Sub-resources (versioning, encryption, ...) that configure `bucket`, by dependency or by bucket name. */
function configuresBucket(sub: ResourceView, bucket: ResourceView): boolean {
  if (sub.propertyDependencies.bucket?.includes(bucket.urn)) return true;
  return bucket.inputs.bucket !== undefined && sub.inputs.bucket === bucket.inputs.bucket;
}

const encryptionAtRest: Rule = {
  id: "encryption-at-rest",
  description: "Volumes, buckets, caches, secrets, log groups and topics are encrypted with a customer KMS key; keys rotate.",
  check(resources) {
    const out: Violation[] = [];
    const v = (r: ResourceView, m: string) => out.push(violation(this.id, r, m));
    for (const r of resources) {
      switch (r.type) {
        case T.volume:
          if (r.inputs.encrypted !== true) v(r, "EBS volume is not encrypted (encrypted must be true)");
          else if (!isSet(r, "kmsKeyId")) v(r, "EBS volume is encrypted with the AWS-managed key: set kmsKeyId to the region's key");
          break;
        case T.instance: {
          const root = maybeJson(r.inputs.rootBlockDevice) as Record<string, unknown> | undefined;
          if (root?.encrypted !== true) v(r, "root volume is not encrypted (rootBlockDevice.encrypted must be true)");
          const extra = (maybeJson(r.inputs.ebsBlockDevices) as Record<string, unknown>[] | undefined) ?? [];
          extra.forEach((d, i) => d.encrypted !== true && v(r, `ebsBlockDevices[${i}] is not encrypted`));
          break;
        }
        case T.bucket: {
          const sse = ofType(resources, T.bucketSse).filter((s) => configuresBucket(s, r));
          const kms = sse.some((s) =>
            ((s.inputs.rules as Record<string, unknown>[] | undefined) ?? []).some((rule) => {
              const algo = (rule.applyServerSideEncryptionByDefault as Record<string, unknown> | undefined)?.sseAlgorithm;
              return algo === "aws:kms" || algo === "aws:kms:dsse";
            }),
          );
          if (!kms) v(r, "bucket has no BucketServerSideEncryptionConfiguration with SSE-KMS");
          break;
        }
        case T.replicationGroup:
          if (r.inputs.atRestEncryptionEnabled !== true && r.inputs.atRestEncryptionEnabled !== "true")
            v(r, "at-rest encryption is off (atRestEncryptionEnabled must be true)");
          else if (!isSet(r, "kmsKeyId")) v(r, "at-rest encryption uses the AWS-managed key: set kmsKeyId to the region's key");
          break;
        case T.secret:
          if (!isSet(r, "kmsKeyId")) v(r, "secret is encrypted with the AWS-managed key: set kmsKeyId to the region's key");
          break;
        case T.logGroup:
          if (!isSet(r, "kmsKeyId")) v(r, "log group is not encrypted with the region's key (kmsKeyId)");
          break;
        case T.topic:
          if (!isSet(r, "kmsMasterKeyId")) v(r, "SNS topic is not encrypted (kmsMasterKeyId)");
          break;
        case T.rdsInstance:
        case T.rdsCluster:
          if (r.inputs.storageEncrypted !== true) v(r, "database storage is not encrypted (storageEncrypted must be true)");
          break;
        case T.key:
          if (r.inputs.enableKeyRotation !== true) v(r, "KMS key does not rotate (enableKeyRotation must be true)");
          break;
      }
    }
    return out;
  },
};

type IngressEntry = { protocol: unknown; from: unknown; to: unknown; cidrs: unknown[] };

function ingressEntries(r: ResourceView): IngressEntry[] {
  if (r.type === T.securityGroup) {
    const rules = (maybeJson(r.inputs.ingress) as Record<string, unknown>[] | undefined) ?? [];
    return rules.map((x) => ({
      protocol: x.protocol,
      from: x.fromPort,
      to: x.toPort,
      cidrs: [...((x.cidrBlocks as unknown[]) ?? []), ...((x.ipv6CidrBlocks as unknown[]) ?? [])],
    }));
  }
  if (r.type === T.securityGroupRule && r.inputs.type === "ingress") {
    return [
      {
        protocol: r.inputs.protocol,
        from: r.inputs.fromPort,
        to: r.inputs.toPort,
        cidrs: [...((r.inputs.cidrBlocks as unknown[]) ?? []), ...((r.inputs.ipv6CidrBlocks as unknown[]) ?? [])],
      },
    ];
  }
  if (r.type === T.ingressRule) {
    return [
      {
        protocol: r.inputs.ipProtocol,
        from: r.inputs.fromPort,
        to: r.inputs.toPort,
        cidrs: [r.inputs.cidrIpv4, r.inputs.cidrIpv6].filter((c) => c !== undefined),
      },
    ];
  }
  return [];
}

/** Ports an ingress entry opens among `ports` (all of them for protocol -1/all). */
export function portsCovered(entry: { protocol: unknown; from: unknown; to: unknown }, ports: readonly number[]): number[] {
  const protocol = typeof entry.protocol === "string" || typeof entry.protocol === "number" ? String(entry.protocol).toLowerCase() : "";
  if (protocol === "-1" || protocol === "all") return [...ports];
  if (protocol !== "tcp" && protocol !== "6") return [];
  const from = Number(entry.from);
  const to = Number(entry.to ?? entry.from);
  return ports.filter((p) => p >= from && p <= to);
}

const WORLD = new Set(["0.0.0.0/0", "::/0"]);

const noWorldIngress: Rule = {
  id: "no-world-ingress-to-data-ports",
  description: "No security group admits 0.0.0.0/0 or ::/0 to PostgreSQL (5432), PgBouncer (6432) or Redis (6379).",
  check(resources) {
    const out: Violation[] = [];
    for (const r of resources) {
      for (const entry of ingressEntries(r)) {
        const world = entry.cidrs.filter((c) => WORLD.has(String(c)));
        const ports = portsCovered(entry, DATA_PORTS);
        if (world.length > 0 && ports.length > 0) {
          out.push(violation(this.id, r, `ingress from ${world.join(", ")} reaches data port(s) ${ports.join(", ")}`));
        }
      }
    }
    return out;
  },
};

/** Every string inside a value (deeply), with the path it was found at. */
function* strings(value: unknown, path: string): Generator<[string, string]> {
  const parsed = maybeJson(value);
  if (typeof parsed === "string") yield [path, parsed];
  else if (Array.isArray(parsed)) for (let i = 0; i < parsed.length; i++) yield* strings(parsed[i], `${path}[${i}]`);
  else if (parsed !== null && typeof parsed === "object")
    for (const [k, v] of Object.entries(parsed)) yield* strings(v, path ? `${path}.${k}` : k);
}

const ARN_IN_TEXT = /arn:aws[a-z-]*:[a-z0-9-]+:([a-z0-9-]*):/g;
const ECR_IN_TEXT = /\d{12}\.dkr\.ecr(?:-fips)?\.[a-z0-9-]+\.amazonaws\.com\/[^\s"]*/g;
/** Input keys holding a region or availability zone names (after stripping array indices). */
const REGION_KEYS = new Set(["region", "vpcRegion", "serviceRegion", "sourceRegion", "destinationRegion"]);
const ZONE_KEYS = new Set(["availabilityZone", "availabilityZones", "preferredCacheClusterAzs"]);
const SERVICE_NAME = /^com\.amazonaws\.([a-z]{2}(?:-gov)?-[a-z]+-\d+)\./;

const regionPinning: Rule = {
  id: "region-pinning",
  description:
    "Every AWS resource uses an explicit provider whose region belongs to the stack's residency; no zone, ARN, endpoint service, image registry or per-resource region points elsewhere.",
  check(resources, ctx) {
    const out: Violation[] = [];
    const allowed = allowedRegions(ctx.residency).join(", ");
    const v = (r: ResourceView, m: string) => out.push(violation(this.id, r, m));
    const outside = (region: string) => region !== "" && !isRegionAllowed(ctx.residency, region);
    const providers = new Map(ofType(resources, T.provider).map((p) => [p.urn, p]));
    for (const p of providers.values()) {
      const region = p.inputs.region;
      if (typeof region !== "string") v(p, "AWS provider has no explicit region (it would come from the environment)");
      else if (outside(region)) v(p, `AWS provider region "${region}" is outside residency "${ctx.residency}" (allowed: ${allowed})`);
    }
    for (const r of resources.filter(isAws)) {
      if (r.provider === undefined || !providers.has(r.provider) || /::default(_[0-9_]+)?$/.test(r.provider)) {
        v(r, "uses the default AWS provider: pass the stack's regional provider");
      }
      for (const [path, text] of strings(r.inputs, "")) {
        const key =
          path
            .replace(/(\[\d+\])+$/, "")
            .split(".")
            .pop() ?? path;
        if (REGION_KEYS.has(key) && outside(text)) v(r, `${path} "${text}" is outside residency "${ctx.residency}"`);
        if (ZONE_KEYS.has(key)) {
          const zoneRegion = regionOfAvailabilityZone(text);
          if (zoneRegion === undefined || outside(zoneRegion)) v(r, `${path} "${text}" is not a zone of residency "${ctx.residency}"`);
        }
        if (key === "serviceName") {
          const svcRegion = SERVICE_NAME.exec(text)?.[1];
          if (svcRegion !== undefined && outside(svcRegion)) v(r, `${path} "${text}" is an endpoint service of region ${svcRegion}`);
        }
        for (const m of text.matchAll(ARN_IN_TEXT)) {
          if (outside(m[1])) v(r, `${path} refers to ${m[0]}… in region ${m[1]}`);
        }
        for (const m of text.matchAll(ECR_IN_TEXT)) {
          const imageRegion = regionOfEcrImage(m[0]);
          if (imageRegion !== undefined && outside(imageRegion)) v(r, `${path} pulls image ${m[0]} from region ${imageRegion}`);
        }
      }
    }
    return out;
  },
};

const STATEFUL_TYPES = [T.volume, T.bucket, T.key, T.replicationGroup, T.secret, T.instance, T.rdsInstance, T.rdsCluster] as const;

const statefulProtection: Rule = {
  id: "stateful-protection",
  description:
    "Stateful resources are protected, and keep their own deletion safeguards: final snapshots, termination protection, no force-destroy, recovery windows.",
  check(resources) {
    const out: Violation[] = [];
    const v = (r: ResourceView, m: string) => out.push(violation(this.id, r, m));
    for (const r of resources.filter((x) => (STATEFUL_TYPES as readonly string[]).includes(x.type))) {
      if (!r.protect) v(r, "stateful resource is not protected (protect: true)");
      switch (r.type) {
        case T.volume:
          if (r.inputs.finalSnapshot !== true) v(r, "EBS volume takes no final snapshot (finalSnapshot must be true)");
          break;
        case T.instance:
          if (r.inputs.disableApiTermination !== true) v(r, "database node can be terminated by API (disableApiTermination must be true)");
          break;
        case T.bucket:
          if (r.inputs.forceDestroy === true) v(r, "bucket has forceDestroy: deleting it would delete every backup");
          break;
        case T.replicationGroup:
          if (!isSet(r, "finalSnapshotIdentifier")) v(r, "replication group takes no final snapshot (finalSnapshotIdentifier)");
          break;
        case T.secret:
          if (r.inputs.recoveryWindowInDays === 0) v(r, "secret is deleted without a recovery window");
          break;
        case T.key:
          if (typeof r.inputs.deletionWindowInDays === "number" && r.inputs.deletionWindowInDays < 30)
            v(r, "KMS key deletion window is shorter than 30 days");
          break;
        case T.rdsInstance:
        case T.rdsCluster:
          if (r.inputs.deletionProtection !== true) v(r, "database has no deletion protection");
          break;
      }
    }
    return out;
  },
};

const redisTls: Rule = {
  id: "redis-tls",
  description: "Redis runs as a replication group with TLS required in transit and RBAC user groups (no shared AUTH token).",
  check(resources) {
    const out: Violation[] = [];
    const v = (r: ResourceView, m: string) => out.push(violation(this.id, r, m));
    for (const r of ofType(resources, T.replicationGroup)) {
      if (r.inputs.transitEncryptionEnabled !== true) v(r, "TLS in transit is off (transitEncryptionEnabled must be true)");
      else if (r.inputs.transitEncryptionMode !== "required")
        v(
          r,
          `TLS is not enforced (transitEncryptionMode is ${JSON.stringify(r.inputs.transitEncryptionMode ?? "unset")}, must be "required")`,
        );
      if (isSet(r, "authToken")) v(r, "uses a shared AUTH token: use RBAC user groups");
      if (!isSet(r, "userGroupIds")) v(r, "has no RBAC user group (userGroupIds)");
    }
    for (const r of ofType(resources, T.cacheCluster)) {
      if (!isSet(r, "replicationGroupId")) v(r, "standalone cache cluster: use a replication group with TLS");
    }
    return out;
  },
};

const defaultTags: Rule = {
  id: "default-tags",
  description: `Every AWS provider sets default tags ${REQUIRED_TAG_KEYS.join(", ")}, so every taggable resource carries them.`,
  check(resources) {
    const out: Violation[] = [];
    for (const p of ofType(resources, T.provider)) {
      const tags = ((maybeJson(p.inputs.defaultTags) as Record<string, unknown> | undefined)?.tags ?? {}) as Record<string, unknown>;
      const missing = REQUIRED_TAG_KEYS.filter((k) => typeof tags[k] !== "string" || tags[k] === "");
      if (missing.length > 0) out.push(violation(this.id, p, `provider defaultTags lack ${missing.join(", ")}`));
    }
    return out;
  },
};

const noPublicPath: Rule = {
  id: "no-public-path",
  description: "No internet or NAT gateway, public IP, public subnet or internet-facing load balancer; buckets block public access.",
  check(resources) {
    const out: Violation[] = [];
    const v = (r: ResourceView, m: string) => out.push(violation(this.id, r, m));
    for (const r of resources) {
      switch (r.type) {
        case T.internetGateway:
        case T.egressOnlyGateway:
          v(r, "internet gateway: the data platform's VPC has no path to or from the internet");
          break;
        case T.natGateway:
        case T.eip:
          v(r, "NAT gateway / Elastic IP: the data platform reaches AWS through VPC endpoints only");
          break;
        case T.subnet:
          if (r.inputs.mapPublicIpOnLaunch === true) v(r, "subnet assigns public IPs (mapPublicIpOnLaunch)");
          break;
        case T.instance:
          if (r.inputs.associatePublicIpAddress !== false) v(r, "instance may get a public IP (associatePublicIpAddress must be false)");
          break;
        case T.loadBalancer:
          if (r.inputs.internal !== true) v(r, "load balancer is internet-facing (internal must be true)");
          break;
        case T.ecsService: {
          const net = maybeJson(r.inputs.networkConfiguration) as Record<string, unknown> | undefined;
          if (net?.assignPublicIp === true) v(r, "ECS tasks get public IPs (networkConfiguration.assignPublicIp)");
          break;
        }
        case T.bucket: {
          const blocks = ofType(resources, T.bucketPab).filter((b) => configuresBucket(b, r));
          const full = blocks.some((b) =>
            ["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"].every((k) => b.inputs[k] === true),
          );
          if (!full) v(r, "bucket has no BucketPublicAccessBlock with all four settings true");
          break;
        }
      }
    }
    return out;
  },
};

const ssmOnlyAccess: Rule = {
  id: "ssm-only-access",
  description: "Instances are reached through SSM only: no key pair, no SSH ingress, IMDSv2 required.",
  check(resources) {
    const out: Violation[] = [];
    const v = (r: ResourceView, m: string) => out.push(violation(this.id, r, m));
    for (const r of resources) {
      if (r.type === T.keyPair) v(r, "key pair: access is through SSM Session Manager, not SSH keys");
      if (r.type === T.instance) {
        if (isSet(r, "keyName")) v(r, "instance has a key pair (keyName): use SSM Session Manager");
        const md = maybeJson(r.inputs.metadataOptions) as Record<string, unknown> | undefined;
        if (md?.httpTokens !== "required") v(r, 'instance metadata allows IMDSv1 (metadataOptions.httpTokens must be "required")');
      }
      for (const entry of ingressEntries(r)) {
        if (portsCovered(entry, [22]).length > 0) v(r, "ingress to SSH (22): access is through SSM Session Manager");
      }
    }
    return out;
  },
};

const backupBucket: Rule = {
  id: "backup-bucket-hardening",
  description:
    "Buckets are versioned and have a lifecycle configuration (pgBackRest repositories keep deleted objects recoverable for a bounded time).",
  check(resources) {
    const out: Violation[] = [];
    for (const b of ofType(resources, T.bucket)) {
      const versioned = ofType(resources, T.bucketVersioning).some(
        (s) =>
          configuresBucket(s, b) &&
          (maybeJson(s.inputs.versioningConfiguration) as Record<string, unknown> | undefined)?.status === "Enabled",
      );
      if (!versioned) out.push(violation(this.id, b, "bucket is not versioned (BucketVersioning status Enabled)"));
      if (!ofType(resources, T.bucketLifecycle).some((s) => configuresBucket(s, b)))
        out.push(violation(this.id, b, "bucket has no lifecycle configuration"));
    }
    return out;
  },
};

/** URNs an input of `r` came from, of resources of `type` (the graph's way to follow a reference). */
function referenced(resources: readonly ResourceView[], r: ResourceView, key: string, type: string): ResourceView[] {
  const urns = new Set(r.propertyDependencies[key] ?? []);
  return resources.filter((x) => x.type === type && urns.has(x.urn));
}

/** A principal inside an account (`123456789012` or an IAM ARN), as opposed to `*` or a public-facing service. */
const ACCOUNT_PRINCIPAL = /^(\d{12}|arn:aws[a-z-]*:iam::\d{12}:.+)$/;

const executorPrivate: Rule = {
  id: "executor-private",
  description:
    "Lambda functions (the database executor) run in the VPC, in subnets this stack declares without public IPs, with a security group; no function URL and no permission for a principal outside the account.",
  check(resources) {
    const out: Violation[] = [];
    const v = (r: ResourceView, m: string) => out.push(violation(this.id, r, m));
    for (const fn of ofType(resources, T.lambda)) {
      // During a preview the ids are unknown: the subnets and groups are known by where they come from.
      const vpc = maybeJson(fn.inputs.vpcConfig) as Record<string, unknown> | undefined;
      const subnetIds = ((vpc?.subnetIds as unknown[] | undefined) ?? []).filter((x) => typeof x === "string");
      const groupIds = ((vpc?.securityGroupIds as unknown[] | undefined) ?? []).filter((x) => typeof x === "string");
      const subnets = referenced(resources, fn, "vpcConfig", T.subnet);
      const groups = referenced(resources, fn, "vpcConfig", T.securityGroup);
      if (subnetIds.length === 0 && subnets.length === 0) {
        v(fn, "function runs outside the VPC (no vpcConfig.subnetIds): the executor belongs in the private subnets");
        continue;
      }
      if (groupIds.length === 0 && groups.length === 0) v(fn, "function has no security group (vpcConfig.securityGroupIds)");
      if (subnetIds.length > subnets.length)
        v(
          fn,
          `vpcConfig.subnetIds names ${subnetIds.length - subnets.length} subnet(s) this stack does not declare: cannot prove them private`,
        );
      for (const s of subnets.filter((x) => x.inputs.mapPublicIpOnLaunch === true))
        v(fn, `runs in subnet "${s.name}", which assigns public IPs`);
    }
    for (const url of ofType(resources, T.lambdaUrl))
      v(url, "function URL: a public HTTPS endpoint for a function (the executor is invoked through the Lambda API only)");
    for (const p of ofType(resources, T.lambdaPermission)) {
      const principal = typeof p.inputs.principal === "string" ? p.inputs.principal : "";
      if (!ACCOUNT_PRINCIPAL.test(principal))
        v(p, `lets "${principal || "an unknown principal"}" invoke a function: only principals inside the account may`);
    }
    return out;
  },
};

const executorEncryption: Rule = {
  id: "executor-encryption",
  description:
    "A Lambda function's environment is encrypted with the region's key (kmsKeyArn), and its log group is declared by the stack and encrypted (otherwise Lambda creates one with AWS-managed keys).",
  check(resources) {
    const out: Violation[] = [];
    const v = (r: ResourceView, m: string) => out.push(violation(this.id, r, m));
    const groups = ofType(resources, T.logGroup);
    for (const fn of ofType(resources, T.lambda)) {
      const env = maybeJson(fn.inputs.environment) as Record<string, unknown> | undefined;
      if (env !== undefined && !isSet(fn, "kmsKeyArn"))
        v(fn, "environment is encrypted with the AWS-managed key: set kmsKeyArn to the region's key");
      const logging = maybeJson(fn.inputs.loggingConfig) as Record<string, unknown> | undefined;
      const name =
        typeof logging?.logGroup === "string"
          ? logging.logGroup
          : typeof fn.inputs.name === "string"
            ? `/aws/lambda/${fn.inputs.name}`
            : undefined;
      const declared =
        referenced(resources, fn, "loggingConfig", T.logGroup)[0] ?? groups.find((g) => name !== undefined && g.inputs.name === name);
      if (declared === undefined)
        v(fn, `its log group${name ? ` ${name}` : ""} is not declared by the stack (Lambda would create it unencrypted)`);
      else if (!isSet(declared, "kmsKeyId")) v(fn, `its log group "${declared.name}" is not encrypted with the region's key (kmsKeyId)`);
    }
    return out;
  },
};

/**
 * PostgreSQL's groups are those of the database instances; their 5432 clients are the PgBouncer
 * tasks (ECS services' groups), the executor (Lambda functions' groups) and the group itself.
 */
const databaseIngress: Rule = {
  id: "database-ingress",
  description:
    "5432 on the PostgreSQL nodes' security group is open only to security groups of this stack: the PgBouncer tasks, the database executor, and the group itself (replication). No CIDR, no prefix list.",
  check(resources) {
    const out: Violation[] = [];
    const databaseGroups = new Set(ofType(resources, T.instance).flatMap((i) => i.propertyDependencies.vpcSecurityGroupIds ?? []));
    const clientGroups = new Set([
      ...ofType(resources, T.ecsService).flatMap((s) =>
        referenced(resources, s, "networkConfiguration", T.securityGroup).map((g) => g.urn),
      ),
      ...ofType(resources, T.lambda).flatMap((f) => referenced(resources, f, "vpcConfig", T.securityGroup).map((g) => g.urn)),
    ]);
    for (const r of ofType(resources, T.ingressRule)) {
      const target = r.propertyDependencies.securityGroupId ?? [];
      if (!target.some((u) => databaseGroups.has(u))) continue;
      if (portsCovered({ protocol: r.inputs.ipProtocol, from: r.inputs.fromPort, to: r.inputs.toPort }, [5432]).length === 0) continue;
      const peer = r.propertyDependencies.referencedSecurityGroupId ?? [];
      if (isSet(r, "cidrIpv4") || isSet(r, "cidrIpv6") || isSet(r, "prefixListId")) {
        out.push(violation(this.id, r, "admits an address range to PostgreSQL 5432: only the PgBouncer and executor groups may reach it"));
      } else if (peer.length === 0) {
        out.push(violation(this.id, r, "admits a security group this stack does not declare to PostgreSQL 5432"));
      } else if (!peer.every((u) => clientGroups.has(u) || target.includes(u))) {
        out.push(
          violation(
            this.id,
            r,
            `admits ${peer.map((u) => u.split("::").pop()).join(", ")} to PostgreSQL 5432: neither PgBouncer's tasks, the executor, nor the cluster`,
          ),
        );
      }
    }
    for (const g of ofType(resources, T.securityGroup).filter((x) => databaseGroups.has(x.urn))) {
      const inline = (maybeJson(g.inputs.ingress) as unknown[] | undefined) ?? [];
      if (inline.length > 0)
        out.push(violation(this.id, g, "PostgreSQL's group has inline ingress rules: declare each as a SecurityGroupIngressRule"));
    }
    return out;
  },
};

/** True when a tenant-context key is installed through the database executor (an AWS region), as far as the graph shows. */
function installedThroughExecutor(resources: readonly ResourceView[], key: ResourceView): boolean {
  const connection = maybeJson(key.inputs.connection) as Record<string, unknown> | undefined;
  return connection?.kind === "executor" || referenced(resources, key, "connection", T.lambda).length > 0;
}

/**
 * ADR-005 on AWS: a strict database whose key no service can read is keyless. Every tenant-context key
 * the executor installs has its value in a Secrets Manager secret (a SecretVersion computed from the
 * key), encrypted with a KMS key this stack declares (the region's key: never the AWS-managed one,
 * never a key from elsewhere), and protected, so that removing the key from the config stops at the
 * secret before the key is retired.
 */
const contextKeySecret: Rule = {
  id: "context-key-secret",
  description:
    "Every tenant-context key installed through the executor is stored in a Secrets Manager secret encrypted with a KMS key of this stack (the region's), and the secret is protected.",
  check(resources) {
    const out: Violation[] = [];
    const v = (r: ResourceView, m: string) => out.push(violation(this.id, r, m));
    for (const key of ofType(resources, T.contextKey).filter((k) => installedThroughExecutor(resources, k))) {
      const versions = ofType(resources, T.secretVersion).filter((sv) => sv.propertyDependencies.secretString?.includes(key.urn));
      const secrets = versions.flatMap((sv) => referenced(resources, sv, "secretId", T.secret));
      if (secrets.length === 0) {
        v(
          key,
          "tenant-context key has no Secrets Manager secret holding its value: the database is strict and no service can sign a proof",
        );
        continue;
      }
      for (const secret of secrets) {
        if (referenced(resources, secret, "kmsKeyId", T.key).length === 0)
          v(
            secret,
            `holds tenant-context key "${key.name}" but is not encrypted with a KMS key this stack declares (kmsKeyId must be the region's key)`,
          );
        if (!secret.protect) v(secret, `holds tenant-context key "${key.name}" but is not protected: removing the key would delete it`);
      }
    }
    return out;
  },
};

/** Every rule, in report order. */
export const RULES: readonly Rule[] = [
  encryptionAtRest,
  noWorldIngress,
  regionPinning,
  statefulProtection,
  redisTls,
  defaultTags,
  noPublicPath,
  ssmOnlyAccess,
  backupBucket,
  executorPrivate,
  executorEncryption,
  databaseIngress,
  contextKeySecret,
];

/** Runs every rule (or the named ones) and returns all violations, rule by rule. */
export function evaluate(resources: readonly ResourceView[], ctx: PolicyContext, rules: readonly Rule[] = RULES): Violation[] {
  return rules.flatMap((rule) => rule.check(resources, ctx));
}

/** `[rule] type "name" (urn): message` — what the CLI prints and the tests match. */
export function formatViolation(v: Violation): string {
  return `[${v.rule}] ${v.type} "${v.name}": ${v.message} (${v.urn})`;
}
