import type { Clock } from "../lib/clock.ts";
import type { PolicyRegistry, TenantEntry } from "../tenancy/registry.ts";
import { sumFairShares, tickFairShares, weightedSlotFairness, type FairnessSample, type TickShares } from "../dispatch/policy/fairness.ts";
import { NoisyNeighbours, type NoisyOptions, type NoisyReport } from "./noisyNeighbour.ts";
import { UsageHistory, type TenantHistory } from "./usageHistory.ts";
import type { UsageRollups } from "./usageRollup.ts";
import type { PoolUsage, TenantUsage, UsageReader, UsageSnapshot } from "./usageSnapshot.ts";

/**
 * The api process's usage sampler. Every `tickMs` (unref'd timer, injected
 * clock) it reads one snapshot of every tenant (UsageReader) and:
 *   - keeps it as `latest` (the dashboard and GET /v1/admin/usage serve it, so
 *     any number of open dashboards cost one Redis pass per tick);
 *   - every `historyEveryMs` appends it to the 15-minute chart history;
 *   - keeps the last minute of ticks for Jain's fairness index and each
 *     tenant's fair-share ratio (each tick's fair shares computed once, then
 *     summed: fairShareRatios; written into its row);
 *   - feeds the noisy-neighbour signal (noisyNeighbour.ts: who holds far more
 *     than its fair share while others wait; whose load moves the others'
 *     enqueue→start latency) over the same window;
 *   - feeds the 10-minute capacity rollups and writes the ended ones.
 * A tick still running when the next is due makes that one skip (no pile-up).
 */
export interface SamplerOptions {
  tickMs: number;
  historyEveryMs: number;
  historyPoints: number;
  fairnessWindowMs: number;
  cells: string[];
  /** The noisy-neighbour thresholds (noisyNeighbour.ts NOISY_DEFAULTS); its window is fairnessWindowMs. */
  noisy?: Partial<Omit<NoisyOptions, "windowMs">>;
}

export interface Fairness {
  index: number | null;
  tenants: number;
  windowMs: number;
  /** Sampler ticks in the window (a tenant's fairShare.backloggedTicks is out of these). */
  ticks: number;
  /** The lowest fair-share ratio among the tenants Jain's index counts, and whose. */
  worst: { tenant: string; ratio: number } | null;
}

export interface SampledUsage {
  snapshot: UsageSnapshot;
  fairness: Fairness;
  noisy: NoisyReport;
}

export class UsageSampler {
  readonly history: UsageHistory;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<SampledUsage> | undefined;
  private current: SampledUsage | undefined;
  private lastHistoryAt = -Infinity;
  private readonly ticks: { at: number; samples: Map<string, FairnessSample>; shares: TickShares }[] = [];
  private readonly neighbours: NoisyNeighbours;
  lastError: string | undefined;
  /** How long the last tick's noisy-neighbour step took (ms). */
  noisyMs = 0;

  constructor(
    private readonly reader: UsageReader,
    private readonly registry: PolicyRegistry,
    private readonly clock: Clock,
    private readonly rollups: UsageRollups,
    readonly opts: SamplerOptions,
  ) {
    this.history = new UsageHistory(opts.historyPoints);
    this.neighbours = new NoisyNeighbours({ ...opts.noisy, windowMs: opts.fairnessWindowMs });
  }

