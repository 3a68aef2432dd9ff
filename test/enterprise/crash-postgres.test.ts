/**
 * Killing PostgreSQL (immediate shutdown: no checkpoint, crash recovery on start) in the middle of
 * a move, then running the command again. Its own throwaway cluster, so no other test notices.
 */
import path from "node:path";
import { rmSync } from "node:fs";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { demoteTenant, graduateTenant, openMove, type Failpoint } from "../../lib/enterprise/graduation";
import { startPostgres, THROWAWAY_SETTINGS, type PostgresServer } from "../../lib/local/postgres-server";
import { serviceDirectory } from "../../lib/local/processes";
import { SHARED_SCHEMA } from "../../lib/schema/planner";
import { dedicatedSchemaName } from "../../lib/tenant/model";
import { connect } from "../../lib/db/client";
import { checksums, EMPTY, migratedDatabase, ROLES, seededTenant, whereRowsAre, type EnterpriseDb } from "./helpers";

let root: string;
let server: PostgresServer;
let env: EnterpriseDb;
let url: string;

beforeAll(async () => {
  root = serviceDirectory("alphapulse-crash");
  server = await startPostgres({ dataDir: path.join(root, "data"), settings: THROWAWAY_SETTINGS });
  const admin = new pg.Client({ connectionString: server.adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE alphapulse`);
  await admin.end();
  url = server.urlFor("alphapulse");
  env = await migratedDatabase("eu", url);
});

afterAll(async () => {
  await env?.close();
  await server?.stop({ mode: "immediate" });
  rmSync(root, { recursive: true, force: true });
});

/** A failpoint that crashes the server under the running move. */
const killPostgresAt = (point: Failpoint) => async (p: Failpoint) => {
  if (p === point) await server.stop({ mode: "immediate" });
};

describe("PostgreSQL killed mid-move", () => {
  it.each([
    ["graduate", "during-prefill"],
    ["graduate", "cutover-before-commit"],
    ["demote", "cutover-gate-held"],
    ["demote", "during-removal"],
  ] as const)("%s, server killed at %s: after restart and a re-run every row is exactly once in one place", async (direction, point) => {
    const admin = await connect(url);
    const t = await seededTenant(admin, `${direction}-${point}`.slice(0, 40), 150);
    if (direction === "demote") await graduateTenant(admin, t.slug);
    const from = direction === "graduate" ? SHARED_SCHEMA : dedicatedSchemaName(t.id);
    const before = await checksums(admin, t.id, from);
    const run = direction === "graduate" ? graduateTenant : demoteTenant;

    const mover = await connect(new URL(url.replace("postgres@", `${ROLES.migrator}@`)).toString());
    await expect(run(mover, t.slug, { failpoint: killPostgresAt(point) })).rejects.toThrow();
    await server.start();

    const after = await connect(url);
    expect((await whereRowsAre(after, t.id)).routed).toEqual(before); // recovered: complete where requests look
    const again = await run(after, t.slug);
    expect(again.resumed).toBe(true);
    const where = await whereRowsAre(after, t.id);
    if (direction === "graduate") {
      expect(where).toEqual({ placement: "dedicated", routed: before, shared: EMPTY, dedicated: before });
    } else {
      expect(where.placement).toBe("shared");
      expect(where.shared).toEqual(before);
      expect(where.dedicated.trades).toBe("absent");
    }
    expect(await openMove(after, t.id)).toBeUndefined();
    await after.end();
  });
});
