import { LATENCY_BUCKETS } from "../../src/usage/usageBuckets.ts";

/**
 * The latency histogram's bucket rule as one table: b is the smallest bucket
 * with latency <= 2^b ms, and the last bucket is open. latencyBucket
 * (queues/usageEvents.ts) is its one home: the exec process's LatencyTally
 * (queues/latencyTally.ts) counts a first start's enqueue->start latency in
 * "<tenant>|l<b>" with it, and the readers label the buckets with it. Checked
 * through Redis by test/integration/latencyTally.test.ts.
 */
export interface LatencyCase {
  name: string;
  latencyMs: number;
  bucket: number;
}

const LAST = LATENCY_BUCKETS - 1;

export const LATENCY_CASES: LatencyCase[] = [
  { name: "a start in the millisecond it was enqueued is in the first bucket", latencyMs: 0, bucket: 0 },
  { name: "1 ms is in the first bucket (<= 2^0)", latencyMs: 1, bucket: 0 },
  { name: "2 ms is in bucket 1", latencyMs: 2, bucket: 1 },
  { name: "3 ms rounds up to bucket 2 (<= 4 ms)", latencyMs: 3, bucket: 2 },
  { name: "4 ms is in bucket 2: a power of two is the upper bound of its bucket", latencyMs: 4, bucket: 2 },
  { name: "5 ms is in bucket 3", latencyMs: 5, bucket: 3 },
  { name: "1000 ms is in bucket 10 (<= 1024 ms)", latencyMs: 1000, bucket: 10 },
  { name: "1024 ms is in bucket 10", latencyMs: 1024, bucket: 10 },
  { name: "1025 ms is in bucket 11", latencyMs: 1025, bucket: 11 },
  { name: "2^22 ms is in the last bucket but one", latencyMs: 2 ** 22, bucket: LAST - 1 },
  { name: "just over 2^22 ms is in the last bucket", latencyMs: 2 ** 22 + 1, bucket: LAST },
  { name: "just over the last bound is still in the last bucket: it is open", latencyMs: 2 ** LAST + 1, bucket: LAST },
  { name: "a latency of years is capped at the last bucket", latencyMs: 1e12, bucket: LAST },
  {
    name: "a negative latency (the starting process's clock behind the admitting one's) is in the first bucket",
    latencyMs: -250,
    bucket: 0,
  },
];
