/**
 * Where a tenant stands against its caps, pure (the dashboard's highlight and
 * the capacity rollups use it). Burst states mirror the dispatch script's rule
 * (queues/lua/includes/tenantCaps.lua):
 *   none       the policy has no burst (burst.mca = mca, or 0 seconds)
 *   available  it may start a burst (the next start above mca opens the window)
 *   open       the window is open until `until`: starts above mca are allowed
 *   cooldown   the window closed; no burst again until `until`
 */
export type BurstState = "none" | "available" | "open" | "cooldown";

export interface BurstCaps {
  mca: number;
  burstMca: number;
  burstMs: number;
  cooldownMs: number;
  /** When the current or last window opened (epoch ms), or null. */
  burstStart: number | null;
}

export function burstState(c: BurstCaps, now: number): { state: BurstState; until: number | null } {
  if (c.burstMca <= c.mca || c.burstMs <= 0) return { state: "none", until: null };
  if (c.burstStart !== null && c.burstStart >= 0) {
    const windowEnd = c.burstStart + c.burstMs;
    if (now < windowEnd) return { state: "open", until: windowEnd };
    const coolEnd = windowEnd + c.cooldownMs;
    if (now < coolEnd) return { state: "cooldown", until: coolEnd };
  }
  return { state: "available", until: null };
}

export interface CapInput {
  runningA: number;
  /** Class B + C running: what mca caps. */
  runningBC: number;
  mca: number;
  mcaUrgent: number;
  toolsInFlight: number;
  mctc: number;
}

export interface AtCap {
  /** Running B + C at or above mca: only a burst lets it start more. */
  mca: boolean;
  /** Running Class A at mcaUrgent. */
  urgent: boolean;
  /** Tool calls in flight at mctc: new calls queue or are THROTTLED. */
  mctc: boolean;
  any: boolean;
}

export function atCap(c: CapInput): AtCap {
  const mca = c.runningBC >= c.mca;
  const urgent = c.mcaUrgent > 0 && c.runningA >= c.mcaUrgent;
  const mctc = c.toolsInFlight >= c.mctc;
  return { mca, urgent, mctc, any: mca || urgent || mctc };
}
