/**
 * The usage-event buckets (queues/keys.ts `<cell>:ev:<bucketStart>`): their size, lifetime and
 * field names, shared by the scripts that write them and the readers that add them up. Pure.
 *
 * Events happen in many processes (exec workers start runs and take permits), so
 * they are counted in Redis, as HINCRBYs on one hash per 10 s per cell: the tool
 * gate's inside its scripts, first starts by the exec process that starts them
 * (queues/latencyTally.ts, added once a heartbeat). Field names are "<tenant>|<name>":
 *   l<b>  a first start whose enqueue->start latency fell in bucket b (see latencyBucket)
 *   thr   a THROTTLED tool call (queue full, or the wait timed out)
 *   acq   a tool-gate permit granted;  gw  the gate wait of those permits, ms summed
 * The writers are the exec's LatencyTally and the tool gate's scripts (queues/lua/permits.ts),
 * which get the bucket and its TTL from here as ARGV. The readers
 * (src/usage/usageBuckets.ts and its users) add up the buckets of a window, so any
 * number of processes agree.
 */
export const BUCKET_MS = 10_000;
/** Event buckets live 20 minutes: the dashboard's 15-minute charts plus slack for a late rollup. */
export const BUCKET_TTL_SEC = 20 * 60;
/** Latency histogram buckets: b = 0..LATENCY_BUCKETS-1, upper bound 2^b ms (the last one is open). */
export const LATENCY_BUCKETS = 24;

export function bucketStart(now: number): number {
  return now - (now % BUCKET_MS);
}

/** The smallest b with latency <= 2^b ms, capped at the last bucket (test/integration/latency.cases.ts). */
export function latencyBucket(ms: number): number {
  let b = 0;
  let v = 1;
  while (v < ms && b < LATENCY_BUCKETS - 1) {
    v *= 2;
    b++;
  }
  return b;
}

export interface TenantEvents {
  /** Latency histogram: counts per bucket (length LATENCY_BUCKETS). */
  latency: number[];
  throttled: number;
  acquired: number;
  gateWaitMs: number;
}

export const emptyEvents = (): TenantEvents => ({
  latency: new Array<number>(LATENCY_BUCKETS).fill(0),
  throttled: 0,
  acquired: 0,
  gateWaitMs: 0,
});

/** Adds one bucket hash (as HGETALL returns it) into per-tenant totals. Unknown fields are ignored. */
export function addBucket(into: Map<string, TenantEvents>, hash: Record<string, string>): void {
  for (const [field, raw] of Object.entries(hash)) {
    const bar = field.indexOf("|");
    if (bar <= 0) continue;
    const tenant = field.slice(0, bar);
    const name = field.slice(bar + 1);
    const n = Number(raw);
    if (!Number.isFinite(n)) continue;
    let e = into.get(tenant);
    if (!e) into.set(tenant, (e = emptyEvents()));
    if (name === "thr") e.throttled += n;
    else if (name === "acq") e.acquired += n;
    else if (name === "gw") e.gateWaitMs += n;
    else if (name.startsWith("l")) {
      const b = Number(name.slice(1));
      if (Number.isInteger(b) && b >= 0 && b < LATENCY_BUCKETS) e.latency[b]! += n;
    }
  }
}
