/**
 * `tenancy tenant restore <slug> --as-of <timestamp> --pgbackrest-config <file> [--stanza main]`:
 * the tenant as it was at that time, every other tenant untouched (lib/enterprise/pitr.ts): pgBackRest
 * restores the cluster to the time into a scratch cluster on this host, the tenant is exported
 * there and imported here over its current rows (its writes are held for that transaction).
 * Runs where the pgBackRest repository is reachable; needs free disk for a copy of the cluster.
 */
import { existsSync } from "node:fs";
import { parseRecoveryTarget, PitrError, restoreTenantsAsOf } from "../../lib/enterprise/pitr";
import { optionalFlag, requiredFlag } from "../args";
import { CONNECTION_OPTIONS, withConnection } from "../connection";
import { table, UsageError } from "../output";
import type { Command } from "../command";
import { tenantRef } from "./common";

const STANZA = /^[A-Za-z0-9_.-]+$/;

export const tenantRestoreCommand: Command = {
  words: ["tenant", "restore"],
  summary: "restore one tenant to a point in time from pgBackRest (scratch restore, export, import); others untouched",
  usage: "tenant restore <slug> --as-of <timestamp with zone> --pgbackrest-config <file> [--stanza main]",
  options: { ...CONNECTION_OPTIONS, "as-of": { type: "string" }, "pgbackrest-config": { type: "string" }, stanza: { type: "string" } },
  async run(ctx) {
    const ref = tenantRef(ctx);
    let asOf: string;
    try {
      asOf = parseRecoveryTarget(requiredFlag(ctx, "as-of"));
    } catch (err) {
      if (err instanceof PitrError) throw new UsageError(err.message, "--as-of");
      throw err;
    }
    if (new Date(asOf.replace(" ", "T").replace(/\+00$/, "Z")) > new Date()) throw new UsageError("is in the future", "--as-of");
    const configPath = requiredFlag(ctx, "pgbackrest-config");
    if (!existsSync(configPath)) throw new UsageError(`${configPath} does not exist`, "--pgbackrest-config");
    const stanza = optionalFlag(ctx, "stanza") ?? "main";
    if (!STANZA.test(stanza)) throw new UsageError(`must match ${STANZA}`, "--stanza");
    const report = await withConnection(ctx, (client) =>
      restoreTenantsAsOf(client, [ref], asOf, { configPath, stanza, onProgress: (m) => ctx.out.progress(m) }),
    );
    ctx.out.result(report, () => {
      const t = report.tenants[0];
      return [
        `restored ${t.import.tenant.slug} (${t.import.tenant.id}) as of ${report.asOf}: ${t.import.rows} row(s), replacing ${t.import.replacedRows}`,
        table(
          ["table", "rows", "checksum", "verified by"],
          t.import.tables.map((x) => [x.table, x.rows, x.checksum, x.verified]),
        ),
        `pgBackRest restore ${report.restoreMs} ms, recovery ${report.recoveryMs} ms, total ${report.durationMs} ms`,
      ].join("\n");
    });
  },
};
