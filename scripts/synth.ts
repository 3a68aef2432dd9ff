/**
 * `npm run synth -- --stack <name>`: runs the Pulumi program (index.ts) under Pulumi's mock runtime
 * with the stack's config from stacks/Pulumi.<name>.yaml and writes the resource graph as JSON —
 * type, logical name, parent, provider, options and inputs of every resource, secrets redacted,
 * byte-identical for identical programs. No engine, no Pulumi service, no cloud credentials.
 *
 *   npm run synth -- --stack eu-prod                 write .pulumi-local/synth/eu-prod.json
 *   npm run synth -- --stack eu-prod --out -         print the JSON
 *   npm run synth -- --stack eu-prod --check         also evaluate the policy rules; exit 1 on a violation
 *   npm run synth -- --all --check                   every aws stack in stacks/, one process each
 *   npm run synth -- --stack eu-prod --check --json  the summary as JSON
 *   --program <file.ts>, --stacks-dir <dir>          another program or stack directory (tests, experiments)
 *
 * Exit codes: 0 ok, 1 synthesis failed or a policy was violated, 2 bad arguments.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { evaluate, formatViolation, type Violation } from "../policy/rules";
import { viewsFromSynth } from "../policy/views";
import { UsageError } from "../cli/output";
import { entryPoint, headerComment, runMain } from "../cli/runner";
import { ResidencyRegion } from "../lib/tenant/model";
import { REDACTED, stableStringify } from "../lib/synth/format";
import type { SynthDocument } from "../lib/synth/mocks";

const REPO_ROOT = path.resolve(__dirname, "..");

export interface StackFiles {
  project: string;
  /** `ns:key` → string, as the engine hands config to a program (structured values JSON-encoded). */
  config: Record<string, string>;
  secretKeys: string[];
}

/** Reads Pulumi.yaml (project name, config defaults) and <stacksDir>/Pulumi.<stack>.yaml. Secure values become "[secret]". */
export function readStackFiles(stack: string, root = REPO_ROOT, stacksDir = path.join(root, "stacks")): StackFiles {
  const project = (parseYaml(readFileSync(path.join(root, "Pulumi.yaml"), "utf8")) ?? {}) as {
    name: string;
    config?: Record<string, unknown>;
  };
  const file = path.join(stacksDir, `Pulumi.${stack}.yaml`);
  if (!existsSync(file)) throw new UsageError(`no stack file ${path.relative(process.cwd(), file)}`, "--stack");
  const doc = (parseYaml(readFileSync(file, "utf8")) ?? {}) as { config?: Record<string, unknown> };
  const config: Record<string, string> = {};
  const secretKeys: string[] = [];
  const qualify = (key: string) => (key.includes(":") ? key : `${project.name}:${key}`);
  const put = (key: string, value: unknown) => {
    if (value !== null && typeof value === "object" && "secure" in value) {
      config[key] = REDACTED;
      secretKeys.push(key);
    } else {
      config[key] = typeof value === "string" ? value : JSON.stringify(value);
    }
  };
  for (const [key, spec] of Object.entries(project.config ?? {})) {
    const value =
      spec !== null && typeof spec === "object"
        ? ((spec as Record<string, unknown>).value ?? (spec as Record<string, unknown>).default)
        : spec;
    if (value !== undefined) put(qualify(key), value);
  }
  for (const [key, value] of Object.entries(doc.config ?? {})) put(qualify(key), value);
  return { project: project.name, config, secretKeys };
}

/** The stacks in stacks/ whose `kind` is aws. */
export function awsStacks(root = REPO_ROOT): string[] {
  return readdirSync(path.join(root, "stacks"))
    .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined)
    .filter((s) => {
      const { project, config } = readStackFiles(s, root);
      return config[`${project}:kind`] === "aws";
    })
    .sort();
}

export interface SynthOptions {
  stack: string;
  /** Where the stack files are. @default "<root>/stacks" */
  stacksDir?: string;
  /** The program to run. @default "<repo>/index.ts" */
  program?: string;
  root?: string;
}

/**
 * Runs the program once under mocks in this process and returns the document. Pulumi's runtime
 * state is global: one synthesis per process (the CLI runs a child process per stack for --all).
 */
