/**
 * Offline synthesis: runs a Pulumi program under the SDK's mock runtime and records every resource
 * registration exactly as the engine would receive it — type, logical name, parent, provider,
 * resource options (protect, retainOnDelete, deletedWith, additionalSecretOutputs), dependencies and
 * inputs — with secrets redacted. No engine, no cloud credentials, no network.
 *
 * How: `pulumi.runtime.setMocks` installs a mock resource monitor; `startRecording` wraps its
 * `registerResource` to read the raw RegisterResourceRequest (the Mocks callback only sees type,
 * name and inputs) before the mocks answer. The mocks give every resource deterministic ids and the
 * computed outputs the programs read (ARNs, endpoints, IPs), and mark `additionalSecretOutputs` secret
 * the way the engine does, so what is secret in a real run is secret here too.
 *
 * Used by scripts/synth.ts (`npm run synth`) and by the component tests (test/aws/*.test.ts).
 */
import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { MIGRATIONS } from "../schema/migrations";
import { ROLES } from "../schema/roles";
import { REDACTED } from "./format";

export { REDACTED, stableStringify } from "./format";

/** The serialized-value signature key and the signatures Pulumi's RPC layer uses (sdk/nodejs/runtime/rpc.ts). */
const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e";
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
/** The input holding a dynamic resource's serialized provider, and what the synth JSON shows instead. */
const DYNAMIC_PROVIDER_KEY = "__provider";
export const DYNAMIC_PROVIDER = "[dynamic provider code]";

/** One resource as the engine would have received it. */
export interface SynthResource {
  urn: string;
  type: string;
  name: string;
  custom: boolean;
  parent?: string;
  /** URN of the provider resource (explicit providers only; absent means the default provider). */
  provider?: string;
  protect: boolean;
  retainOnDelete: boolean;
  deletedWith?: string;
  ignoreChanges: string[];
  additionalSecretOutputs: string[];
  dependencies: string[];
  propertyDependencies: Record<string, string[]>;
  /** Inputs with secrets replaced by "[secret]" and resource references by `{ "$ref": urn }`. */
  inputs: Record<string, unknown>;
}

export interface SynthDocument {
  project: string;
  stack: string;
  /** The stack's config (secret values redacted). */
  config: Record<string, string>;
  resources: SynthResource[];
  /** Stack outputs (secret values redacted). */
  outputs: Record<string, unknown>;
}

/** Replaces Pulumi's serialized secrets, resource references and unknowns with stable, readable values. */
export function redact(value: unknown): unknown {
  if (value === UNKNOWN) return "[unknown]";
  if (Array.isArray(value)) return value.map(redact);
  if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    if (obj[SIG_KEY] === SECRET_SIG) return REDACTED;
    if (obj[SIG_KEY] === RESOURCE_SIG) return { $ref: obj.urn };
    // A dynamic resource's serialized provider code: large, and it spells the checkout's paths.
    return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, k === DYNAMIC_PROVIDER_KEY ? DYNAMIC_PROVIDER : redact(v)]));
  }
  return value;
}

/** A short deterministic hex digest: mock ids and IPs must not change between runs. */
function digest(text: string, length = 8): string {
  return createHash("sha256").update(text).digest("hex").slice(0, length);
}

export interface MockOptions {
  /** Account id the mocks put into ARNs and caller identity. @default "123456789012" */
  accountId?: string;
  /**
   * Outputs of the stacks a StackReference may name, by fully qualified name
   * (`organization/alphapulse-platform/eu-prod`); a reference to any other stack fails as the engine's does.
   */
  stackOutputs?: Record<string, Record<string, unknown>>;
}

