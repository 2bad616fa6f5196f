/**
 * The health monitor: every `intervalMs` it probes each dependency (all in
 * parallel), runs the outcome through the hysteresis in healthRule.ts and
 * writes the signal to every cell with a TTL of `ttlMultiplier` intervals
 * (a monitor that stops lets the signal expire: missing = not healthy).
 *
 * Probes:
 *   http  GET url; ok when the status is expectStatus (200) within
 *         latencyThresholdMs (1000; slower is "slow", a failure); aborted
 *         after timeoutMs (2000).
 *   tcp   a TCP connect to host:port within timeoutMs (2000).
 *   fn    a registered async function; one that throws or takes longer than
 *         an interval fails.
 *
 * Start: before its first probe the monitor announces each dependency that
 * has no signal as "unknown" (first verdict under way: workflows call it,
 * /readyz waits), then probes at once and writes the first answer as it is,
 * healthy or degraded, without hysteresis (healthRule.ts). `firstRound`
 * settles when that round is written.
 *
 * What the monitor keeps in memory (one tracker per dependency) it resumes
 * from Redis: on its first round it starts from the stored probe signal, so a
 * restarted or added monitor agrees with the others instead of starting over
 * from unknown. And a passive downgrade
 * (HealthStore.markDegraded) written between rounds demotes a healthy tracker
 * to degraded, so the dependency must again pass `recoverAfter` probes in a
 * row before it is healthy: the next good probe alone does not undo it.
 */
import { connect as tcpConnect } from "node:net";
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import type { Clock } from "../lib/clock.ts";
import { initialTracker, nextHealth, type HealthTracker, type ProbeOutcome } from "./healthRule.ts";
import type { HealthSignal, HealthStore } from "./healthStore.ts";
import { LogThrottle } from "../observability/logger.ts";
import { metrics } from "../observability/metrics.ts";

export type ProbeSpec =
  | { dep: string; kind: "http"; url: string; expectStatus?: number; latencyThresholdMs?: number; timeoutMs?: number }
  | { dep: string; kind: "tcp"; host: string; port: number; timeoutMs?: number }
  | { dep: string; kind: "fn"; fn: () => Promise<ProbeOutcome> };

export interface HealthMonitorOptions {
  /** Time between the end of one round and the start of the next (5000). */
  intervalMs?: number;
  /** The signal's TTL in intervals (3): it outlives two missed rounds. */
  ttlMultiplier?: number;
}

export const PROBE_DEFAULTS = { timeoutMs: 2_000, latencyThresholdMs: 1_000, expectStatus: 200 };

export class HealthMonitor {
  private readonly intervalMs: number;
  private readonly ttlMs: number;
  private readonly trackers = new Map<string, HealthTracker>();
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<unknown> | undefined;
  private running = false;
  private firstRoundDone: () => void = () => undefined;
  /** Settles once the first round after start() has been written, or has failed (the next round retries). */
  readonly firstRound = new Promise<void>((resolve) => (this.firstRoundDone = resolve));

  constructor(
    private readonly store: HealthStore,
    private readonly probes: ProbeSpec[],
    private readonly clock: Clock,
    private readonly log: Logger,
    o: HealthMonitorOptions = {},
  ) {
    this.intervalMs = o.intervalMs ?? 5_000;
    this.ttlMs = Math.ceil((o.ttlMultiplier ?? 3) * this.intervalMs);
    const seen = new Set<string>();
    for (const p of probes) {
      if (seen.has(p.dep)) throw new Error(`two probes for dependency "${p.dep}"`);
      seen.add(p.dep);
    }
  }

  /** Announces, probes now, then every interval until stop(). Rounds never overlap. */
  start(): void {
    if (this.running) return;
    this.running = true;
    // A round fails while Redis is full or read-only: logged at once, then once per 30 s with a count.
    const failures = new LogThrottle(this.log);
    const tick = (first: boolean) => {
      this.round = (first ? this.announce().then(() => this.probeOnce()) : this.probeOnce())
        .then(
          () => failures.ok("health rounds succeed again"),
          (err: Error) => failures.error({ err: err.message }, "health round failed"),
        )
        .finally(() => {
          if (first) this.firstRoundDone();
          if (this.running) this.timer = setTimeout(() => tick(false), this.intervalMs);
        });
    };
    tick(true);
  }

  /** Writes "unknown" (TTL as a probe signal) for every dependency without a signal: see the header. Exposed for tests. */
  async announce(): Promise<void> {
    await Promise.all(this.probes.map((spec) => this.store.announce(spec.dep, this.ttlMs)));
  }

  /** Stops scheduling and waits for a round in progress. The signals stay until their TTL. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.round;
  }

  /** One round: probe every dependency in parallel, advance its tracker, write the signal (TTL = ttlMultiplier × interval). Exposed for tests. */
  async probeOnce(): Promise<Record<string, HealthSignal>> {
    const results = await Promise.all(this.probes.map(async (spec) => [spec.dep, await this.check(spec)] as const));
    return Object.fromEntries(results);
  }

