import type { WorkflowClass } from "../../queues/keys.ts";
import { FakeClock } from "../../src/lib/clock.ts";
import type { SchedulingCaps } from "../../src/scheduler/policy/caps.ts";
import { applyDispatch, applyRelease, decide, type PoolState, type TenantState } from "../../src/scheduler/policy/dispatchRule.ts";
import { DEFAULT_SHARES, type ShareOptions } from "../../src/scheduler/policy/shares.ts";

export const caps = (o: Partial<SchedulingCaps> = {}): SchedulingCaps => ({
  weight: 1,
  mca: 1000,
  burstMca: 1000,
  burstMs: 0,
  cooldownMs: 0,
  mcaUrgent: 1000,
  paused: false,
  pools: ["default"],
  ...o,
});

export interface SimTenant {
  caps: SchedulingCaps;
  queued: Partial<Record<WorkflowClass, number>>;
  durationMs: number;
}

export interface SimResult {
  dispatches: Record<string, number>;
  /** Busy slot-time per tenant within [0, untilMs]. */
  slotMs: Record<string, number>;
  maxRunning: Record<string, number>;
}

/**
 * Drives the pure dispatch rule with a fake clock: every free slot is filled
 * by `decide`, every workflow ends after its tenant's duration. No sleeping:
 * the clock jumps from event to event.
 */
export function simulate(capacity: number, tenants: Record<string, SimTenant>, untilMs: number, shares: ShareOptions = DEFAULT_SHARES): SimResult {
  const clock = new FakeClock(0);
  const pool: PoolState = { capacity, used: 0, usedA: 0, usedC: 0 };
  const state = new Map<string, TenantState>();
  const res: SimResult = { dispatches: {}, slotMs: {}, maxRunning: {} };
  for (const [name, t] of Object.entries(tenants)) {
    state.set(name, { caps: { ...t.caps }, queued: { A: 0, B: 0, C: 0, ...t.queued }, runningA: 0, runningBC: 0, held: 0, lastServed: 0 });
    res.dispatches[name] = 0;
    res.slotMs[name] = 0;
    res.maxRunning[name] = 0;
  }
  const ends: { at: number; tenant: string; cls: WorkflowClass; start: number }[] = [];
  let seq = 0;
  while (clock.now() <= untilMs) {
    for (let d = decide(pool, state, shares, clock.now()); d; d = decide(pool, state, shares, clock.now())) {
      applyDispatch(pool, state, d, clock.now(), ++seq);
      res.dispatches[d.tenant]!++;
      const t = state.get(d.tenant)!;
      res.maxRunning[d.tenant] = Math.max(res.maxRunning[d.tenant]!, t.held);
      ends.push({ at: clock.now() + tenants[d.tenant]!.durationMs, tenant: d.tenant, cls: d.cls, start: clock.now() });
    }
    if (!ends.length) break;
    ends.sort((a, b) => a.at - b.at);
    const next = ends[0]!.at;
    clock.set(next);
    while (ends.length && ends[0]!.at === next) {
      const e = ends.shift()!;
      applyRelease(pool, state, e.tenant, e.cls);
      res.slotMs[e.tenant]! += Math.min(e.at, untilMs) - Math.min(e.start, untilMs);
    }
  }
  for (const e of ends) res.slotMs[e.tenant]! += Math.max(0, untilMs - e.start);
  return res;
}

/** Jain's fairness index of x: 1 when all equal, 1/n when one has everything. */
export function jain(xs: number[]): number {
  const sum = xs.reduce((a, b) => a + b, 0);
  const sq = xs.reduce((a, b) => a + b * b, 0);
  return (sum * sum) / (xs.length * sq);
}
