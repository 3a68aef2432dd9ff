/**
 * The command line of `npm run rollout`, parsed strictly. Pure (the platform stacks are passed in).
 */
import path from "node:path";
import { parseArgs } from "node:util";
import type { PlatformStack } from "../lib/stack-config/platform-stacks";
import { DEFAULT_CONCURRENCY, MAX_CONCURRENCY } from "./tenant-stacks";
import { DEFAULT_ENVIRONMENT } from "../lib/tenant-stacks/names";
import { Environment, parseOrThrow, TenantSpecError } from "../lib/tenant-stacks/spec";
import { defaultWaveTokens, resolveWaves, type Wave } from "../lib/rollout/waves";

export const ROLLOUT_USAGE = `usage: npm run rollout -- [--waves <wave,...>] [--env <env>] [--dry-run] [--concurrency <n>]
                          [--restart] [--state <file>] [--json]

  Previews, then updates the regional platform stacks wave by wave, then brings each wave's tenant
  stacks to the current tenant program; halts at the first failure. Run the same command again to
  resume an unfinished rollout.

  --waves        comma-separated waves, in order; a wave is a region (eu, us: its stack in --env),
                 an environment (staging: all its stacks) or a stack name (default: staging first
                 unless --env is local or staging, then each region of --env)
  --env          the target environment (default: ${DEFAULT_ENVIRONMENT})
  --dry-run      preview platform and tenant stacks only; changes and records nothing
  --concurrency  tenant stack operations at once, each in its own process (default: ${DEFAULT_CONCURRENCY})
  --restart      discard an unfinished rollout instead of resuming it
  --state        the state file (default: .pulumi-local/rollout/<env>.json)`;

export interface RolloutCommand {
  help: boolean;
  environment: string;
  waves: Wave[];
  dryRun: boolean;
  restart: boolean;
  concurrency: number;
  stateFile: string;
  json: boolean;
}

export function parseRolloutCommand(
  argv: string[],
  stacks: readonly PlatformStack[],
  ctx: { repoRoot: string; cwd: string },
): RolloutCommand {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        waves: { type: "string" },
        env: { type: "string" },
        "dry-run": { type: "boolean", default: false },
        restart: { type: "boolean", default: false },
        concurrency: { type: "string" },
        state: { type: "string" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    throw new TenantSpecError((err as Error).message, "arguments");
  }
  const { values } = parsed;
  const environment = values.env === undefined ? DEFAULT_ENVIRONMENT : parseOrThrow(Environment, values.env, "--env");
  const base = { help: values.help, environment, dryRun: values["dry-run"], restart: values.restart, json: values.json };
  if (values.help) return { ...base, waves: [], concurrency: DEFAULT_CONCURRENCY, stateFile: "" };
  if (values["dry-run"] && values.restart)
    throw new TenantSpecError("a dry run records nothing, so there is nothing to restart", "--restart");
  const tokens = values.waves === undefined ? defaultWaveTokens(stacks, environment) : values.waves.split(",").map((t) => t.trim());
  if (tokens.some((t) => t === "")) throw new TenantSpecError("has an empty wave (e.g. eu,,us)", "--waves");
  let waves: Wave[];
  try {
    waves = resolveWaves(tokens, stacks, environment);
  } catch (err) {
    throw new TenantSpecError((err as Error).message, "--waves");
  }
  const n = values.concurrency === undefined ? DEFAULT_CONCURRENCY : Number(values.concurrency);
  if (!Number.isInteger(n) || n < 1 || n > MAX_CONCURRENCY)
    throw new TenantSpecError(`must be an integer from 1 to ${MAX_CONCURRENCY}, got "${values.concurrency}"`, "--concurrency");
  const stateFile =
    values.state === undefined
      ? path.join(ctx.repoRoot, ".pulumi-local", "rollout", `${environment}.json`)
      : path.resolve(ctx.cwd, values.state);
  return { ...base, waves, concurrency: n, stateFile };
}
