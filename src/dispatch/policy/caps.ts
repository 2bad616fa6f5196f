/**
 * Per-tenant cap decisions, pure. The dispatch script (queues/lua/includes/
 * tenantCaps.lua) makes the same decisions inside Redis; test/conformance/
 * caps.test.ts checks both against one table (caps.cases.ts) and on generated
 * cases. The dashboard's cap state (src/usage/capState.ts) is read
 * from these functions, not restated.
 *
 * Burst window (DESIGN.md): a tenant at `mca` may start Class B/C work up to
 * `burstMca` during a window of `burstMs` that opens with the first dispatch
 * above `mca`; after the window, none above `mca` until `cooldownMs` more
 * have passed. Work started in a window runs to its end: the window bounds
 * when work above `mca` may start, not how long it runs.
 */
export interface DispatchCaps {
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
  /** The org it belongs to (its caps bound the org's tenants together: dispatchRule.ts); undefined = none. */
  org?: string;
}

/** An org's dispatch caps (`tp:@<org>`): they bound the sum over its tenants; it has no burst. */
export interface OrgCaps {
  weight: number;
  mca: number;
  mcaUrgent: number;
}

/** May the org start one more workflow of `cls`, with these slots held by its tenants? */
export const orgEligible = (c: OrgCaps, runningA: number, runningBC: number, cls: "A" | "B" | "C") =>
  cls === "A" ? runningA < c.mcaUrgent : runningBC < c.mca;

export interface BcDecision {
  eligible: boolean;
  /** This dispatch opens a burst window (burstStart := now). */
  startsBurst: boolean;
  /** Not eligible until then (a cooldown ends), if that is what stops it. */
  retryAt?: number;
}

export type BurstState = "none" | "available" | "open" | "cooldown";

export interface BurstCaps {
  mca: number;
  burstMca: number;
  burstMs: number;
  cooldownMs: number;
  /** When the current or last window opened (epoch ms); undefined, null or negative = never. */
  burstStart?: number | null;
}

/**
 * Where a tenant stands in its burst cycle at `now` (the dashboard shows it;
 * bcEligible decides by it):
 *   none       the policy has no burst (burst.mca <= mca, or 0 seconds)
 *   available  it may start a burst (the next start above mca opens the window)
 *   open       the window is open until `until`: starts above mca are allowed
 *   cooldown   the window closed; no burst again until `until`
 */
export function burstWindow(c: BurstCaps, now: number): { state: BurstState; until: number | null } {
  if (c.burstMca <= c.mca || c.burstMs <= 0) return { state: "none", until: null };
  if (c.burstStart != null && c.burstStart >= 0) {
    const windowEnd = c.burstStart + c.burstMs;
    if (now < windowEnd) return { state: "open", until: windowEnd };
    const coolEnd = windowEnd + c.cooldownMs;
    if (now < coolEnd) return { state: "cooldown", until: coolEnd };
  }
  return { state: "available", until: null };
}

/** Under mca: Class B/C work may start without a burst (the dashboard's "at cap" is the converse). */
export function underMca(caps: Pick<DispatchCaps, "mca">, runningBC: number): boolean {
  return runningBC < caps.mca;
}

export function bcEligible(caps: DispatchCaps, runningBC: number, now: number): BcDecision {
  if (underMca(caps, runningBC)) return { eligible: true, startsBurst: false };
  if (runningBC >= caps.burstMca) return { eligible: false, startsBurst: false };
  const w = burstWindow(caps, now);
  if (w.state === "open") return { eligible: true, startsBurst: false };
  if (w.state === "available") return { eligible: true, startsBurst: true };
  if (w.state === "cooldown") return { eligible: false, startsBurst: false, retryAt: w.until! };
  return { eligible: false, startsBurst: false };
}

export function aEligible(caps: Pick<DispatchCaps, "mcaUrgent">, runningA: number): boolean {
  return runningA < caps.mcaUrgent;
}
