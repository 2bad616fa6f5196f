/**
 * Weighted fair queuing by service received, pure (DESIGN.md "Scheduling
 * semantics"). The dispatch script (queues/lua/dispatch-*.lua and
 * includes/releaseSlot.lua, includes/refreshTenant.lua) does the same
 * arithmetic in the same order, so both make bit-identical decisions; the
 * differential test (test/conformance/dispatch.differential.test.ts) checks it.
 *
 * Per pool and class, every tenant carries a virtual time `v`, in slot-ms ÷
 * weight, and the pool-class keeps `now`, the v last served:
 *
 *   dispatch   the eligible backlogged tenant with the lowest v is served
 *              (start-time fair queuing); `now` := its v; its v grows by
 *              charge ÷ weight, where charge is its estimate of how long the
 *              run will hold the slot — so the slots it holds now count
 *              before they finish;
 *   release    the run held its slot for `held` ms (dispatch → release): v
 *              grows by (held − charge) ÷ weight, so in total every run costs
 *              exactly the slot-time it received ÷ weight, and a 1 s workflow
 *              costs 100× a 10 ms one; the estimates learn from `held`;
 *   enter      a tenant entering the pool-class's ready set (its queue was
 *              empty, or it was held back by a cap or a pause) starts at
 *              max(v, frontier − its runs in flight ÷ weight), the frontier
 *              being min(now, the lowest v in the ready set): an idle tenant
 *              (nothing in flight) comes back level with the others — no
 *              banked credit, and its own debt only until they catch up.
 *              A tenant coming back from its cap keeps up to one round of
 *              its runs in flight of lag, so that it is served first up to
 *              its cap: a cap below its weighted share is its fair share
 *              (water-filling), and without that lag every slot it freed
 *              went by weight, leaving it at 80% of its cap. The set's
 *              minimum keeps an over-estimated charge not yet settled from
 *              pushing newcomers behind tenants already backlogged. Tenants
 *              entering in the same dispatch call enter together
 *              (enterTogether), each against the set as it was before any
 *              of them: one back from its cap enters below the frontier,
 *              and entering first it would lower the others' frontier.
 *
 * Estimates: the tenant's EWMA of held times in the pool-class (gain 1/4),
 * else the pool-class's EWMA over all tenants (gain 1/16), else nothing (0).
 * An estimate only shifts service in time; the release corrects every charge
 * to the truth. An over-estimate is the harmful error — tenants entering
 * meanwhile are placed against inflated virtual times and fall behind once
 * the others settle — so with nothing known a run is charged nothing (a
 * default of 1 s for 200 ms runs gave the first-admitted tenant 1.7× its
 * share in the simulator).
 */
export const DEFAULT_CHARGE_MS = 0;
const TENANT_GAIN = 4;
const POOL_GAIN = 16;

export interface WfqTenant {
  /** Virtual time, slot-ms ÷ weight; undefined before its first dispatch. */
  v?: number;
  /** Its estimate of a run's slot-time in this pool-class, ms. */
  est?: number;
  /** Slot-ms charged for its runs in flight (dispatched, not yet released). */
  inflight?: number;
}

export interface WfqClass {
  /** The v last served: the frontier when no tenant is ready. */
  now?: number;
  /** Estimate over all tenants, ms. */
  est?: number;
}

export function chargeFor(t: WfqTenant, c: WfqClass): number {
  return t.est ?? c.est ?? DEFAULT_CHARGE_MS;
}

/** Where a tenant entering the ready set starts; `lowest` is the lowest v in the set, if any. */
export function enterAt(t: WfqTenant, c: WfqClass, lowest: number | undefined, weight: number): number {
  const now = c.now ?? 0;
  const floor = (lowest !== undefined && lowest < now ? lowest : now) - (t.inflight ?? 0) / weight;
  return t.v === undefined || t.v < floor ? floor : t.v;
}

/** A flow waiting to enter a ready set (scores by name): its state, its class's, its weight, and its set's lowest v. */
export interface Entry {
  set: Map<string, number>;
  name: string;
  state: WfqTenant;
  klass: WfqClass;
  weight: number;
  lowest: () => number | undefined;
}

/**
 * Flows entering together, each against its set's lowest v as it was before any of them entered
 * (includes/refreshTenant.lua enterAll): they do not set each other's frontier, whatever their order.
 */
export function enterTogether(entries: Entry[]): void {
  const lowest = new Map<Map<string, number>, number | undefined>();
  for (const e of entries) if (!lowest.has(e.set)) lowest.set(e.set, e.lowest());
  for (const e of entries) {
    e.state.v = enterAt(e.state, e.klass, lowest.get(e.set), e.weight);
    e.set.set(e.name, e.state.v);
  }
}

/** Serving a tenant whose virtual time is `v`: its new v and in-flight charge, and the class's new now. */
export function serve(t: WfqTenant, v: number, charge: number, weight: number): { v: number; inflight: number; now: number } {
  return { v: v + charge / weight, inflight: (t.inflight ?? 0) + charge, now: v };
}

const ewma = (est: number | undefined, sample: number, gain: number) => (est === undefined ? sample : est + (sample - est) / gain);

/** A run that was charged `charge` held its slot for `heldMs`: the tenant's v, estimates and in-flight charge after. */
export function settle(
  t: WfqTenant,
  c: WfqClass,
  charge: number,
  heldMs: number,
  weight: number,
): { v: number; est: number; inflight: number; classEst: number } {
  return {
    v: (t.v ?? 0) + (heldMs - charge) / weight,
    est: ewma(t.est, heldMs, TENANT_GAIN),
    inflight: (t.inflight ?? 0) - charge,
    classEst: ewma(c.est, heldMs, POOL_GAIN),
  };
}

/** Slot-time of a run: from its dispatch to its release, never negative (clocks of two processes). */
export function heldMs(dispatchedAt: number, now: number): number {
  return now > dispatchedAt ? now - dispatchedAt : 0;
}
