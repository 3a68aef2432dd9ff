/**
 * `npm run local:executor -- --stack local-eu`: the database executor of a local region in the
 * foreground (lib/local/executor-server.ts): Lambda Invoke and Secrets Manager on 127.0.0.1, the
 * executor's handler run in this process against the region's PostgreSQL, one JSON line per
 * invocation on stdout (never the args). Stops on SIGINT/SIGTERM.
 *
 * `npm run local` starts the same process in the background for stacks with `transport: executor`,
 * with explicit options instead of `--stack`:
 *   --port <n> --postgres-port <n> --function-name <name> [--user <role>] [--export-dir <dir>]
 * `--export-dir` is where offboarding exports are kept (`--stack`: `<region data>/exports`).
 * Exit codes: 0 stopped by a signal, 1 failure, 2 bad arguments or stack config.
 */
import path from "node:path";
import { UsageError } from "../cli/output";
import { entryPoint, headerComment, runMain } from "../cli/runner";
import { localExecutorFunctionName, serveLocalExecutor } from "../lib/local/executor-server";
import { regionDataDir, regionExportDir } from "../lib/local/region-services";
import { stacksWithoutFile } from "../lib/stack-config/common";
import { readLocalStackConfig } from "../lib/stack-config/local";
import { REPO_ROOT } from "../lib/pulumi/env";

const USAGE = "usage: npm run local:executor -- --stack <name> | --port <n> --postgres-port <n> --function-name <name> [--user <role>]";

function portOption(value: string | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1024 || port > 65535)
    throw new UsageError(`must be a port number 1024-65535 (got "${value}")`, field);
  return port;
}

const main = entryPoint({
  program: "local-executor",
  usage: USAGE,
  help: () => headerComment(__filename),
  options: {
    stack: { type: "string" },
    port: { type: "string" },
    "postgres-port": { type: "string" },
    "function-name": { type: "string" },
    user: { type: "string" },
    "export-dir": { type: "string" },
  },
  async run({ values, out }) {
    let port = portOption(values.port, "--port");
    let postgresPort = portOption(values["postgres-port"], "--postgres-port");
    let functionName = values["function-name"];
    let exportDir = values["export-dir"] === undefined ? undefined : path.resolve(values["export-dir"]);
    if (values.stack !== undefined) {
      if (stacksWithoutFile(REPO_ROOT, [values.stack]).length)
        throw new UsageError(`no stack file stacks/Pulumi.${values.stack}.yaml`, "--stack");
      const config = readLocalStackConfig(REPO_ROOT, values.stack);
      if (config.executor === undefined)
        throw new UsageError(`${values.stack} declares no executor.port`, "alphapulse-platform:executor.port");
      port ??= config.executor.port;
      postgresPort ??= config.postgres.port;
      functionName ??= localExecutorFunctionName(values.stack);
      exportDir ??= regionExportDir(regionDataDir(REPO_ROOT, values.stack, config));
    }
    if (port === undefined) throw new UsageError("name --stack, or --port", "--port", USAGE);
    if (postgresPort === undefined) throw new UsageError("name --stack, or --postgres-port", "--postgres-port", USAGE);
    if (!functionName) throw new UsageError("name --stack, or --function-name", "--function-name", USAGE);

    const endpoint = await serveLocalExecutor({ functionName, port, postgresPort, user: values.user, exportDir });
    out.progress(`executor ${functionName} on ${endpoint.url} → PostgreSQL 127.0.0.1:${postgresPort}`);
    await new Promise<void>((resolve) => {
      for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => resolve());
    });
    await endpoint.close();
    return 0;
  },
});

runMain(main);