/** A deterministic UUID-shaped id from a name (mock tenant ids). */
export function mockUuid(seed: string): string {
  const h = digest(seed, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Services whose ARNs carry no region. */
const GLOBAL_SERVICES = new Set(["iam", "route53", "s3"]);

/**
 * Deterministic mocks for the AWS and random resources the platform declares: ids derived from
 * names, ARNs in the region of the resource's provider, endpoints and IPs. Unmocked invokes fail
 * loudly rather than return nothing.
 */
export class PlatformMocks implements pulumi.runtime.Mocks {
  private readonly accountId: string;
  private readonly stackOutputs: Record<string, Record<string, unknown>>;
  /** Region of each explicit provider, by provider name. */
  private readonly providerRegions = new Map<string, string>();
  /** Set by the recorder just before the mocks answer a registration. */
  secretOutputs = new Map<string, string[]>();

  constructor(options: MockOptions = {}) {
    this.accountId = options.accountId ?? "123456789012";
    this.stackOutputs = options.stackOutputs ?? {};
  }

  /** A provider reference is `<urn>::<id>`, the URN ending in `::<name>`. */
  private regionOf(provider: string | undefined): string {
    const name = provider?.split("::").at(-2);
    return (name && this.providerRegions.get(name)) || "us-east-1";
  }

  newResource(args: pulumi.runtime.MockResourceArgs): { id: string; state: Record<string, unknown> } {
    const { type, name, inputs } = args;
    const id = `${name}-${digest(`${type}::${name}`)}`;
    const region = (inputs.region as string | undefined) ?? this.regionOf(args.provider);
    const [pkg, mod] = type.split(":");
    const service = (mod ?? "").split("/")[0];
    const kind = type.split(":").pop() ?? "";
    const arnRegion = GLOBAL_SERVICES.has(service) ? "" : region;
    const account = service === "s3" ? "" : this.accountId;
    const state: Record<string, unknown> = { ...inputs };
    if (pkg === "aws") {
      state.arn = `arn:aws:${service}:${arnRegion}:${account}:${kind.toLowerCase()}/${name}`;
      state.name ??= name;
    }

    switch (type) {
      case "pulumi:pulumi:StackReference": {
        const outputs = this.stackOutputs[String(inputs.name)];
        if (outputs === undefined) throw new Error(`unknown stack "${String(inputs.name)}"`);
        return { id: String(inputs.name), state: { name: inputs.name, outputs, secretOutputNames: [] } };
      }
      // components/db dynamic resources: the outputs their providers compute, derived from the logical name.
      case "pulumi-nodejs:dynamic/db:Tenant": {
        const tenantId = mockUuid(`tenant:${name}`);
        return { id: tenantId, state: { ...state, tenantId, logTag: digest(`log:${name}`, 16), placement: "shared", status: "active" } };
      }
      case "pulumi-nodejs:dynamic/db:DatabaseSchema":
        // The applied design: the platform contract's `schema` output.
        Object.assign(state, { appliedFingerprint: inputs.fingerprint, roles: { ...ROLES }, versions: MIGRATIONS.map((m) => m.version) });
        break;
      case "pulumi-nodejs:dynamic/db:Database":
        // A PostgreSQL oid: tenants record it (a recreated database gets its tenants registered again).
        state.oid = 16384 + (parseInt(digest(`oid:${name}`, 4), 16) % 10000);
        break;
      case "pulumi-nodejs:dynamic/db:DedicatedPlacement":
        Object.assign(state, { schema: `tenant_${digest(`schema:${name}`, 32)}`, rowsMoved: 0, writesHeldMs: 0 });
        break;
      case "pulumi-nodejs:dynamic/db:TenantContextKey":
        // What the provider generates: 32 random bytes, hex (secret through additionalSecretOutputs).
        state.secret = digest(`context-key:${name}`, 64);
        break;
      case "pulumi-nodejs:dynamic/db:TenantLoginRole":
        Object.assign(state, { role: `tenant_login_${digest(`role:${name}`, 32)}`, password: `mock-login-${digest(name, 16)}` });
        break;
      case "pulumi:providers:aws":
        this.providerRegions.set(name, String(inputs.region));
        break;
      case "aws:s3/bucket:Bucket": {
        const bucket = (inputs.bucket as string | undefined) ?? `${name}-${digest(name)}`;
        Object.assign(state, { bucket, arn: `arn:aws:s3:::${bucket}`, bucketRegionalDomainName: `${bucket}.s3.${region}.amazonaws.com` });
        return { id: bucket, state: this.secrets(args, state) };
      }
      case "aws:kms/key:Key":
        Object.assign(state, { keyId: id, arn: `arn:aws:kms:${region}:${this.accountId}:key/${id}` });
        break;
      case "aws:secretsmanager/secret:Secret":
        state.arn = `arn:aws:secretsmanager:${region}:${this.accountId}:secret:${inputs.name ?? name}-${digest(name, 6)}`;
        break;
      case "aws:ec2/instance:Instance": {
        const h = parseInt(digest(name, 4), 16);
        state.privateIp = `10.0.${(h >> 8) & 0xff}.${(h & 0xff) | 1}`;
        state.privateDns = `ip-${String(state.privateIp).replace(/\./g, "-")}.${region}.compute.internal`;
        break;
      }
      case "aws:elasticache/replicationGroup:ReplicationGroup":
        state.primaryEndpointAddress = `master.${inputs.replicationGroupId ?? name}.${digest(name, 6)}.${region}.cache.amazonaws.com`;
        state.readerEndpointAddress = `replica.${inputs.replicationGroupId ?? name}.${digest(name, 6)}.${region}.cache.amazonaws.com`;
        break;
      case "aws:ec2/vpc:Vpc":
        Object.assign(state, { defaultSecurityGroupId: `sg-default-${digest(name)}`, mainRouteTableId: `rtb-main-${digest(name)}` });
        break;
      case "aws:ec2/vpcEndpoint:VpcEndpoint":
        if (inputs.vpcEndpointType === "Gateway") state.prefixListId = `pl-${digest(name)}`;
        break;
      case "aws:lb/loadBalancer:LoadBalancer":
      case "aws:lb/targetGroup:TargetGroup":
        state.arnSuffix = `${kind === "LoadBalancer" ? "net" : "targetgroup"}/${name}/${digest(name, 16)}`;
        if (kind === "LoadBalancer") state.dnsName = `${name}-${digest(name)}.elb.${region}.amazonaws.com`;
        break;
      case "aws:route53/zone:Zone":
        state.zoneId = `Z${digest(name, 12).toUpperCase()}`;
        break;
      case "aws:cloudwatch/logGroup:LogGroup":
        state.arn = `arn:aws:logs:${region}:${this.accountId}:log-group:${inputs.name ?? name}`;
        break;
      case "random:index/randomPassword:RandomPassword":
        state.result = `mock-password-${digest(name, 16)}`;
        break;
    }
    return { id, state: this.secrets(args, state) };
  }

  /** Wraps the fields the resource declared in additionalSecretOutputs as secrets, as the engine does. */
  private secrets(args: pulumi.runtime.MockResourceArgs, state: Record<string, unknown>): Record<string, unknown> {
    const names = this.secretOutputs.get(`${args.type}::${args.name}`) ?? [];
    for (const key of names) {
      if (state[key] !== undefined) state[key] = pulumi.secret(state[key]);
    }
    return state;
  }

  call(args: pulumi.runtime.MockCallArgs): Record<string, unknown> {
    const region = this.regionOf(args.provider);
    switch (args.token) {
      case "aws:index/getCallerIdentity:getCallerIdentity":
        return { accountId: this.accountId, arn: `arn:aws:iam::${this.accountId}:user/mock`, userId: "MOCK", id: this.accountId };
      case "aws:index/getPartition:getPartition":
        return { partition: "aws", dnsSuffix: "amazonaws.com", id: "aws" };
      case "aws:index/getRegion:getRegion":
        return { name: region, region, id: region };
      case "aws:ec2/getAmi:getAmi": {
        const imageId = `ami-${digest(`${region}:${JSON.stringify(args.inputs.filters)}`, 17)}`;
        return { ...args.inputs, id: imageId, imageId, architecture: "arm64", name: "mock-image" };
      }
      default:
        throw new Error(`synth mocks: no mock for invoke ${args.token}; add one to lib/synth/mocks.ts`);
    }
  }
}

/** The request fields the recorder reads (a subset of the generated RegisterResourceRequest). */
interface RegisterResourceRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getCustom(): boolean;
  getProvider(): string;
  getProtect(): boolean;
  getRetainondelete(): boolean;
  getDeletedwith(): string;
  getIgnorechangesList(): string[];
  getAdditionalsecretoutputsList(): string[];
  getDependenciesList(): string[];
  getPropertydependenciesMap(): { forEach(cb: (value: { getUrnsList(): string[] }, key: string) => void): void };
  getObject(): { toJavaScript(): Record<string, unknown> } | undefined;
}

interface MockMonitorLike {
  newUrn(parent: string, type: string, name: string): string;
  registerResource(req: RegisterResourceRequest, callback: (err: unknown, resp: unknown) => void): Promise<void>;
  registerResourceOutputs(
    req: { getUrn(): string; getOutputs(): { toJavaScript(): Record<string, unknown> } | undefined },
    callback: (err: unknown, resp: unknown) => void,
  ): void;
}

export interface Recording {
  /** Every registration so far, sorted by URN. */
  resources(): SynthResource[];
  /** Outputs registered for a resource (the stack's outputs under `pulumi:pulumi:Stack`). */
  outputs(urn: string): Record<string, unknown> | undefined;
  /** Waits until every pending registration has been answered. */
  settle(): Promise<void>;
}

/**
 * Installs `mocks` (`pulumi.runtime.setMocks`) and records every registration. Call before the
 * program's modules are imported. `preview` false: outputs are known, as in `pulumi up`.
 */
export async function startRecording(mocks: PlatformMocks, project: string, stack: string): Promise<Recording> {
  await pulumi.runtime.setMocks(mocks, project, stack, false);
  const monitor = pulumi.runtime.getMonitor() as unknown as MockMonitorLike;
  const records = new Map<string, SynthResource>();
  const outputs = new Map<string, Record<string, unknown>>();
  const registerResource = monitor.registerResource.bind(monitor);
  const registerResourceOutputs = monitor.registerResourceOutputs.bind(monitor);

  monitor.registerResource = (req, callback) => {
    const urn = monitor.newUrn(req.getParent(), req.getType(), req.getName());
    if (records.has(urn)) throw new Error(`duplicate resource registration ${urn}`);
    const propertyDependencies: Record<string, string[]> = {};
    req.getPropertydependenciesMap().forEach((deps, key) => {
      const urns = [...deps.getUrnsList()].sort();
      if (urns.length > 0) propertyDependencies[key] = urns;
    });
    const provider = req.getProvider();
    records.set(urn, {
      urn,
      type: req.getType(),
      name: req.getName(),
      custom: req.getCustom(),
      parent: req.getParent() || undefined,
      provider: provider ? provider.split("::").slice(0, -1).join("::") : undefined,
      protect: req.getProtect(),
      retainOnDelete: req.getRetainondelete(),
      deletedWith: req.getDeletedwith() || undefined,
      ignoreChanges: [...req.getIgnorechangesList()].sort(),
      additionalSecretOutputs: [...req.getAdditionalsecretoutputsList()].sort(),
      dependencies: [...new Set(req.getDependenciesList())].sort(),
      propertyDependencies,
      inputs: redact(req.getObject()?.toJavaScript() ?? {}) as Record<string, unknown>,
    });
    mocks.secretOutputs.set(`${req.getType()}::${req.getName()}`, req.getAdditionalsecretoutputsList());
    return registerResource(req, callback);
  };
  monitor.registerResourceOutputs = (req, callback) => {
    outputs.set(req.getUrn(), redact(req.getOutputs()?.toJavaScript() ?? {}) as Record<string, unknown>);
    return registerResourceOutputs(req, callback);
  };

  return {
    resources: () => [...records.values()].sort((a, b) => a.urn.localeCompare(b.urn)),
    outputs: (urn) => outputs.get(urn),
    settle: () => pulumi.runtime.disconnect(),
  };
}
