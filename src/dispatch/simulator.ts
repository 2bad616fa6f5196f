import type { WorkflowClass } from "../../queues/keys.ts";
import { mulberry32 } from "../lib/random.ts";
import { jainIndex } from "./policy/fairness.ts";
import type { DispatchCaps } from "./policy/caps.ts";
import type { Lease } from "./policy/dispatchRule.ts";
import { PoolDispatch } from "./policy/poolDispatch.ts";
import { DEFAULT_SHARES, type ShareOptions } from "./policy/shares.ts";
import { waterFill } from "./policy/waterFill.ts";

/**
 * The fairness simulator: drives the real dispatch rule (PoolDispatch, the
 * one the dispatch script is checked against) with a fake clock through a
 * workload, and measures what each tenant got against what it was entitled
 * to. No sleeping: the clock jumps from event to event, so an hour of a
 * 100-slot pool takes well under a second. `npm run simulate` prints it.
 *
 * Entitlement, per class: at every moment, the slots held by that class's
 * backlogged tenants (queued work waiting) are split among them by weight,
 * each capped at its own cap (mca, or mcaUrgent for Class A; bursts not
 * counted), the excess going to the others by weight (water-filling). A
 * tenant's share is the slot-time it received while backlogged ÷ the
 * slot-time it was entitled to then: 1 is exactly fair.
 */
export type SimCaps = Omit<DispatchCaps, "burstStart" | "pools">;

export interface SimTenant {
  caps: SimCaps;
  cls: WorkflowClass;
  /** How many workflows; Infinity for a backlog that never ends. */
  jobs: number;
  /** Each run's slot-time: fixed, or uniform in [min, max]. */
  durationMs: number | [number, number];
  /** When its work arrives (idle before). */
  atMs?: number;
  /** Arrivals per second from atMs on; all at once when absent. */
  ratePerSec?: number;
}

export interface SimOptions {
  capacity: number;
  untilMs: number;
  shares?: ShareOptions;
  seed?: number;
  /** How many dispatches one script call makes at most (the dispatcher's batch). */
  maxMoves?: number;
}

export interface SimTenantResult {
  starts: number;
  /** Slot-time received within [0, untilMs]. */
  slotMs: number;
  backloggedMs: number;
  /** Slot-time received while backlogged ÷ the slot-time it was entitled to then; null if never backlogged. */
  share: number | null;
  maxRunning: number;
  /** Enqueue → dispatch, ms. */
  latency: { p50: number; p95: number; p99: number } | null;
}

export interface SimResult {
  tenants: Record<string, SimTenantResult>;
  /** Jain's index of the shares of tenants that were backlogged (1 = all got their entitlement). */
  jain: number | null;
  worst: { tenant: string; share: number } | null;
}

