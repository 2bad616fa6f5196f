/** The isolation test of the noisy-neighbour signal over one tenant's window, pure (noisyNeighbour.ts). */
import { median, spearman } from "./noisyStats.ts";
import type { NoisyOptions } from "./noisyTypes.ts";

/**
 * The isolation test over one tenant's window, pure: `load` and `others` are
 * paired per tick (no NaNs). See noisyNeighbour.ts's header for the rule.
 */
export function isolationImpact(
  load: readonly number[],
  others: readonly number[],
  o: Pick<NoisyOptions, "minTicks" | "minRegimeTicks" | "impactThreshold" | "minIncreaseMs" | "minIncreaseRatio">,
): { flagged: boolean; impact: number | null; baseline: number; elevated: number; mid: number; loadRise: number; quietLoad: number } {
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of load) {
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
  }
  const mid = (lo + hi) / 2;
  const out = { flagged: false, impact: null as number | null, baseline: NaN, elevated: NaN, mid, loadRise: 0, quietLoad: NaN };
  if (load.length < o.minTicks || !(hi > lo)) return out;
  const low: number[] = [];
  const high: number[] = [];
  const lowLoad: number[] = [];
  const highLoad: number[] = [];
  for (let k = 0; k < load.length; k++) {
    (load[k]! > mid ? high : low).push(others[k]!);
    (load[k]! > mid ? highLoad : lowLoad).push(load[k]!);
  }
  out.impact = spearman(load, others);
  if (out.impact === null || out.impact < o.impactThreshold || low.length < o.minRegimeTicks || high.length < o.minRegimeTicks) return out;
  out.baseline = median(low);
  out.elevated = median(high);
  out.quietLoad = median(lowLoad);
  out.loadRise = median(highLoad) - out.quietLoad;
  out.flagged = out.elevated >= out.baseline + o.minIncreaseMs && out.elevated >= out.baseline * o.minIncreaseRatio;
  return out;
}
