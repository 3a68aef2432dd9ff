/**
 * The one runner of every entry point (cli/runner.ts): parsing, --help, the error contract and exit
 * codes in-process; and, through a real pipe (`| wc -c`, `| cat` under bash, as a user pipes into
 * jq), that a process ending through it loses nothing of an output larger than the pipe's 64 KiB —
 * while the old exit path (`process.exit()` right after the write) does.
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { CommandFailure, UsageError } from "../../cli/output";
import { entryPoint, guard } from "../../cli/runner";
import { StackConfigError } from "../../lib/stack-config/common";
import { TenantSpecError } from "../../lib/tenant-stacks/spec";

const ROOT = path.resolve(__dirname, "../..");
const TSX = path.join(ROOT, "node_modules/tsx/dist/cli.mjs");
const FIXTURE = path.join(__dirname, "fixtures/big-output.ts");

/** Captures stdout and stderr of an in-process run. */
async function capture(fn: () => Promise<number>): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  vi.spyOn(process.stdout, "write").mockImplementation((chunk) => ((stdout += String(chunk)), true));
  vi.spyOn(process.stderr, "write").mockImplementation((chunk) => ((stderr += String(chunk)), true));
  const code = await fn();
  vi.restoreAllMocks();
  return { code, stdout, stderr };
}
afterEach(() => vi.restoreAllMocks());

const demo = entryPoint({
  program: "demo",
  usage: "usage: demo --count <n> [--json]",
  help: "usage: demo --count <n> [--json]\n\n  counts things\n",
  options: { count: { type: "string" } },
  run({ values, out }) {
    if (values.count === undefined) throw new UsageError("is required", "--count");
    const n = Number(values.count);
    out.result({ n }, () => `n = ${n}`);
    return n > 3 ? 1 : 0;
  },
});

describe("entryPoint: parse strictly, answer --help, map errors to exit codes", () => {
  it("runs and returns the work's exit code", async () => {
    expect(await capture(() => demo(["--count", "2"]))).toEqual({ code: 0, stdout: "n = 2\n", stderr: "" });
    expect(await capture(() => demo(["--count", "5", "--json"]))).toMatchObject({ code: 1, stdout: '{\n  "n": 5\n}\n' });
  });

  it("--help prints the help on stdout, exit 0; with --json the usage as JSON", async () => {
    expect(await capture(() => demo(["--help"]))).toEqual({
      code: 0,
      stdout: "usage: demo --count <n> [--json]\n\n  counts things\n",
      stderr: "",
    });
    const json = await capture(() => demo(["-h", "--json"]));
    expect(JSON.parse(json.stdout)).toEqual({ usage: "usage: demo --count <n> [--json]" });
  });

  it("a typo'd flag is bad input naming the flag, with the synopsis: exit 2", async () => {
    const human = await capture(() => demo(["--cuont", "2"]));
    expect(human.code).toBe(2);
    expect(human.stdout).toBe("");
    expect(human.stderr).toMatch(/^demo: --cuont: Unknown option '--cuont'.*\nusage: demo --count <n> \[--json\]\n$/s);
    const json = await capture(() => demo(["--cuont", "2", "--json"]));
    expect(JSON.parse(json.stdout).error).toMatchObject({ kind: "usage", field: "--cuont", usage: "usage: demo --count <n> [--json]" });
  });

  it("an unexpected positional is bad input", async () => {
    expect((await capture(() => demo(["frob"]))).code).toBe(2);
  });

  it.each<[string, unknown, { code: number; kind: string; field?: string; message: string }]>([
    [
      "UsageError",
      new UsageError("must be eu or us", "--region"),
      { code: 2, kind: "usage", field: "--region", message: "--region: must be eu or us" },
    ],
    [
      "TenantSpecError",
      new TenantSpecError("is required", "--tier"),
      { code: 2, kind: "usage", field: "--tier", message: "--tier: is required" },
    ],
    [
      "StackConfigError",
      new StackConfigError("expected number", "alphapulse-platform:postgres.port"),
      { code: 2, kind: "usage", field: "alphapulse-platform:postgres.port", message: "alphapulse-platform:postgres.port: expected number" },
    ],
    [
      "ZodError",
      z.object({ port: z.number() }).safeParse({ port: "x" }).error,
      { code: 2, kind: "usage", field: "port", message: expect.stringMatching(/^port: /) },
    ],
    ["CommandFailure", new CommandFailure({ kind: "refused", message: "no" }, 2), { code: 2, kind: "refused", message: "no" }],
    ["Error", new Error("connection refused"), { code: 1, kind: "failure", message: "connection refused" }],
  ])("a thrown %s: printed as the error contract says, with its exit code", async (_, thrown, expected) => {
    const json = await capture(() =>
      guard("demo", ["--json"], () => {
        throw thrown;
      }),
    );
    expect(json.code).toBe(expected.code);
    const { code, ...error } = expected;
    void code;
    expect(JSON.parse(json.stdout).error).toMatchObject(error);
    const human = await capture(() =>
      guard("demo", [], () => {
        throw thrown;
      }),
    );
    expect(human).toMatchObject({ code: expected.code, stdout: "" });
    expect(human.stderr.startsWith(`demo: ${typeof expected.message === "string" ? expected.message : "port: "}`)).toBe(true);
  });
});

