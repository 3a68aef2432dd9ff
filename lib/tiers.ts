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
}

export const TIER_LIMITS: Record<Tier, TierLimits> = {
  starter: { statementTimeoutMs: 2_000 },
  pro: { statementTimeoutMs: 10_000 },
  enterprise: { statementTimeoutMs: 30_000 },
};
