import { describe, expect, it } from "vitest";
import { TENANT_TABLES, tenantTable, type TenantTable } from "../../lib/schema/catalogue";
import { unsafeSql } from "../../lib/db/sql";
import { planTenantLoginRole } from "../../lib/enterprise/dedicated";
import { failpointFromEnv, FAILPOINTS } from "../../lib/enterprise/graduation";
import {
  catalogCacheBytesPerSchema,
  checkCapacity,
  lockableRelationsPerSchema,
  requiredMaxLocksPerTransaction,
  schemaCapacity,
  schemaCapacitySettings,
} from "../../lib/enterprise/schema-capacity";
import {
  archivedClusterSettings,
  localPgbackrestConf,
  parseRecoveryTarget,
  restoreArguments,
  scratchClusterSettings,
} from "../../lib/enterprise/pitr";
import {
  renderChecksum,
  renderCompare,
  renderDiffKeys,
  renderMissingKeys,
  renderSyncDelete,
  renderSyncUpsert,
  renderUpsertKeys,
} from "../../lib/enterprise/tenant-rows";

describe("schema capacity", () => {
  it("counts the relations of one tenant schema from the catalogue", () => {
    // table + TOAST table + TOAST index + primary key + created_at index + the catalogue's indexes
    expect(lockableRelationsPerSchema()).toBe(6 + 6 + 9 + 6 + 7);
    expect(lockableRelationsPerSchema([tenantTable("positions")])).toBe(6);
    expect(catalogCacheBytesPerSchema()).toBe(52 * 1024);
    expect(catalogCacheBytesPerSchema([...TENANT_TABLES, ...TENANT_TABLES])).toBe(104 * 1024);
  });

  it.each([
    // memory MiB, max_connections → cap, max_locks_per_transaction
    { memoryMiB: 16_384, maxConnections: 200, cap: 403, locks: 88 },
    { memoryMiB: 16_384, maxConnections: 100, cap: 806, locks: 347 },
    { memoryMiB: 65_536, maxConnections: 200, cap: 1613, locks: 345 },
    { memoryMiB: 4_096, maxConnections: 400, cap: 50, locks: 64 },
    { memoryMiB: 512, maxConnections: 300, cap: 8, locks: 64 },
  ])(
    "$memoryMiB MiB and $maxConnections connections: cap $cap, max_locks_per_transaction $locks",
    ({ memoryMiB, maxConnections, cap, locks }) => {
      const c = schemaCapacity({ memoryMiB, maxConnections });
      expect(c.maxDedicatedSchemas).toBe(cap);
      expect(c.maxLocksPerTransaction).toBe(locks);
      expect(schemaCapacitySettings({ memoryMiB, maxConnections })).toEqual({
        max_locks_per_transaction: locks,
        "alphapulse.memory_mib": memoryMiB,
      });
      // The lock table really covers the cap: slots × locks ≥ every relation, with headroom.
      expect(locks * maxConnections).toBeGreaterThanOrEqual((cap + 1) * 34 + 256);
    },
  );

  it("sizes locks with prepared transactions too, and never below PostgreSQL's default", () => {
    expect(requiredMaxLocksPerTransaction(1000, { maxConnections: 100, maxPreparedTransactions: 100 })).toBe(
      Math.ceil(((1001 * 34 + 256) * 1.25) / 200),
    );
    expect(requiredMaxLocksPerTransaction(0, { maxConnections: 1000 })).toBe(64);
  });

  it("refuses the schema after the cap, and too small a lock table, with messages that say what to change", () => {
    const inputs = { memoryMiB: 512, maxConnections: 300 };
    expect(checkCapacity(inputs, 7, 64)).toBeUndefined();
    expect(checkCapacity(inputs, 8, 64)).toEqual({
      kind: "cap",
      message:
        "dedicated schema cap reached: 8 of 8 in use. The cap comes from max_connections=300 and 512 MiB of memory (25% for catalog caches, " +
        "~52 KB per schema per backend). Lower max_connections behind PgBouncer, give the cluster more memory, or demote a tenant.",
    });
    const big = { memoryMiB: 65_536, maxConnections: 100 };
    expect(checkCapacity(big, 200, 64)).toMatchObject({ kind: "locks", required: 90 });
    expect(checkCapacity(big, 200, 90)).toBeUndefined();
  });

  it("rejects nonsense inputs", () => {
    expect(() => schemaCapacity({ memoryMiB: 0, maxConnections: 10 })).toThrow(/memoryMiB/);
    expect(() => schemaCapacity({ memoryMiB: 10, maxConnections: 0 })).toThrow(/maxConnections/);
    expect(() => schemaCapacity({ memoryMiB: 10, maxConnections: 10, catalogCacheFraction: 2 })).toThrow(/catalogCacheFraction/);
  });
});

