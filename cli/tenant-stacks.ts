/**
 * The command line of `npm run tenant`, parsed strictly (node:util parseArgs, strict: a typo'd flag
 * fails) into what to run. Pure: the file reader is passed in, nothing runs.
 *
 *   up      <slug>... --tier <t> --region <r> [--platform <stack>] [--env <env>] [--display-name <n>]
 *           [--tenant <slug:tier:region>]... [--file <tenants.yaml>] [--concurrency <n>] [--json]
 *   preview (same as up; changes nothing)
 *   destroy <slug>... [--file <tenants.yaml>] [--export-dir <dir> | --skip-export] [--retention-days <n>]
 *           [--platform <stack>] [--dry-run] [--concurrency <n>] [--json]
 *   list    [--json]
 *   synth   <slug> --tier <t> --region <r> --platform <aws stack> [--check] [--out <file|->] [--json]
 */
import path from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { ResidencyRegion, TenantSlug, Tier } from "../lib/tenant/model";
import { DEFAULT_RETENTION_DAYS, RETENTION_DAYS_RANGE } from "../lib/tenant/registry";
import type { TenantJob } from "../lib/tenant-stacks/jobs";
import { DEFAULT_ENVIRONMENT } from "../lib/tenant-stacks/names";
import {
  assertUniqueSlugs,
  Environment,
  parseOrThrow,
  parseTenantArg,
  parseTenantFile,
  resolveEntry,
  StackName,
  TenantSpecError,
  type TenantEntry,
  type TenantStackSpec,
} from "../lib/tenant-stacks/spec";

export const DEFAULT_CONCURRENCY = 4;
export const MAX_CONCURRENCY = 32;

export const USAGE = `usage: npm run tenant -- <command> [options]

  up <slug>... --tier <starter|pro|enterprise> --region <eu|us> [--platform <stack>] [--env <env>]
               [--display-name <name>] [--tenant <slug:tier:region>]... [--file <tenants.yaml>]
               [--concurrency <n>] [--json]
      create or update the stacks tenant-<slug> (bulk: several slugs, --tenant, --file)
  preview <same as up>
      show what up would change; changes nothing
  destroy <slug>... [--file <tenants.yaml>] [--export-dir <dir> | --skip-export] [--retention-days <n>]
                    [--platform <stack>] [--dry-run] [--concurrency <n>] [--json]
      offboard (the same path as \`tenancy tenant delete\`): verified export, the tenant marked
      offboarded with its rows kept --retention-days (default ${DEFAULT_RETENTION_DAYS}), then the stack destroyed
      (credentials revoked, rows and keys kept); \`tenancy tenant purge <slug>\` after that date
      removes the data. On AWS it runs inside the region through the executor and the export is
      kept in the region's backup bucket (s3://<bucket>/tenant-exports/<tenant id>/; --export-dir is
      refused); the Redis user is deleted and its secret scheduled for deletion (30-day recovery
      window). --platform: refuse unless the stack belongs to it. --dry-run says what it would do
      and remove, and changes nothing
  list [--json]
      the tenant stacks on the backend and what they record
  synth <slug> --tier <t> --region <r> --platform <aws stack> [--check] [--out <file|->] [--json]
      offline: the tenant stack's resource graph against an AWS platform stack's synthesised
      outputs, in the format of npm run synth (no engine, no credentials); --check runs the policy
      rules over it (exit 1 on a violation); --out - (the default) prints it

  --platform     the regional platform stack (default: the stack of --region in --env, by its
                 stack file: local-eu, local-us, eu-staging, ...)
  --env          environment whose platform stacks --region maps to (default: ${DEFAULT_ENVIRONMENT})
  --concurrency  stack operations at once, each in its own process (default: ${DEFAULT_CONCURRENCY}, at most ${MAX_CONCURRENCY})`;

export type TenantCommand =
  | { command: "help" }
  | { command: "list"; json: boolean }
  | { command: "up" | "preview" | "destroy"; jobs: TenantJob[]; concurrency: number; json: boolean }
  | { command: "synth"; spec: TenantStackSpec; check: boolean; out?: string; json: boolean };

