import type { TenantUsage } from "./usageSnapshot.ts";

/**
 * The dashboard's per-tenant time series (the last 15 minutes), in memory of
 * each api process: one ring of `points` samples per tenant, allocated the
 * first time the tenant shows any activity (an idle tenant costs nothing), as
 * a Float32Array — 1,000 active tenants × 7 series × 300 points (15 min every 3 s) ≈ 8.4 MB.
 * A sample the tenant has no value for (before its ring existed, a missing
 * p99) is NaN, served as null.
 */
export const SERIES = ["running", "mca", "toolsInFlight", "mctc", "throttledPerMin", "queued", "p99Ms"] as const;
export type SeriesName = (typeof SERIES)[number];

export interface TenantHistory {
  t: number[];
  series: Record<SeriesName, (number | null)[]>;
}

const values = (r: TenantUsage): number[] => [
  r.running.B + r.running.C,
  r.mca,
  r.tools.inFlight,
  r.tools.mctc,
  r.throttledPerMin,
  r.queued.total,
  r.latency.p99 ?? NaN,
];
const active = (r: TenantUsage) =>
  r.running.total > 0 || r.queued.total > 0 || r.tools.inFlight > 0 || r.throttledPerMin > 0 || r.latency.samples > 0 || r.parked > 0;

export class UsageHistory {
  private readonly times: Float64Array;
  private readonly rings = new Map<string, Float32Array>();
  private head = 0;
  private count = 0;

  constructor(readonly points = 300) {
    this.times = new Float64Array(points);
  }

  push(at: number, rows: readonly TenantUsage[]): void {
    const slot = this.head;
    this.times[slot] = at;
    const width = SERIES.length;
    const seen = new Set<string>();
    for (const r of rows) {
      let ring = this.rings.get(r.tenant);
      if (!ring) {
        if (!active(r)) continue;
        ring = new Float32Array(this.points * width).fill(NaN);
        this.rings.set(r.tenant, ring);
      }
      seen.add(r.tenant);
      const v = values(r);
      for (let k = 0; k < width; k++) ring[slot * width + k] = v[k]!;
    }
    for (const [tenant, ring] of this.rings) if (!seen.has(tenant)) ring.fill(NaN, slot * width, (slot + 1) * width);
    this.head = (this.head + 1) % this.points;
    this.count = Math.min(this.points, this.count + 1);
  }

  /**
   * Oldest first, ending with `current` (the latest snapshot, newer than the
   * last stored point). A tenant with no activity in the window reads 0, with its caps.
   */
  get(tenant: string, current?: TenantUsage, currentAt?: number): TenantHistory {
    const ring = this.rings.get(tenant);
    const width = SERIES.length;
    const out: TenantHistory = { t: [], series: Object.fromEntries(SERIES.map((s) => [s, []])) as unknown as TenantHistory["series"] };
    for (let n = 0; n < this.count; n++) {
      const slot = (this.head - this.count + n + this.points) % this.points;
      out.t.push(this.times[slot]!);
      SERIES.forEach((s, k) => {
        let v: number = ring ? ring[slot * width + k]! : NaN;
        if (!ring && current && (s === "mca" || s === "mctc")) v = s === "mca" ? current.mca : current.tools.mctc;
        if (!ring && current && s !== "p99Ms" && s !== "mca" && s !== "mctc") v = 0;
        out.series[s].push(Number.isNaN(v) ? null : Math.round(v * 10) / 10);
      });
    }
    if (current && currentAt !== undefined && (out.t.length === 0 || currentAt > out.t[out.t.length - 1]!)) {
      out.t.push(currentAt);
      values(current).forEach((v, k) => out.series[SERIES[k]!].push(Number.isNaN(v) ? null : Math.round(v * 10) / 10));
    }
    return out;
  }
}
