import { CLASSES, type WorkflowClass } from "../../../queues/keys.ts";
import { aEligible, bcEligible, type DispatchCaps } from "./caps.ts";
import { poolShares, type ShareOptions } from "./shares.ts";
import { chargeFor, enterAt, heldMs, serve, settle, type WfqClass, type WfqTenant } from "./wfq.ts";

/**
 * The dispatch rule for one pool, pure: an in-memory dispatcher that keeps the
 * same state the dispatch script keeps in Redis (ready sets, dirty tenants,
 * cooldown timers, virtual times) and changes it in the same steps, so the two
 * make the same decisions — the differential test drives both with the same
 * generated events. The simulator (`npm run simulate`) and the unit tests run
 * it with a fake clock.
 *
 * Which class gets the next free slot: Class A into any free slot; else a
 * general slot (capacity minus the A reserve) goes to Class C below its
 * guaranteed minimum, else Class B, else Class C below its maximum share.
 * Which tenant within the class: the head of the class's ready set — the
 * backlogged tenants under their cap, ordered by virtual time (wfq.ts), ties
 * to the least recently served. Ready sets are kept incrementally, like the
 * script's: a tenant is (re)computed when marked dirty (work arrived to an
 * empty queue, a slot came free at its cap, its policy changed), when its
 * cooldown ends, and when it is picked but can no longer run.
 */
export interface ModelTenant {
  caps: DispatchCaps;
  queued: Record<WorkflowClass, number>;
  runningA: number;
  runningBC: number;
  /** Slots held in this pool, all classes. */
  held: number;
  /** Dispatch sequence of its last dispatch here: the tie-break (least recently served first). */
  lastServed: number;
  wfq: Record<WorkflowClass, WfqTenant>;
}

/** One dispatch: what the script records in the slot lease. */
export interface Lease {
  tenant: string;
  cls: WorkflowClass;
  dispatchedAt: number;
  /** Slot-ms charged at dispatch (the estimate), settled at release. */
  charge: number;
  seq: number;
  startsBurst: boolean;
}

export interface PoolState {
  capacity: number;
  used: number;
  usedA: number;
  usedC: number;
  /** The sum of the live workers' batch limits (`<cell>:pool:<p>:batch`); absent: no limit beyond the share. */
  batchCapacity?: number;
}

export function chooseClass(pool: PoolState, shares: ShareOptions, ready: (cls: WorkflowClass) => boolean): WorkflowClass | null {
  if (pool.capacity - pool.used <= 0) return null;
  if (ready("A")) return "A";
  const { reserveA, minC, maxC } = poolShares(pool.capacity, shares, pool.batchCapacity);
  if (pool.capacity - reserveA - (pool.used - pool.usedA) <= 0) return null;
  if (ready("C") && pool.usedC < minC) return "C";
  if (ready("B")) return "B";
  if (ready("C") && pool.usedC < maxC) return "C";
  return null;
}

/** The ready-set member: "<14-digit last dispatch seq>:<tenant>", ordered as Redis orders members. */
export const readyMember = (seq: number, tenant: string) => `${String(seq).padStart(14, "0")}:${tenant}`;

/** Preemption victim: the most recently started Class C workflow not already yielding. */
export function choosePreemptionVictim(runningC: { id: string; startedAt: number; yielding: boolean }[]): string | null {
  let victim: { id: string; startedAt: number } | null = null;
  for (const r of runningC) if (!r.yielding && (!victim || r.startedAt > victim.startedAt)) victim = r;
  return victim?.id ?? null;
}

export class PoolDispatch {
  readonly pool: PoolState;
  readonly tenants = new Map<string, ModelTenant>();
  /** Per class: tenant -> score (its virtual time). */
  readonly ready: Record<WorkflowClass, Map<string, number>> = { A: new Map(), B: new Map(), C: new Map() };
  readonly classes: Record<WorkflowClass, WfqClass> = { A: {}, B: {}, C: {} };
  readonly dirty = new Set<string>();
  readonly timers = new Map<string, number>();
  seq = 0;

  constructor(
    capacity: number,
    private readonly shares: ShareOptions,
  ) {
    this.pool = { capacity, used: 0, usedA: 0, usedC: 0 };
  }

  /** A new tenant, or new caps for one (an operator's change): recomputed at the next dispatch. */
  setCaps(name: string, caps: Omit<DispatchCaps, "burstStart">): void {
    const t = this.tenants.get(name);
    if (t) t.caps = { ...caps, burstStart: t.caps.burstStart };
    else
      this.tenants.set(name, {
        caps: { ...caps },
        queued: { A: 0, B: 0, C: 0 },
        runningA: 0,
        runningBC: 0,
        held: 0,
        lastServed: 0,
        wfq: { A: {}, B: {}, C: {} },
      });
    this.dirty.add(name);
  }

  /** Work admitted: a queue that was empty makes its tenant dirty (admission's "became backlogged"). */
  enqueue(name: string, cls: WorkflowClass, n = 1): void {
    const t = this.tenants.get(name)!;
    if (t.queued[cls] === 0 && n > 0) this.dirty.add(name);
    t.queued[cls] += n;
  }