export async function synthesize(options: SynthOptions): Promise<SynthDocument> {
  const root = options.root ?? REPO_ROOT;
  const files = readStackFiles(options.stack, root, options.stacksDir);
  // Loaded here, not at the top: usage errors and --all's parent process never pay for the Pulumi runtime.
  const pulumi = await import("@pulumi/pulumi");
  const { PlatformMocks, startRecording } = await import("../lib/synth/mocks.js");
  // Config first: the program reads it (pulumi.runtime.allConfig()) as soon as it is imported.
  pulumi.runtime.setAllConfig(files.config, files.secretKeys);
  const accountId = files.config[`${files.project}:accountId`];
  const recording = await startRecording(
    new PlatformMocks({ accountId: /^\d{12}$/.test(accountId ?? "") ? accountId : undefined }),
    files.project,
    options.stack,
  );
  const program = options.program ?? path.join(root, "index.ts");
  await pulumi.runtime.runInPulumiStack(async () => {
    // import() works under tsx (the CLI) and vitest alike; a CommonJS program's exports arrive as `default`.
    const loaded = (await import(program)) as { default?: unknown };
    const exported = loaded.default ?? loaded;
    return typeof exported === "function" ? await (exported as () => unknown)() : exported;
  });
  await recording.settle();
  const resources = recording.resources();
  const stackResource = resources.find((r) => r.type === "pulumi:pulumi:Stack");
  return {
    project: files.project,
    stack: options.stack,
    config: Object.fromEntries(Object.entries(files.config).sort(([a], [b]) => a.localeCompare(b))),
    resources,
    outputs: (stackResource && recording.outputs(stackResource.urn)) ?? {},
  };
}

/** Evaluates every policy rule over a synth document; the residency comes from the stack's config. */
export function checkDocument(doc: SynthDocument): Violation[] {
  const residency = ResidencyRegion.safeParse(doc.config[`${doc.project}:region`]);
  if (!residency.success) throw new Error(`${doc.stack}: ${doc.project}:region is not a residency (eu|us): cannot check region pinning`);
  return evaluate(viewsFromSynth(doc.resources), { residency: residency.data });
}

interface Summary {
  stack: string;
  out: string;
  resources: number;
  violations?: string[];
}

async function runOne(options: SynthOptions, out: string, check: boolean): Promise<Summary> {
  const doc = await synthesize(options);
  const stack = options.stack;
  const text = stableStringify(doc);
  if (out === "-") process.stdout.write(text);
  else {
    mkdirSync(path.dirname(out), { recursive: true });
    writeFileSync(out, text);
  }
  return { stack, out, resources: doc.resources.length, violations: check ? checkDocument(doc).map(formatViolation) : undefined };
}

/** A child process per stack: the runtime's global state stays per stack. */
function runChild(stack: string, outDir: string, check: boolean): Promise<Summary> {
  return new Promise((resolve, reject) => {
    const args = [
      path.join(REPO_ROOT, "node_modules/tsx/dist/cli.mjs"),
      __filename,
      "--stack",
      stack,
      "--out",
      path.join(outDir, `${stack}.json`),
      "--json",
    ];
    if (check) args.push("--check");
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    let stdout = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.on("error", reject);
    child.on("close", (code) => {
      try {
        resolve(JSON.parse(stdout) as Summary);
      } catch {
        reject(new Error(`synth of ${stack} exited ${code} without a summary`));
      }
    });
  });
}

const USAGE = "usage: npm run synth -- --stack <name> | --all [--out <file|dir|->] [--check] [--json]";

export const main = entryPoint({
  program: "synth",
  usage: USAGE,
  help: () => headerComment(__filename),
  options: {
    stack: { type: "string" },
    all: { type: "boolean", default: false },
    out: { type: "string" },
    program: { type: "string" },
    "stacks-dir": { type: "string" },
    check: { type: "boolean", default: false },
  },
  async run({ values }) {
    if ((values.stack === undefined) === !values.all) throw new UsageError("give exactly one of --stack <name> or --all");
    const defaultDir = path.join(REPO_ROOT, ".pulumi-local", "synth");
    let summaries: Summary[];
    if (values.all) {
      if (values.program !== undefined || values["stacks-dir"] !== undefined)
        throw new UsageError("--program and --stacks-dir work with --stack only");
      const outDir = values.out ?? defaultDir;
      if (outDir === "-") throw new UsageError("--all writes one file per stack: --out takes a directory", "--out");
      summaries = [];
      // Two at a time: two cores, and each child loads the whole AWS SDK.
      const stacks = awsStacks();
      for (let i = 0; i < stacks.length; i += 2)
        summaries.push(...(await Promise.all(stacks.slice(i, i + 2).map((s) => runChild(s, outDir, values.check)))));
    } else {
      const stack = values.stack as string;
      const options = {
        stack,
        program: values.program && path.resolve(values.program),
        stacksDir: values["stacks-dir"] && path.resolve(values["stacks-dir"]),
      };
      summaries = [await runOne(options, values.out ?? path.join(defaultDir, `${stack}.json`), values.check)];
    }
    const failed = summaries.some((s) => (s.violations?.length ?? 0) > 0);
    if (values.json) process.stdout.write(JSON.stringify(values.all ? summaries : summaries[0]) + "\n");
    else {
      for (const s of summaries) {
        const where = s.out === "-" ? "stdout" : path.relative(process.cwd(), s.out);
        const verdict =
          s.violations === undefined
            ? ""
            : s.violations.length === 0
              ? ", every policy passes"
              : `, ${s.violations.length} policy violation(s)`;
        process.stderr.write(`${s.stack}: ${s.resources} resources → ${where}${verdict}\n`);
        for (const v of s.violations ?? []) process.stderr.write(`  ${v}\n`);
      }
    }
    return failed ? 1 : 0;
  },
});

if (require.main === module) runMain(main);
