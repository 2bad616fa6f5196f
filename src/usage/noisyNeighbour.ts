import { isolationImpact } from "./isolationImpact.ts";
import { contestedOf, type Contested } from "./noisyContested.ts";
import { medianWithout } from "./noisyStats.ts";
import {
  NOISY_DEFAULTS,
  type IsolationIncomplete,
  type NoisyInput,
  type NoisyOptions,
  type NoisyReport,
  type NoisyTenant,
  type NoisyTick,
} from "./noisyTypes.ts";

export { isolationImpact } from "./isolationImpact.ts";
export { medianWithout, pearson, spearman } from "./noisyStats.ts";
export {
  NOISY_DEFAULTS,
  type IsolationIncomplete,
  type NoisyInput,
  type NoisyOptions,
  type NoisyReport,
  type NoisyTenant,
  type NoisyTick,
} from "./noisyTypes.ts";

/**
 * The noisy-neighbour signal, pure: no I/O, time comes in with each tick (the
 * usage sampler's). Two facts per tenant, over a rolling window of ticks:
 *
 * noisy (Amazon SQS fair queues' notion, their "noisy" and "quiet" counts):
 *   over the ticks in which its pool group had no general slot free while
 *   another tenant of the group had work queued (*contested* ticks), it held at
 *   least `noisyRatio` × and `noisyExcessSlots` more than its capped weighted
 *   fair share (fairness.ts tickFairShares), in at least `noisyMinTicks` such
 *   ticks, and it still has work queued (SQS: quiet again once its backlog
 *   drains). A fact about shares, not harm: a tenant can be noisy and harmless
 *   (its neighbours' workflows are short) — it is not alerted on.
 *
 * isolation incomplete (the seed's question, "when A's usage spikes, does B's
 *   latency increase?"): its load — slots held, not queued: the victims of a
 *   storm queue too, and a queue under fair queuing takes nothing from anyone —
 *   moves the other tenants' enqueue→start latency. Per tick, "the others'
 *   latency" is the median of every other tenant's p99 over the snapshot's
 *   latency window (tenants with `minLatencySamples` starts in it; the median,
 *   so one tenant's self-inflicted wait behind its own cap does not count as
 *   everyone's). Over the window, split the ticks at the midpoint of its load:
 *   baseline = the others' median p99 in its low-load ticks, elevated = the
 *   median in its high-load ticks. Flagged when all hold:
 *     - `minTicks` ticks with a value, `minRegimeTicks` of them on each side;
 *     - impact = Spearman's rank correlation of its load with the others'
 *       p99 >= `impactThreshold` (a storm is a step, and a step of a few
 *       ticks in a window caps ρ well below 1: 4 ticks of 32, about 0.6);
 *     - its load rose (median high − median low) by at least `dominance` × the
 *       largest rise among the tenants that pass this tick: the victims of a
 *       storm hold a little more too once their work queues, and their load
 *       follows the others' latency as well — the storm's rises far more;
 *     - elevated >= baseline + `minIncreaseMs` and >= baseline × `minIncreaseRatio`
 *       (a correlation on flat 5 ms latencies is noise, not harm);
 *     - it is in its high-load regime now.
 *   Once flagged it stays flagged (a storm longer than the window flattens
 *   the correlation; a tick in which it holds a few slots less must not reset
 *   an alert's `for`) while its load stays above its low-regime median and
 *   the others' p99 stays above the latched baseline by the same margins —
 *   cleared after `clearTicks` ticks in a row without (one tick in which it
 *   holds nothing while its victims catch up does not end a storm).
 *
 * Bounded: series are kept for at most `maxTracked` tenants — those holding
 * slots (the busiest first) and, for one window after, those that did. A
 * tenant tracked mid-window is backfilled with load 0 and the median of all
 * tenants' p99 (it held nothing: it was not the busiest). Per tick that is one
 * pass over the tenants, one sort of their p99s, and O(maxTracked × window
 * ticks) for the correlations.
 *
 * Files: the options, input and report types (noisyTypes.ts), the contested
 * ticks (noisyContested.ts), the isolation test (isolationImpact.ts) and the
 * statistics (noisyStats.ts); this file keeps the rolling window and latches.
 */

