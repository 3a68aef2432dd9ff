/**
 * One TCP port between a security group and a peer, as a `aws.vpc.SecurityGroupIngressRule` or
 * `SecurityGroupEgressRule` (one rule per resource: reviewable in a diff, no inline-rule drift). A
 * helper that declares a resource with the caller's options, not a component.
 */
import * as aws from "@pulumi/aws";
import type * as pulumi from "@pulumi/pulumi";

/** The other end: another security group, a prefix list (the S3 gateway endpoint) or a CIDR. */
export type TcpPeer =
  { referencedSecurityGroupId: pulumi.Input<string> } | { prefixListId: pulumi.Input<string> } | { cidrIpv4: pulumi.Input<string> };

export interface TcpRuleArgs {
  direction: "ingress" | "egress";
  /** The group the rule belongs to. */
  securityGroupId: pulumi.Input<string>;
  peer: TcpPeer;
  port: number;
  description: string;
}

export function tcpRule(name: string, args: TcpRuleArgs, opts: pulumi.CustomResourceOptions) {
  const inputs = {
    securityGroupId: args.securityGroupId,
    ...args.peer,
    ipProtocol: "tcp",
    fromPort: args.port,
    toPort: args.port,
    description: args.description,
  };
  return args.direction === "ingress"
    ? new aws.vpc.SecurityGroupIngressRule(name, inputs, opts)
    : new aws.vpc.SecurityGroupEgressRule(name, inputs, opts);
}