const tiny: TenantTable = {
  name: "notes",
  description: "test",
  columns: [{ name: "body", type: unsafeSql("text") }],
};

describe("tenant row SQL", () => {
  it.each([
    [
      "checksum (every column but tenant_id, order-independent)",
      renderChecksum("shared", tiny),
      `SELECT count(*)::bigint AS rows, coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint::numeric), 0)::text AS hi, ` +
        `coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint::numeric), 0)::text AS lo ` +
        `FROM (SELECT md5(ROW(t."id", t."created_at", t."body")::text) AS h FROM "shared"."notes" t WHERE t.tenant_id = $1) r`,
    ],
    [
      "missing keys (anti-join)",
      renderMissingKeys("shared", "tenant_x", tiny),
      `SELECT f.id::text AS id FROM "shared"."notes" f WHERE f.tenant_id = $1 AND NOT EXISTS ` +
        `(SELECT 1 FROM "tenant_x"."notes" x WHERE x.tenant_id = $1 AND x.id = f.id) ORDER BY f.id LIMIT $2`,
    ],
    [
      "sync delete",
      renderSyncDelete("shared", "tenant_x", tiny),
      `DELETE FROM "tenant_x"."notes" d WHERE d.tenant_id = $1 AND NOT EXISTS (SELECT 1 FROM "shared"."notes" s WHERE s.tenant_id = $1 AND s.id = d.id)`,
    ],
    [
      "sync upsert (missing or different rows only)",
      renderSyncUpsert("shared", "tenant_x", tiny),
      `INSERT INTO "tenant_x"."notes" AS d ("tenant_id", "id", "created_at", "body") SELECT s."tenant_id", s."id", s."created_at", s."body" ` +
        `FROM "shared"."notes" s LEFT JOIN "tenant_x"."notes" x ON x.tenant_id = s.tenant_id AND x.id = s.id ` +
        `WHERE s.tenant_id = $1 AND (x.id IS NULL OR ROW(x."created_at", x."body") IS DISTINCT FROM ROW(s."created_at", s."body")) ` +
        `ON CONFLICT (tenant_id, id) DO UPDATE SET "created_at" = EXCLUDED."created_at", "body" = EXCLUDED."body"`,
    ],
    [
      "diff keys (one full join: missing, extra or different)",
      renderDiffKeys("shared", "tenant_x", tiny),
      `SELECT s.id::text AS source_id, x.id::text AS target_id FROM (SELECT "id", "created_at", "body" FROM "shared"."notes" WHERE tenant_id = $1) s ` +
        `FULL JOIN (SELECT "id", "created_at", "body" FROM "tenant_x"."notes" WHERE tenant_id = $1) x ON x.id = s.id ` +
        `WHERE s.id IS NULL OR x.id IS NULL OR ROW(s."created_at", s."body") IS DISTINCT FROM ROW(x."created_at", x."body") LIMIT $2`,
    ],
    [
      "upsert by keys",
      renderUpsertKeys("shared", "tenant_x", tiny),
      `INSERT INTO "tenant_x"."notes" AS d ("tenant_id", "id", "created_at", "body") SELECT s."tenant_id", s."id", s."created_at", s."body" ` +
        `FROM "shared"."notes" s WHERE s.tenant_id = $1 AND s.id = ANY($2::uuid[]) ON CONFLICT (tenant_id, id) DO UPDATE SET "created_at" = EXCLUDED."created_at", "body" = EXCLUDED."body"`,
    ],
    [
      "compare (counts, anti-joins both ways, different rows, checksums of both sides, one pass)",
      renderCompare("shared", "tenant_x", tiny),
      `SELECT count(s.id)::bigint AS source_rows, count(x.id)::bigint AS target_rows, ` +
        `count(*) FILTER (WHERE s.id IS NOT NULL AND x.id IS NOT NULL AND ROW(s."created_at", s."body") IS DISTINCT FROM ROW(x."created_at", x."body"))::bigint AS different, ` +
        `coalesce((array_agg(s.id::text ORDER BY s.id) FILTER (WHERE x.id IS NULL))[1:10], '{}') AS missing, ` +
        `coalesce((array_agg(x.id::text ORDER BY x.id) FILTER (WHERE s.id IS NULL))[1:10], '{}') AS extra, ` +
        `coalesce(sum(hash_record_extended(ROW(s."id", s."created_at", s."body"), 0)::numeric) FILTER (WHERE s.id IS NOT NULL), 0)::text AS s_hi, ` +
        `coalesce(sum(hash_record_extended(ROW(s."id", s."created_at", s."body"), 1)::numeric) FILTER (WHERE s.id IS NOT NULL), 0)::text AS s_lo, ` +
        `coalesce(sum(hash_record_extended(ROW(x."id", x."created_at", x."body"), 0)::numeric) FILTER (WHERE x.id IS NOT NULL), 0)::text AS x_hi, ` +
        `coalesce(sum(hash_record_extended(ROW(x."id", x."created_at", x."body"), 1)::numeric) FILTER (WHERE x.id IS NOT NULL), 0)::text AS x_lo ` +
        `FROM (SELECT "id", "created_at", "body" FROM "shared"."notes" WHERE tenant_id = $1) s ` +
        `FULL JOIN (SELECT "id", "created_at", "body" FROM "tenant_x"."notes" WHERE tenant_id = $1) x ON x.id = s.id`,
    ],
  ])("%s", (_name, sql, expected) => {
    expect(sql).toBe(expected);
  });

  it("refuses identifiers outside the allow-list", () => {
    expect(() => renderChecksum('shared"; DROP TABLE x; --', tiny)).toThrow(/invalid SQL identifier/);
  });
});

