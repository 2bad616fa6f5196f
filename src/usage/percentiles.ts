import { latencyUpperMs } from "./usageBuckets.ts";

/**
 * A percentile from histogram bucket counts (bucket b holds values in
 * (2^(b-1), 2^b] ms; bucket 0 holds [0, 1]), pure. Interpolates linearly inside
 * the bucket the rank falls in, as Prometheus' histogram_quantile does, so the
 * answer is exact to within one bucket (a factor of 2). Null without samples.
 */
export function percentileFromBuckets(counts: readonly number[], q: number): number | null {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile must be in [0, 1], got ${q}`);
  const total = counts.reduce((s, c) => s + c, 0);
  if (total <= 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let b = 0; b < counts.length; b++) {
    const c = counts[b]!;
    if (c <= 0) continue;
    if (seen + c >= rank) {
      const lower = b === 0 ? 0 : latencyUpperMs(b - 1);
      const upper = latencyUpperMs(b);
      const within = c === 0 ? 1 : Math.max(0, rank - seen) / c;
      return Math.round((lower + (upper - lower) * within) * 10) / 10;
    }
    seen += c;
  }
  return latencyUpperMs(counts.length - 1);
}

export interface LatencySummary {
  p50: number | null;
  p95: number | null;
  p99: number | null;
  samples: number;
}

export function summarizeLatency(counts: readonly number[]): LatencySummary {
  return {
    p50: percentileFromBuckets(counts, 0.5),
    p95: percentileFromBuckets(counts, 0.95),
    p99: percentileFromBuckets(counts, 0.99),
    samples: counts.reduce((s, c) => s + c, 0),
  };
}