/** A tracked tenant's series over the window (its load and the others' p99, per tick) and its latch. */
interface Tracked {
  load: number[];
  others: number[];
  lastLoadAt: number;
  peak: number;
  latch?: { since: number; baseline: number; quietLoad: number; impact: number; misses: number };
}

export class NoisyNeighbours {
  readonly opts: NoisyOptions;
  private readonly ticks: { at: number; medianAll: number; contested: Contested[] }[] = [];
  private readonly tracked = new Map<string, Tracked>();
  private readonly sums = new Map<string, { ticks: number; held: number; fair: number; slots: number }>();
  private readonly noisySince = new Map<string, number>();

  constructor(opts: Partial<NoisyOptions> = {}) {
    this.opts = { ...NOISY_DEFAULTS, ...opts };
  }

  observe(t: NoisyTick): NoisyReport {
    const o = this.opts;
    // One pass over the tenants: the eligible p99s (sorted once: a tenant's "others" is this array
    // without its own value), who holds slots, and the rows of the tenants already tracked.
    const p99s = new Float64Array(t.tenants.length);
    let eligible = 0;
    const loaded: NoisyInput[] = [];
    const rows = new Map<string, NoisyInput>();
    for (const r of t.tenants) {
      if (r.p99 !== null && r.latencySamples >= o.minLatencySamples) p99s[eligible++] = r.p99;
      if (r.running > 0) loaded.push(r);
      if (this.tracked.has(r.tenant)) rows.set(r.tenant, r);
    }
    const sorted = p99s.subarray(0, eligible).sort();
    const contested = contestedOf(t);

    const dropped = this.slide(t.at, medianWithout(sorted, undefined), contested);

    this.track(t.at, dropped, loaded, rows, sorted);
    const impact = new Map<string, number>();
    const isolationIncomplete: IsolationIncomplete[] = [];
    const verdicts = [...this.tracked.values()].map((s) => this.verdict(s));
    const rise = Math.max(0, ...verdicts.map((v) => (v.flagged ? v.loadRise : 0)));
    let k = 0;
    for (const [tenant, s] of this.tracked) {
      const v = verdicts[k++]!;
      this.latch(s, v, v.flagged && v.loadRise >= o.dominance * rise, t.at);
      if (v.impact !== null) impact.set(tenant, round(v.impact));
      if (s.latch)
        isolationIncomplete.push({
          tenant,
          impact: round(s.latch.impact),
          othersP99Ms: round(s.others.at(-1)!),
          baselineP99Ms: round(s.latch.baseline),
          since: s.latch.since,
        });
    }

    const noisy: NoisyTenant[] = [];
    let active = 0;
    for (const r of t.tenants) {
      if (r.running + r.queued === 0) continue;
      active++;
      const s = r.queued > 0 ? this.sums.get(r.tenant) : undefined;
      if (!s || s.ticks < o.noisyMinTicks || s.held < o.noisyRatio * s.fair || s.held - s.fair < o.noisyExcessSlots * s.ticks) continue;
      const since = this.noisySince.get(r.tenant) ?? t.at;
      noisy.push({
        tenant: r.tenant,
        share: round(s.held / s.slots),
        fairShare: round(s.fair / s.slots),
        contestedTicks: s.ticks,
        impact: impact.get(r.tenant) ?? null,
        since,
      });
    }
    this.noisySince.clear();
    for (const x of noisy) this.noisySince.set(x.tenant, x.since);
    noisy.sort((a, b) => b.share - a.share || (a.tenant < b.tenant ? -1 : 1));
    isolationIncomplete.sort((a, b) => b.impact - a.impact || (a.tenant < b.tenant ? -1 : 1));
    return { windowMs: o.windowMs, ticks: this.ticks.length, noisy, quiet: active - noisy.length, isolationIncomplete, impact };
  }

  /** Adds this tick's contested slots to the window's sums and drops the ticks older than the window; returns how many dropped. */
  private slide(at: number, medianAll: number, contested: ReturnType<typeof contestedOf>): number {
    const o = this.opts;
    this.ticks.push({ at, medianAll, contested });
    for (const c of contested) {
      const s = this.sums.get(c.tenant) ?? { ticks: 0, held: 0, fair: 0, slots: 0 };
      s.ticks++;
      s.held += c.held;
      s.fair += c.fair;
      s.slots += c.slots;
      this.sums.set(c.tenant, s);
    }
    let dropped = 0;
    while (this.ticks.length && this.ticks[0]!.at <= at - o.windowMs) {
      for (const c of this.ticks.shift()!.contested) {
        const s = this.sums.get(c.tenant)!;
        if (--s.ticks === 0) this.sums.delete(c.tenant);
        else {
          s.held -= c.held;
          s.fair -= c.fair;
          s.slots -= c.slots;
        }
      }
      dropped++;
    }
    return dropped;
  }

