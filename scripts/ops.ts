/**
 * `npm run ops -- --stack <stack> [--json] -- <tenancy command…>`: a `tenancy` command run next to
 * the stack's database (inside the VPC on AWS, through the database executor). The work is
 * cli/ops.ts; this file wires the repository's stacks and the backend's platform contract to it.
 * The contract is read as `npm run tenant` reads it (the repository's Pulumi environment, plus
 * ALPHAPULSE_TENANT_ENV_JSON to point at another backend, e.g. the regions' S3 state).
 */
import { CommandFailure } from "../cli/output";
import { opsMain } from "../cli/ops";
import { runMain } from "../cli/runner";
import { REPO_ROOT } from "../lib/pulumi/env";
import { readPlatformStacks } from "../lib/stack-config/platform-stacks";

const main = opsMain({
  stacks: () => readPlatformStacks(REPO_ROOT),
  async readContract(stack) {
    // Loaded here, not at the top: bad input is answered without loading the Pulumi SDK.
    const { automationContext, environmentOverride } = await import("../components/tenant/drivers.js");
    const { PlatformStackError } = await import("../lib/tenant-stacks/platform.js");
    const ctx = await automationContext({ repoRoot: REPO_ROOT, env: environmentOverride() });
    if ("unavailable" in ctx)
      throw new CommandFailure({ kind: "toolchain", message: `the Pulumi toolchain is not available: ${ctx.unavailable}` });
    try {
      return await ctx.platformContract(stack);
    } catch (err) {
      // Described in stacks/ but not on this backend: nothing to run on, nothing ran.
      if (err instanceof PlatformStackError)
        throw new CommandFailure(
          {
            kind: "usage",
            field: "--stack",
            message: `--stack: ${err.message} (deploy it first, or point ALPHAPULSE_TENANT_ENV_JSON at its backend)`,
          },
          2,
        );
      throw err;
    }
  },
});

if (require.main === module) runMain(main);
