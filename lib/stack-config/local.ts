/**
 * The configuration of a local stack (stacks/Pulumi.local-<region>.yaml): one residency region with
 * its own PostgreSQL cluster, PgBouncer and Redis on loopback, and a few sample tenants. Read by the
 * Pulumi program (index.ts, through pulumi.Config) and by the scripts that start the services before
 * `pulumi up` (straight from the YAML file), through the same zod schema, so both refuse the same
 * mistakes with the same key path (`alphapulse-platform:tenants[1].region: ...`).
 *
 * No Pulumi import: pure, tested without the engine.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import type { TenantTable } from "../schema/catalogue";
import { IDENTIFIER_PATTERN } from "../db/sql";
import { ResidencyRegion, TenantDisplayName, TenantSlug, Tier } from "../tenant/model";

/** The config namespace of this project (Pulumi.yaml `name`). */
export const CONFIG_NAMESPACE = "alphapulse-platform";

/** Stack kinds: `local` (this file) or `aws` (components/aws, issue 7). */
export const STACK_KINDS = ["local", "aws"] as const;
export const StackKind = z.enum(STACK_KINDS);
export type StackKind = z.infer<typeof StackKind>;

const Port = z.number().int().min(1024).max(65535);

export const SampleTenant = z
  .object({
    slug: TenantSlug,
    tier: Tier,
    region: ResidencyRegion,
    displayName: TenantDisplayName.optional(),
  })
  .strict();
export type SampleTenant = z.infer<typeof SampleTenant>;

/** A column added to a catalogue table by config: the end-to-end tests use it to prove that a catalogue change reaches the database. */
export const CatalogueColumnExtension = z
  .object({
    table: z.string().regex(IDENTIFIER_PATTERN),
    name: z.string().regex(IDENTIFIER_PATTERN),
    type: z.enum(["text", "integer", "bigint", "boolean", "timestamptz", "numeric(20,8)"]),
  })
  .strict();
export type CatalogueColumnExtension = z.infer<typeof CatalogueColumnExtension>;

export const LocalStackConfig = z
  .object({
    kind: z.literal("local"),
    region: ResidencyRegion,
    postgres: z.object({ port: Port, database: z.string().regex(IDENTIFIER_PATTERN).default("alphapulse") }).strict(),
    pgbouncer: z.object({ port: Port }).strict(),
    redis: z.object({ port: Port }).strict(),
    /** Where the services keep their data; default `<repo>/.pulumi-local/<stack>`. */
    dataDir: z.string().min(1).optional(),
    tenants: z.array(SampleTenant).default([]),
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
    const ports = [config.postgres.port, config.pgbouncer.port, config.redis.port];
    if (new Set(ports).size !== ports.length)
      ctx.addIssue({ code: "custom", path: ["pgbouncer", "port"], message: "postgres, pgbouncer and redis need distinct ports" });
  });
export type LocalStackConfig = z.infer<typeof LocalStackConfig>;

/** A config value that names the key path it came from, like `alphapulse-platform:tenants[1].region`. */
export class StackConfigError extends Error {
  constructor(
    /** What is wrong with the value, without the key. */
    readonly reason: string,
    readonly key: string,
  ) {
    super(`${key}: ${reason}`);
    this.name = "StackConfigError";
  }
}

/** `["tenants", 1, "region"]` → `alphapulse-platform:tenants[1].region`. */
export function configKeyPath(segments: readonly PropertyKey[]): string {
  const [head, ...rest] = segments;
  const tail = rest.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("");
  return `${CONFIG_NAMESPACE}:${head === undefined ? "" : String(head)}${tail}`;
}

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

/** The stack's kind, from the same values; "local" or "aws". */
export function parseStackKind(values: Record<string, unknown>): StackKind {
  const result = StackKind.safeParse(values.kind);
  if (!result.success) throw new StackConfigError(`must be one of ${STACK_KINDS.join(", ")}`, configKeyPath(["kind"]));
  return result.data;
}

/**
 * Pulumi hands config values to a program as strings (structured values JSON-encoded); this
 * decodes them back. A plain string that is not JSON (`local`, `eu`) stays a string.
 */
export function decodeConfigValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/** The project-namespace entries of `pulumi.runtime.allConfig()`-shaped input (`"ns:key" → string`). */
export function projectConfigValues(all: Record<string, string>): Record<string, unknown> {
  const prefix = `${CONFIG_NAMESPACE}:`;
  return Object.fromEntries(
    Object.entries(all)
      .filter(([key]) => key.startsWith(prefix))
      .map(([key, value]) => [key.slice(prefix.length), decodeConfigValue(value)]),
  );
}

/** The stack file of `stack` under stacks/. */
export function stackFilePath(repoRoot: string, stack: string): string {
  return path.join(repoRoot, "stacks", `Pulumi.${stack}.yaml`);
}

/** The names among `stacks` that have no stack file (a typo in `--stack`). */
export function stacksWithoutFile(repoRoot: string, stacks: readonly string[]): string[] {
  return stacks.filter((stack) => !existsSync(stackFilePath(repoRoot, stack)));
}

/** Reads a local stack's config straight from its YAML file (for the scripts that run before Pulumi). */
export function readLocalStackConfig(repoRoot: string, stack: string): LocalStackConfig {
  const file = stackFilePath(repoRoot, stack);
  const doc = (parseYaml(readFileSync(file, "utf8")) ?? {}) as { config?: Record<string, unknown> };
  const prefix = `${CONFIG_NAMESPACE}:`;
  const values = Object.fromEntries(
    Object.entries(doc.config ?? {})
      .filter(([key]) => key.startsWith(prefix))
      .map(([key, value]) => [key.slice(prefix.length), value]),
  );
  return parseLocalStackConfig(values);
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
    const extra = extensions.filter((e) => e.table === table.name).map((e) => ({ name: e.name, type: e.type, nullable: true }));
    return extra.length ? { ...table, columns: [...table.columns, ...extra] } : table;
  });
}
