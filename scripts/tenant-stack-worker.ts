/**
 * One tenant stack operation in its own process, for lib/tenant-stacks/process-driver.ts: reads a
 * TenantJob (JSON) on stdin, runs it through the Automation API, and writes `{ event }` messages and
 * one `{ result }` as JSON lines on file descriptor 3. Exit 0 when the operation succeeded, 1 when it
 * failed (the result says why), 2 when the job could not be read.
 *
 * The environment (backend, passphrase, toolchain) comes from lib/pulumi/env.ts plus whatever the
 * parent set (ALPHAPULSE_TENANT_ENV_JSON: extra variables as a JSON object, used by the tests).
 */
import { createWriteStream } from "node:fs";
import { environmentOverride, inProcessDriver } from "../components/tenant/drivers";
import type { TenantJob } from "../lib/tenant-stacks/jobs";
import type { WorkerMessage } from "../lib/tenant-stacks/process-driver";
import { REPO_ROOT } from "../lib/pulumi/env";
import { runMain } from "../cli/runner";

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

async function main(): Promise<number> {
  const channel = createWriteStream("", { fd: 3 });
  const send = (message: WorkerMessage) => channel.write(JSON.stringify(message) + "\n");
  let job: TenantJob;
  try {
    job = JSON.parse(await readStdin()) as TenantJob;
  } catch (err) {
    process.stderr.write(`tenant-stack-worker: cannot read the job: ${(err as Error).message}\n`);
    return 2;
  }
  const driver = await inProcessDriver({ repoRoot: REPO_ROOT, env: environmentOverride() });
  if ("unavailable" in driver) {
    const slug = job.action === "destroy" ? job.slug : job.spec.slug;
    send({
      result: {
        slug,
        stack: `tenant-${slug}`,
        action: job.action,
        ok: false,
        changes: {},
        durationMs: 0,
        failure: { kind: "failed", message: driver.unavailable },
      },
    });
    await new Promise((r) => channel.end(r));
    return 1;
  }
  const result = await driver.run(job, (event) => send({ event }));
  send({ result });
  await new Promise((r) => channel.end(r));
  return result.ok ? 0 : 1;
}

// No flags; the end of the process (its exit code once stderr has drained) is the runner's (cli/runner.ts).
runMain(() =>
  main().catch((err: unknown) => {
    process.stderr.write(`tenant-stack-worker: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }),
);
