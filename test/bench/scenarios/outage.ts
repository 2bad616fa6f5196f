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
 */
import type { PolicySpec } from "../../../src/tenancy/policy.ts";
import { startDownstream } from "../lib/downstreamProcess.ts";
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
}

export interface OutageResult {
  params: Record<string, unknown>;
  off: OutageRun;
  on: OutageRun;
}

const TENANT = "hospital";

async function runOne(system: "on" | "off", redisUrl: string, n: number, outageMs: number): Promise<OutageRun> {
  const ds = await startDownstream({ capacity: 500, latencyMs: [100, 200], seed: 3 });
  const tenants: Record<string, PolicySpec> = { [TENANT]: { tier: "enterprise", mca: n, burst: { mca: n, seconds: 0, cooldownSeconds: 0 }, mctc: n * 6, mctcBatch: n * 6 } };
  const workers = { processes: 2, concurrency: Math.ceil(n / 2) };
  const sys: System =
    system === "on"
      ? await fairlane(redisUrl, {
          tenants,
          workers,
          downstreamUrl: ds.url,
          backpressure: true,
          env: { FAIRLANE_HEALTH_INTERVAL_MS: "300", FAIRLANE_RECOVERY_STABLE_MS: "1000", FAIRLANE_RECOVERY_RATE: "50", FAIRLANE_RECOVERY_MAX_WAVE: "20", LOG_LEVEL: "error" },
        })
      : await plainBullmq(redisUrl, { workers, downstreamUrl: ds.url });
  try {
    const enq = await sys.enqueue(TENANT, Array.from({ length: n }, () => ({ type: "bench-prior-auth" as const, cls: "B" as const, payload: { steps: 3, fanout: 6 } })));
    await new Promise((r) => setTimeout(r, 400)); // mid first fan-out
    await ds.outage(true);
    await ds.reset();
    const outageAt = Date.now();
    await new Promise((r) => setTimeout(r, outageMs));
    const during = await ds.stats();
    await ds.outage(false);
    const healedAt = Date.now();
    if (!(await waitIdle(sys, 120_000))) throw new Error(`outage ${system}: did not settle`);
    const runs = await sys.runs();
    const finals = enq.map((e) => runs.get(e.id));
    const affected = finals.filter((r) => !r?.lastEnd || r.lastEnd > outageAt || r.starts > 1).length;
    const ends = finals.map((r) => r?.lastEnd ?? 0);
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
    };
  } finally {
    await sys.close();
    await ds.stop();
  }
}

export async function runOutage(redisUrl: string, o: { quick: boolean }): Promise<OutageResult> {
  const n = 40;
  const outageMs = o.quick ? 5_000 : 15_000;
  return {
    params: { workflows: n, steps: 3, fanout: 6, outageMs, naiveRetry: "3 per call (100 ms × 2^n, jitter) × 3 job attempts (500 ms × 2^n)" },
    off: await runOne("off", redisUrl, n, outageMs),
    on: await runOne("on", redisUrl, n, outageMs),
  };
}
