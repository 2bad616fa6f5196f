import type { Clock } from "../lib/clock.ts";
import type { HealthCache } from "./healthCache.ts";
import { passiveVerdict } from "./healthRule.ts";
import type { HealthStore } from "./healthStore.ts";

/**
 * Passive health in one process: tool-call outcomes per dependency over a
 * short window. When the window says degraded (an error rate, or one
 * "pool exhausted"/503/429 answer), the dependency is marked degraded in
 * Redis for every process — seconds, not a probe interval — and in this
 * process's cache at once. Recovery still needs healthy probes.
 */
export class PassiveHealth {
  private readonly events = new Map<string, { at: number; ok: boolean; overloaded: boolean }[]>();
  private readonly lastMark = new Map<string, number>();

  constructor(
    private readonly store: HealthStore,
    private readonly cache: HealthCache,
    private readonly clock: Clock,
    private readonly ttlMs = 15_000,
  ) {}

  record(cell: string, dep: string, ok: boolean, overloaded: boolean): void {
    const now = this.clock.now();
    const key = `${cell}|${dep}`;
    const list = (this.events.get(key) ?? []).filter((e) => now - e.at <= 10_000).slice(-200);
    list.push({ at: now, ok, overloaded });
    this.events.set(key, list);
    if (passiveVerdict(list, now) !== "degraded") return;
    this.cache.set(cell, dep, false);
    if (now - (this.lastMark.get(key) ?? 0) < 1_000) return; // one write a second is plenty
    this.lastMark.set(key, now);
    void this.store
      .markDegraded(dep, `passive: ${list.filter((e) => !e.ok).length} of ${list.length} calls failed`, this.ttlMs)
      .catch(() => undefined);
  }
}
