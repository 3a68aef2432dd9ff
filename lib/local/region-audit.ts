/**
 * The isolation audit that `npm run local` prints for the local regions. Per region database:
 *   - the structural audit (lib/audit/isolation-audit.ts `auditDatabase`: RLS, policies, grants, role posture, …);
 *   - residency: the database records the stack's region and every registered tenant belongs to it;
 *   - a live probe, rolled back: a marker row per tenant, then inside each tenant's context (as the
 *     application role, through `tenancy.enter_tenant`, or in a strict database (ADR-005) through
 *     `tenancy.enter_verified_tenant` with a proof of a probe key installed inside the same
 *     rolled-back transaction) no catalogue table may show another tenant's row, while the tenant's
 *     own marker is visible (the probe reads something) and a role that bypasses RLS sees every
 *     marker (so the zero is the policy at work, not an empty table).
 *   - through PgBouncer (when given its URL): the application role logs in with SCRAM, lands in a
 *     tenant's context, and sees no other tenant's row; in a strict database (the audit holds no
 *     key there) it sees no row at all without a proof, and the raw `enter_tenant` is refused.
 * Across regions: no tenant (id or slug) may be registered in two regions.
 */
import pg from "pg";
import { auditDatabase } from "../audit/isolation-audit";
import { TENANT_TABLES } from "../schema/catalogue";
import { connect, withTransaction, type Queryable } from "../db/client";
import { ROLES } from "../schema/roles";
import { qualified, ident } from "../db/sql";
import type { ResidencyRegion, Tenant } from "../tenant/model";
import { listTenants, tenantSchema } from "../tenant/registry";
import { readTenantContextMode, type TenantContextMode } from "../schema/planner";
import { generateContextSecret, hmacPads, mintTenantProof, type ContextKey } from "../tenant-context/proof";

export interface RegionAuditInput {
  stack: string;
  region: ResidencyRegion;
  /** Superuser URL of the region's database. */
  adminUrl: string;
  /** Tenants the stack declares (slug → id); each must be registered here. */
  expectedTenants: Record<string, string>;
  /** The application role's URL through the region's PgBouncer: checked when given. */
  pooledAppUrl?: string;
  /** The services' context key (a strict database): the pooled probe enters a tenant with a proof of it. */
  contextKey?: ContextKey;
}

export interface RegionAudit {
  stack: string;
  region: ResidencyRegion;
  /** What was checked, in words. */
  checks: string[];
  /** One line per problem; empty when the region is clean. */
  findings: string[];
  tenants: { slug: string; id: string; region: string; placement: string }[];
}

const PROBE_SYMBOL = "ISOLATION-PROBE";

/** Residency problems of one region (pure). */
export function residencyFindings(
  input: Pick<RegionAuditInput, "region" | "expectedTenants">,
  databaseRegion: string | null,
  tenants: Pick<Tenant, "id" | "slug" | "region">[],
): string[] {
  const out: string[] = [];
  if (databaseRegion !== input.region)
    out.push(`residency: the database records region ${JSON.stringify(databaseRegion)}, the stack serves "${input.region}"`);
  for (const t of tenants)
    if (t.region !== input.region)
      out.push(`residency: tenant ${t.slug} (${t.id}) is of region "${t.region}" in the "${input.region}" database`);
  for (const [slug, id] of Object.entries(input.expectedTenants)) {
    if (!tenants.some((t) => t.id === id && t.slug === slug))
      out.push(`registry: tenant ${slug} (${id}) declared by the stack is not registered`);
  }
  return out;
}

/** Tenants registered in more than one region (pure). */
export function crossRegionFindings(regions: { stack: string; tenants: Pick<Tenant, "id" | "slug">[] }[]): string[] {
  const seen = new Map<string, string>();
  const out: string[] = [];
  for (const r of regions) {
    for (const t of r.tenants) {
      for (const key of [`id ${t.id}`, `slug ${t.slug}`]) {
        const other = seen.get(key);
        if (other && other !== r.stack) out.push(`residency: tenant ${key} is registered in both ${other} and ${r.stack}`);
        else seen.set(key, r.stack);
      }
    }
  }
  return out;
}

