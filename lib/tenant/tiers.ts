/**
 * Service tiers and what each one is allowed. One place for every per-tier limit: database
 * statement timeouts, connection limits, cache quotas. Areas add their limits here.
 */
import { z } from "zod";

export const TIERS = ["starter", "pro", "enterprise"] as const;
export const Tier = z.enum(TIERS);
export type Tier = z.infer<typeof Tier>;

export interface TierLimits {
  /** Longest statement a tenant may run through the tenant-context client, in milliseconds. */
  statementTimeoutMs: number;
  /**
   * Connections of one app instance's pool (20 in ADR-001) a tenant may hold at once; its other
   * requests wait for its own slots instead of taking the whole pool (lib/tenant-context/client.ts).
   */
  maxConcurrentTransactions: number;
  /** Cache quota in accounted bytes (lib/redis/quota-functions.ts: key + value + per-key overhead). */
  cacheMaxBytes: number;
  /** Cache quota in keys. */
  cacheMaxKeys: number;
}

export const TIER_LIMITS: Record<Tier, TierLimits> = {
  starter: { statementTimeoutMs: 2_000, maxConcurrentTransactions: 4, cacheMaxBytes: 64 * 2 ** 20, cacheMaxKeys: 100_000 },
  pro: { statementTimeoutMs: 10_000, maxConcurrentTransactions: 8, cacheMaxBytes: 512 * 2 ** 20, cacheMaxKeys: 1_000_000 },
  enterprise: { statementTimeoutMs: 30_000, maxConcurrentTransactions: 12, cacheMaxBytes: 4 * 2 ** 30, cacheMaxKeys: 10_000_000 },
};
