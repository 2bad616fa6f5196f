import { BUCKET_MS, bucketStart } from "../../queues/usageEvents.ts";

/**
 * Reading the usage-event buckets, pure: the buckets of a window and the sums over them. The
 * buckets' size, lifetime and field names are the queues' contract (queues/usageEvents.ts, shared
 * with the Lua scripts that write them), re-exported here for the readers.
 */
export {
  addBucket,
  BUCKET_MS,
  BUCKET_TTL_SEC,
  bucketStart,
  emptyEvents,
  LATENCY_BUCKETS,
  latencyBucket,
  type TenantEvents,
} from "../../queues/usageEvents.ts";

/** Bucket starts covering (now - windowMs, now], oldest first (the current one is partial). */
export function bucketsInWindow(now: number, windowMs: number): number[] {
  const last = bucketStart(now);
  const out: number[] = [];
  for (let b = bucketStart(now - windowMs + 1); b <= last; b += BUCKET_MS) out.push(b);
  return out;
}

export const latencyUpperMs = (b: number): number => 2 ** b;

export const sumCounts = (xs: number[]): number => xs.reduce((s, x) => s + x, 0);