/** The live, rolled-back probe described in the file comment. Returns findings. */
export async function isolationProbe(
  client: Queryable,
  tenants: Pick<Tenant, "id" | "slug" | "placement" | "status">[],
): Promise<string[]> {
  const active = tenants.filter((t) => t.status === "active");
  if (active.length < 2) return [];
  const findings: string[] = [];
  await withTransaction(client, async (tx) => {
    const key = (await readTenantContextMode(tx)) === "verified" ? await installProbeKey(tx) : undefined;
    for (const t of active) {
      await tx.query(
        `INSERT INTO ${qualified(tenantSchema(t), "positions")} (tenant_id, symbol, quantity, average_price) VALUES ($1, $2, 1, 1)`,
        [t.id, PROBE_SYMBOL],
      );
    }
    for (const t of active) {
      await tx.query(`SET LOCAL ROLE ${ident(ROLES.app)}`);
      if (key) await tx.query("SELECT tenancy.enter_verified_tenant($1)", [mintTenantProof(key, t.id)]);
      else await tx.query("SELECT tenancy.enter_tenant($1)", [t.id]);
      for (const table of TENANT_TABLES) {
        const { rows } = await tx.query(
          `SELECT count(*) FILTER (WHERE tenant_id <> $1)::int AS foreign_rows, count(*) FILTER (WHERE tenant_id = $1 AND $2)::int AS own_markers FROM ${ident(table.name)}`,
          [t.id, table.name === "positions"],
        );
        if (rows[0].foreign_rows > 0)
          findings.push(`isolation: tenant ${t.slug} sees ${rows[0].foreign_rows} row(s) of other tenants in ${table.name}`);
        if (table.name === "positions" && rows[0].own_markers < 1)
          findings.push(`isolation probe: tenant ${t.slug} cannot see its own marker row (the probe read nothing)`);
      }
      await tx.query("RESET ROLE");
    }
    // Negative control: bypassing RLS, every marker is there.
    const { rows } = await tx.query(
      `SELECT count(*)::int AS n FROM (${[...new Set(active.map((t) => tenantSchema(t)))].map((s) => `SELECT tenant_id FROM ${qualified(s, "positions")} WHERE symbol = $1`).join(" UNION ALL ")}) m`,
      [PROBE_SYMBOL],
    );
    if (rows[0].n !== active.length)
      findings.push(`isolation probe: expected ${active.length} marker rows bypassing RLS, found ${rows[0].n}`);
    // Leave nothing behind.
    throw new RollbackProbe();
  }).catch((err: unknown) => {
    if (!(err instanceof RollbackProbe)) throw err;
  });
  return findings;
}

class RollbackProbe extends Error {}

/** A context key that lives only inside the probe's transaction (which is always rolled back). */
async function installProbeKey(tx: Queryable): Promise<ContextKey> {
  const { rows } = await tx.query(`SELECT region FROM tenancy.database_settings`);
  const key: ContextKey = { kid: `probe-${Date.now().toString(36)}`, region: rows[0]?.region ?? "eu", secret: generateContextSecret() };
  const pads = hmacPads(key.secret);
  await tx.query(`SET LOCAL ROLE ${ident(ROLES.owner)}`);
  await tx.query(`INSERT INTO tenancy_private.context_keys (kid, region, inner_pad, outer_pad) VALUES ($1, $2, $3, $4)`, [
    key.kid,
    key.region,
    pads.inner,
    pads.outer,
  ]);
  await tx.query("RESET ROLE");
  return key;
}

/**
 * Through PgBouncer, as the application role: logs in, enters a tenant, sees none of the others'
 * rows. In a strict database the raw entry must be refused and nothing visible without a proof.
 */
