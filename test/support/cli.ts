/** The `tenancy` CLI run in-process, as a user would run it, with its output captured. */
import { vi } from "vitest";
import { main } from "../../cli/tenancy";

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON when it is JSON (commands run with --json), else undefined. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the JSON of any command, asserted field by field
  json: any;
}

/** Runs `tenancy <argv…>`; returns the exit code, stdout, stderr and the parsed JSON output. */
export async function tenancy(...argv: string[]): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  const out = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => ((stdout += String(chunk)), true));
  const err = vi.spyOn(process.stderr, "write").mockImplementation((chunk) => ((stderr += String(chunk)), true));
  try {
    const code = await main(argv);
    let json: unknown;
    try {
      json = JSON.parse(stdout);
    } catch {
      json = undefined;
    }
    return { code, stdout, stderr, json };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}