  /** Up to maxMoves dispatches at `now`, in the order the script makes them. */
  dispatch(now: number, maxMoves: number): Lease[] {
    for (const name of [...this.dirty]) {
      this.dirty.delete(name);
      this.refresh(name, now);
    }
    const due = [...this.timers].filter(([, at]) => at <= now).sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1));
    for (const [name] of due.slice(0, 100)) {
      this.timers.delete(name);
      this.refresh(name, now);
    }
    const out: Lease[] = [];
    for (let steps = 0; out.length < maxMoves && steps < maxMoves * 4; steps++) {
      const cls = chooseClass(this.pool, this.shares, (c) => this.ready[c].size > 0);
      if (!cls) break;
      const [name, score] = this.head(cls);
      const t = this.tenants.get(name)!;
      let ok = false;
      let startsBurst = false;
      if (!t.caps.paused) {
        if (cls === "A") ok = aEligible(t.caps, t.runningA);
        else ({ eligible: ok, startsBurst } = bcEligible(t.caps, t.runningBC, now));
      }
      if (!ok || t.queued[cls] <= 0) {
        this.ready[cls].delete(name);
        this.refresh(name, now);
        continue;
      }
      out.push(this.move(name, t, cls, score, startsBurst, now));
    }
    return out;
  }

  /** A run's slot is released at `now` (finished, requeued, parked or reconciled). */
  release(lease: Lease, now: number): void {
    const t = this.tenants.get(lease.tenant)!;
    const cls = lease.cls;
    this.pool.used--;
    t.held--;
    let mayBecomeEligible: boolean;
    if (cls === "A") {
      this.pool.usedA--;
      mayBecomeEligible = --t.runningA >= t.caps.mcaUrgent - 1;
    } else {
      mayBecomeEligible = --t.runningBC >= t.caps.mca - 1;
      if (cls === "C") this.pool.usedC--;
    }
    const s = settle(t.wfq[cls], this.classes[cls], lease.charge, heldMs(lease.dispatchedAt, now), t.caps.weight);
    t.wfq[cls] = { v: s.v, est: s.est, inflight: s.inflight };
    this.classes[cls].est = s.classEst;
    if (this.ready[cls].has(lease.tenant)) this.ready[cls].set(lease.tenant, s.v);
    if (mayBecomeEligible) this.dirty.add(lease.tenant);
  }

  private head(cls: WorkflowClass): [string, number] {
    let best: [string, number, string] | undefined;
    for (const [name, score] of this.ready[cls]) {
      const m = readyMember(this.tenants.get(name)!.lastServed, name);
      if (!best || score < best[1] || (score === best[1] && m < best[2])) best = [name, score, m];
    }
    return [best![0], best![1]];
  }

  private move(name: string, t: ModelTenant, cls: WorkflowClass, v: number, startsBurst: boolean, now: number): Lease {
    t.queued[cls]--;
    const seq = ++this.seq;
    const charge = chargeFor(t.wfq[cls], this.classes[cls]);
    this.pool.used++;
    t.held++;
    if (cls === "A") {
      this.pool.usedA++;
      t.runningA++;
    } else {
      t.runningBC++;
      if (startsBurst) t.caps.burstStart = now;
      if (cls === "C") this.pool.usedC++;
    }
    const served = serve(t.wfq[cls], v, charge, t.caps.weight);
    this.classes[cls].now = served.now;
    t.wfq[cls].v = served.v;
    t.wfq[cls].inflight = served.inflight;
    t.lastServed = seq;
    const bc = bcEligible(t.caps, t.runningBC, now);
    if (bc.retryAt !== undefined) this.timers.set(name, bc.retryAt);
    const eligible = { A: aEligible(t.caps, t.runningA), B: bc.eligible, C: bc.eligible };
    for (const x of CLASSES) {
      const old = this.ready[x].get(name);
      this.ready[x].delete(name);
      const backlog = x === cls ? t.queued[cls] > 0 : old !== undefined;
      if (backlog && eligible[x]) this.ready[x].set(name, x === cls ? served.v : old!);
    }
    return { tenant: name, cls, dispatchedAt: now, charge, seq, startsBurst };
  }

  /** Recomputes a tenant's membership in every ready set; entering one starts it at max(v, frontier). */
  private refresh(name: string, now: number): void {
    const t = this.tenants.get(name);
    if (!t) return;
    const paused = t.caps.paused;
    const bc = bcEligible(t.caps, t.runningBC, now);
    if (bc.retryAt !== undefined && !paused) this.timers.set(name, bc.retryAt);
    const eligible = { A: !paused && aEligible(t.caps, t.runningA), B: !paused && bc.eligible, C: !paused && bc.eligible };
    for (const cls of CLASSES) {
      if (t.queued[cls] > 0 && eligible[cls]) {
        if (this.ready[cls].has(name)) continue;
        const v = enterAt(t.wfq[cls], this.classes[cls], this.ready[cls].size ? this.head(cls)[1] : undefined, t.caps.weight);
        t.wfq[cls].v = v;
        this.ready[cls].set(name, v);
      } else this.ready[cls].delete(name);
    }
  }
}
