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