describe("dedicated login role plan", () => {
  const id = "0b5e8f3c-1d2a-4c8e-9f1a-2b3c4d5e6f70";
  const role = `"tenant_0b5e8f3c1d2a4c8e9f1a2b3c4d5e6f70_login"`;
  const schema = `"tenant_0b5e8f3c1d2a4c8e9f1a2b3c4d5e6f70"`;

  it("creates the role with its limits, per-database routing, and exactly its grants and policies", () => {
    const plan = planTenantLoginRole(
      { id, tier: "enterprise" },
      "alphapulse",
      { exists: false, policies: new Set(["positions"]) },
      { connectionLimit: 5, tables: [tenantTable("positions"), tenantTable("trades")] },
    );
    expect(plan.role).toEqual([
      `CREATE ROLE ${role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT CONNECTION LIMIT 5`,
      `ALTER ROLE ${role} SET statement_timeout = 30000`,
      `ALTER ROLE ${role} IN DATABASE "alphapulse" SET search_path = ${schema}`,
      `ALTER ROLE ${role} IN DATABASE "alphapulse" SET app.current_tenant_id = '${id}'`,
      `GRANT CONNECT ON DATABASE "alphapulse" TO ${role}`,
    ]);
    expect(plan.objects).toEqual([
      `GRANT USAGE ON SCHEMA ${schema} TO ${role}`,
      `GRANT USAGE ON SCHEMA "tenancy" TO ${role}`,
      `GRANT SELECT ON "tenancy"."tenants" TO ${role}`,
      `GRANT EXECUTE ON FUNCTION "tenancy"."setting_tenant_id"(), "tenancy"."current_tenant_id"() TO ${role}`,
      `GRANT SELECT, INSERT, UPDATE, DELETE ON ${schema}."positions" TO ${role}`,
      `GRANT SELECT, INSERT, UPDATE, DELETE ON ${schema}."trades" TO ${role}`,
      `CREATE POLICY tenant_login ON ${schema}."trades" AS PERMISSIVE FOR ALL TO ${role} USING (tenant_id = '${id}'::uuid) WITH CHECK (tenant_id = '${id}'::uuid)`,
    ]);
  });

  it("alters an existing role, takes the tier's timeout by default, and validates limits", () => {
    const plan = planTenantLoginRole({ id, tier: "pro" }, "db", { exists: true, policies: new Set() }, { password: "it's" });
    expect(plan.role[0]).toBe(`ALTER ROLE ${role} LOGIN NOCREATEDB NOCREATEROLE NOINHERIT CONNECTION LIMIT 20 PASSWORD 'it''s'`);
    expect(plan.role[1]).toBe(`ALTER ROLE ${role} SET statement_timeout = 10000`);
    expect(() => planTenantLoginRole({ id, tier: "pro" }, "db", { exists: true, policies: new Set() }, { connectionLimit: 0 })).toThrow(
      /connectionLimit/,
    );
    expect(() => planTenantLoginRole({ id: "nope", tier: "pro" }, "db", { exists: true, policies: new Set() })).toThrow();
  });
});

