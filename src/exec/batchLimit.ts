/**
 * An exec process's batch limit: how many of its slots Class C may take now. Batch work is what can
 * wait, so when the machine runs out of CPU it is the batch that backs off, not the urgent work sharing
 * the process (and the cores) with it. The signal is the process's own event-loop delay: a loop that runs
 * late is a process whose runs wait for a CPU, whatever else on the machine keeps it busy.
 *
 * Additive increase, multiplicative decrease (as TCP and adaptive concurrency limiters do), once per
 * interval, from how late the loop ran (p99 over that interval, batchLimiter.ts) and the Class C runs
 * the process holds (`usedC`):
 *   p99 > target          limit := max(floor, ⌊limit × 0.8⌋)
 *   p99 ≤ target / 2      limit := min(concurrency, max(floor, min(limit, usedC) + step)),
 *                         step = max(1, ⌈concurrency × 0.05⌉)
 *   otherwise             unchanged
 * The limit grows only while the batch uses it, and an idle one falls back to one step above what
 * runs: like a congestion window, a storm that arrives on a quiet pool ramps up a step per interval
 * rather than landing on every slot at once (a burst of starts stalls the loop for everyone). The
 * floor is a tenth of the concurrency (at least 1), so the batch always moves; the pool keeps
 * Class C's guaranteed minimum share besides. A target of 0 turns the limit off (always the
 * concurrency). The dispatcher bounds Class C by the sum of the live workers' limits
 * (queues/lua/dispatch-18.lua, poolShares); running work is never stopped for it.
 */
export interface BatchLimitOptions {
  concurrency: number;
  /** How late (ms, p99) the event loop may run before the batch backs off; 0 = off. */
  targetLagMs: number;
}

export const BATCH_DECREASE = 0.8;
export const BATCH_STEP = 0.05;
export const BATCH_FLOOR = 0.1;

export function batchFloor(concurrency: number): number {
  return Math.min(concurrency, Math.max(1, Math.ceil(concurrency * BATCH_FLOOR)));
}

export function nextBatchLimit(limit: number, lagP99Ms: number, usedC: number, o: BatchLimitOptions): number {
  if (o.targetLagMs <= 0) return o.concurrency;
  const floor = batchFloor(o.concurrency);
  if (lagP99Ms > o.targetLagMs) return Math.max(floor, Math.floor(limit * BATCH_DECREASE));
  if (lagP99Ms <= o.targetLagMs / 2) {
    const step = Math.max(1, Math.ceil(o.concurrency * BATCH_STEP));
    return Math.min(o.concurrency, Math.max(floor, Math.min(limit, usedC) + step));
  }
  return Math.min(o.concurrency, Math.max(floor, limit));
}

/** A cell's share of the process's batch limit, in proportion to its share of the slots. */
export function cellBatch(limit: number, concurrency: number, cellSlots: number): number {
  return Math.floor((limit * cellSlots) / concurrency);
}
