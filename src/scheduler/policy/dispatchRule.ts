import type { WorkflowClass } from "../../../queues/keys.ts";
import { aEligible, bcEligible, type SchedulingCaps } from "./caps.ts";
import { poolShares, type ShareOptions } from "./shares.ts";

/**
 * The dispatch rule for one pool, pure, as a small in-memory scheduler: the
 * reference the Lua script (queues/lua/dispatch-15.lua) is checked against,
 * and what the unit tests drive with a fake clock.
 *
 * Which class gets the next free slot: Class A into any free slot; else a
 * general slot (capacity minus the A reserve) goes to Class C below its
 * guaranteed minimum, else Class B, else Class C below its maximum share.
 * Which tenant within the class: the eligible backlogged tenant with the
 * lowest slots-held ÷ weight; ties go to the least recently served (a
 * dispatch sequence number: the "virtual time" tie-break). Charging by slots
 * held, not by dispatch count, is what keeps long-running workflows from
 * buying a bigger share; an idle tenant has banked nothing when it returns.
 */
export interface TenantState {
  caps: SchedulingCaps;
  queued: Record<WorkflowClass, number>;
  runningA: number;
  runningBC: number;
  /** Slots held in this pool, all classes. */
  held: number;
  lastServed: number;
}

export interface PoolState {
  capacity: number;
  used: number;
  usedA: number;
  usedC: number;
}

export interface Decision {
  tenant: string;
  cls: WorkflowClass;
  startsBurst: boolean;
}

export function chooseClass(pool: PoolState, shares: ShareOptions, ready: (cls: WorkflowClass) => boolean): WorkflowClass | null {
  if (pool.capacity - pool.used <= 0) return null;
  if (ready("A")) return "A";
  const { reserveA, minC, maxC } = poolShares(pool.capacity, shares);
  if (pool.capacity - reserveA - (pool.used - pool.usedA) <= 0) return null;
  if (ready("C") && pool.usedC < minC) return "C";
  if (ready("B")) return "B";
  if (ready("C") && pool.usedC < maxC) return "C";
  return null;
}

export function eligibleFor(t: TenantState, cls: WorkflowClass, now: number): { ok: boolean; startsBurst: boolean } {
  if (t.caps.paused || t.queued[cls] <= 0) return { ok: false, startsBurst: false };
  if (cls === "A") return { ok: aEligible(t.caps, t.runningA), startsBurst: false };
  const d = bcEligible(t.caps, t.runningBC, now);
  return { ok: d.eligible, startsBurst: d.startsBurst };
}

/** WFQ order: lowest held/weight, then least recently served. Negative when a goes first. */
export function wfqCompare(a: TenantState, b: TenantState): number {
  return a.held / a.caps.weight - b.held / b.caps.weight || a.lastServed - b.lastServed;
}

/** The next dispatch, or null. O(n) here for clarity; the Lua keeps ready sets ordered (O(log n)). */
export function decide(pool: PoolState, tenants: Map<string, TenantState>, shares: ShareOptions, now: number): Decision | null {
  const best = (cls: WorkflowClass): [string, TenantState, boolean] | undefined => {
    let pick: [string, TenantState, boolean] | undefined;
    for (const [name, t] of tenants) {
      const e = eligibleFor(t, cls, now);
      if (e.ok && (!pick || wfqCompare(t, pick[1]) < 0)) pick = [name, t, e.startsBurst];
    }
    return pick;
  };
  const cls = chooseClass(pool, shares, (c) => best(c) !== undefined);
  if (!cls) return null;
  const [tenant, , startsBurst] = best(cls)!;
  return { tenant, cls, startsBurst };
}

/** Preemption victim: the most recently started Class C workflow not already asked to yield. */
export function choosePreemptionVictim(runningC: { id: string; startedAt: number; yielding: boolean }[]): string | null {
  let victim: { id: string; startedAt: number } | null = null;
  for (const r of runningC) if (!r.yielding && (!victim || r.startedAt > victim.startedAt)) victim = r;
  return victim?.id ?? null;
}

/**
 * Applies a decision to the in-memory state (what the script does to its
 * counters).
 */
export function applyDispatch(pool: PoolState, tenants: Map<string, TenantState>, d: Decision, now: number, seq: number): void {
  const t = tenants.get(d.tenant)!;
  t.queued[d.cls]--;
  t.held++;
  t.lastServed = seq;
  pool.used++;
  if (d.cls === "A") {
    t.runningA++;
    pool.usedA++;
  } else {
    t.runningBC++;
    if (d.cls === "C") pool.usedC++;
    if (d.startsBurst) t.caps.burstStart = now;
  }
}

export function applyRelease(pool: PoolState, tenants: Map<string, TenantState>, tenant: string, cls: WorkflowClass): void {
  const t = tenants.get(tenant)!;
  t.held--;
  pool.used--;
  if (cls === "A") {
    t.runningA--;
    pool.usedA--;
  } else {
    t.runningBC--;
    if (cls === "C") pool.usedC--;
  }
}
