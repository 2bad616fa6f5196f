/**
 * Capped weighted fair shares, pure: `total` slots split among claimants in
 * proportion to their weights, none above its cap, what a capped claimant
 * cannot use going to the others by weight (water-filling). The fair share
 * the dispatch rule converges to while everyone is backlogged; the simulator
 * and the live fair-share signal measure against it.
 */
export interface Claimant {
  weight: number;
  /** The most it can hold (Infinity for none). */
  cap: number;
}

export function waterFill(total: number, claimants: readonly Claimant[]): number[] {
  const out = claimants.map(() => 0);
  let open = claimants.map((_, i) => i);
  let left = total;
  while (open.length && left > 0) {
    const perWeight = left / open.reduce((s, i) => s + claimants[i]!.weight, 0);
    const capped = open.filter((i) => claimants[i]!.cap <= claimants[i]!.weight * perWeight);
    if (!capped.length) {
      for (const i of open) out[i] = claimants[i]!.weight * perWeight;
      return out;
    }
    for (const i of capped) {
      out[i] = claimants[i]!.cap;
      left -= claimants[i]!.cap;
    }
    open = open.filter((i) => !capped.includes(i));
  }
  return out;
}