  private async check(spec: ProbeSpec): Promise<HealthSignal> {
    // The stored signal is read after the probe answers, not beside it: a passive downgrade made while
    // the probe was under way (the outage began after the probe was sent) must demote the tracker
    // rather than be overwritten by this probe's "healthy".
    const outcome = await runProbe(spec, this.intervalMs);
    const stored = await this.store.readMeasured(this.store.cells[0]!, spec.dep);
    const before = this.resume(spec.dep, stored);
    const after = nextHealth(before, outcome, this.clock.now());
    this.trackers.set(spec.dep, after);
    const signal: HealthSignal = { state: after.state, since: after.since, detail: outcome.detail, source: "probe" };
    await this.store.write(spec.dep, signal, this.ttlMs);
    metrics.dependencyState.set({ dependency: spec.dep }, signal.state === "healthy" ? 2 : signal.state === "degraded" ? 1 : 0);
    if (after.state !== before.state) {
      const level = after.state === "healthy" ? "info" : "warn";
      this.log[level](
        { dep: spec.dep, from: before.state, to: after.state, detail: outcome.detail, latencyMs: Math.round(outcome.latencyMs) },
        "dependency health changed",
      );
    }
    return signal;
  }

  /** The tracker to advance: ours, demoted by a passive downgrade; or, the first time, the stored one. */
  private resume(dep: string, stored: HealthSignal | null): HealthTracker {
    const mine = this.trackers.get(dep);
    if (!mine) {
      return stored && stored.source !== "operator"
        ? { state: stored.state, since: stored.since, okStreak: 0, failStreak: 0 }
        : initialTracker(this.clock.now());
    }
    if (mine.state === "healthy" && stored?.source === "passive" && stored.state !== "healthy") {
      this.log.warn({ dep, detail: stored.detail }, "dependency marked degraded by tool-call errors");
      return { state: "degraded", since: stored.since, okStreak: 0, failStreak: mine.failStreak };
    }
    return mine;
  }
}

/** Runs one probe; never throws (a probe that throws is a failed probe). */
export async function runProbe(spec: ProbeSpec, fnTimeoutMs = 5_000): Promise<ProbeOutcome> {
  const started = performance.now();
  const failed = (detail: string): ProbeOutcome => ({ ok: false, latencyMs: performance.now() - started, detail });
  try {
    switch (spec.kind) {
      case "http":
        return await httpProbe(spec, started);
      case "tcp":
        return await tcpProbe(spec.host, spec.port, spec.timeoutMs ?? PROBE_DEFAULTS.timeoutMs, started);
      case "fn":
        return await withTimeout(spec.fn(), fnTimeoutMs);
    }
  } catch (err) {
    return failed(errorDetail(err));
  }
}

async function httpProbe(spec: Extract<ProbeSpec, { kind: "http" }>, started: number): Promise<ProbeOutcome> {
  const timeoutMs = spec.timeoutMs ?? PROBE_DEFAULTS.timeoutMs;
  const res = await fetch(spec.url, { signal: AbortSignal.timeout(timeoutMs), redirect: "manual" }).catch((err: unknown) => {
    throw (err as Error)?.name === "TimeoutError" ? timeoutError(timeoutMs) : err;
  });
  const latencyMs = performance.now() - started;
  await res.body?.cancel().catch(() => undefined); // the body is not used; free the connection
  const expect = spec.expectStatus ?? PROBE_DEFAULTS.expectStatus;
  if (res.status !== expect) return { ok: false, latencyMs, detail: `status ${res.status}` };
  if (latencyMs > (spec.latencyThresholdMs ?? PROBE_DEFAULTS.latencyThresholdMs)) return { ok: false, latencyMs, detail: "slow" };
  return { ok: true, latencyMs, detail: `status ${res.status}` };
}

function tcpProbe(host: string, port: number, timeoutMs: number, started: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host, port });
    const done = (ok: boolean, detail: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ ok, latencyMs: performance.now() - started, detail });
    };
    const timer = setTimeout(() => done(false, `timeout after ${timeoutMs} ms`), timeoutMs);
    socket.once("connect", () => done(true, "connected"));
    socket.once("error", (err) => done(false, errorDetail(err)));
  });
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timeoutError(ms)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const timeoutError = (ms: number) => Object.assign(new Error(`timeout after ${ms} ms`), { name: "TimeoutError" });

/** A short reason: "timeout", an errno code (ECONNREFUSED), or the message. */
function errorDetail(err: unknown): string {
  const e = err as { name?: string; code?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === "TimeoutError") return e.message?.startsWith("timeout") ? e.message : "timeout";
  return e?.code ?? e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
}
