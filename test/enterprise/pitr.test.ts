/**
 * Point-in-time recovery end to end, on a throwaway cluster that archives its WAL to a local
 * pgBackRest repository: full backup, writes, time T, more writes (to the tenant and to others),
 * then "restore these tenants as of T" through a scratch cluster. One file, one cluster: it is
 * the slow test of the area.
 */
import path from "node:path";
import { rmSync } from "node:fs";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { graduateTenant } from "../../lib/enterprise/graduation";
import { startPostgres, THROWAWAY_SETTINGS, type PostgresServer } from "../../lib/local/postgres-server";
import { ensureServiceDirectory, freePort, serviceDirectory } from "../../lib/local/processes";
import { archivedClusterSettings, PgBackRest, restoreTenantsAsOf, writeLocalPitrSetup } from "../../lib/enterprise/pitr";
import { SHARED_SCHEMA } from "../../lib/schema/planner";
import { dedicatedSchemaName, type Tenant } from "../../lib/tenant/model";
import { tenantSchema } from "../../lib/tenant/registry";
import { checksums, migratedDatabase, seededTenant, type EnterpriseDb } from "./helpers";

const STANZA = "main";
let root: string;
let server: PostgresServer;
let backrest: PgBackRest;
let env: EnterpriseDb;

beforeAll(async () => {
  root = serviceDirectory("alphapulse-pitr");
  const pgRoot = ensureServiceDirectory(path.join(root, "pg"));
  const port = await freePort();
  const configPath = writeLocalPitrSetup({
    root,
    stanza: STANZA,
    pgPath: path.join(pgRoot, "data"),
    pgPort: port,
    pgSocketPath: path.join(pgRoot, "sockets"),
  });
  const { fsync, synchronous_commit, shared_buffers, max_connections } = THROWAWAY_SETTINGS;
  server = await startPostgres({
    dataDir: path.join(pgRoot, "data"),
    port,
    settings: {
      fsync,
      synchronous_commit,
      shared_buffers,
      max_connections,
      ...stringify(archivedClusterSettings({ stanza: STANZA, configPath })),
    },
  });
  backrest = new PgBackRest(configPath, STANZA);
  await backrest.stanzaCreate();
  const admin = new pg.Client({ connectionString: server.adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE alphapulse`);
  await admin.end();
  env = await migratedDatabase("eu", server.urlFor("alphapulse"));
});

afterAll(async () => {
  await env?.close();
  await server?.stop({ mode: "immediate" });
  rmSync(root, { recursive: true, force: true });
});

function stringify(settings: Record<string, string | number | boolean>): Record<string, string | number> {
  return Object.fromEntries(Object.entries(settings).map(([k, v]) => [k, typeof v === "boolean" ? (v ? "on" : "off") : v]));
}

const write = (c: pg.Client, t: Tenant, symbol: string, n: number) =>
  c.query(
    `INSERT INTO ${tenantSchema(t)}.trades (tenant_id, symbol, side, quantity, price) SELECT $1, $2, 'buy', g, 1 FROM generate_series(1, $3::int) g`,
    [t.id, symbol, n],
  );

describe("point-in-time recovery of single tenants", () => {
  it("restores a shared and a dedicated tenant as of T; every other tenant keeps its current rows", async () => {
    const { admin } = env;
    const victim = await seededTenant(admin, "victim", 300);
    const dedicated = await seededTenant(admin, "vault", 200);
    await graduateTenant(admin, dedicated.slug);
    const vault = { ...dedicated, placement: "dedicated" as const };
    const neighbour = await seededTenant(admin, "neighbour", 250, "pro");
    await backrest.backup("full");
    // pgBackRest picks a backup whose stop time (whole seconds) is before the target.
    await new Promise((r) => setTimeout(r, 1_100));

    // Writes after the backup, before T: they must come back (replayed from the archived WAL).
    await write(admin, victim, "BEFORE-T", 25);
    await write(admin, vault, "BEFORE-T", 5);
    await write(admin, neighbour, "BEFORE-T", 7);
    const victimAtT = await checksums(admin, victim.id, SHARED_SCHEMA);
    const vaultAtT = await checksums(admin, vault.id, dedicatedSchemaName(vault.id));
    const { rows } = await admin.query(`SELECT clock_timestamp() AS t`);
    const T: Date = rows[0].t;
    await new Promise((r) => setTimeout(r, 50));

    // After T: the mistake (a bulk delete and bad updates) and the neighbour's legitimate work.
    await admin.query(`DELETE FROM shared.trades WHERE tenant_id = $1 AND symbol <> 'BEFORE-T'`, [victim.id]);
    await admin.query(`UPDATE shared.positions SET quantity = 0 WHERE tenant_id = $1`, [victim.id]);
    await admin.query(`DELETE FROM ${dedicatedSchemaName(vault.id)}.risk_metrics WHERE tenant_id = $1`, [vault.id]);
    await write(admin, neighbour, "AFTER-T", 11);
    const neighbourNow = await checksums(admin, neighbour.id, SHARED_SCHEMA);
    expect(await checksums(admin, victim.id, SHARED_SCHEMA)).not.toEqual(victimAtT);
    await backrest.check(); // the WAL past T is in the repository

    const report = await restoreTenantsAsOf(admin, [victim.slug, vault.slug], T, { configPath: backrest.configPath, stanza: STANZA });
    expect(report.tenants.map((t) => t.import.tenant.schema)).toEqual([SHARED_SCHEMA, dedicatedSchemaName(vault.id)]);
    expect(report.tenants.every((t) => t.import.tables.every((x) => x.verified === "checksum"))).toBe(true);

    expect(await checksums(admin, victim.id, SHARED_SCHEMA)).toEqual(victimAtT);
    expect(await checksums(admin, vault.id, dedicatedSchemaName(vault.id))).toEqual(vaultAtT);
    expect(await checksums(admin, neighbour.id, SHARED_SCHEMA)).toEqual(neighbourNow);
    // The restored tenants hold the rows written before T and nothing written after.
    const { rows: marks } = await admin.query(
      `SELECT tenant_id, symbol, count(*)::int AS n FROM shared.trades WHERE symbol IN ('BEFORE-T', 'AFTER-T') GROUP BY 1, 2 ORDER BY 2, 3`,
    );
    expect(marks).toEqual([
      { tenant_id: neighbour.id, symbol: "AFTER-T", n: 11 },
      { tenant_id: neighbour.id, symbol: "BEFORE-T", n: 7 },
      { tenant_id: victim.id, symbol: "BEFORE-T", n: 25 },
    ]);
  });
});