const COMMON = { json: { type: "boolean", default: false }, help: { type: "boolean", short: "h", default: false } } as const;
const BATCH = { file: { type: "string" }, concurrency: { type: "string" } } as const;

const OPTIONS = {
  up: {
    ...COMMON,
    ...BATCH,
    tier: { type: "string" },
    region: { type: "string" },
    platform: { type: "string" },
    env: { type: "string" },
    "display-name": { type: "string" },
    tenant: { type: "string", multiple: true },
  },
  destroy: {
    ...COMMON,
    ...BATCH,
    "export-dir": { type: "string" },
    "skip-export": { type: "boolean", default: false },
    "retention-days": { type: "string" },
    "dry-run": { type: "boolean", default: false },
    platform: { type: "string" },
  },
  list: { ...COMMON },
  synth: {
    ...COMMON,
    tier: { type: "string" },
    region: { type: "string" },
    platform: { type: "string" },
    check: { type: "boolean", default: false },
    out: { type: "string" },
  },
} satisfies Record<string, NonNullable<ParseArgsConfig["options"]>>;

export interface ParseContext {
  readFile(file: string): string;
  /** The default platform stack of a region in an environment (lib/stack-config/platform-stacks.ts). */
  platformFor(environment: string, region: ResidencyRegion): string;
  /** Default export directory for destroy. */
  defaultExportDir: string;
  /** Resolves relative paths (--file, --export-dir). */
  cwd: string;
}

function parse<O extends NonNullable<ParseArgsConfig["options"]>>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new TenantSpecError((err as Error).message, "arguments");
  }
}

function parseConcurrency(value: string | undefined): number {
  if (value === undefined) return DEFAULT_CONCURRENCY;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_CONCURRENCY)
    throw new TenantSpecError(`must be an integer from 1 to ${MAX_CONCURRENCY}, got "${value}"`, "--concurrency");
  return n;
}

function parseRetentionDays(value: string | undefined): number {
  if (value === undefined) return DEFAULT_RETENTION_DAYS;
  const n = Number(value);
  const { min, max } = RETENTION_DAYS_RANGE;
  if (!/^\d+$/.test(value) || n < min || n > max)
    throw new TenantSpecError(`must be a whole number of days from ${min} to ${max}, got "${value}"`, "--retention-days");
  return n;
}

