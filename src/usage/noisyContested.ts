/** Which backlogged tenants a tick contests (the noisy-neighbour signal's "noisy" fact, noisyNeighbour.ts). */
import type { NoisyTick } from "./noisyTypes.ts";

export interface Contested {
  tenant: string;
  held: number;
  fair: number;
  slots: number;
}

/** This tick's contested tenants: backlogged, in a group with no general slot free and another tenant backlogged. */
export function contestedOf(t: NoisyTick): Contested[] {
  const backlogged = new Map<string, number>();
  for (const tenant of t.shares.keys()) {
    const g = t.samples.get(tenant)?.group ?? "";
    backlogged.set(g, (backlogged.get(g) ?? 0) + 1);
  }
  const out: Contested[] = [];
  for (const [tenant, x] of t.shares) {
    const g = t.samples.get(tenant)?.group ?? "";
    const pool = t.groups.get(g);
    if (!pool || pool.slots <= 0 || pool.free > 0 || backlogged.get(g)! < 2) continue;
    out.push({ tenant, held: x.running, fair: x.share, slots: pool.slots });
  }
  return out;
}
