import type { Redis } from "ioredis";
import type { CellKeys } from "./keys.ts";
import { listMember } from "./listMember.ts";

/** How far back a tenant's history reaches, in ms: its audit trail, and its run-list index. */
export interface HistoryRetention {
  trailMs: number;
  runListMs: number;
}

/**
 * Drops what each tenant keeps longer than its retention in one cell, in pipelines of `chunk` so Redis serves
 * other clients between them:
 *   - its trail's entries (XTRIM MINID ~: whole stream nodes, which is cheap; the few older entries left in a
 *     node with newer ones are never shown, src/workflows/trail.ts reads from the cutoff);
 *   - its run list's entries enqueued before the cutoff (XTRIM MINID, exact: a list shows none of them; entry
 *     IDs are Redis's time of each admission), and its index's as written before 2026-12-05 (ZREMRANGEBYLEX: members
 *     "<13-digit enqueuedAt>|<id>", queues/listMember.ts) until that is empty. Once a minute per tenant rather
 *     than once per admission: an entry outlives its cutoff by up to a minute, and lists drop entries whose
 *     record expired.
 * `retentionOf` answers null for a tenant the registry no longer has (its history is left).
 */
export async function trimHistory(
  redis: Redis,
  cell: CellKeys,
  tenants: string[],
  retentionOf: (tenant: string) => HistoryRetention | null,
  now: number,
  chunk = 500,
): Promise<void> {
  for (let i = 0; i < tenants.length; i += chunk) {
    const pipeline = redis.pipeline();
    for (const t of tenants.slice(i, i + chunk)) {
      const keep = retentionOf(t);
      if (keep === null) continue;
      pipeline.xtrim(cell.trail(t), "MINID", "~", `${Math.max(0, now - keep.trailMs)}-0`);
      const cutoff = Math.max(0, now - keep.runListMs);
      pipeline.xtrim(cell.runList(t), "MINID", `${cutoff}-0`);
      pipeline.zremrangebylex(cell.workflowsByTenant(t), "-", `(${listMember(cutoff, "")}`);
    }
    if (pipeline.length) await pipeline.exec();
  }
}
