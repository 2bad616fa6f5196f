/**
 * Pure analysis for the load soak (unit-tested in test/unit/soakAnalysis.test.ts):
 * trend lines over the samples, enqueue→start percentiles per window and per
 * third of the run, and the verdict's tolerances.
 */
import { mean, percentile } from "../../bench/lib/stats.ts";

/** One point of a series: minutes since the load started, and the value. */
export interface Point {
  min: number;
  y: number;
}

/** Least-squares slope of y per minute; NaN for fewer than 2 distinct times. */
export function slope(points: readonly Point[]): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = mean(points.map((p) => p.min));
  const my = mean(points.map((p) => p.y));
  let sxy = 0;
  let sxx = 0;
  for (const p of points) {
    sxy += (p.min - mx) * (p.y - my);
    sxx += (p.min - mx) ** 2;
  }
  return sxx === 0 ? NaN : sxy / sxx;
}

export interface Trend {
  /** Least-squares slope per minute over the second half of the run (the first half is warm-up). */
  slopePerMin: number;
  /** Mean over the second half. */
  mean: number;
  /** slope × run length ÷ mean: how much the value would grow over one run, as a fraction of itself. */
  relative: number;
  first: number;
  last: number;
}

/** The trend of a series over the points at or after half of `runMin`. */
export function trend(points: readonly Point[], runMin: number): Trend {
  const half = points.filter((p) => p.min >= runMin / 2);
  const s = slope(half);
  const m = mean(half.map((p) => p.y));
  return { slopePerMin: s, mean: m, relative: m > 0 ? (s * runMin) / m : NaN, first: half[0]?.y ?? NaN, last: half.at(-1)?.y ?? NaN };
}

/**
 * The upper envelope of a series: the highest value in each block of
 * `blockMin` minutes, at the block's middle. A Node process's RSS is a
 * collection sawtooth (drops of tens of MiB every few minutes, then back to a
 * plateau); a straight-line fit of the raw samples reads a drop early in the
 * window as growth and a late one as shrinkage. The plateau is what a leak
 * lifts (live memory grows, so the heap the collector settles on grows) and
 * what a sawtooth does not.
 */
export function envelope(points: readonly Point[], blockMin: number, runMin: number): Point[] {
  const last = Math.max(0, Math.ceil(runMin / blockMin) - 1);
  const blocks = new Map<number, number>();
  for (const p of points) {
    const b = Math.min(last, Math.floor(p.min / blockMin));
    if (Number.isFinite(p.y)) blocks.set(b, Math.max(blocks.get(b) ?? -Infinity, p.y));
  }
  return [...blocks].sort((a, b) => a[0] - b[0]).map(([b, y]) => ({ min: (b + 0.5) * blockMin, y }));
}

/** A workflow's first start: when (epoch ms) and its enqueue→start latency (ms). */
export interface Start {
  at: number;
  latencyMs: number;
}

/** p99 of the latencies of the starts in each window [edges[i], edges[i+1]). */
export function windowP99(starts: readonly Start[], edges: readonly number[]): { from: number; n: number; p99: number }[] {
  const out: { from: number; n: number; p99: number }[] = [];
  for (let i = 0; i + 1 < edges.length; i++) {
    const xs = starts.filter((s) => s.at >= edges[i]! && s.at < edges[i + 1]!).map((s) => s.latencyMs);
    out.push({ from: edges[i]!, n: xs.length, p99: percentile(xs, 99) });
  }
  return out;
}

/** p99 (and n) of the starts in the first and the last third of [t0, t1). */
export function thirds(
  starts: readonly Start[],
  t0: number,
  t1: number,
): { first: { n: number; p99: number }; last: { n: number; p99: number } } {
  const third = (t1 - t0) / 3;
  const pick = (a: number, b: number) => {
    const xs = starts.filter((s) => s.at >= a && s.at < b).map((s) => s.latencyMs);
    return { n: xs.length, p99: percentile(xs, 99) };
  };
  return { first: pick(t0, t0 + third), last: pick(t1 - third, t1) };
}

/**
 * Tolerances of the verdict (the report, lib/report.ts, states them with the reasons):
 *   memory   after warm-up, a process's RSS and Redis memory may drift by less
 *            than 10% of their mean over the run (slope × run length ÷ mean);
 *            RSS is judged on its upper envelope (per tenth of the run: see
 *            envelope()) and only in runs of 5 minutes or more: a Node
 *            process's heap grows and shrinks in steps of tens of MiB for its
 *            first minutes, and a fit over 30 s sees those steps, not a leak;
 *   latency  p99 enqueue→start of the last third ≤ 2× the first third's, with a
 *            floor of 100 ms of slack: below that, scheduling jitter on a shared
 *            2-core machine, not queueing, sets the p99.
 */
export const TOLERANCE = { memoryRelative: 0.1, rssMinRunSec: 300, p99Ratio: 2, p99SlackMs: 100 } as const;

export const p99Ok = (first: number, last: number): boolean =>
  !Number.isFinite(first) || !Number.isFinite(last) || last <= Math.max(TOLERANCE.p99Ratio * first, first + TOLERANCE.p99SlackMs);

export const memoryOk = (t: Trend): boolean => !Number.isFinite(t.relative) || t.relative < TOLERANCE.memoryRelative;
