/**
 * Where a tenant stands against its caps, pure (the dashboard's highlight and
 * the capacity rollups use it). The burst state is the dispatch rule's own
 * (src/scheduler/policy/caps.ts), which the dispatch script is checked against.
 */
export { burstWindow as burstState, type BurstCaps, type BurstState } from "../scheduler/policy/caps.ts";

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
