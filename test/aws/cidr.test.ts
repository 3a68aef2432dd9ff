import { describe, expect, it } from "vitest";
import { cidrContains, cidrSubnet, formatCidr, parseCidr, CidrError } from "../../lib/platform/cidr";

describe("cidr", () => {
  it.each([
    ["10.20.0.0/16", 4, 0, "10.20.0.0/20"],
    ["10.20.0.0/16", 4, 1, "10.20.16.0/20"],
    ["10.20.0.0/16", 4, 15, "10.20.240.0/20"],
    ["10.120.0.0/20", 4, 2, "10.120.2.0/24"],
    ["192.168.0.0/24", 4, 3, "192.168.0.48/28"],
  ])("cidrSubnet(%s, %i, %i) = %s", (cidr, bits, index, expected) => {
    expect(cidrSubnet(cidr, bits, index)).toBe(expected);
  });

  it.each([
    ["10.20.0.0/16", 4, 16, "10.20.0.0/16 has 16 subnets of /20; index 16 is out of range"],
    ["10.20.0.0/26", 4, 0, "cannot split 10.20.0.0/26 by 4 more bits"],
    ["10.20.1.0/16", 4, 0, '"10.20.1.0/16" has host bits set (network address would be 10.20.0.0/16)'],
    ["10.20.0/16", 4, 0, '"10.20.0/16" is not an IPv4 CIDR'],
    ["300.1.0.0/16", 4, 0, '"300.1.0.0/16" is not an IPv4 CIDR'],
  ])("cidrSubnet(%s, %i, %i) refuses: %s", (cidr, bits, index, message) => {
    expect(() => cidrSubnet(cidr, bits, index)).toThrow(CidrError);
    expect(() => cidrSubnet(cidr, bits, index)).toThrow(message);
  });

  it("round-trips and contains", () => {
    expect(formatCidr(parseCidr("255.255.255.255/32"))).toBe("255.255.255.255/32");
    expect(formatCidr(parseCidr("0.0.0.0/0"))).toBe("0.0.0.0/0");
    expect(cidrContains("10.20.0.0/16", "10.20.240.0/20")).toBe(true);
    expect(cidrContains("10.20.0.0/16", "10.21.0.0/20")).toBe(false);
    expect(cidrContains("10.20.0.0/20", "10.20.0.0/16")).toBe(false);
  });
});