const exec = promisify(execFile);

/** Runs a shell pipeline under bash; returns what the last command printed and the first command's exit code. */
async function pipeline(command: string): Promise<{ out: string; code: number }> {
  const { stdout } = await exec("bash", ["-c", `${command}; echo "exit=\${PIPESTATUS[0]}"`], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 });
  const match = /exit=(\d+)\n$/.exec(stdout);
  if (!match) throw new Error(`no exit status in ${stdout.slice(-200)}`);
  return { out: stdout.slice(0, match.index), code: Number(match[1]) };
}

const node = (...args: string[]) => [process.execPath, TSX, ...args].map((a) => `'${a}'`).join(" ");

describe("the end of the process: stdout and stderr drain through a pipe before the exit", () => {
  const BYTES = 300_000; // well over a pipe's 64 KiB

  it("a >64 KiB document on stdout arrives whole through `| wc -c`, and the exit code is kept", async () => {
    const run = await pipeline(`${node(FIXTURE, "--bytes", String(BYTES), "--exit", "1")} | wc -c`);
    expect({ bytes: Number(run.out.trim()), code: run.code }).toEqual({ bytes: BYTES, code: 1 });
  }, 60_000);

  it("and on stderr", async () => {
    const run = await pipeline(`${node(FIXTURE, "--bytes", String(BYTES), "--stream", "stderr", "--exit", "3")} 2>&1 >/dev/null | wc -c`);
    expect({ bytes: Number(run.out.trim()), code: run.code }).toEqual({ bytes: BYTES, code: 3 });
  }, 60_000);

  it("negative control: the old exit path (process.exit right after the write) cuts it at the pipe's capacity", async () => {
    const run = await pipeline(`${node(FIXTURE, "--bytes", String(BYTES), "--exit", "1", "--old-exit")} | wc -c`);
    expect(run.code).toBe(1);
    expect(Number(run.out.trim())).toBeLessThan(BYTES);
  }, 60_000);

  it("`npm run synth -- --stack eu-prod --out - | cat` is the whole document, valid JSON", async () => {
    const run = await pipeline(`${node(path.join(ROOT, "scripts/synth.ts"), "--stack", "eu-prod", "--out", "-")} | cat`);
    expect(run.code).toBe(0);
    expect(Buffer.byteLength(run.out)).toBeGreaterThan(64 * 1024);
    const doc = JSON.parse(run.out);
    expect(doc).toMatchObject({ stack: "eu-prod", project: "alphapulse-platform" });
    expect(doc.resources.length).toBeGreaterThan(100);
  }, 120_000);
});