export async function pooledProbe(
  url: string,
  tenants: Pick<Tenant, "id" | "slug" | "status">[],
  mode: TenantContextMode = "setting",
  contextKey?: ContextKey,
): Promise<string[]> {
  const tenant = tenants.find((t) => t.status === "active");
  if (!tenant) return [];
  let client: pg.Client;
  try {
    client = await connect(url, { connectionTimeoutMillis: 5000 });
  } catch (err) {
    return [`pgbouncer: ${ROLES.app} cannot connect through PgBouncer: ${(err as Error).message}`];
  }
  try {
    const out = mode === "verified" ? await strictPooledProbe(client, tenant) : [];
    if (mode === "verified" && !contextKey) return out;
    await client.query("BEGIN");
    if (contextKey) await client.query("SELECT tenancy.enter_verified_tenant($1)", [mintTenantProof(contextKey, tenant.id)]);
    else await client.query("SELECT tenancy.enter_tenant($1)", [tenant.id]);
    const { rows } = await client.query(
      "SELECT current_user AS who, (SELECT count(*)::int FROM positions WHERE tenant_id <> $1) AS foreign_rows",
      [tenant.id],
    );
    await client.query("COMMIT");
    if (rows[0].who !== ROLES.app) out.push(`pgbouncer: connected as ${rows[0].who}, expected ${ROLES.app}`);
    if (rows[0].foreign_rows > 0)
      out.push(`isolation: through PgBouncer, tenant ${tenant.slug} sees ${rows[0].foreign_rows} row(s) of other tenants`);
    return out;
  } finally {
    await client.end().catch(() => {});
  }
}

async function strictPooledProbe(client: pg.Client, tenant: Pick<Tenant, "id" | "slug">): Promise<string[]> {
  const out: string[] = [];
  const { rows } = await client.query("SELECT current_user AS who, (SELECT count(*)::int FROM shared.positions) AS visible");
  if (rows[0].who !== ROLES.app) out.push(`pgbouncer: connected as ${rows[0].who}, expected ${ROLES.app}`);
  if (rows[0].visible > 0) out.push(`isolation: through PgBouncer, ${rows[0].visible} row(s) are visible without a tenant context`);
  const refused = await client.query("SELECT tenancy.enter_tenant($1)", [tenant.id]).then(
    () => undefined,
    (err: { code?: string }) => err.code,
  );
  if (refused !== "42501")
    out.push(`isolation: the database is strict, but ${ROLES.app} may still enter tenant ${tenant.slug} without a proof`);
  return out;
}

/** Audits each region, then residency across them. Connections are opened and closed here. */
export async function auditRegions(inputs: RegionAuditInput[]): Promise<RegionAudit[]> {
  const results: RegionAudit[] = [];
  for (const input of inputs) {
    const client = await connect(input.adminUrl);
    try {
      let structural: string[];
      try {
        structural = (await auditDatabase(client)).map((f) => `${f.severity} ${f.check} ${f.object}: ${f.message} (fix: ${f.fix})`);
      } catch (err) {
        structural = [`structural audit could not run: ${(err as Error).message}`];
      }
      const { rows } = await client.query("SELECT region FROM tenancy.database_settings");
      const tenants = await listTenants(client);
      const probe = await isolationProbe(client, tenants);
      const pooled = input.pooledAppUrl
        ? await pooledProbe(input.pooledAppUrl, tenants, await readTenantContextMode(client), input.contextKey)
        : [];
      results.push({
        stack: input.stack,
        region: input.region,
        checks: [
          `${structural.length === 0 ? "structural audit clean" : `structural audit: ${structural.length} finding(s)`}`,
          `${tenants.length} tenant(s) all of region ${input.region}`,
          `live probe over ${TENANT_TABLES.length} tables for ${tenants.filter((t) => t.status === "active").length} tenant(s)`,
          ...(input.pooledAppUrl ? [`${ROLES.app} through PgBouncer`] : []),
        ],
        findings: [...structural, ...residencyFindings(input, (rows[0]?.region as string | null) ?? null, tenants), ...probe, ...pooled],
        tenants: tenants.map((t) => ({ slug: t.slug, id: t.id, region: t.region, placement: t.placement })),
      });
    } finally {
      await client.end();
    }
  }
  const cross = crossRegionFindings(results.map((r) => ({ stack: r.stack, tenants: r.tenants })));
  if (cross.length && results.length) results[results.length - 1].findings.push(...cross);
  return results;
}