  /**
   * Moves every tracked tenant's series on by this tick (the oldest `dropped`
   * out, its load and the others' p99 in), starts tracking the busiest new
   * tenants and forgets those idle for a whole window. Once full, a newcomer
   * must hold more slots than the least peak tracked (no churn among equals).
   */
  private track(at: number, dropped: number, loaded: readonly NoisyInput[], rows: Map<string, NoisyInput>, sorted: Float64Array): void {
    const o = this.opts;
    let least = Infinity;
    for (const [tenant, s] of this.tracked) {
      if (dropped) {
        s.load.splice(0, dropped);
        s.others.splice(0, dropped);
      }
      const running = rows.get(tenant)?.running ?? 0;
      if (running > 0) {
        s.lastLoadAt = at;
        s.peak = Math.max(s.peak, running);
      } else if (s.lastLoadAt <= at - o.windowMs) {
        this.tracked.delete(tenant);
        continue;
      }
      least = Math.min(least, s.peak);
    }
    const bar = this.tracked.size >= o.maxTracked ? least : 0;
    const fresh = loaded.filter((r) => r.running > bar && !this.tracked.has(r.tenant));
    if (fresh.length > o.maxTracked) fresh.sort((a, b) => b.running - a.running || (a.tenant < b.tenant ? -1 : 1)).length = o.maxTracked;
    // Its past in the window: load 0 and everyone's median.
    const past = this.ticks.slice(0, -1);
    for (const r of fresh) {
      this.tracked.set(r.tenant, { load: past.map(() => 0), others: past.map((k) => k.medianAll), lastLoadAt: at, peak: r.running });
      rows.set(r.tenant, r);
    }
    if (this.tracked.size > o.maxTracked) {
      const keep = [...this.tracked]
        .sort(([a, x], [b, y]) => y.peak - x.peak || y.lastLoadAt - x.lastLoadAt || (a < b ? -1 : 1))
        .slice(0, o.maxTracked);
      this.tracked.clear();
      for (const [k, v] of keep) this.tracked.set(k, v);
    }
    for (const [tenant, s] of this.tracked) {
      const r = rows.get(tenant);
      s.load.push(r?.running ?? 0);
      const own = r && r.p99 !== null && r.latencySamples >= o.minLatencySamples ? r.p99 : undefined;
      s.others.push(medianWithout(sorted, own));
    }
  }

  /** One tracked tenant's window, paired (ticks without an "others" value left out), judged. */
  private verdict(s: Tracked): ReturnType<typeof isolationImpact> {
    const xs: number[] = [];
    const ys: number[] = [];
    for (let k = 0; k < s.load.length; k++) {
      if (Number.isNaN(s.others[k]!)) continue;
      xs.push(s.load[k]!);
      ys.push(s.others[k]!);
    }
    return isolationImpact(xs, ys, this.opts);
  }

  /** Flags (`suspect`: it passes and dominates), keeps or clears a tenant's latch. */
  private latch(s: Tracked, v: ReturnType<typeof isolationImpact>, suspect: boolean, at: number): void {
    const o = this.opts;
    const loadNow = s.load.at(-1)!;
    const othersNow = s.others.at(-1)!;
    if (suspect && loadNow > v.mid && !Number.isNaN(othersNow)) {
      s.latch = { since: s.latch?.since ?? at, baseline: v.baseline, quietLoad: v.quietLoad, impact: v.impact!, misses: 0 };
    } else if (s.latch) {
      const b = s.latch.baseline;
      const still = loadNow > s.latch.quietLoad && othersNow >= b + o.minIncreaseMs && othersNow >= b * o.minIncreaseRatio;
      s.latch.misses = still ? 0 : s.latch.misses + 1;
      if (s.latch.misses >= o.clearTicks) s.latch = undefined;
    }
  }
}

const round = (x: number) => Math.round(x * 1000) / 1000;
