/**
 * A dependency's health, pure (fake-clock tested). The monitor
 * (healthMonitor.ts) feeds probe outcomes in; parking and recovery read the
 * result from Redis (healthStore.ts).
 *
 * States:
 *   unknown    a monitor has started and its first probe has not finished: no
 *              evidence either way, so workflows call the dependency (parking
 *              needs evidence of trouble) but recovery does not count it healthy.
 *   healthy    probes pass: workflows call the dependency.
 *   degraded   it failed recently: workflows needing it park instead of
 *              retrying into it.
 *   down       it failed `downAfter` probes in a row.
 *
 * Hysteresis (flap damping). A dependency that fails every other probe must
 * not flip healthy/unhealthy every interval: each flip to healthy would let
 * recovery requeue parked work straight into a service that fails again. So
 * leaving health is quick and returning to it is slow:
 *   - one failure (`degradeAfter` = 1) takes healthy to degraded: stop sending
 *     new work at the first sign of trouble, it costs little to be wrong;
 *   - `downAfter` = 3 consecutive failures mark it down: one timeout is noise,
 *     three in a row is an outage worth telling operators about;
 *   - only `recoverAfter` = 2 consecutive successes bring a degraded or down
 *     dependency back to healthy, so ok, fail, ok, fail ... stays unhealthy.
 * A failure resets the success streak and a success resets the failure streak.
 * `since` moves only when the state changes: recovery measures "healthy for
 * the whole stabilisation window" from it (recoveryRule.ts).
 *
 * A new tracker starts unknown and takes its first probe's answer as it is:
 * healthy on a success, degraded on a failure (down if `downAfter` is 1).
 * Hysteresis damps flapping between verdicts; before the first verdict there
 * is nothing to damp, and holding a dependency "degraded until two good
 * probes" parked every workflow admitted in the first probe interval after a
 * boot, and recovery then held them for its whole stabilisation window. A
 * dependency that really flaps fails soon enough, and from then on needs
 * `recoverAfter` successes like any other.
 */

export type HealthState = "unknown" | "healthy" | "degraded" | "down";

/** One probe's answer. ok=false for errors, timeouts, an unexpected status, and for an answer slower than the threshold (detail "slow"). */
export interface ProbeOutcome {
  ok: boolean;
  latencyMs: number;
  detail: string;
}

export interface HealthTracker {
  state: HealthState;
  /** When `state` last changed (epoch ms). */
  since: number;
  okStreak: number;
  failStreak: number;
}

export interface Hysteresis {
  degradeAfter: number;
  downAfter: number;
  recoverAfter: number;
}

export const HYSTERESIS: Hysteresis = { degradeAfter: 1, downAfter: 3, recoverAfter: 2 };

/** Starts unknown: the first probe decides; see the header. */
export function initialTracker(now: number): HealthTracker {
  return { state: "unknown", since: now, okStreak: 0, failStreak: 0 };
}

/**
 * Whether a workflow may call a dependency whose signal is `state`: healthy, or
 * unknown (its first probe since a monitor started is under way: no evidence of
 * an outage). Degraded and down park. A missing signal (undefined) parks too: a
 * signal expires only when every monitor stopped writing it, and a dependency
 * nobody watches any more is not known to be up (fail safe: park rather than hammer).
 */
export function mayCall(state: HealthState | undefined): boolean {
  return state === "healthy" || state === "unknown";
}

/**
 * The tool gate's own look at a dependency, atomic with the permit (queues/lua/acquirePermit-10.lua):
 * the operator's mark when there is one, else the measured signal. It refuses a call only when that says
 * degraded or down, so the first process to see a failure stops every process's next calls the moment its
 * mark reaches Redis, not when each hears of it. A missing or unknown signal passes here: whether that
 * parks is the exec's question (mayCall, through its health cache), as before.
 */
export function gateRefuses(override: HealthState | null, measured: HealthState | null): boolean {
  const state = override ?? measured;
  return state === "degraded" || state === "down";
}

/** The tracker after one more probe outcome. Returns a new object; `t` is not changed. */
export function nextHealth(t: HealthTracker, probe: ProbeOutcome, now: number, h: Hysteresis = HYSTERESIS): HealthTracker {
  const okStreak = probe.ok ? t.okStreak + 1 : 0;
  const failStreak = probe.ok ? 0 : t.failStreak + 1;
  let state = t.state;
  if (state === "unknown") {
    state = probe.ok ? "healthy" : failStreak >= h.downAfter ? "down" : "degraded";
  } else if (probe.ok) {
    if (state !== "healthy" && okStreak >= h.recoverAfter) state = "healthy";
  } else if (failStreak >= h.downAfter) {
    state = "down";
  } else if (state === "healthy" && failStreak >= h.degradeAfter) {
    state = "degraded";
  }
  return { state, since: state === t.state ? t.since : now, okStreak, failStreak };
}

export interface PassiveOptions {
  windowMs: number;
  minCalls: number;
  /** Error share (0..1) of the window's calls at or above which the dependency is degraded. */
  errorRate: number;
}

export const PASSIVE: PassiveOptions = { windowMs: 10_000, minCalls: 5, errorRate: 0.5 };

/**
 * Passive health: over a sliding window of tool-call outcomes for a
 * dependency, decide if it should be marked degraded before the next probe.
 * Pure: takes the window's events (older ones are ignored, so callers may pass
 * a buffer they trim lazily).
 *   - one "overloaded" answer (pool exhausted / 503 / 429) is enough: the
 *     dependency itself says it cannot take more, so more calls only hurt it;
 *   - otherwise at least `minCalls` calls in the window with an error share of
 *     at least `errorRate` (a few calls are too few to judge).
 * Never says "healthy": only probes bring a dependency back.
 */
export function passiveVerdict(
  events: readonly { at: number; ok: boolean; overloaded: boolean }[],
  now: number,
  o: PassiveOptions = PASSIVE,
): "degraded" | null {
  let calls = 0;
  let errors = 0;
  for (const e of events) {
    if (now - e.at >= o.windowMs) continue;
    if (e.overloaded) return "degraded";
    calls++;
    if (!e.ok) errors++;
  }
  return calls >= o.minCalls && errors / calls >= o.errorRate ? "degraded" : null;
}
