/**
 * Per-tenant cap decisions, pure. The dispatch script (queues/lua/includes/
 * tenantCaps.lua) makes the same decisions inside Redis; test/unit and
 * test/integration check both against the same cases.
 *
 * Burst window (DESIGN.md): a tenant at `mca` may start Class B/C work up to
 * `burstMca` during a window of `burstMs` that opens with the first dispatch
 * above `mca`; after the window, none above `mca` until `cooldownMs` more
 * have passed. Work started in a window runs to its end: the window bounds
 * when work above `mca` may start, not how long it runs.
 */
export interface SchedulingCaps {
  weight: number;
  mca: number;
  burstMca: number;
  burstMs: number;
  cooldownMs: number;
  mcaUrgent: number;
  paused: boolean;
  pools: string[];
  /** When the current or last burst window opened; undefined = never. */
  burstStart?: number;
}

export interface BcDecision {
  eligible: boolean;
  /** This dispatch opens a burst window (burstStart := now). */
  startsBurst: boolean;
  /** Not eligible until then (a cooldown ends), if that is what stops it. */
  retryAt?: number;
}

export function bcEligible(caps: SchedulingCaps, runningBC: number, now: number): BcDecision {
  if (runningBC < caps.mca) return { eligible: true, startsBurst: false };
  if (runningBC >= caps.burstMca || caps.burstMs <= 0) return { eligible: false, startsBurst: false };
  if (caps.burstStart !== undefined) {
    const windowEnd = caps.burstStart + caps.burstMs;
    if (now < windowEnd) return { eligible: true, startsBurst: false };
    const coolEnd = windowEnd + caps.cooldownMs;
    if (now < coolEnd) return { eligible: false, startsBurst: false, retryAt: coolEnd };
  }
  return { eligible: true, startsBurst: true };
}

export function aEligible(caps: SchedulingCaps, runningA: number): boolean {
  return runningA < caps.mcaUrgent;
}