function readEntries(file: string | undefined, ctx: ParseContext): TenantEntry[] {
  if (file === undefined) return [];
  let text: string;
  try {
    text = ctx.readFile(path.resolve(ctx.cwd, file));
  } catch (err) {
    throw new TenantSpecError(`cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, "--file");
  }
  return parseTenantFile(text, file);
}

export function parseTenantCommand(argv: string[], ctx: ParseContext): TenantCommand {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") return { command: "help" };

  if (command === "list") {
    const { values, positionals } = parse(rest, OPTIONS.list);
    if (values.help) return { command: "help" };
    if (positionals.length) throw new TenantSpecError(`unexpected argument "${positionals[0]}"`, "arguments");
    return { command, json: values.json };
  }

  if (command === "destroy") {
    const { values, positionals } = parse(rest, OPTIONS.destroy);
    if (values.help) return { command: "help" };
    if (values["skip-export"] && values["export-dir"] !== undefined)
      throw new TenantSpecError("--export-dir and --skip-export exclude each other", "--skip-export");
    const slugs = [
      ...positionals.map((slug, i) => parseOrThrow(TenantSlug, slug, `argument ${i + 1} (slug)`)),
      ...readEntries(values.file, ctx).map((e) => e.slug),
    ];
    if (slugs.length === 0) throw new TenantSpecError("name at least one tenant (slugs as arguments, or --file)", "arguments");
    assertUniqueSlugs(slugs.map((slug) => ({ slug })));
    const exportDir = values["skip-export"] ? null : path.resolve(ctx.cwd, values["export-dir"] ?? ctx.defaultExportDir);
    const retentionDays = parseRetentionDays(values["retention-days"]);
    const dryRun = values["dry-run"];
    const platform = values.platform === undefined ? undefined : parseOrThrow(StackName, values.platform, "--platform");
    return {
      command,
      jobs: slugs.map((slug) => ({
        action: "destroy",
        slug,
        exportDir,
        ...(values["export-dir"] !== undefined ? { exportDirGiven: true } : {}),
        ...(platform !== undefined ? { platform } : {}),
        retentionDays,
        dryRun,
      })),
      concurrency: parseConcurrency(values.concurrency),
      json: values.json,
    };
  }

  if (command === "up" || command === "preview") {
    const { values, positionals } = parse(rest, OPTIONS.up);
    if (values.help) return { command: "help" };
    const environment = values.env === undefined ? DEFAULT_ENVIRONMENT : parseOrThrow(Environment, values.env, "--env");
    const platform = values.platform === undefined ? undefined : parseOrThrow(StackName, values.platform, "--platform");
    if (positionals.length === 0) {
      for (const flag of ["tier", "region", "display-name"] as const) {
        if (values[flag] !== undefined)
          throw new TenantSpecError(`applies to the slugs given as arguments, and there are none`, `--${flag}`);
      }
    } else {
      if (values.tier === undefined) throw new TenantSpecError("is required with slug arguments (starter, pro or enterprise)", "--tier");
      if (values.region === undefined) throw new TenantSpecError("is required with slug arguments (eu or us)", "--region");
      if (values["display-name"] !== undefined && positionals.length > 1)
        throw new TenantSpecError("names one tenant: give exactly one slug", "--display-name");
    }
    const entries: { entry: TenantEntry; field: string }[] = [
      ...positionals.map((slug, i) => ({
        entry: { slug, tier: values.tier, region: values.region, displayName: values["display-name"] } as TenantEntry,
        field: `argument ${i + 1}`,
      })),
      ...(values.tenant ?? []).map((arg) => ({ entry: parseTenantArg(arg), field: `--tenant ${arg}` })),
      ...readEntries(values.file, ctx).map((entry, i) => ({ entry, field: `${values.file}[${i}]` })),
    ];
    if (entries.length === 0) throw new TenantSpecError("name at least one tenant (slugs as arguments, --tenant or --file)", "arguments");
    const specs: TenantStackSpec[] = entries.map(({ entry, field }) => {
      const withFlags = { ...entry, platform: entry.platform ?? platform };
      const cleaned = Object.fromEntries(Object.entries(withFlags).filter(([, v]) => v !== undefined)) as TenantEntry;
      // Positional entries take their tier and region from the flags: name the flag, not the argument.
      try {
        return resolveEntry(cleaned, (region) => ctx.platformFor(environment, region), field);
      } catch (err) {
        if (err instanceof TenantSpecError && field.startsWith("argument")) {
          const key = err.field.slice(field.length + 1);
          if (key === "tier" || key === "region") throw new TenantSpecError(err.message.slice(err.field.length + 2), `--${key}`);
          if (key === "displayName") throw new TenantSpecError(err.message.slice(err.field.length + 2), "--display-name");
          if (key === "platform") throw new TenantSpecError(err.message.slice(err.field.length + 2), "--platform");
        }
        throw err;
      }
    });
    assertUniqueSlugs(specs);
    return {
      command,
      jobs: specs.map((spec) => ({ action: command, spec })),
      concurrency: parseConcurrency(values.concurrency),
      json: values.json,
    };
  }

  if (command === "synth") {
    const { values, positionals } = parse(rest, OPTIONS.synth);
    if (values.help) return { command: "help" };
    if (positionals.length !== 1) throw new TenantSpecError("name exactly one tenant slug", "arguments");
    for (const flag of ["tier", "region", "platform"] as const)
      if (values[flag] === undefined) throw new TenantSpecError("is required", `--${flag}`);
    const spec: TenantStackSpec = {
      slug: parseOrThrow(TenantSlug, positionals[0], "argument 1 (slug)"),
      tier: parseOrThrow(Tier, values.tier, "--tier"),
      region: parseOrThrow(ResidencyRegion, values.region, "--region"),
      platform: parseOrThrow(StackName, values.platform, "--platform"),
    };
    const out = values.out === undefined || values.out === "-" ? values.out : path.resolve(ctx.cwd, values.out);
    return { command, spec, check: values.check, out, json: values.json };
  }

  throw new TenantSpecError(`unknown command "${command}" (up, preview, destroy, list, synth)`, "command");
}
