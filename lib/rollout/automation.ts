/**
 * The rollout's stacks on the Automation API:
 *   repoPlatformOps     the repository's platform program (Pulumi.yaml + index.ts, stacks/), one
 *                       stack operation at a time in the repository's workspace;
 *   inlinePlatformOps   inline platform programs (the real-engine tests' throwaway regions);
 *   tenantOps           the tenant stacks recorded on the backend, each operation in its own process.
 * Failures are rethrown with the message that says what went wrong (lib/tenant-stacks/errors.ts).
 */
import { LocalWorkspace, type PulumiFn, type Stack } from "@pulumi/pulumi/automation";
import type { AutomationContext } from "../tenant-stacks/automation";
import { classifyFailure } from "../tenant-stacks/errors";
import type { ChangeCounts, TenantStackDriver } from "../tenant-stacks/jobs";
import { PLATFORM_PROJECT } from "../tenant-stacks/names";
import type { PlatformOps, TenantOps } from "./run";

export class StackOperationError extends Error {
  constructor(
    message: string,
    readonly kind: string,
  ) {
    super(message);
    this.name = "StackOperationError";
  }
}

async function operate<T>(stackName: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const failure = classifyFailure(err, stackName);
    throw new StackOperationError(failure.message, failure.kind);
  }
}

function opsOver(
  ctx: AutomationContext,
  open: (stack: string, run: (s: Stack) => Promise<ChangeCounts>) => Promise<ChangeCounts>,
): PlatformOps {
  return {
    preview: (stack) => operate(stack, () => open(stack, async (s) => (await s.preview({ color: "never" })).changeSummary)),
    update: (stack) => operate(stack, () => open(stack, async (s) => (await s.up({ color: "never" })).summary.resourceChanges ?? {})),
    // As the tenant stacks read it (a PlatformContractError is passed on as it is: the CLI exits 2 on it).
    contract: (stack) => ctx.platformContract(stack),
  };
}

/** The repository's own platform program and stacks (what `npm run pulumi -- up --stack <s>` runs). */
export function repoPlatformOps(ctx: AutomationContext): PlatformOps {
  const workDir = ctx.options.repoRoot;
  return opsOver(ctx, async (stack, run) => {
    const s = await LocalWorkspace.selectStack({ stackName: stack, workDir }, { envVars: ctx.envVars, pulumiCommand: ctx.pulumiCommand });
    return run(s);
  });
}

/** Inline platform programs by stack name, in fresh workspaces (tests). */
export function inlinePlatformOps(ctx: AutomationContext, programs: Record<string, PulumiFn>): PlatformOps {
  return opsOver(ctx, (stack, run) =>
    ctx.withWorkspace(PLATFORM_PROJECT, stack, async (opts) => {
      const program = programs[stack];
      if (!program) throw new Error(`no program for platform stack ${stack}`);
      return run(await LocalWorkspace.selectStack({ projectName: PLATFORM_PROJECT, stackName: stack, program }, opts));
    }),
  );
}

/** The tenant stacks the backend records, brought up by `driver` (a process per operation in production). */
export function tenantOps(ctx: AutomationContext, driver: TenantStackDriver): TenantOps {
  return {
    list: async () => (await ctx.recordedTenantStacks()).map(({ stack, spec, problem }) => ({ stack, spec, problem })),
    driver,
  };
}
