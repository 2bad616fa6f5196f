import type { Redis } from "ioredis";
import type { CellKeys } from "../../queues/keys.ts";
import type { TenantPolicy } from "../tenancy/policy.ts";

/**
 * Why a queued workflow is not starting, when the reason is not just "its
 * turn has not come": its tenant is paused, or none of the pools its policy
 * allows has a live exec worker (data residency never falls back elsewhere).
 */
export async function waitingReason(redis: Redis, cell: CellKeys, policy: TenantPolicy, now: number): Promise<string | undefined> {
  if (policy.paused) return "the tenant is paused";
  const pipeline = redis.pipeline();
  for (const pool of policy.pools) pipeline.zcount(cell.poolWorkers(pool), `(${now}`, "+inf");
  const live = ((await pipeline.exec()) ?? []).map(([, n]) => Number(n));
  if (live.every((n) => n === 0))
    return `no live exec worker in the pools this tenant may run in (${policy.pools.join(", ")}); it stays queued until one starts`;
  return undefined;
}