interface Live {
  spec: SimTenant;
  arrived: number;
  /** Arrival times not yet dispatched, oldest first, as [time, count] runs. */
  waiting: [number, number][];
  running: number;
  received: number;
  entitled: number;
  backloggedMs: number;
  slotMs: number;
  starts: number;
  maxRunning: number;
  latencies: number[];
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

export function simulate(tenants: Record<string, SimTenant>, o: SimOptions): SimResult {
  const shares = o.shares ?? DEFAULT_SHARES;
  const rand = mulberry32(o.seed ?? 1);
  const sched = new PoolDispatch(o.capacity, shares);
  const live = new Map<string, Live>();
  for (const [name, spec] of Object.entries(tenants)) {
    sched.setCaps(name, { ...spec.caps, pools: ["sim"] });
    live.set(name, {
      spec,
      arrived: 0,
      waiting: [],
      running: 0,
      received: 0,
      entitled: 0,
      backloggedMs: 0,
      slotMs: 0,
      starts: 0,
      maxRunning: 0,
      latencies: [],
    });
  }
  const ends: { at: number; lease: Lease }[] = [];
  const nextArrival = (l: Live): number => {
    if (l.arrived >= l.spec.jobs) return Infinity;
    const at = l.spec.atMs ?? 0;
    return l.spec.ratePerSec ? at + Math.floor((l.arrived * 1000) / l.spec.ratePerSec) : at;
  };
  const duration = (l: Live) => {
    const d = l.spec.durationMs;
    return typeof d === "number" ? d : Math.round(d[0] + rand() * (d[1] - d[0]));
  };
  let now = 0;
  for (;;) {
    // Arrivals due now: a whole backlog at once, or one by one at the rate.
    for (const [name, l] of live) {
      for (let at = nextArrival(l); at <= now; at = nextArrival(l)) {
        const n = l.spec.ratePerSec ? 1 : l.spec.jobs - l.arrived;
        sched.enqueue(name, l.spec.cls, n === Infinity ? Number.MAX_SAFE_INTEGER : n);
        l.waiting.push([at, n]);
        l.arrived += n;
      }
    }
    for (let batch = sched.dispatch(now, o.maxMoves ?? 100); batch.length; batch = sched.dispatch(now, o.maxMoves ?? 100)) {
      for (const lease of batch) {
        const l = live.get(lease.tenant)!;
        const head = l.waiting[0]!;
        l.latencies.push(now - head[0]);
        if (--head[1] === 0) l.waiting.shift();
        l.running++;
        l.starts++;
        l.maxRunning = Math.max(l.maxRunning, l.running);
        ends.push({ at: now + duration(l), lease });
      }
    }
    let next = Infinity;
    for (const e of ends) next = Math.min(next, e.at);
    for (const l of live.values()) next = Math.min(next, nextArrival(l));
    next = Math.min(next, o.untilMs);
    if (next <= now) break;
    account(live, now, next);
    now = next;
    if (now >= o.untilMs) break;
    for (let i = ends.length - 1; i >= 0; i--) {
      if (ends[i]!.at !== now) continue;
      const e = ends.splice(i, 1)[0]!;
      sched.release(e.lease, now);
      live.get(e.lease.tenant)!.running--;
    }
  }
  return results(live);
}

/** Slot-time received and entitled over [from, to), per class among backlogged tenants. */
function account(live: Map<string, Live>, from: number, to: number): void {
  const dt = to - from;
  const byClass = new Map<WorkflowClass, [string, Live][]>();
  for (const [name, l] of live) {
    l.slotMs += l.running * dt;
    if (!l.waiting.length) continue;
    const list = byClass.get(l.spec.cls) ?? [];
    list.push([name, l]);
    byClass.set(l.spec.cls, list);
  }
  for (const [cls, list] of byClass) {
    const held = list.reduce((s, [, l]) => s + l.running, 0);
    const fair = waterFill(
      held,
      list.map(([, l]) => ({ weight: l.spec.caps.weight, cap: cls === "A" ? l.spec.caps.mcaUrgent : l.spec.caps.mca })),
    );
    list.forEach(([, l], i) => {
      l.received += l.running * dt;
      l.entitled += fair[i]! * dt;
      l.backloggedMs += dt;
    });
  }
}

function results(live: Map<string, Live>): SimResult {
  const tenants: Record<string, SimTenantResult> = {};
  let worst: SimResult["worst"] = null;
  const xs: number[] = [];
  for (const [name, l] of live) {
    const share = l.entitled > 0 ? l.received / l.entitled : null;
    const sorted = [...l.latencies].sort((a, b) => a - b);
    tenants[name] = {
      starts: l.starts,
      slotMs: l.slotMs,
      backloggedMs: l.backloggedMs,
      share,
      maxRunning: l.maxRunning,
      latency: sorted.length ? { p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99) } : null,
    };
    if (share === null) continue;
    xs.push(share);
    if (!worst || share < worst.share) worst = { tenant: name, share };
  }
  return { tenants, jain: jainIndex(xs), worst };
}
