/**
 * `npm run local:services -- start|stop|status [--stack local-eu ...] [--json]`: the loopback servers
 * of the local stacks (PostgreSQL, Redis, PgBouncer per region), from stacks/Pulumi.<stack>.yaml.
 * `npm run local` calls `start` itself; this is for starting, stopping or inspecting them by hand.
 */
import { table, UsageError } from "../cli/output";
import { entryPoint, runMain } from "../cli/runner";
import { readLocalStackConfig } from "../lib/stack-config/local";
import { stacksWithoutFile } from "../lib/stack-config/common";
import {
  regionServicesStatus,
  startRegionPgbouncer,
  startRegionServices,
  stopRegionServices,
  type ServiceStatus,
} from "../lib/local/region-services";
import { REPO_ROOT } from "../lib/pulumi/env";

export const LOCAL_STACKS = ["local-eu", "local-us"] as const;

/** PostgreSQL and Redis; then PgBouncer, which needs the roles a `pulumi up` of the stack created. */
async function startAll(
  stack: string,
  config: ReturnType<typeof readLocalStackConfig>,
  log: (m: string) => void,
): Promise<ServiceStatus[]> {
  const { services } = await startRegionServices(REPO_ROOT, stack, config, { onProgress: log });
  try {
    const pgbouncer = await startRegionPgbouncer(REPO_ROOT, stack, config, config.postgres.database, { onProgress: log });
    return services.map((s) => (s.name === "pgbouncer" ? pgbouncer : s));
  } catch (err) {
    return services.map((s) => (s.name === "pgbouncer" ? { ...s, detail: `not started: ${(err as Error).message}` } : s));
  }
}

const USAGE = "usage: npm run local:services -- start|stop|status [--stack <name>]... [--remove-data] [--json]";

const main = entryPoint({
  program: "local-services",
  usage: USAGE,
  options: {
    stack: { type: "string", multiple: true },
    "remove-data": { type: "boolean", default: false },
  },
  allowPositionals: true,
  async run({ values, positionals }) {
    const action = positionals[0] ?? "status";
    if (!["start", "stop", "status"].includes(action) || positionals.length > 1)
      throw new UsageError(`unknown action "${positionals.join(" ")}"`, "action", USAGE);
    const stacks = values.stack ?? [...LOCAL_STACKS];
    const unknown = stacksWithoutFile(REPO_ROOT, stacks);
    if (unknown.length) throw new UsageError(`no stack file stacks/Pulumi.<name>.yaml for ${unknown.join(", ")}`, "--stack");
    const results: { stack: string; services: ServiceStatus[] }[] = [];
    for (const stack of stacks) {
      const config = readLocalStackConfig(REPO_ROOT, stack);
      const log = (message: string) => process.stderr.write(message + "\n");
      const services =
        action === "start"
          ? await startAll(stack, config, log)
          : action === "stop"
            ? await stopRegionServices(REPO_ROOT, stack, config, { removeData: values["remove-data"] })
            : await regionServicesStatus(REPO_ROOT, stack, config);
      results.push({ stack, services });
    }
    if (values.json) process.stdout.write(JSON.stringify({ action, stacks: results }, null, 2) + "\n");
    else {
      const rows = results.flatMap((r) =>
        r.services.map((s) => [r.stack, s.name, `127.0.0.1:${s.port}`, s.state, s.detail ?? s.dir ?? ""]),
      );
      process.stdout.write(table(["stack", "service", "address", "state", "where"], rows) + "\n");
    }
    return 0;
  },
});

runMain(main);
