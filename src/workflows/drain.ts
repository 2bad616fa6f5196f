import type { Redis } from "ioredis";
import type { CellKeys, WorkflowClass } from "../../queues/keys.ts";
import { cancelWorkflow } from "../../queues/lua/cancelWorkflow.ts";
import { ingressQueue } from "../../queues/names.ts";

/**
 * Drains a tenant's ingress: every workflow queued in its ingress queues (the
 * classes given) is cancelled through the producer's cancel path
 * (cancelWorkflow-2.lua), so each record ends `cancelled` and the cell's queued
 * counter stays right. Running, parked and finished work is untouched; new
 * admissions are not refused (pause the tenant for that). Reads the wait lists
 * in pages and cancels a page concurrently (one connection, pipelined on the socket).
 */
export interface DrainResult {
  cancelled: number;
  /** Ids that were no longer queued when their turn came (dispatched meanwhile, already ended). */
  skipped: number;
}

export async function drainTenant(
  redis: Redis,
  cell: CellKeys,
  tenant: string,
  classes: readonly WorkflowClass[],
  now: () => number,
  who: { note: string; by: string },
  recordTtlSec: number,
  page = 500,
): Promise<DrainResult> {
  const out: DrainResult = { cancelled: 0, skipped: 0 };
  for (const cls of classes) {
    const wait = cell.queueKey(ingressQueue(tenant, cls), "wait");
    const seen = new Set<string>();
    for (;;) {
      // Cancelled ids leave the list, so always read from its tail (oldest) end.
      const ids = (await redis.lrange(wait, -page, -1)).filter((id) => !seen.has(id));
      if (!ids.length) break;
      const outcomes = await Promise.all(
        ids.map((id) => cancelWorkflow(redis, cell, id, tenant, now(), { recordTtlSec, message: who.note, by: who.by })),
      );
      const cancelledIds: string[] = [];
      outcomes.forEach((o, i) => {
        seen.add(ids[i]!);
        if (o.kind === "cancelled") cancelledIds.push(ids[i]!);
        else out.skipped++;
      });
      out.cancelled += cancelledIds.length;
    }
  }
  return out;
}
