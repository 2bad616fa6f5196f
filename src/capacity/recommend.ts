import type { Evidence } from "../observability/usageRollup.ts";

/**
 * Capacity recommendations, pure: from one tenant's evidence over a window,
 * whether to raise, lower or keep its mca and mctc, and why (with the numbers).
 *
 *   mca   raise when it sat at mca with B/C work waiting in ≥ 10 % of the
 *         samples (cap-wait): × 1.5 when ≥ 50 %, else × 1.25;
 *         lower when its peak never reached half of mca and it never waited:
 *         to the peak × 1.25 (at least 1);
 *   mctc  raise when ≥ 1 % of its tool calls were THROTTLED (or any were and
 *         the gate wait averaged over 1 s): × 1.5;
 *         lower when its peak in flight never reached half of mctc and nothing
 *         was throttled: to the peak × 1.25 (at least 1);
 *   keep  otherwise, and always with fewer than `minSamples` samples.
 */
export type Action = "raise" | "lower" | "keep";

export interface Recommendation {
  current: number;
  recommended: number;
  action: Action;
  reason: string;
}

export interface TenantRecommendation {
  tenant: string;
  mca: Recommendation;
  mctc: Recommendation;
  evidence: Evidence & { capWaitShare: number; throttleRate: number; avgGateWaitMs: number | null };
}

export interface RecommendOptions {
  minSamples: number;
}

export const DEFAULT_RECOMMEND: RecommendOptions = { minSamples: 30 };

const pct = (x: number) => `${Math.round(x * 1000) / 10} %`;
const round3 = (x: number) => Math.round(x * 1000) / 1000;

export function recommend(tenant: string, e: Evidence, current: { mca: number; mctc: number }, o: RecommendOptions = DEFAULT_RECOMMEND): TenantRecommendation {
  const capWaitShare = e.samples > 0 ? e.capWait / e.samples : 0;
  const calls = e.acquired + e.throttled;
  const throttleRate = calls > 0 ? e.throttled / calls : 0;
  const avgGateWaitMs = e.acquired > 0 ? Math.round(e.gateWaitMs / e.acquired) : null;
  const evidence = { ...e, capWaitShare: round3(capWaitShare), throttleRate: round3(throttleRate), avgGateWaitMs };
  const keep = (cur: number, reason: string): Recommendation => ({ current: cur, recommended: cur, action: "keep", reason });

  if (e.samples < o.minSamples) {
    const why = `not enough data: ${e.samples} samples (need ${o.minSamples})`;
    return { tenant, mca: keep(current.mca, why), mctc: keep(current.mctc, why), evidence };
  }

  let mca: Recommendation;
  if (capWaitShare >= 0.1) {
    const factor = capWaitShare >= 0.5 ? 1.5 : 1.25;
    mca = { current: current.mca, recommended: Math.max(current.mca + 1, Math.ceil(current.mca * factor)), action: "raise", reason: `at mca with work waiting in ${pct(capWaitShare)} of samples (${e.capWait}/${e.samples})` };
  } else if (e.capWait === 0 && e.peakRunning * 2 < current.mca) {
    const to = Math.max(1, Math.ceil(e.peakRunning * 1.25));
    mca = to < current.mca ? { current: current.mca, recommended: to, action: "lower", reason: `peak running ${e.peakRunning} never reached half of mca ${current.mca}` } : keep(current.mca, "headroom is small");
  } else mca = keep(current.mca, `at mca with work waiting in ${pct(capWaitShare)} of samples; peak running ${e.peakRunning} of ${current.mca}`);

  let mctc: Recommendation;
  if (throttleRate >= 0.01 || (e.throttled > 0 && (avgGateWaitMs ?? 0) > 1000)) {
    mctc = { current: current.mctc, recommended: Math.max(current.mctc + 1, Math.ceil(current.mctc * 1.5)), action: "raise", reason: `${e.throttled} of ${calls} tool calls THROTTLED (${pct(throttleRate)}), average gate wait ${avgGateWaitMs ?? 0} ms` };
  } else if (e.throttled === 0 && e.peakToolsInFlight * 2 < current.mctc) {
    const to = Math.max(1, Math.ceil(e.peakToolsInFlight * 1.25));
    mctc = to < current.mctc ? { current: current.mctc, recommended: to, action: "lower", reason: `peak tool calls in flight ${e.peakToolsInFlight} never reached half of mctc ${current.mctc}; none THROTTLED` } : keep(current.mctc, "headroom is small");
  } else mctc = keep(current.mctc, `${pct(throttleRate)} THROTTLED; peak in flight ${e.peakToolsInFlight} of ${current.mctc}`);

  return { tenant, mca, mctc, evidence };
}
