import type { WorkflowClass } from "../../../queues/keys.ts";
import type { DispatchCaps, OrgCaps } from "./caps.ts";
import { poolShares, type ShareOptions } from "./shares.ts";
import type { WfqClass, WfqTenant } from "./wfq.ts";

/**
 * The dispatch rule for one pool, pure, and the state it keeps; PoolDispatch (poolDispatch.ts) is the
 * in-memory dispatcher that runs it step for step as the dispatch script does.
 *
 * Which class gets the next free slot: Class A into any free slot; else a
 * general slot (capacity minus the A reserve) goes to Class C below its
 * guaranteed minimum, else Class B, else Class C below its maximum share.
 * The slots are the capacity plus the pool's prefetch (prefetch.ts); the
 * reserve and the shares are those of the capacity.
 * Which tenant within the class: the head of the class's ready set — the
 * backlogged flows under their cap, ordered by virtual time (wfq.ts), ties
 * to the least recently served. A flow is a tenant without an org, or an org
 * (two-level fair queuing): an org's tenants have ready sets of their own,
 * and the org's head tenant takes the org's turn. Ready sets are kept incrementally, like the
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
  /** Its virtual times among the pool's flows (no org). */
  wfq: Record<WorkflowClass, WfqTenant>;
  /** Its virtual times among an org's tenants, per org it was in. */
  orgWfq: Map<string, Record<WorkflowClass, WfqTenant>>;
  /** The org whose sets it was placed in ("" none): the script's `inOrg`. */
  inOrg: string;
}

/** An org: one flow among the pool's, with its own caps, and its tenants' ready sets and virtual times. */
export interface ModelOrg {
  caps: OrgCaps;
  runningA: number;
  runningBC: number;
  lastServed: number;
  wfq: Record<WorkflowClass, WfqTenant>;
  ready: Record<WorkflowClass, Map<string, number>>;
  classes: Record<WorkflowClass, WfqClass>;
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
  /** The tenant's org at dispatch, and what the org was charged. */
  org?: string;
  orgCharge?: number;
  /** Pushed where workers fetch next (execPlace); else behind what waits in the exec queue. */
  head?: boolean;
}

export interface PoolState {
  capacity: number;
  used: number;
  usedA: number;
  usedC: number;
  /** The sum of the live workers' batch limits (`<cell>:pool:<p>:batch`); absent: no limit beyond the share. */
  batchCapacity?: number;
  /** Slots beyond the capacity the dispatch may fill, waiting for a worker (prefetch.ts; the cell's dispatch settings' `prefetch:<pool>`); absent: 0. */
  prefetch?: number;
}

/** The slots a dispatch may fill: the capacity, and the prefetch while the pool has any. */
export const dispatchLimit = (pool: PoolState): number => (pool.capacity > 0 ? pool.capacity + (pool.prefetch ?? 0) : 0);

/**
 * Where a move goes in the exec queue: where workers fetch next ("head") or behind what waits there.
 * Class A goes to the head. With a prefetch, Class B/C workflows wait in the queue for a worker while
 * holding their slots, and for a tenant (or org) at its cap that wait is running time lost from the
 * cap: so a Class B move that leaves its tenant or org at its cap goes to the head too, and waits only
 * for the next worker to free — unless Class A moved in the same call, which stays first. Class C keeps
 * its place behind Class B. Without a prefetch nothing changes.
 */
export function execPlace(cls: WorkflowClass, prefetch: number, movedA: boolean, leftAtCap: boolean): "head" | "tail" {
  if (cls === "A") return "head";
  return prefetch > 0 && cls === "B" && !movedA && leftAtCap ? "head" : "tail";
}

export function chooseClass(pool: PoolState, shares: ShareOptions, ready: (cls: WorkflowClass) => boolean): WorkflowClass | null {
  const limit = dispatchLimit(pool);
  if (limit - pool.used <= 0) return null;
  if (ready("A")) return "A";
  const { reserveA, minC, maxC } = poolShares(pool.capacity, shares, pool.batchCapacity);
  if (limit - reserveA - (pool.used - pool.usedA) <= 0) return null;
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
