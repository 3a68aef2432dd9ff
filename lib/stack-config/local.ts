/**
 * The configuration of a local stack (stacks/Pulumi.local-<region>.yaml): one residency region with
 * its own PostgreSQL cluster, PgBouncer and Redis on loopback, and a few sample tenants. Read by the
 * Pulumi program (index.ts, through pulumi.Config) and by the scripts that start the services before
 * `pulumi up` (straight from the YAML file), through the same zod schema, so both refuse the same
 * mistakes with the same key path (`alphapulse-platform:tenants[1].region: ...`).
 *
 * No Pulumi import: pure, tested without the engine.
 */
import { z } from "zod";
import type { TenantTable } from "../schema/catalogue";
import { IDENTIFIER_PATTERN, unsafeSql } from "../db/sql";
import { ResidencyRegion } from "../tenant/model";
import { configKeyPath, ContextKeyIds, readStackFileValues, SampleTenant, StackConfigError } from "./common";

const Port = z.number().int().min(1024).max(65535);

/** A column added to a catalogue table by config: the end-to-end tests use it to prove that a catalogue change reaches the database. */
export const CatalogueColumnExtension = z
  .object({
    table: z.string().regex(IDENTIFIER_PATTERN),
    name: z.string().regex(IDENTIFIER_PATTERN),
    type: z.enum(["text", "integer", "bigint", "boolean", "timestamptz", "numeric(20,8)"]),
  })
  .strict();
export type CatalogueColumnExtension = z.infer<typeof CatalogueColumnExtension>;

/**
 * How the stack's dynamic providers reach PostgreSQL (docs/adr/ADR-004-database-executor.md):
 *   direct    a connection from the provider process (the default);
 *   executor  through the region's local database executor (lib/local/executor-server.ts): a
 *             long-lived process started by `npm run local` that answers like Lambda Invoke and runs
 *             the executor's handler, so the local region runs the AWS regions' code path.
 */
export const DATABASE_TRANSPORTS = ["direct", "executor"] as const;
export const DatabaseTransport = z.enum(DATABASE_TRANSPORTS);
export type DatabaseTransport = z.infer<typeof DatabaseTransport>;

export const LocalStackConfig = z
  .object({
    kind: z.literal("local"),
    region: ResidencyRegion,
    postgres: z.object({ port: Port, database: z.string().regex(IDENTIFIER_PATTERN).default("alphapulse") }).strict(),
    pgbouncer: z.object({ port: Port }).strict(),
    redis: z.object({ port: Port }).strict(),
    /** @default "direct" */
    transport: DatabaseTransport.default("direct"),
    /** The local executor's loopback port: required with `transport: executor`. */
    executor: z.object({ port: Port }).strict().optional(),
    /** Where the services keep their data; default `<repo>/.pulumi-local/<stack>`. */
    dataDir: z.string().min(1).optional(),
    tenants: z.array(SampleTenant).default([]),
    /**
     * Tenant-context key ids (ADR-005), oldest first; services sign with the last. Rotate: add the
     * next id, `npm run local` (both verify; the key file now holds the new one), then remove the old.
     * Default: [`<region>-1`] (RegionalDatabase).
     */
    contextKeys: ContextKeyIds.optional(),
    /** Test-only: extra nullable columns appended to catalogue tables. */
    catalogueExtension: z.array(CatalogueColumnExtension).default([]),
  })
  .strict()
  .superRefine((config, ctx) => {
    config.tenants.forEach((tenant, i) => {
      if (tenant.region !== config.region) {
        ctx.addIssue({
          code: "custom",
          path: ["tenants", i, "region"],
          message: `tenant "${tenant.slug}" has residency "${tenant.region}" but this stack serves "${config.region}"`,
        });
      }
    });
    const slugs = config.tenants.map((t) => t.slug);
    slugs.forEach((slug, i) => {
      if (slugs.indexOf(slug) !== i) ctx.addIssue({ code: "custom", path: ["tenants", i, "slug"], message: `duplicate slug "${slug}"` });
    });
    config.tenants.forEach((tenant, i) => {
      const from = tenant.renamedFrom;
      if (from === undefined) return;
      const problem =
        from === tenant.slug
          ? "is the entry's own slug"
          : slugs.includes(from)
            ? `"${from}" is still declared by another entry`
            : config.tenants.findIndex((t) => t.renamedFrom === from) !== i
              ? `"${from}" is renamed twice`
              : undefined;
      if (problem) ctx.addIssue({ code: "custom", path: ["tenants", i, "renamedFrom"], message: problem });
    });
    if (config.transport === "executor" && config.executor === undefined)
      ctx.addIssue({ code: "custom", path: ["executor", "port"], message: 'is required with transport "executor"' });
    const ports = [config.postgres.port, config.pgbouncer.port, config.redis.port];
    if (new Set(ports).size !== ports.length)
      ctx.addIssue({ code: "custom", path: ["pgbouncer", "port"], message: "postgres, pgbouncer and redis need distinct ports" });
    if (config.executor && ports.includes(config.executor.port))
      ctx.addIssue({ code: "custom", path: ["executor", "port"], message: "must differ from the postgres, pgbouncer and redis ports" });
  });
export type LocalStackConfig = z.infer<typeof LocalStackConfig>;

/**
 * Parses the project-namespace entries of a stack's config (keys without the namespace, values
 * already decoded). Throws a StackConfigError naming the first offending key path.
 */
export function parseLocalStackConfig(values: Record<string, unknown>): LocalStackConfig {
  const result = LocalStackConfig.safeParse(values);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const key = issue.code === "unrecognized_keys" ? [...issue.path, issue.keys[0]] : issue.path;
  throw new StackConfigError(issue.message, configKeyPath(key));
}

/** Reads a local stack's config straight from its YAML file (for the scripts that run before Pulumi). */
export function readLocalStackConfig(repoRoot: string, stack: string): LocalStackConfig {
  return parseLocalStackConfig(readStackFileValues(repoRoot, stack));
}

/** The catalogue with the stack's test-only column extensions appended (nullable, so existing rows stay valid). */
export function extendCatalogue(tables: readonly TenantTable[], extensions: readonly CatalogueColumnExtension[]): TenantTable[] {
  for (const [i, ext] of extensions.entries()) {
    if (!tables.some((t) => t.name === ext.table)) {
      throw new StackConfigError(
        `"${ext.table}" is not a tenant table; known: ${tables.map((t) => t.name).join(", ")}`,
        configKeyPath(["catalogueExtension", i, "table"]),
      );
    }
  }
  return tables.map((table) => {
    // The type is SQL from the config, and safe to splice only because the schema's enum allows a fixed few.
    const extra = extensions.filter((e) => e.table === table.name).map((e) => ({ name: e.name, type: unsafeSql(e.type), nullable: true }));
    return extra.length ? { ...table, columns: [...table.columns, ...extra] } : table;
  });
}
