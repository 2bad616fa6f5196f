import type { Evidence } from "./usageRollup.ts";

/**
 * Capacity recommendations, pure: from one tenant's evidence over a window,
 * whether to raise, lower or keep its mca and mctc, and why (with the numbers).
 *
 *   evidence  first: how long the tenant was observed (samples × the sampler's
 *             tick). Below `minEvidenceMs` (FAIRLANE_CAPACITY_MIN_EVIDENCE, 20 h)
 *             nothing is raised or lowered: the answer is "not enough data",
 *             with what is known so far (peaks, cap-wait, throttles). 90 s of
 *             a quiet tenant says nothing about its Monday morning.
 *   mca   raise when it sat at mca with B/C work waiting in ≥ 10 % of the
 *         samples (cap-wait): × 1.5 when ≥ 50 %, else × 1.25;
 *         lower when workflows ran, its peak never reached half of mca and it
 *         never waited: to the peak × 1.25;
 *   mctc  raise when ≥ 1 % of its tool calls were THROTTLED (or any were and
 *         the gate wait averaged over 1 s): × 1.5;
 *         lower when tool calls were made, its peak in flight never reached
 *         half of mctc and nothing was throttled: to the peak × 1.25;
 *   keep  otherwise.
 * A lowered value is never below the observed peak (nor below 1): a
 * recommendation must not cut a tenant under what it has really used.
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
  /** False: observed for less than the minimum evidence window; both actions are "keep". */
  enoughData: boolean;
  mca: Recommendation;
  mctc: Recommendation;
  evidence: Evidence & { observedMs: number; capWaitShare: number; throttleRate: number; avgGateWaitMs: number | null };
}

export interface RecommendOptions {
  /** How long a tenant must have been observed before any raise or lower. */
  minEvidenceMs: number;
  /** The usage sampler's tick (FAIRLANE_USAGE_TICK_MS): one sample stands for this long. */
  sampleMs: number;
}

// 20 h of samples: the default 24 h window still qualifies after a few hours of missed ticks (an api restart).
export const DEFAULT_RECOMMEND: RecommendOptions = { minEvidenceMs: 20 * 3_600_000, sampleMs: 1_000 };

const pct = (x: number) => `${Math.round(x * 1000) / 10} %`;
const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** 5400000 -> "1.5 h", 90000 -> "1.5 min", 12000 -> "12 s". Pure. */
export function formatSpan(ms: number): string {
  const r1 = (x: number) => String(Math.round(x * 10) / 10);
  if (ms >= 86_400_000) return `${r1(ms / 86_400_000)} d`;
  if (ms >= 3_600_000) return `${r1(ms / 3_600_000)} h`;
  if (ms >= 60_000) return `${r1(ms / 60_000)} min`;
  return `${Math.round(ms / 1000)} s`;
}

/** The lowered value: the peak × 1.25, never below the peak itself nor 1. */
export const lowerTo = (peak: number) => Math.max(1, peak, Math.ceil(peak * 1.25));

export function recommend(
  tenant: string,
  e: Evidence,
  current: { mca: number; mctc: number },
  o: RecommendOptions = DEFAULT_RECOMMEND,
): TenantRecommendation {
  const observedMs = e.samples * o.sampleMs;
  const capWaitShare = e.samples > 0 ? e.capWait / e.samples : 0;
  const calls = e.acquired + e.throttled;
  const throttleRate = calls > 0 ? e.throttled / calls : 0;
  const avgGateWaitMs = e.acquired > 0 ? Math.round(e.gateWaitMs / e.acquired) : null;
  const evidence = { ...e, observedMs, capWaitShare: round3(capWaitShare), throttleRate: round3(throttleRate), avgGateWaitMs };

  if (observedMs < o.minEvidenceMs || e.samples === 0) {
    const seen = `not enough data: observed ${formatSpan(observedMs)} (${e.samples} samples), need ${formatSpan(o.minEvidenceMs)}`;
    return {
      tenant,
      enoughData: false,
      mca: keep(
        current.mca,
        `${seen}; so far peak running ${e.peakRunning} of mca ${current.mca}, at mca with work waiting in ${pct(capWaitShare)} of samples`,
      ),
      mctc: keep(
        current.mctc,
        `${seen}; so far peak tool calls in flight ${e.peakToolsInFlight} of mctc ${current.mctc}, ${e.throttled} of ${calls} THROTTLED`,
      ),
      evidence,
    };
  }

  const mca = recommendMca(e, current.mca, capWaitShare, observedMs);
  const mctc = recommendMctc(e, current.mctc, { throttleRate, avgGateWaitMs, calls }, observedMs);
  return { tenant, enoughData: true, mca, mctc, evidence };
}

