import type { Clock } from "../lib/clock.ts";
import type { PolicyRegistry } from "../tenancy/registry.ts";
import { weightedSlotFairness, type FairnessSample } from "./fairness.ts";
import { UsageHistory, type TenantHistory } from "./usageHistory.ts";
import type { UsageRollups } from "./usageRollup.ts";
import type { UsageReader, UsageSnapshot } from "./usageSnapshot.ts";

/**
 * The api process's usage sampler. Every `tickMs` (unref'd timer, injected
 * clock) it reads one snapshot of every tenant (UsageReader) and:
 *   - keeps it as `latest` (the dashboard and GET /v1/admin/usage serve it, so
 *     any number of open dashboards cost one Redis pass per tick);
 *   - every `historyEveryMs` appends it to the 15-minute chart history;
 *   - keeps the last minute of ticks for Jain's fairness index;
 *   - feeds the 10-minute capacity rollups and writes the ended ones.
 * A tick still running when the next is due makes that one skip (no pile-up).
 */
export interface SamplerOptions {
  tickMs: number;
  historyEveryMs: number;
  historyPoints: number;
  fairnessWindowMs: number;
  cells: string[];
}

export interface Fairness {
  index: number | null;
  tenants: number;
  windowMs: number;
}

export interface SampledUsage {
  snapshot: UsageSnapshot;
  fairness: Fairness;
}

export class UsageSampler {
  readonly history: UsageHistory;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<SampledUsage> | undefined;
  private current: SampledUsage | undefined;
  private lastHistoryAt = -Infinity;
  private readonly ticks: { at: number; samples: Map<string, FairnessSample> }[] = [];
  lastError: string | undefined;

  constructor(
    private readonly reader: UsageReader,
    private readonly registry: PolicyRegistry,
    private readonly clock: Clock,
    private readonly rollups: UsageRollups,
    readonly opts: SamplerOptions,
  ) {
    this.history = new UsageHistory(opts.historyPoints);
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
    return this.history.get(tenant, this.current?.snapshot.tenants.find((t) => t.tenant === tenant), this.current?.snapshot.at);
  }

  tick(): Promise<SampledUsage> {
    this.running ??= this.sample().finally(() => (this.running = undefined));
    return this.running;
  }

  private async sample(): Promise<SampledUsage> {
    const now = this.clock.now();
    let snapshot: UsageSnapshot;
    try {
      snapshot = await this.reader.read(this.registry.list(), now, this.opts.cells);
      this.lastError = undefined;
    } catch (err) {
      this.lastError = (err as Error).message;
      throw err;
    }
    const samples = new Map<string, FairnessSample>();
    for (const r of snapshot.tenants)
      if (r.running.total > 0 || r.queued.total > 0) samples.set(r.tenant, { running: r.running.total, backlogged: r.queued.total > 0, weight: r.weight });
    this.ticks.push({ at: now, samples });
    while (this.ticks.length && this.ticks[0]!.at <= now - this.opts.fairnessWindowMs) this.ticks.shift();
    const f = weightedSlotFairness(this.ticks.map((t) => t.samples));
    const fairness: Fairness = { index: f.index === null ? null : Math.round(f.index * 1000) / 1000, tenants: f.tenants, windowMs: this.opts.fairnessWindowMs };
    if (now - this.lastHistoryAt >= this.opts.historyEveryMs) {
      this.history.push(now, snapshot.tenants);
      this.lastHistoryAt = now;
    }
    this.rollups.observe(snapshot);
    await this.rollups.flush(now).catch(() => 0);
    this.current = { snapshot, fairness };
    return this.current;
  }
}
