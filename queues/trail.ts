import type { Redis } from "ioredis";
import type { CellKeys } from "./keys.ts";

/**
 * Drops the entries older than each tenant's retention from its trail in one cell (XTRIM MINID ~: whole
 * stream nodes, which is cheap; the few older entries left in a node with newer ones are never shown,
 * src/workflows/trail.ts reads from the cutoff), in pipelines of `chunk` so Redis serves other clients
 * between them. `retentionOf` answers null for a tenant the registry no longer has (its trail is left).
 */
export async function trimTrails(
  redis: Redis,
  cell: CellKeys,
  tenants: string[],
  retentionOf: (tenant: string) => number | null,
  now: number,
  chunk = 500,
): Promise<void> {
  for (let i = 0; i < tenants.length; i += chunk) {
    const pipeline = redis.pipeline();
    for (const t of tenants.slice(i, i + chunk)) {
      const keep = retentionOf(t);
      if (keep !== null) pipeline.xtrim(cell.trail(t), "MINID", "~", `${Math.max(0, now - keep)}-0`);
    }
    if (pipeline.length) await pipeline.exec();
  }
}
