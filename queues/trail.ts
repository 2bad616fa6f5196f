import type { Redis } from "ioredis";
import type { CellKeys } from "./keys.ts";

/**
 * Drops the entries older than each tenant's retention from its trail in one cell (XTRIM MINID), in one
 * pipeline; `retentionOf` answers null for a tenant the registry no longer has (its trail is left).
 */
export async function trimTrails(
  redis: Redis,
  cell: CellKeys,
  tenants: string[],
  retentionOf: (tenant: string) => number | null,
  now: number,
): Promise<void> {
  const pipeline = redis.pipeline();
  for (const t of tenants) {
    const keep = retentionOf(t);
    if (keep !== null) pipeline.xtrim(cell.trail(t), "MINID", `${Math.max(0, now - keep)}-0`);
  }
  if (pipeline.length) await pipeline.exec();
}
