/**
 * `tenancy capacity [--memory-mib N]`: the cluster's cap on dedicated schemas and what it comes
 * from (lib/enterprise/schema-capacity.ts): connections, memory, catalog cache per schema, and the
 * max_locks_per_transaction the cap needs. Exit 1 when the running server's lock table is too
 * small for the schemas already there.
 */
import { capacityReport } from "../../lib/enterprise/dedicated";
import { requiredMaxLocksPerTransaction } from "../../lib/enterprise/schema-capacity";
import { optionalFlag, parseInteger, positionals } from "../args";
import { CONNECTION_OPTIONS, withConnection } from "../connection";
import { table } from "../output";
import type { Command } from "../command";

export const capacityCommand: Command = {
  words: ["capacity"],
  summary: "dedicated schema cap (from connections and memory) and the max_locks_per_transaction it needs",
  usage: "capacity [--memory-mib N]",
  options: { ...CONNECTION_OPTIONS, "memory-mib": { type: "string" } },
  async run(ctx) {
    positionals(ctx, []);
    const memory = optionalFlag(ctx, "memory-mib");
    const memoryMiB = memory === undefined ? undefined : parseInteger(memory, "--memory-mib", 256, 16 * 1024 * 1024);
    const report = await withConnection(ctx, (client) => capacityReport(client, memoryMiB === undefined ? {} : { memoryMiB }));
    const neededNow = requiredMaxLocksPerTransaction(report.dedicatedSchemas, report.inputs);
    const ok = report.inputs.maxLocksPerTransaction >= neededNow;
    ctx.out.result({ ...report, maxLocksNeededNow: neededNow, ok }, () =>
      table(
        ["", "value"],
        [
          ["dedicated schemas", `${report.dedicatedSchemas} of ${report.maxDedicatedSchemas}`],
          ["max_connections", report.inputs.maxConnections],
          [
            "memory",
            `${report.inputs.memoryMiB} MiB (${report.inputs.memorySource === "shared_buffers" ? "assumed 4 × shared_buffers: set alphapulse.memory_mib" : report.inputs.memorySource})`,
          ],
          ["catalog cache per schema per backend", `${Math.round(report.catalogCacheBytesPerSchema / 1024)} KB`],
          ["lockable relations per schema", report.lockableRelationsPerSchema],
          [
            "max_locks_per_transaction",
            `${report.inputs.maxLocksPerTransaction} (cap needs ${report.maxLocksPerTransaction}, schemas now need ${neededNow})`,
          ],
        ],
      ),
    );
    return ok ? 0 : 1;
  },
};
