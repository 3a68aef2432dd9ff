/**
 * IPv4 CIDR arithmetic for laying out a VPC: pure, exact, no dependencies.
 */

export class CidrError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CidrError";
  }
}

export interface Cidr {
  /** Network address as an unsigned 32-bit integer. */
  base: number;
  prefix: number;
}

export function parseCidr(text: string): Cidr {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(text);
  if (match === null) throw new CidrError(`"${text}" is not an IPv4 CIDR like 10.20.0.0/16`);
  const octets = match.slice(1, 5).map(Number);
  const prefix = Number(match[5]);
  if (octets.some((o) => o > 255) || prefix > 32) throw new CidrError(`"${text}" is not an IPv4 CIDR like 10.20.0.0/16`);
  const base = octets.reduce((acc, o) => acc * 256 + o, 0);
  const size = 2 ** (32 - prefix);
  if (base % size !== 0)
    throw new CidrError(`"${text}" has host bits set (network address would be ${formatCidr({ base: base - (base % size), prefix })})`);
  return { base, prefix };
}

export function formatCidr(c: Cidr): string {
  const octets = [24, 16, 8, 0].map((shift) => Math.floor(c.base / 2 ** shift) % 256);
  return `${octets.join(".")}/${c.prefix}`;
}

/** The `index`-th subnet of `cidr` with `newBits` more prefix bits (Terraform's `cidrsubnet`). */
export function cidrSubnet(cidr: string, newBits: number, index: number): string {
  const parent = parseCidr(cidr);
  const prefix = parent.prefix + newBits;
  if (!Number.isInteger(newBits) || newBits < 1 || prefix > 28)
    throw new CidrError(`cannot split ${cidr} by ${newBits} more bits (AWS subnets are /16 to /28)`);
  if (!Number.isInteger(index) || index < 0 || index >= 2 ** newBits)
    throw new CidrError(`${cidr} has ${2 ** newBits} subnets of /${prefix}; index ${index} is out of range`);
  return formatCidr({ base: parent.base + index * 2 ** (32 - prefix), prefix });
}

/** True when `inner` lies entirely inside `outer`. */
export function cidrContains(outer: string, inner: string): boolean {
  const o = parseCidr(outer);
  const i = parseCidr(inner);
  return i.prefix >= o.prefix && i.base >= o.base && i.base + 2 ** (32 - i.prefix) <= o.base + 2 ** (32 - o.prefix);
}
