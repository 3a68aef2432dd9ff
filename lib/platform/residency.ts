/**
 * Data residency on AWS: which regions a stack of each residency may use, and the pure guards that
 * every region-bearing value in a regional stack goes through (the provider's region, availability
 * zones, ARNs, container image registries, tenants). The AWS components call these before they
 * declare a resource; the policy rules (policy/rules.ts) call them again over the resource graph.
 *
 * The EU list holds only regions located in EU member states: London (eu-west-2) and Zurich
 * (eu-central-2) are in Europe but not in the EU, so an EU stack refuses them. Changing a list is a
 * compliance decision: it needs a review, not a config flag.
 */
import { ResidencyRegion } from "../tenant/model";

export { ResidencyRegion, RESIDENCY_REGIONS } from "../tenant/model";

/** AWS regions each residency may place data in. */
export const RESIDENCY_AWS_REGIONS: Readonly<Record<ResidencyRegion, readonly string[]>> = {
  eu: ["eu-central-1", "eu-west-1", "eu-west-3", "eu-north-1", "eu-south-1", "eu-south-2"],
  us: ["us-east-1", "us-east-2", "us-west-1", "us-west-2"],
};

/** A value that would place data outside the stack's residency. The message names the subject. */
export class ResidencyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ResidencyError";
  }
}

/** The AWS regions a residency allows, in the order listed above. */
export function allowedRegions(residency: ResidencyRegion): readonly string[] {
  return RESIDENCY_AWS_REGIONS[residency];
}

/** True when `region` is one of the residency's regions (exact match: no prefixes, no case folding). */
export function isRegionAllowed(residency: ResidencyRegion, region: string): boolean {
  return RESIDENCY_AWS_REGIONS[residency].includes(region);
}

/** The residency a region belongs to, or undefined for a region no residency allows. */
export function residencyOfRegion(region: string): ResidencyRegion | undefined {
  for (const residency of Object.keys(RESIDENCY_AWS_REGIONS) as ResidencyRegion[]) {
    if (isRegionAllowed(residency, region)) return residency;
  }
  return undefined;
}

/** Throws a ResidencyError naming `subject` unless `region` is allowed for `residency`. */
export function assertRegionAllowed(residency: ResidencyRegion, region: string, subject: string): void {
  if (!isRegionAllowed(residency, region)) {
    throw new ResidencyError(
      `${subject}: region "${region}" is outside residency "${residency}" (allowed: ${allowedRegions(residency).join(", ")})`,
    );
  }
}

const AZ_PATTERN = /^([a-z]{2}(?:-gov)?-[a-z]+-\d+)[a-z]$/;

/**
 * The region of an availability zone name (`eu-central-1a` → `eu-central-1`). Local and Wavelength
 * zones (`us-east-1-bos-1a`) and zone ids (`euc1-az2`) return undefined: the platform uses plain
 * zones only, so anything else is refused by the guard below.
 */
export function regionOfAvailabilityZone(zone: string): string | undefined {
  return AZ_PATTERN.exec(zone)?.[1];
}

/** Throws unless `zone` is a plain availability zone of `region`. */
export function assertZoneInRegion(zone: string, region: string, subject: string): void {
  const zoneRegion = regionOfAvailabilityZone(zone);
  if (zoneRegion !== region) {
    throw new ResidencyError(
      zoneRegion === undefined
        ? `${subject}: "${zone}" is not an availability zone name like ${region}a`
        : `${subject}: availability zone "${zone}" is in ${zoneRegion}, not in the stack's region ${region}`,
    );
  }
}

/** The region field of an ARN (`arn:aws:kms:eu-central-1:…` → `eu-central-1`); "" for global ARNs (S3, IAM). */
export function regionOfArn(arn: string): string | undefined {
  const parts = arn.split(":");
  if (parts.length < 6 || parts[0] !== "arn") return undefined;
  return parts[3];
}

const ECR_HOST = /^\d{12}\.dkr\.ecr(?:-fips)?\.([a-z]{2}(?:-gov)?-[a-z]+-\d+)\.amazonaws\.com(?:\.cn)?\//;

/**
 * The region of a private ECR image reference (`123456789012.dkr.ecr.eu-central-1.amazonaws.com/x:1`),
 * or undefined when the image is not in a private ECR registry.
 */
export function regionOfEcrImage(image: string): string | undefined {
  return ECR_HOST.exec(image)?.[1];
}

/**
 * Throws unless a container image is pulled from a private ECR registry in an allowed region: a
 * regional stack without internet egress can only pull through its ECR endpoints, and an image
 * registry in another jurisdiction is a dependency the residency review has to see.
 */
export function assertImageAllowed(residency: ResidencyRegion, image: string, subject: string): void {
  const region = regionOfEcrImage(image);
  if (region === undefined) {
    throw new ResidencyError(
      `${subject}: image "${image}" is not in a private ECR registry (<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>)`,
    );
  }
  assertRegionAllowed(residency, region, subject);
}

/** The part of a tenant the residency guard needs (lib/tenant/model.ts `Tenant` has it). */
export interface ResidentTenant {
  slug: string;
  region: ResidencyRegion;
}

/** Throws unless every tenant belongs to the stack's residency: an EU stack refuses US tenants and vice versa. */
export function assertTenantsResident(residency: ResidencyRegion, tenants: readonly ResidentTenant[], subject: string): void {
  const foreign = tenants.filter((t) => t.region !== residency);
  if (foreign.length > 0) {
    const list = foreign.map((t) => `${t.slug} (${t.region})`).join(", ");
    throw new ResidencyError(`${subject}: a ${residency} stack refuses tenants of another residency: ${list}`);
  }
}