const keep = (cur: number, reason: string): Recommendation => ({ current: cur, recommended: cur, action: "keep", reason });

/** mca: raise when at it with work waiting in 10 % of samples or more; lower when the peak never reached half. */
function recommendMca(e: Evidence, cur: number, capWaitShare: number, observedMs: number): Recommendation {
  let mca: Recommendation;
  if (capWaitShare >= 0.1) {
    const factor = capWaitShare >= 0.5 ? 1.5 : 1.25;
    mca = {
      current: cur,
      recommended: Math.max(cur + 1, Math.ceil(cur * factor)),
      action: "raise",
      reason: `at mca with work waiting in ${pct(capWaitShare)} of samples (${e.capWait}/${e.samples})`,
    };
  } else if (e.peakRunning === 0) {
    mca = keep(cur, `nothing ran in ${formatSpan(observedMs)} observed: no use to size mca by`);
  } else if (e.capWait === 0 && e.peakRunning * 2 < cur) {
    const to = lowerTo(e.peakRunning);
    mca =
      to < cur
        ? {
            current: cur,
            recommended: to,
            action: "lower",
            reason: `peak running ${e.peakRunning} never reached half of mca ${cur} in ${formatSpan(observedMs)} observed`,
          }
        : keep(cur, "headroom is small");
  } else mca = keep(cur, `at mca with work waiting in ${pct(capWaitShare)} of samples; peak running ${e.peakRunning} of ${cur}`);
  return mca;
}

/** mctc: raise when 1 % of calls or more were THROTTLED (or gate waits are long); lower when the peak never reached half. */
function recommendMctc(
  e: Evidence,
  cur: number,
  { throttleRate, avgGateWaitMs, calls }: { throttleRate: number; avgGateWaitMs: number | null; calls: number },
  observedMs: number,
): Recommendation {
  let mctc: Recommendation;
  if (throttleRate >= 0.01 || (e.throttled > 0 && (avgGateWaitMs ?? 0) > 1000)) {
    mctc = {
      current: cur,
      recommended: Math.max(cur + 1, Math.ceil(cur * 1.5)),
      action: "raise",
      reason: `${e.throttled} of ${calls} tool calls THROTTLED (${pct(throttleRate)}), average gate wait ${avgGateWaitMs ?? 0} ms`,
    };
  } else if (e.peakToolsInFlight === 0) {
    mctc = keep(cur, `no tool call in flight in ${formatSpan(observedMs)} observed: no use to size mctc by`);
  } else if (e.throttled === 0 && e.peakToolsInFlight * 2 < cur) {
    const to = lowerTo(e.peakToolsInFlight);
    mctc =
      to < cur
        ? {
            current: cur,
            recommended: to,
            action: "lower",
            reason: `peak tool calls in flight ${e.peakToolsInFlight} never reached half of mctc ${cur} in ${formatSpan(observedMs)} observed; none THROTTLED`,
          }
        : keep(cur, "headroom is small");
  } else mctc = keep(cur, `${pct(throttleRate)} THROTTLED; peak in flight ${e.peakToolsInFlight} of ${cur}`);
  return mctc;
}
