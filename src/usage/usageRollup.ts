import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";
import { SlotPipeline } from "../lib/slotPipeline.ts";
import { addBucket, BUCKET_MS, sumCounts, type TenantEvents } from "./usageBuckets.ts";
import type { UsageSnapshot } from "./usageSnapshot.ts";

/**
 * Capacity-planning evidence per tenant in 10-minute periods
 * (queues/keys.ts `<cell>:usage:<periodStart>`, one field per tenant with any
 * activity, JSON, kept 8 days — bounded: one small value per active tenant per
 * period, ≈ 150 bytes × 1,008 periods per always-active tenant).
 *
 * Gauges (running vs mca, in flight vs mctc, at-cap-with-backlog) come from
 * this api process's sampler ticks; events (throttles, permits, starts) from
 * the cell's usage-event buckets of the period, which every process writes.
 * With several api processes, the one that wins the period's lock (SET NX)
 * writes it once the period has ended and its last bucket is complete.
 */
export interface Evidence {
  /** Sampler ticks that saw the tenant. */
  samples: number;
  /** Ticks at mca with Class B/C waiting (cap-wait). */
  capWait: number;
  /** Ticks at mcaUrgent with Class A waiting. */
  urgentWait: number;
  peakRunning: number;
  peakToolsInFlight: number;
  /** Caps when last seen. */
  mca: number;
  mctc: number;
  throttled: number;
  acquired: number;
  gateWaitMs: number;
  starts: number;
}

export const ROLLUP_TTL_SEC = 8 * 24 * 3600;
const GRACE_MS = BUCKET_MS + 5_000;

export const emptyEvidence = (): Evidence => ({
  samples: 0,
  capWait: 0,
  urgentWait: 0,
  peakRunning: 0,
  peakToolsInFlight: 0,
  mca: 0,
  mctc: 0,
  throttled: 0,
  acquired: 0,
  gateWaitMs: 0,
  starts: 0,
});

/** Adds b into a (sums, peaks; caps from b when b saw the tenant). Pure. */
export function mergeEvidence(a: Evidence, b: Evidence): Evidence {
  return {
    samples: a.samples + b.samples,
    capWait: a.capWait + b.capWait,
    urgentWait: a.urgentWait + b.urgentWait,
    peakRunning: Math.max(a.peakRunning, b.peakRunning),
    peakToolsInFlight: Math.max(a.peakToolsInFlight, b.peakToolsInFlight),
    mca: b.samples > 0 || !a.mca ? b.mca || a.mca : a.mca,
    mctc: b.samples > 0 || !a.mctc ? b.mctc || a.mctc : a.mctc,
    throttled: a.throttled + b.throttled,
    acquired: a.acquired + b.acquired,
    gateWaitMs: a.gateWaitMs + b.gateWaitMs,
    starts: a.starts + b.starts,
  };
}

const withEvents = (e: Evidence, ev: TenantEvents): Evidence => ({
  ...e,
  throttled: e.throttled + ev.throttled,
  acquired: e.acquired + ev.acquired,
  gateWaitMs: e.gateWaitMs + ev.gateWaitMs,
  starts: e.starts + sumCounts(ev.latency),
});

