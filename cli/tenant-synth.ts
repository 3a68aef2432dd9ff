/**
 * `npm run tenant -- synth <slug> --tier <t> --region <r> --platform <aws stack> [--check] [--out] [--json]`:
 * a tenant stack's resource graph offline, against an AWS platform stack's synthesised outputs.
 * Every input is checked before any synthesis: the platform stack (its stack file, kind aws), the
 * residency (the stack file's region), then, on the platform's outputs, the slug (not declared by
 * the platform) and the outputs a tenant stack needs. Bad input exits 2 naming the field; a policy
 * violation exits 1; nothing is written anywhere but --out.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { evaluate, formatViolation } from "../policy/rules";
import { viewsFromSynth } from "../policy/views";
import { stableStringify } from "../lib/synth/format";
import { synthesizePlatformStack, synthesizeTenantStack } from "../lib/synth/tenant";
import type { PlatformStack } from "../lib/stack-config/platform-stacks";
import { readAwsTenantPlatform } from "../lib/tenant-stacks/aws-platform";
import { ownershipProblem, PlatformStackError, readPlatformSummary, residencyProblem } from "../lib/tenant-stacks/platform";
import { TenantSpecError, type TenantStackSpec } from "../lib/tenant-stacks/spec";

export interface TenantSynthCommand {
  spec: TenantStackSpec;
  check: boolean;
  /** A file, "-" for stdout; undefined: stdout, or with --json `<repo>/.pulumi-local/synth/tenant-<slug>.json`. */
  out?: string;
  json: boolean;
}

export interface TenantSynthSummary {
  stack: string;
  platform: string;
  out: string;
  resources: number;
  violations?: string[];
}

/** The AWS platform stack a tenant is synthesised against; bad input names `--platform` or `--region`. */
export function checkSynthPlatform(spec: TenantStackSpec, stacks: readonly PlatformStack[]): PlatformStack {
  const platform = stacks.find((s) => s.stack === spec.platform);
  if (!platform) {
    const known = stacks.map((s) => s.stack).join(", ") || "none";
    throw new TenantSpecError(`no platform stack "${spec.platform}" in stacks/ (stacks: ${known})`, "--platform");
  }
  if (platform.kind !== "aws")
    throw new TenantSpecError(
      `"${spec.platform}" is a ${platform.kind} stack: synth works against AWS stacks (local regions run for real: npm run tenant -- up)`,
      "--platform",
    );
  const problem = residencyProblem(spec, { stack: platform.stack, region: platform.region, declaredTenants: [] });
  if (problem) throw new TenantSpecError(problem, "--region");
  return platform;
}

/** The platform's outputs as a tenant stack sees them; the slug and missing outputs are bad input. */
export function checkSynthOutputs(spec: TenantStackSpec, outputs: Record<string, unknown>): void {
  try {
    const ownership = ownershipProblem(spec.slug, readPlatformSummary(spec.platform, outputs));
    if (ownership) throw new TenantSpecError(ownership, "argument 1 (slug)");
    readAwsTenantPlatform(spec.platform, outputs);
  } catch (err) {
    if (err instanceof PlatformStackError) throw new TenantSpecError(err.message, "--platform");
    throw err;
  }
}

export async function runTenantSynth(
  command: TenantSynthCommand,
  ctx: { stacks: readonly PlatformStack[]; repoRoot: string; stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream },
): Promise<number> {
  const { spec } = command;
  checkSynthPlatform(spec, ctx.stacks);
  const platformDoc = await synthesizePlatformStack(spec.platform, ctx.repoRoot);
  checkSynthOutputs(spec, platformDoc.outputs);
  const accountId = platformDoc.outputs.accountId;
  const doc = await synthesizeTenantStack(spec, platformDoc.outputs, { accountId: typeof accountId === "string" ? accountId : undefined });
  const out = command.out ?? (command.json ? path.join(ctx.repoRoot, ".pulumi-local", "synth", `${doc.stack}.json`) : "-");
  const text = stableStringify(doc);
  if (out === "-") ctx.stdout.write(text);
  else {
    mkdirSync(path.dirname(out), { recursive: true });
    writeFileSync(out, text);
  }
  const violations = command.check ? evaluate(viewsFromSynth(doc.resources), { residency: spec.region }).map(formatViolation) : undefined;
  const summary: TenantSynthSummary = { stack: doc.stack, platform: spec.platform, out, resources: doc.resources.length, violations };
  if (command.json && out !== "-") ctx.stdout.write(JSON.stringify(summary) + "\n");
  else {
    const verdict =
      violations === undefined ? "" : violations.length === 0 ? ", every policy passes" : `, ${violations.length} policy violation(s)`;
    ctx.stderr.write(`${doc.stack} on ${spec.platform}: ${doc.resources.length} resources → ${out === "-" ? "stdout" : out}${verdict}\n`);
    for (const v of violations ?? []) ctx.stderr.write(`  ${v}\n`);
  }
  return violations?.length ? 1 : 0;
}
