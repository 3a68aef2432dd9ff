/**
 * The production wiring of tenant stack operations: the tenant program (./program.ts) and the
 * offboarding (lib/tenant/offboarding.ts, verified export first) on the Automation API (lib/tenant-stacks/automation.ts).
 *
 *   inProcessDriver  one operation in this process (`npm run tenant -- up <slug>`, the worker)
 *   processDriver    one process per operation (bulk runs, the rollout's tenant phase)
 */
import { AutomationContext, AutomationDriver } from "../../lib/tenant-stacks/automation";
import { offboardBeforeDestroy } from "../../lib/tenant-stacks/offboarding";
import { ProcessDriver } from "../../lib/tenant-stacks/process-driver";
import { tenantProgram } from "./program";

/**
 * Extra Pulumi environment from ALPHAPULSE_TENANT_ENV_JSON (a JSON object), layered over
 * lib/pulumi/env.ts by the CLIs and the workers: the tests point them at a throwaway backend with it.
 */
export function environmentOverride(env: NodeJS.ProcessEnv = process.env): Record<string, string> | undefined {
  const raw = env.ALPHAPULSE_TENANT_ENV_JSON;
  if (!raw) return undefined;
  const parsed = JSON.parse(raw) as unknown;
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed) || Object.values(parsed).some((v) => typeof v !== "string")) {
    throw new Error("ALPHAPULSE_TENANT_ENV_JSON must be a JSON object of strings");
  }
  return parsed as Record<string, string>;
}

export interface DriverOptions {
  repoRoot: string;
  /** Extra environment for the Pulumi CLI, the plugins and the workers (tests: another backend). */
  env?: Record<string, string>;
}

export async function automationContext(options: DriverOptions): Promise<AutomationContext | { unavailable: string }> {
  return AutomationContext.forRepo(options.repoRoot, {
    program: (spec, options) => tenantProgram(spec, options),
    offboarder: offboardBeforeDestroy,
    env: options.env,
  });
}

export async function inProcessDriver(options: DriverOptions): Promise<AutomationDriver | { unavailable: string }> {
  const ctx = await automationContext(options);
  return "unavailable" in ctx ? ctx : new AutomationDriver(ctx);
}

export function processDriver(options: DriverOptions): ProcessDriver {
  return new ProcessDriver({ repoRoot: options.repoRoot, env: options.env });
}
