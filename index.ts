/**
 * The Pulumi program: one program, a stack per region (stacks/Pulumi.<stack>.yaml). The stack's
 * `alphapulse-platform:kind` picks what it declares:
 *   local  a residency region on loopback servers (components/local, lib/stack-config/local.ts)
 *   aws    the regional AWS platform (components/aws, issue 7; it reads and validates its own config)
 * A bad stack file fails here, naming the key path, before any resource is declared.
 */
import * as pulumi from "@pulumi/pulumi";
import { awsPlatform } from "./components/aws";
import { localPlatform } from "./components/local/local-platform";
import { parseLocalStackConfig } from "./lib/stack-config/local";
import { parseStackKind, projectConfigValues, StackConfigError } from "./lib/stack-config/common";

function program() {
  try {
    const values = projectConfigValues(pulumi.runtime.allConfig());
    return parseStackKind(values) === "aws" ? awsPlatform() : localPlatform(parseLocalStackConfig(values));
  } catch (err) {
    // The key path and the reason, without a stack trace.
    if (err instanceof StackConfigError) throw new pulumi.RunError(err.message);
    throw err;
  }
}

export = program();
