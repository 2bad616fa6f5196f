import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";
import type { ShareOptions } from "../dispatch/policy/shares.ts";
import type { TenantEntry } from "../tenancy/registry.ts";
import { bucketsInWindow } from "./usageBuckets.ts";
import { explainHeld } from "./usageHeld.ts";
import { countParked, explainParked } from "./usageParked.ts";
import { readPools } from "./usagePools.ts";
import { readTenants } from "./usageTenants.ts";
import type { UsageSnapshot } from "./usageTypes.ts";

export type { DependencyUsage, PoolUsage, TenantUsage, UsageSnapshot } from "./usageTypes.ts";

export const RATE_WINDOW_MS = 60_000;

/**
 * One read of every tenant's live usage (usageTypes.ts), from Redis (any number of api,
 * dispatcher and exec processes share nothing else), in a few pipelined round
 * trips whatever the number of tenants:
 *   1. per cell: slot leases (running per tenant and class), pools, dependencies,
 *      the last minute's usage-event buckets; per tenant: burst start, permits
 *      held (A/B and C), gate waiters, ingress depth per class (7 commands): usageTenants.ts;
 *   2. per pool: workers, concurrency, used; per dependency: health, operator
 *      mark, parked ids: usagePools.ts;
 *   3. the tenant of parked ids not seen before (cached: an id's tenant never changes): usageParked.ts;
 *   4. only for tenants with queued work: their caps as the dispatcher reads them
 *      (tp:<t>) and slots held (run:<t>), to say what holds that work (`held`,
 *      `waitingBy`: src/dispatch/policy/explain.ts, the dispatch rule's own
 *      functions, over the pools read in 2 and the Class C holders of 1): usageHeld.ts.
 * Only ids, tenants and counts are read: never a payload.
 */
export class UsageReader {
  /** parked workflow id -> its tenant */
  private readonly parkedTenant = new Map<string, string>();

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly shares: ShareOptions,
    /** FAIRLANE_POOL_CAPACITY_CAP as the dispatcher caps capacity (0 = none). */
    private readonly capacityCap = 0,
  ) {}

  async read(entries: TenantEntry[], now: number, cells: string[] = ["default"]): Promise<UsageSnapshot> {
    const t0 = performance.now();
    const allCells = [...new Set([...cells, ...entries.map((e) => e.policy.cell)])].sort();
    const buckets = bucketsInWindow(now, RATE_WINDOW_MS);
    const windowMs = Math.max(1, now - buckets[0]!);
    const { reads, rows } = await readTenants(this.redis, this.keys, allCells, entries, buckets, windowMs, now);
    const own = { shares: this.shares, capacityCap: this.capacityCap };
    const { pools, dependencies, parkedIds, settings } = await readPools(this.redis, this.keys, allCells, reads, own, now);
    const parkedBy = await countParked(this.redis, this.keys, this.parkedTenant, rows, parkedIds);
    await explainHeld(this.redis, this.keys, rows, pools, reads.holdersC, settings, this.shares, now);
    explainParked(parkedBy, dependencies);
    return { at: now, readMs: Math.round((performance.now() - t0) * 10) / 10, windowMs, tenants: rows, pools, dependencies };
  }
}
