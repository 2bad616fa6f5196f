/**
 * Where a tenant stands against its caps, pure (the dashboard's highlight and
 * the capacity rollups use it). The burst state and the mca and mcaUrgent
 * comparisons are the dispatch rule's own (src/dispatch/policy/caps.ts),
 * which the dispatch script is checked against, so the dashboard's "at cap"
 * cannot drift from the dispatcher's comparison.
 */
import { aEligible, underMca } from "../dispatch/policy/caps.ts";

export { burstWindow as burstState, type BurstCaps, type BurstState } from "../dispatch/policy/caps.ts";

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
  const mca = !underMca(c, c.runningBC);
  // A tenant without Class A (mcaUrgent 0) is not held at that cap: it has nothing to hold.
  const urgent = c.mcaUrgent > 0 && !aEligible(c, c.runningA);
  const mctc = c.toolsInFlight >= c.mctc;
  return { mca, urgent, mctc, any: mca || urgent || mctc };
}
