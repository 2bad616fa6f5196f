/**
 * Scenario 4, the backpressure drill: the downstream fails (503 on every
 * call) while a hospital's prior-auth agents are mid-fan-out, stays down for
 * `outageMs`, then heals. Controls off: the plain worker's naive retries
 * (per call 3 retries with exponential backoff and jitter; per job 3 attempts
 * with exponential backoff). Controls on: Fairlane parks the workflows as
 * pending-backpressure on the first failures (passive detection and the
 * health role's probes every 300 ms) and the recovery role requeues them in
 * waves once the dependency has been healthy for 1 s.
 *
 * The downstream counts for itself every /fhir call that reached it while it
 * was down; the health role's GET /health probes are counted apart.
 * Amplification = those calls / workflows affected (not finished when the
 * outage began). A workflow that needs 19 calls and was half done would
 * send ~10 more in a healthy world; everything above that is retry load.
 *
 * The calls are told apart by when they reached the downstream, on its own
 * counters and clock: in flight when it failed (its in-flight gauge at that
 * moment: they fail as they complete); started after it failed but before
 * anyone could know (before its first failed answer); and started after the
 * first failed answer — the calls a caller could have held back, the
 * amplification seed 000 is about. The cut is the downstream's own time of
 * its first failed answer, against each call's arrival on its list of its
 * last 1,000 calls (a call in that same millisecond counts as "after"); when
 * that list overflowed (plain's retries), the last 10 ms poll of its
 * `failed` counter that still saw none. Fairlane's calls carry their workflow
 * in the Idempotency-Key (src/runtime/toolCall.ts), so the downstream's list
 * of its last 1,000 calls (receivedAt) also gives the most any one workflow
 * sent after the first failure, while that list holds the whole outage.
 *
 * That cut is the downstream's clock, and it notes a call's arrival only when its event loop gets to it,
 * so a call sent before any caller could know may be noted after the first failed answer. The callers' side
 * of the wire gives the issue's own measure: every process that calls the downstream (Fairlane's exec
 * workers and health role, plain's workers) runs the call probe (lib/callProbe.ts), which notes from undici's
 * own events when each request went to its socket and when each answer reached its caller. The first answer
 * ≥ 500 any caller saw (a tool call's or a health probe's) is the first observed failure; the tool calls
 * started from then until the downstream healed are the calls started after it (a call in the same
 * hundredth of a ms counts as after).
 */
import type { PolicySpec } from "../../../src/tenancy/policy.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readCalls } from "../lib/callProbe.ts";
import { startDownstream, type DownstreamProcess } from "../lib/downstreamProcess.ts";
import { fairlane, plainBullmq, waitIdle, type System } from "../lib/systems.ts";

export interface OutageRun {
  system: "on" | "off";
  workflows: number;
  affected: number;
  callsDuringOutage: number;
  probesDuringOutage: number;
  amplification: number;
  completed: number;
  failed: number;
  /** Seconds from the end of the outage until the last affected workflow ended. */
  recoverySec: number;
  /** Calls in flight when the dependency failed. */
  inFlightAtFailure: number;
  /** Calls that reached it after it failed, before its first failed answer. */
  beforeFirstFailure: number;
  /** Calls that reached it after its first failed answer (probes apart). */
  afterFirstFailure: number;
  /** afterFirstFailure and inFlightAtFailure per affected workflow. */
  afterFirstFailurePerWorkflow: number;
  inFlightPerWorkflow: number;
  /** ms from the outage to the first failed answer (NaN: none in the window). */
  firstFailureMs: number;
  /** How before and after were told apart: the downstream's own time of its first failed answer, or a 10 ms poll. */
  cut: "exact" | "poll";
  /** Fairlane: the most calls one workflow sent after the first failure, and how many workflows sent any (undefined: not known). */
  afterFirstFailureMaxPerWorkflow?: number;
  workflowsCallingAfterFirstFailure?: number;
  /**
   * ms from the first failed answer to the last call that arrived after it (exact cut only; 0: none). A few tens of
   * ms is calls sent before any caller could know, stamped late by the downstream's own busy event loop (it
   * notes a call's arrival when it handles it); calls seconds later would be calls sent into the outage.
   */
  afterFirstFailureLastMs?: number;
  /** ms from the outage to the first answer ≥ 500 a caller saw, a tool call's or a health probe's (the call probe; NaN: none). */
  observedFailureMs: number;
  /** Calls started (sent, on the callers' side) from the first observed failure until the downstream healed. */
  startedAfterObserved: number;
  /** startedAfterObserved per affected workflow: the bar (≤ 1). */
  startedAfterObservedPerWorkflow: number;
  /** Fairlane: the most calls one workflow started after the first observed failure (undefined: not known). */
  startedAfterObservedMaxPerWorkflow?: number;
}

