/**
 * Who is using the cluster right now, per tenant. Tenant transactions carry `application_name =
 * tenant:<log tag>` (set by tenancy.enter_tenant()); this maps tags back to tenants through the
 * registry. Needs a role that can read pg_stat_activity (pg_read_all_stats, or a superuser) and the
 * registry (the owner, or a superuser).
 */
import type { Queryable } from "../db/client";
import { ROLES } from "../schema/roles";
import { qualified } from "../db/sql";
import { REGISTRY_SCHEMA } from "../schema/planner";
import { withRole } from "../tenant/registry";
import { TENANT_TAG_PREFIX } from "./tenant-tag";

export { TENANT_TAG_PREFIX };

export interface SessionActivity {
  pid: number;
  tag: string | null;
  state: string | null;
  waitEventType: string | null;
  waitEvent: string | null;
  /** Seconds the current statement has been running (0 when idle). */
  runningSeconds: number;
  query: string | null;
}

export interface TenantActivity {
  tenant: string;
  tier: string | null;
  /** Sessions currently inside one of this tenant's transactions. */
  sessions: number;
  active: number;
  waiting: number;
  longestRunningSeconds: number;
  longestQuery: string | null;
}

/** Reads the tenant-tagged sessions of this database. */
export async function readSessions(client: Queryable): Promise<SessionActivity[]> {
  const { rows } = await client.query(
    `SELECT pid,
            CASE WHEN starts_with(application_name, $1) THEN substr(application_name, length($1) + 1) END AS tag,
            state, wait_event_type AS "waitEventType", wait_event AS "waitEvent",
            CASE WHEN state = 'active' THEN extract(epoch FROM clock_timestamp() - query_start)::float8 ELSE 0 END AS "runningSeconds",
            left(query, 200) AS query
       FROM pg_stat_activity
      WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()`,
    [TENANT_TAG_PREFIX],
  );
  return rows;
}

/** Groups sessions per tenant (pure): sorted by active statements, then longest running. */
export function summariseActivity(
  sessions: SessionActivity[],
  tenantsByTag: Map<string, { slug: string; tier: string }>,
): TenantActivity[] {
  const byTenant = new Map<string, TenantActivity>();
  for (const s of sessions) {
    if (!s.tag) continue;
    const tenant = tenantsByTag.get(s.tag);
    const key = tenant?.slug ?? `unknown tag ${s.tag}`;
    const row = byTenant.get(key) ?? {
      tenant: key,
      tier: tenant?.tier ?? null,
      sessions: 0,
      active: 0,
      waiting: 0,
      longestRunningSeconds: 0,
      longestQuery: null,
    };
    row.sessions++;
    if (s.state === "active") row.active++;
    if (s.waitEventType && s.waitEventType !== "Client" && s.waitEventType !== "Activity") row.waiting++;
    if (s.runningSeconds > row.longestRunningSeconds) {
      row.longestRunningSeconds = s.runningSeconds;
      row.longestQuery = s.query;
    }
    byTenant.set(key, row);
  }
  return [...byTenant.values()].sort(
    (a, b) => b.active - a.active || b.longestRunningSeconds - a.longestRunningSeconds || a.tenant.localeCompare(b.tenant),
  );
}

export async function tenantsByLogTag(client: Queryable): Promise<Map<string, { slug: string; tier: string }>> {
  return withRole(client, ROLES.owner, async (tx) => {
    const { rows } = await tx.query(`SELECT log_tag, slug, tier FROM ${qualified(REGISTRY_SCHEMA, "tenants")}`);
    return new Map(rows.map((r: { log_tag: string; slug: string; tier: string }) => [r.log_tag, { slug: r.slug, tier: r.tier }]));
  });
}

/** One snapshot of per-tenant activity. */
export async function tenantActivity(client: Queryable): Promise<TenantActivity[]> {
  const [sessions, tags] = [await readSessions(client), await tenantsByLogTag(client)];
  return summariseActivity(sessions, tags);
}
