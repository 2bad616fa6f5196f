import { waterFill } from "./waterFill.ts";

/**
 * Jain's fairness index, pure: J(x) = (Σx)² / (n · Σx²), 1 when every x is
 * equal, 1/n when one tenant has everything. Null for no tenants; 1 when all
 * are zero (nobody was served, nobody was favoured).
 */
export function jainIndex(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  let sum = 0;
  let sq = 0;
  for (const x of xs) {
    sum += x;
    sq += x * x;
  }
  if (sq === 0) return 1;
  return (sum * sum) / (xs.length * sq);
}

/** One sampler observation of one tenant: slots held and whether it had work waiting. */
export interface FairnessSample {
  running: number;
  backlogged: boolean;
  weight: number;
  /** The most slots it could hold this tick (its caps, its demand); absent: no cap. */
  cap?: number;
  /** Tenants of different groups never compete for the same slots (cells, pools); absent: one group. */
  group?: string;
}

/**
 * The dashboard's fairness over a window (the last minute of sampler ticks):
 * among tenants backlogged in at least half the ticks (they wanted more slots
 * throughout), x = mean slots held ÷ weight — weighted slot-time share, the
 * quantity the dispatcher equalises. Tenants held back by their own cap (mca)
 * lower it too: it measures what tenants got, not why.
 */
export function weightedSlotFairness(ticks: readonly Map<string, FairnessSample>[]): { index: number | null; tenants: number } {
  const backlogged = new Map<string, number>();
  const slotTime = new Map<string, number>();
  for (const tick of ticks) {
    for (const [tenant, s] of tick) {
      if (s.backlogged) backlogged.set(tenant, (backlogged.get(tenant) ?? 0) + 1);
      slotTime.set(tenant, (slotTime.get(tenant) ?? 0) + s.running / (s.weight > 0 ? s.weight : 1));
    }
  }
  const xs: number[] = [];
  for (const [tenant, n] of backlogged) if (n * 2 >= ticks.length) xs.push((slotTime.get(tenant) ?? 0) / ticks.length);
  return { index: jainIndex(xs), tenants: xs.length };
}

/** A tenant's slot-time against its fair share over the window, summed over the ticks it was backlogged in. */
export interface FairShare {
  /** received ÷ fairShare: 1 = exactly its fair share, 0.5 = half of it; null when fairShare is 0. */
  ratio: number | null;
  /** Σ slots held, over the ticks it was backlogged in (slot-ticks). */
  received: number;
  /** Σ its capped weighted fair share, over the same ticks. */
  fairShare: number;
  backloggedTicks: number;
}

/** One tick's fair shares: per backlogged tenant, slots held and its capped weighted fair share. */
export type TickShares = Map<string, { running: number; share: number }>;

/**
 * The live fairness error per tenant over a window of sampler ticks, pure.
 * In each tick, per group: B = the tenants backlogged in it, S = Σ slots they
 * hold; their fair shares are the capped weighted water-filling of S among B
 * (waterFill, the dispatch rule's fair share). Slots held by tenants with nothing queued are theirs
 * and are not shared out. Over the window, a tenant's ratio is Σ slots held ÷
 * Σ fair share, both over only the ticks in which it was backlogged; a tenant
 * never backlogged has no entry. `worst` is the lowest ratio (ties by tenant
 * id) among the tenants backlogged in at least half the ticks, the set Jain's
 * index counts: a tenant that queued a moment ago and waits for its first slot
 * to free is not yet a fairness problem.
 */
export function fairShareRatios(ticks: readonly Map<string, FairnessSample>[]): {
  tenants: Map<string, FairShare>;
  worst: { tenant: string; ratio: number } | null;
} {
  return sumFairShares(ticks.map(tickFairShares));
}

/** Step 1, per tick (a tick's shares never change: the sampler computes them once). */
export function tickFairShares(tick: ReadonlyMap<string, FairnessSample>): TickShares {
  const groups = new Map<string, [string, FairnessSample][]>();
  for (const [tenant, s] of tick) {
    if (!s.backlogged) continue;
    const g = groups.get(s.group ?? "") ?? [];
    g.push([tenant, s]);
    groups.set(s.group ?? "", g);
  }
  const out: TickShares = new Map();
  for (const members of groups.values()) {
    const slots = members.reduce((n, [, s]) => n + s.running, 0);
    const shares = waterFill(
      slots,
      members.map(([, s]) => s),
    );
    members.forEach(([tenant, s], k) => out.set(tenant, { running: s.running, share: shares[k]! }));
  }
  return out;
}

/** Step 2, over the window: the sums, the ratios and the worst. */
export function sumFairShares(ticks: readonly TickShares[]): {
  tenants: Map<string, FairShare>;
  worst: { tenant: string; ratio: number } | null;
} {
  const tenants = new Map<string, FairShare>();
  for (const tick of ticks) {
    for (const [tenant, x] of tick) {
      const f = tenants.get(tenant) ?? { ratio: null, received: 0, fairShare: 0, backloggedTicks: 0 };
      f.received += x.running;
      f.fairShare += x.share;
      f.backloggedTicks++;
      tenants.set(tenant, f);
    }
  }
  let worst: { tenant: string; ratio: number } | null = null;
  for (const [tenant, f] of tenants) {
    // Below a millionth of a slot-tick the share is rounding noise, not a share.
    f.ratio = f.fairShare > 1e-9 ? f.received / f.fairShare : null;
    if (f.ratio === null || f.backloggedTicks * 2 < ticks.length) continue;
    if (!worst || f.ratio < worst.ratio || (f.ratio === worst.ratio && tenant < worst.tenant)) worst = { tenant, ratio: f.ratio };
  }
  return { tenants, worst };
}
