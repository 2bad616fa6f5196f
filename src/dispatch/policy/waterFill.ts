/**
 * Capped weighted fair shares, pure: `total` slots split among claimants in
 * proportion to their weights, none above its cap, what a capped claimant
 * cannot use going to the others by weight (water-filling). When the caps add
 * up to less than `total`, everyone gets its cap and the rest is unassigned.
 * A weight <= 0 counts as 1. The fair share the dispatch rule converges to
 * while everyone is backlogged; the simulator and the live fair-share signal
 * (src/dispatch/policy/fairness.ts) measure against it.
 */
export interface Claimant {
  weight: number;
  /** The most it can hold; absent or Infinity for no cap. */
  cap?: number;
}

export function waterFill(total: number, tenants: readonly Claimant[]): number[] {
  const w = tenants.map((t) => (t.weight > 0 ? t.weight : 1));
  const cap = tenants.map((t) => Math.max(0, t.cap ?? Infinity));
  // Lowest cap per unit of weight first: O(n log n) however many caps bind.
  const per = cap.map((c, i) => c / w[i]!);
  const order = tenants.map((_, i) => i).sort((a, b) => (per[a]! < per[b]! ? -1 : per[a]! > per[b]! ? 1 : 0));
  const share = tenants.map(() => 0);
  let left = Math.max(0, total);
  let weight = w.reduce((s, x) => s + x, 0);
  for (const [k, i] of order.entries()) {
    const level = left / weight;
    if (cap[i]! > level * w[i]!) {
      // Nobody from here on reaches its cap: the rest share what is left by weight.
      for (const j of order.slice(k)) share[j] = level * w[j]!;
      break;
    }
    share[i] = cap[i]!;
    left -= cap[i]!;
    weight -= w[i]!;
  }
  return share;
}