describe("failpoints from the environment", () => {
  it("is off without TENANCY_FAILPOINT and refuses unknown names", () => {
    expect(failpointFromEnv({})).toBeUndefined();
    expect(typeof failpointFromEnv({ TENANCY_FAILPOINT: FAILPOINTS[0] })).toBe("function");
    expect(() => failpointFromEnv({ TENANCY_FAILPOINT: "after-lunch" })).toThrow(/must be one of/);
  });
});

describe("PITR configuration and commands", () => {
  it.each([
    ["2025-10-20T14:05:00Z", "2025-10-20 14:05:00.000000+00"],
    ["2025-10-20 16:05:00.123456+02:00", "2025-10-20 14:05:00.123456+00"],
    ["2025-10-20T16:05+0200", "2025-10-20 14:05:00.000000+00"],
    ["2025-10-20T09:05:00.5-05", "2025-10-20 14:05:00.500000+00"],
  ])("parses %s as %s", (input, target) => {
    expect(parseRecoveryTarget(input)).toBe(target);
  });

  it.each(["2025-10-20 14:05:00", "yesterday", "2025-13-40T99:00:00Z", "1700000000"])("refuses %s (no zone or not a time)", (input) => {
    expect(() => parseRecoveryTarget(input)).toThrow(/timestamp with a time zone/);
  });

  it("restores into a scratch directory to a time, promotes, and never archives from the copy", () => {
    expect(
      restoreArguments({ configPath: "/r/pgbackrest.conf", stanza: "main", pgPath: "/s/data", target: "2025-10-20T14:05:00.25Z" }),
    ).toEqual([
      "--config=/r/pgbackrest.conf",
      "--stanza=main",
      "--pg1-path=/s/data",
      "--archive-mode=off",
      "--log-level-console=warn",
      "--type=time",
      "--target=2025-10-20 14:05:00.250000+00",
      "--target-action=promote",
      "restore",
    ]);
    expect(restoreArguments({ configPath: "/c", stanza: "main", pgPath: "/d" }).slice(-1)).toEqual(["restore"]);
  });

  it("renders a local repository through the shared pgbackrest.conf renderer, and archiving through postgres-config", () => {
    expect(localPgbackrestConf({ root: "/r", stanza: "main", pgPath: "/p/data", pgPort: 5433, pgSocketPath: "/p/sockets" })).toBe(
      [
        "# Rendered by lib/enterprise/pitr.ts localPgbackrestConf: local repository for point-in-time recovery.",
        "",
        "[global]",
        "repo1-type=posix",
        "repo1-path=/r/repo",
        "repo1-retention-full-type=count",
        "repo1-retention-full=2",
        "process-max=2",
        "compress-type=lz4",
        "start-fast=y",
        "delta=y",
        "log-path=/r/log",
        "log-level-file=info",
        "lock-path=/r/lock",
        "",
        "[main]",
        "pg1-path=/p/data",
        "pg1-port=5433",
        "pg1-socket-path=/p/sockets",
        "",
      ].join("\n"),
    );
    expect(archivedClusterSettings({ stanza: "main", configPath: "/r/pgbackrest.conf" })).toEqual({
      wal_level: "replica",
      archive_mode: "on",
      archive_command: "pgbackrest --config=/r/pgbackrest.conf --stanza=main archive-push %p",
      archive_timeout: 60,
      max_wal_senders: 3,
    });
    expect(scratchClusterSettings({ port: 6000, socketDir: "/s/sockets" })).toMatchObject({
      port: 6000,
      archive_mode: "off",
      listen_addresses: "127.0.0.1",
    });
  });
});