export class UsageRollups {
  /** periodStart -> cell -> tenant -> gauges seen by this process. */
  private readonly pending = new Map<number, Map<string, Map<string, Evidence>>>();

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    readonly periodMs = 600_000,
  ) {
    if (periodMs % BUCKET_MS !== 0) throw new Error(`the rollup period must be a multiple of ${BUCKET_MS} ms`);
  }

  periodOf(t: number): number {
    return t - (t % this.periodMs);
  }

  observe(s: UsageSnapshot): void {
    const period = this.periodOf(s.at);
    let cells = this.pending.get(period);
    if (!cells) this.pending.set(period, (cells = new Map()));
    for (const r of s.tenants) {
      let m = cells.get(r.cell);
      if (!m) cells.set(r.cell, (m = new Map()));
      const e = m.get(r.tenant) ?? emptyEvidence();
      const bc = r.running.B + r.running.C;
      m.set(r.tenant, {
        ...e,
        samples: e.samples + 1,
        capWait: e.capWait + (r.atCap.mca && r.queued.B + r.queued.C > 0 ? 1 : 0),
        urgentWait: e.urgentWait + (r.atCap.urgent && r.queued.A > 0 ? 1 : 0),
        peakRunning: Math.max(e.peakRunning, bc),
        peakToolsInFlight: Math.max(e.peakToolsInFlight, r.tools.inFlight),
        mca: r.mca,
        mctc: r.tools.mctc,
      });
    }
  }

  /** Writes every ended period (once its last event bucket is complete) that no other process wrote. */
  async flush(now: number): Promise<number> {
    let written = 0;
    for (const [period, cells] of [...this.pending]) {
      if (period + this.periodMs + GRACE_MS > now) continue;
      this.pending.delete(period);
      for (const [cell, gauges] of cells) {
        const ck = this.keys.cell(cell);
        const won = await this.redis.set(ck.usageRollupLock(period), "1", "EX", ROLLUP_TTL_SEC, "NX");
        if (won !== "OK") continue;
        const merged = await this.withPeriodEvents(cell, period, gauges);
        const fields: Record<string, string> = {};
        for (const [t, e] of merged) if (e.samples > 0 || e.starts > 0 || e.throttled > 0 || e.acquired > 0) fields[t] = JSON.stringify(e);
        if (Object.keys(fields).length) {
          await this.redis.multi().hset(ck.usageRollup(period), fields).expire(ck.usageRollup(period), ROLLUP_TTL_SEC).exec();
          written++;
        }
      }
    }
    return written;
  }

  /**
   * Evidence per tenant over [from, to]: the written rollups of the periods
   * overlapping it, plus what this process has not written yet (its gauges and
   * the cell's event buckets of those periods).
   */
  async read(cells: string[], from: number, to: number): Promise<{ evidence: Map<string, Evidence>; periods: number }> {
    const out = new Map<string, Evidence>();
    const add = (t: string, e: Evidence) => out.set(t, mergeEvidence(out.get(t) ?? emptyEvidence(), e));
    const periods: number[] = [];
    for (let p = this.periodOf(from); p <= to; p += this.periodMs) periods.push(p);
    const pipe = new SlotPipeline(this.redis); // one pipeline per cell (a cluster refuses a mixed one)
    for (const c of cells)
      for (const p of periods) {
        const key = this.keys.cell(c).usageRollup(p);
        pipe.add(key, (x) => x.hgetall(key));
      }
    const replies = await pipe.exec();
    let k = 0;
    const writtenPeriods = new Set<string>();
    for (const c of cells)
      for (const p of periods) {
        const h = (replies[k++]?.[1] ?? {}) as Record<string, string>;
        if (Object.keys(h).length) writtenPeriods.add(`${c}|${p}`);
        for (const [t, json] of Object.entries(h)) {
          try {
            add(t, { ...emptyEvidence(), ...(JSON.parse(json) as Partial<Evidence>) });
          } catch {
            /* a malformed field is skipped */
          }
        }
      }
    for (const [period, byCell] of this.pending) {
      if (period + this.periodMs <= from || period > to) continue;
      for (const [cell, gauges] of byCell) {
        if (writtenPeriods.has(`${cell}|${period}`)) continue;
        for (const [t, e] of await this.withPeriodEvents(cell, period, gauges)) add(t, e);
      }
    }
    return { evidence: out, periods: periods.length };
  }

  private async withPeriodEvents(cell: string, period: number, gauges: Map<string, Evidence>): Promise<Map<string, Evidence>> {
    const ck = this.keys.cell(cell);
    const pipe = this.redis.pipeline();
    for (let b = period; b < period + this.periodMs; b += BUCKET_MS) pipe.hgetall(ck.usageEvents(b));
    const events = new Map<string, TenantEvents>();
    for (const [, h] of (await pipe.exec()) ?? []) addBucket(events, (h ?? {}) as Record<string, string>);
    const out = new Map(gauges);
    for (const [t, ev] of events) out.set(t, withEvents(out.get(t) ?? emptyEvidence(), ev));
    return out;
  }
}
