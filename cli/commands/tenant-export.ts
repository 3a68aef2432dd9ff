/**
 * `tenancy tenant export <slug> --out <file>`: one tenant's rows in the versioned export format
 * (docs/enterprise.md), gzip when the name ends in .gz. The file appears only once complete and
 * verified against the source; an existing file is never overwritten.
 */
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { exportTenant } from "../../lib/enterprise/export";
import { requiredFlag } from "../args";
import { CONNECTION_OPTIONS, withConnection } from "../connection";
import { table, UsageError } from "../output";
import type { Command } from "../command";
import { findOrUsage, tenantRef } from "./common";

export const tenantExportCommand: Command = {
  words: ["tenant", "export"],
  summary: "export one tenant's rows to a checksummed file (shared or dedicated)",
  usage: "tenant export <slug> --out <file[.gz]>",
  options: { ...CONNECTION_OPTIONS, out: { type: "string" } },
  async run(ctx) {
    const ref = tenantRef(ctx);
    const out = requiredFlag(ctx, "out");
    if (existsSync(out)) throw new UsageError(`${out} exists; refusing to overwrite it`, "--out");
    const dir = path.dirname(path.resolve(out));
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`directory ${dir} does not exist`, "--out");
    const report = await withConnection(ctx, async (client) => {
      const tenant = await findOrUsage(client, ref);
      return exportTenant(client, tenant.id, out, { onProgress: (m) => ctx.out.progress(m) });
    });
    ctx.out.result(report, () =>
      [
        `exported ${report.tenant.slug} (${report.tenant.id}, region ${report.tenant.region}, ${report.tenant.placement}) to ${report.file}`,
        table(
          ["table", "rows", "checksum"],
          report.tables.map((t) => [t.table, t.rows, t.checksum]),
        ),
        `${report.rows} row(s), ${report.bytes} bytes, catalogue ${report.fingerprint}, ${report.durationMs} ms`,
      ].join("\n"),
    );
  },
};