  start(): void {
    void this.tick().catch(() => undefined);
    this.timer = setInterval(() => {
      if (!this.running) void this.tick().catch(() => undefined);
    }, this.opts.tickMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The latest sample if it is at most `maxAgeMs` old, else a fresh one (shared with a tick under way). */
  async fresh(maxAgeMs: number): Promise<SampledUsage> {
    if (this.current && this.clock.now() - this.current.snapshot.at <= maxAgeMs) return this.current;
    return this.tick();
  }

  historyOf(tenant: string): TenantHistory {
    return this.history.get(
      tenant,
      this.current?.snapshot.tenants.find((t) => t.tenant === tenant),
      this.current?.snapshot.at,
    );
  }

  tick(): Promise<SampledUsage> {
    this.running ??= this.sample().finally(() => (this.running = undefined));
    return this.running;
  }

  private async sample(): Promise<SampledUsage> {
    const now = this.clock.now();
    let snapshot: UsageSnapshot;
    let entries: TenantEntry[];
    try {
      entries = this.registry.list();
      snapshot = await this.reader.read(entries, now, this.opts.cells);
      this.lastError = undefined;
    } catch (err) {
      this.lastError = (err as Error).message;
      throw err;
    }
    const samples = new Map<string, FairnessSample>();
    const groups = poolGroups(entries.map((e) => ({ tenant: e.tenant, cell: e.policy.cell, pools: e.policy.pools })));
    for (const r of snapshot.tenants) {
      const s = fairnessSampleOf(r, groups.get(r.tenant));
      if (s) samples.set(r.tenant, s);
    }
    const tickShares = tickFairShares(samples);
    this.ticks.push({ at: now, samples, shares: tickShares });
    while (this.ticks.length && this.ticks[0]!.at <= now - this.opts.fairnessWindowMs) this.ticks.shift();
    const f = weightedSlotFairness(this.ticks.map((t) => t.samples));
    const shares = sumFairShares(this.ticks.map((t) => t.shares));
    const round = (x: number) => Math.round(x * 1000) / 1000;
    for (const r of snapshot.tenants) {
      const own = shares.tenants.get(r.tenant);
      if (own) r.fairShare = { ratio: own.ratio === null ? null : round(own.ratio), backloggedTicks: own.backloggedTicks };
    }
    const fairness: Fairness = {
      index: f.index === null ? null : round(f.index),
      tenants: f.tenants,
      windowMs: this.opts.fairnessWindowMs,
      ticks: this.ticks.length,
      worst: shares.worst && { tenant: shares.worst.tenant, ratio: round(shares.worst.ratio) },
    };
    const n0 = performance.now();
    const noisy = this.neighbours.observe({
      at: now,
      tenants: snapshot.tenants.map((r) => ({
        tenant: r.tenant,
        running: r.running.total,
        queued: r.queued.total,
        p99: r.latency.p99,
        latencySamples: r.latency.samples,
      })),
      samples,
      shares: tickShares,
      groups: groupSlots(snapshot.pools, entries, groups),
    });
    this.noisyMs = performance.now() - n0;
    if (now - this.lastHistoryAt >= this.opts.historyEveryMs) {
      this.history.push(now, snapshot.tenants);
      this.lastHistoryAt = now;
    }
    this.rollups.observe(snapshot);
    await this.rollups.flush(now).catch(() => 0);
    this.current = { snapshot, fairness, noisy };
    return this.current;
  }
}

/**
 * What the fairness math sees of one tenant this tick (undefined: idle).
 * `cap` is the most slots it could hold now, per class: Class B + C up to
 * burst.mca while a burst is open or available, else mca; Class A up to
 * mcaUrgent; each no more than it holds plus has queued (a tenant is not owed
 * slots it has no work for), and a paused tenant no more than it holds (it
 * starts nothing). What a cap leaves goes to the other backlogged tenants.
 */
export function fairnessSampleOf(t: TenantUsage, group?: string): FairnessSample | undefined {
  if (t.running.total === 0 && t.queued.total === 0) return undefined;
  const bc = t.running.B + t.running.C;
  const bcCap = t.burst.state === "open" || t.burst.state === "available" ? Math.max(t.mca, t.burstMca) : t.mca;
  const cap = t.paused ? t.running.total : Math.min(t.mcaUrgent, t.running.A + t.queued.A) + Math.min(bcCap, bc + t.queued.B + t.queued.C);
  return { running: t.running.total, backlogged: t.queued.total > 0, weight: t.weight, cap, ...(group === undefined ? {} : { group }) };
}

/**
 * Per pool group (poolGroups): its general slots (capacity less the Class A
 * reserve) and how many of them are free now (a reserve slot Class A does not
 * use is not free for anyone else). Pure.
 */
export function groupSlots(
  pools: readonly PoolUsage[],
  entries: readonly TenantEntry[],
  groups: ReadonlyMap<string, string>,
): Map<string, { slots: number; free: number }> {
  const groupOf = new Map<string, string>();
  for (const e of entries) {
    const g = groups.get(e.tenant);
    if (g !== undefined) for (const p of e.policy.pools) groupOf.set(`${e.policy.cell}|${p}`, g);
  }
  const out = new Map<string, { slots: number; free: number }>();
  for (const p of pools) {
    const g = groupOf.get(`${p.cell}|${p.pool}`);
    if (g === undefined) continue;
    const x = out.get(g) ?? { slots: 0, free: 0 };
    x.slots += Math.max(0, p.capacity - p.reserveA);
    x.free += Math.max(0, p.capacity - p.used - Math.max(0, p.reserveA - p.usedA));
    out.set(g, x);
  }
  return out;
}

/**
 * Which tenants compete for the same slots: tenants sharing a pool of a cell,
 * and transitively every tenant of every pool any of them may use (a tenant
 * allowed in two pools joins their groups). A tenant alone in a dedicated pool
 * is a group of its own. Pure; names a group by one of its `cell|pool`s.
 */
export function poolGroups(tenants: readonly { tenant: string; cell: string; pools: readonly string[] }[]): Map<string, string> {
  const parent = new Map<string, string>();
  const find = (k: string): string => {
    let r = k;
    while (parent.get(r) !== r) r = parent.get(r) ?? (parent.set(r, r), r);
    parent.set(k, r);
    return r;
  };
  for (const t of tenants) {
    const keys = t.pools.map((p) => `${t.cell}|${p}`);
    for (const k of keys) find(k);
    for (const k of keys.slice(1)) {
      const [a, b] = [find(keys[0]!), find(k)];
      // biome-ignore lint/complexity/useMathMinMax: tenant ids are strings (the larger points at the smaller)
      if (a !== b) parent.set(b < a ? a : b, b < a ? b : a);
    }
  }
  return new Map(tenants.filter((t) => t.pools.length).map((t) => [t.tenant, find(`${t.cell}|${t.pools[0]}`)]));
}
