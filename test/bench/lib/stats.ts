/** Pure statistics for the benchmark report (unit-tested in test/unit/benchStats.test.ts). */

/** Nearest-rank percentile of `xs` (p in 0..100); NaN for no samples. */
export function percentile(xs: readonly number[], p: number): number {
  if (!xs.length) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export const mean = (xs: readonly number[]): number => (xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : NaN);

export interface Percentiles {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  mean: number;
  max: number;
}

export function summarize(xs: readonly number[]): Percentiles {
  return {
    n: xs.length,
    p50: percentile(xs, 50),
    p95: percentile(xs, 95),
    p99: percentile(xs, 99),
    mean: mean(xs),
    max: xs.length ? Math.max(...xs) : NaN,
  };
}

/** Jain's fairness index (Σx)² / (n·Σx²): 1 when all equal, 1/n when one takes everything. */
export function jain(xs: readonly number[]): number {
  if (!xs.length) return NaN;
  const sum = xs.reduce((s, x) => s + x, 0);
  const sq = xs.reduce((s, x) => s + x * x, 0);
  return sq === 0 ? 1 : (sum * sum) / (xs.length * sq);
}

/**
 * Max-min fair shares of `capacity` for the given demands (water-filling):
 * nobody gets more than it asked for, and what one leaves is split equally
 * among those who want more.
 */
export function maxMinFair(demands: readonly number[], capacity: number): number[] {
  const share = demands.map(() => 0);
  let left = capacity;
  let open = demands.map((_, i) => i).filter((i) => demands[i]! > 0);
  while (open.length && left > 1e-9) {
    const each = left / open.length;
    const next: number[] = [];
    for (const i of open) {
      const give = Math.min(each, demands[i]! - share[i]!);
      share[i]! += give;
      left -= give;
      if (demands[i]! - share[i]! > 1e-9) next.push(i);
    }
    if (next.length === open.length && each <= 1e-9) break;
    open = next;
  }
  return share;
}

/** A number for a table: "—" for NaN, fixed digits otherwise. */
export function fmt(x: number | undefined, digits = 0): string {
  return x === undefined || !Number.isFinite(x)
    ? "—"
    : x.toLocaleString("en", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export interface Span {
  tenant: string;
  /** Enqueued, started and ended (epoch ms). */
  enq: number;
  start: number;
  end: number;
}

const overlap = (a0: number, a1: number, b0: number, b1: number) => Math.max(0, Math.min(a1, b1) - Math.max(a0, b0));

/**
 * Short-term fairness: the mean over `sliceMs` slices of [from, to) of Jain's
 * index over the tenants that wanted slots in the slice. A workflow wants a
 * slot from enqueue to end and holds one from start to end; each tenant's
 * slot-time received is divided by its max-min fair share of the slice's
 * `slots × sliceMs` given what it wanted (capped at 1). A tenant whose work
 * waits while another's runs scores below 1, even if it is served later.
 */
export function sliceJain(spans: readonly Span[], slots: number, from: number, to: number, sliceMs: number): number {
  const scores: number[] = [];
  for (let a = from; a + sliceMs <= to; a += sliceMs) {
    const b = a + sliceMs;
    const want = new Map<string, number>();
    const got = new Map<string, number>();
    for (const s of spans) {
      const w = overlap(s.enq, s.end, a, b);
      if (w <= 0) continue;
      want.set(s.tenant, (want.get(s.tenant) ?? 0) + w);
      got.set(s.tenant, (got.get(s.tenant) ?? 0) + overlap(s.start, s.end, a, b));
    }
    if (!want.size) continue;
    const names = [...want.keys()];
    const fair = maxMinFair(
      names.map((t) => want.get(t)!),
      slots * sliceMs,
    );
    scores.push(jain(names.map((t, i) => Math.min(1, (got.get(t) ?? 0) / fair[i]!))));
  }
  return mean(scores);
}

/**
 * Linear-interpolation quantile (Hyndman-Fan type 7, as numpy's default) of
 * `xs` (q in 0..1); NaN for no samples. Unlike nearest rank, p99 of a small
 * sample is not simply its maximum.
 */
export function quantile(xs: readonly number[], q: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const h = (s.length - 1) * Math.min(1, Math.max(0, q));
  const lo = Math.floor(h);
  return s[lo]! + (h - lo) * ((s[Math.min(lo + 1, s.length - 1)] ?? s[lo]!) - s[lo]!);
}

/**
 * A distribution of latencies for the report: interpolated quantiles, and the
 * range the p99 could lie in: the order statistics at ranks n·0.99 ± 1.96·√(n·0.99·0.01)
 * (a 95% interval; with fewer than about 100 samples its top is the maximum, so
 * the p99 is little more than a guess).
 */
export interface Distribution {
  n: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
  p99Low: number;
  p99High: number;
}

export function distribution(xs: readonly number[]): Distribution {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  const half = 1.96 * Math.sqrt(n * 0.99 * 0.01);
  const at = (rank: number) => (n ? s[Math.min(n, Math.max(1, Math.round(rank))) - 1]! : NaN);
  return {
    n,
    p50: quantile(s, 0.5),
    p90: quantile(s, 0.9),
    p95: quantile(s, 0.95),
    p99: quantile(s, 0.99),
    max: n ? s[n - 1]! : NaN,
    mean: mean(s),
    p99Low: at(Math.floor(n * 0.99 - half)),
    p99High: at(Math.ceil(n * 0.99 + half)),
  };
}

/** Median of a few numbers (the middle round of three); NaN for none. */
export const median = (xs: readonly number[]): number => quantile(xs, 0.5);
