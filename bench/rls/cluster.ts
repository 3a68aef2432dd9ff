/** The benchmark's own PostgreSQL cluster: settings sized for the data set. */
import os from "node:os";

/**
 * Cluster settings sized for the data set: everything fits in shared_buffers (the question is the
 * CPU cost of RLS, not I/O), durability as in production (fsync, synchronous_commit, full page
 * writes on), JIT off as for OLTP, autovacuum on (the copies opt out, see dataset.ts).
 */
export function clusterSettings(estimatedBytes: number, totalMemoryBytes = os.totalmem()): Record<string, string | number> {
  const mb = (b: number) => `${Math.ceil(b / 2 ** 20)}MB`;
  const sharedBuffers = Math.min(Math.max(estimatedBytes * 1.25, 256 * 2 ** 20), totalMemoryBytes * 0.4);
  return {
    shared_buffers: mb(sharedBuffers),
    effective_cache_size: mb(Math.min(sharedBuffers * 2, totalMemoryBytes * 0.6)),
    work_mem: "32MB",
    maintenance_work_mem: "512MB",
    max_wal_size: "8GB",
    checkpoint_timeout: "30min",
    random_page_cost: 1.1,
    jit: "off",
    max_connections: 50,
  };
}

/** Roughly what the copies take: about 550 bytes per trade (row, indexes, related tables) per copy. */
export const estimateBytes = (trades: number, sharedCopies: number) => trades * 550 * (sharedCopies + 2);