export interface OutageResult {
  params: Record<string, unknown>;
  off: OutageRun;
  on: OutageRun;
}

const TENANT = "hospital";

/**
 * Polls the downstream's counters until its first failed answer: the time and
 * request count of the last poll that saw none (the cut), or null if none came by `until`.
 */
async function firstFailure(ds: DownstreamProcess, until: number): Promise<{ at: number; requests: number } | null> {
  let cut = { at: Date.now(), requests: (await ds.stats()).requests };
  while (Date.now() < until) {
    const at = Date.now();
    const s = await ds.stats();
    if (s.failed > 0) return cut;
    cut = { at, requests: s.requests };
    await new Promise((r) => setTimeout(r, 10));
  }
  return null;
}

async function runOne(system: "on" | "off", redisUrl: string, n: number, outageMs: number): Promise<OutageRun> {
  const ds = await startDownstream({ capacity: 500, latencyMs: [100, 200], seed: 3 });
  const tenants: Record<string, PolicySpec> = {
    [TENANT]: { tier: "enterprise", mca: n, burst: { mca: n, seconds: 0, cooldownSeconds: 0 }, mctc: n * 6, mctcBatch: n * 6 },
  };
  const workers = { processes: 2, concurrency: Math.ceil(n / 2) };
  const probeDir = mkdtempSync(join(tmpdir(), "fl-outage-"));
  const callFile = join(probeDir, "calls.txt");
  const sys: System =
    system === "on"
      ? await fairlane(redisUrl, {
          tenants,
          workers,
          downstreamUrl: ds.url,
          backpressure: true,
          env: {
            FAIRLANE_HEALTH_INTERVAL_MS: "300",
            FAIRLANE_RECOVERY_STABLE_MS: "1000",
            FAIRLANE_RECOVERY_RATE: "50",
            FAIRLANE_RECOVERY_MAX_WAVE: "20",
            LOG_LEVEL: "error",
            BENCH_CALL_FILE: callFile,
          },
        })
      : await plainBullmq(redisUrl, { workers, downstreamUrl: ds.url, env: { BENCH_CALL_FILE: callFile } });
  try {
    const enq = await sys.enqueue(
      TENANT,
      Array.from({ length: n }, () => ({ type: "bench-prior-auth" as const, cls: "B" as const, payload: { steps: 3, fanout: 6 } })),
    );
    await new Promise((r) => setTimeout(r, 400)); // mid first fan-out
    await ds.reset();
    await ds.outage(true);
    const outageAt = Date.now();
    const atFailure = await ds.stats();
    const first = await firstFailure(ds, outageAt + outageMs);
    await new Promise((r) => setTimeout(r, Math.max(0, outageAt + outageMs - Date.now())));
    const during = await ds.stats();
    const healingAt = Date.now();
    await ds.outage(false);
    const healedAt = Date.now();
    if (!(await waitIdle(sys, 120_000))) throw new Error(`outage ${system}: did not settle`);
    const runs = await sys.runs();
    const finals = enq.map((e) => runs.get(e.id));
    const affected = finals.filter((r) => !r?.lastEnd || r.lastEnd > outageAt || r.starts > 1).length;
    const ends = finals.map((r) => r?.lastEnd ?? 0);
    // The downstream's list holds the last 1,000 calls since the reset: all of them, unless it overflowed.
    // Then the cut is exact: the downstream's own time of its first failed answer (a call received in that
    // same millisecond counts as after). Otherwise (plain's thousands of retries): the last 10 ms poll that saw none.
    const complete = during.deadlines.length < 1000;
    const exactAt = complete ? during.firstFailedAt : null;
    const late = exactAt === null ? [] : during.deadlines.filter((d) => d.receivedAt >= exactAt);
    const cutRequests = exactAt !== null ? during.requests - late.length : first ? first.requests : during.requests;
    const lateByWorkflow = new Map<string, number>();
    for (const d of late) {
      const wf = d.idempotencyKey?.split(":")[0];
      if (wf && system === "on") lateByWorkflow.set(wf, (lateByWorkflow.get(wf) ?? 0) + 1);
    }
    const after = during.requests - cutRequests;
    // The callers' side: the first answer >= 500 any of them saw (a tool call's or a probe's), and the tool calls started from then on.
    const calls = readCalls(callFile);
    const toolCalls = calls.sent.filter((c) => c.path.startsWith("/fhir/"));
    if (during.requests > 0 && toolCalls.length === 0) throw new Error(`outage ${system}: the call probe noted no call`);
    const observedAt = calls.answers.find((a) => a.status >= 500 && a.at >= outageAt)?.at;
    const startedAfter = observedAt === undefined ? [] : toolCalls.filter((c) => c.at >= observedAt && c.at < healingAt);
    const startedByWorkflow = new Map<string, number>();
    for (const c of startedAfter) {
      const wf = c.key.split(":")[0]!;
      if (system === "on" && c.key !== "-") startedByWorkflow.set(wf, (startedByWorkflow.get(wf) ?? 0) + 1);
    }
    return {
      system,
      workflows: n,
      affected,
      callsDuringOutage: during.requests,
      probesDuringOutage: during.probes,
      amplification: during.requests / Math.max(1, affected),
      completed: finals.filter((r) => r?.outcome?.startsWith("ok")).length,
      failed: finals.filter((r) => r?.outcome && !r.outcome.startsWith("ok")).length,
      recoverySec: (Math.max(...ends) - healedAt) / 1000,
      inFlightAtFailure: atFailure.inFlight,
      beforeFirstFailure: cutRequests - atFailure.requests,
      afterFirstFailure: after,
      afterFirstFailurePerWorkflow: after / Math.max(1, affected),
      inFlightPerWorkflow: atFailure.inFlight / Math.max(1, affected),
      firstFailureMs: exactAt !== null ? exactAt - outageAt : first ? first.at - outageAt : NaN,
      cut: exactAt !== null ? "exact" : "poll",
      observedFailureMs: observedAt === undefined ? Number.NaN : observedAt - outageAt,
      startedAfterObserved: startedAfter.length,
      startedAfterObservedPerWorkflow: startedAfter.length / Math.max(1, affected),
      ...(system === "on" ? { startedAfterObservedMaxPerWorkflow: Math.max(0, ...startedByWorkflow.values()) } : {}),
      ...(exactAt !== null && system === "on"
        ? {
            afterFirstFailureMaxPerWorkflow: Math.max(0, ...lateByWorkflow.values()),
            workflowsCallingAfterFirstFailure: lateByWorkflow.size,
            afterFirstFailureLastMs: Math.max(0, ...late.map((d) => d.receivedAt - exactAt)),
          }
        : {}),
    };
  } finally {
    await sys.close();
    await ds.stop();
    rmSync(probeDir, { recursive: true, force: true });
  }
}

export async function runOutage(redisUrl: string, o: { quick: boolean }): Promise<OutageResult> {
  const n = 40;
  const outageMs = o.quick ? 5_000 : 15_000;
  return {
    params: {
      workflows: n,
      steps: 3,
      fanout: 6,
      outageMs,
      naiveRetry: "3 per call (100 ms × 2^n, jitter) × 3 job attempts (500 ms × 2^n)",
    },
    off: await runOne("off", redisUrl, n, outageMs),
    on: await runOne("on", redisUrl, n, outageMs),
  };
}
