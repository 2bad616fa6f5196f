/**
 * Scenario 1, the fan-out storm of seed 000: a hospital network enqueues its
 * nightly batch of prior-auth agents (Class C, 6 parallel tool calls per
 * reasoning step) at once, while two other tenants send a steady trickle of
 * Class A and Class B agents. Run on controls off (plain FIFO BullMQ) and on
 * (Fairlane), each first without the storm (the trickle alone: its normal
 * latency) and then with it.
 *
 * Time scale 1:60 — one benchmark second stands for one minute of the
 * incident: the burst allowance of 60 s becomes 1 s. Tool calls take
 * 200–400 ms; counts (1,200 agents, MCA 150 / burst 250, MCTC 400) are the
 * seed's, times a `scale` (quick mode 0.25). The downstream's connection
 * pool is 600 × scale, sized as the seed's was: the batch's MCTC of 400 leaves
 * headroom for everyone else. Callers beyond it queue up to 1 s, then get 503.
 */
import type { PolicySpec } from "../../../src/tenancy/policy.ts";
import { startDownstream } from "../lib/downstreamProcess.ts";
import { steady } from "../lib/infra.ts";
import { busyFraction, hostCpu } from "../procStats.ts";
import { summarize, type Percentiles } from "../lib/stats.ts";
import { fairlane, plainBullmq, waitIdle, type Enqueued, type Item, type System } from "../lib/systems.ts";

export interface TenantLatency {
  tenant: string;
  cls: string;
  startMs: Percentiles;
  endToEndMs: Percentiles;
  failed: number;
}

export interface StormRun {
  system: "on" | "off";
  baseline: TenantLatency[];
  storm: TenantLatency[];
  downstream: { capacity: number; peakInFlight: number; peakDemand: number; peakUtil: number; requests: number; rejected: number; failed: number; logicalCalls: number; batchPeakInFlight: number };
  batch: { workflows: number; completionSec: number; completed: number; failed: number; reruns: number; peakRunning: number };
  throttled: number;
  /** The machine's CPU busy fraction during the no-storm and the storm phase (all processes share it). */
  hostCpuBusy: { baseline: number; storm: number };
}

export interface StormResult {
  scale: number;
  params: Record<string, unknown>;
  off: StormRun;
  on: StormRun;
}

const BATCH = "meridian-health";
const TRICKLE = [
  { tenant: "lakeside-clinics", cls: "A" as const },
  { tenant: "cedar-practice", cls: "B" as const },
];

function tenants(scale: number): Record<string, PolicySpec> {
  const n = (x: number) => Math.max(1, Math.round(x * scale));
  return {
    [BATCH]: { tier: "enterprise", mca: n(150), burst: { mca: n(250), seconds: 1, cooldownSeconds: 10 }, mcaUrgent: 20, mctc: n(400), mctcBatch: n(400), maxQueueDepth: 100_000 },
    "lakeside-clinics": { tier: "professional", mca: 10, mctc: 40 },
    "cedar-practice": { tier: "professional", mca: 10, mctc: 40 },
  };
}

function latencies(enq: Enqueued[], runs: Awaited<ReturnType<System["runs"]>>): TenantLatency[] {
  return TRICKLE.map(({ tenant, cls }) => {
    const mine = enq.filter((e) => e.tenant === tenant);
    const start: number[] = [];
    const e2e: number[] = [];
    let failed = 0;
    for (const e of mine) {
      const r = runs.get(e.id);
      if (!r) continue;
      start.push(r.firstStart - e.at);
      if (r.lastEnd !== undefined) e2e.push(r.lastEnd - e.at);
      if (r.outcome && !r.outcome.startsWith("ok")) failed++;
    }
    return { tenant, cls, startMs: summarize(start), endToEndMs: summarize(e2e), failed };
  });
}

/** The steady Class A and Class B trickle: each tenant one small agent every `everyMs`. */
function trickle(sys: System, forMs: number, everyMs: number, into: Enqueued[]): Promise<void> {
  const item = (cls: "A" | "B"): Item => ({ type: "bench-prior-auth", cls, payload: { steps: 1, fanout: 4, submit: false } });
  return steady(forMs, everyMs, async () => {
    for (const t of TRICKLE) into.push(...(await sys.enqueue(t.tenant, [item(t.cls)])));
  });
}

async function runOne(system: "on" | "off", redisUrl: string, scale: number, quick: boolean): Promise<StormRun> {
  const capacity = Math.round(600 * scale);
  const ds = await startDownstream({ capacity, latencyMs: [200, 400], queueTimeoutMs: 1000, seed: 7 });
  const workers = { processes: 3, concurrency: Math.round(100 * scale) };
  const sys =
    system === "on"
      ? await fairlane(redisUrl, {
          tenants: tenants(scale),
          workers,
          downstreamUrl: ds.url,
          // Class C may take up to 85% of the pool, so the batch can reach its burst of 250 of 300 slots.
          env: { FAIRLANE_BATCH_MAX_SHARE: "0.85", LOG_LEVEL: "error" },
        })
      : await plainBullmq(redisUrl, { workers, downstreamUrl: ds.url });
  try {
    const everyMs = 250;
    // 1. The trickle alone: the other tenants' normal latency on this system.
    const base: Enqueued[] = [];
    const cpu0 = hostCpu();
    await trickle(sys, quick ? 4_000 : 8_000, everyMs, base);
    const cpuBase = busyFraction(cpu0, hostCpu());
    if (!(await waitIdle(sys, 60_000))) throw new Error(`storm ${system}: the baseline did not drain`);
    await ds.reset();

    // 2. The storm: the whole batch at once, the trickle going on meanwhile.
    const n = Math.round(1200 * scale);
    const storm: Enqueued[] = [];
    const cpu1 = hostCpu();
    const trickling = trickle(sys, quick ? 8_000 : 20_000, everyMs, storm);
    await new Promise((r) => setTimeout(r, 500));
    const batch = await sys.enqueue(BATCH, Array.from({ length: n }, () => ({ type: "bench-prior-auth", cls: "C", payload: { steps: 3, fanout: 6 } })));
    await trickling;
    const cpuStorm = busyFraction(cpu1, hostCpu());
    if (!(await waitIdle(sys, quick ? 120_000 : 600_000))) throw new Error(`storm ${system}: the batch did not finish`);
    const runs = await sys.runs();
    const stats = await ds.stats();

    const batchRuns = batch.map((e) => runs.get(e.id)).filter((r) => r !== undefined);
    const ends = batchRuns.map((r) => r.lastEnd ?? 0);
    // Peak of batch agents running at once, from the observer's start/end times.
    const edges = batchRuns.flatMap((r) => [[r.firstStart, 1] as const, [r.lastEnd ?? Infinity, -1] as const]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let running = 0;
    let peakRunning = 0;
    for (const [, d] of edges) peakRunning = Math.max(peakRunning, (running += d));
    const throttled = [...runs.values()].reduce((s, r) => s + Number(/throttled=(\d+)/.exec(r.outcome ?? "")?.[1] ?? 0), 0);
    const logicalCalls = batch.length * 19 + storm.length * 4;
    return {
      system,
      baseline: latencies(base, runs),
      storm: latencies(storm, runs),
      downstream: {
        capacity,
        peakInFlight: stats.peakInFlight,
        peakDemand: stats.peakDemand,
        peakUtil: stats.peakDemand / capacity,
        requests: stats.requests,
        rejected: stats.rejected,
        failed: stats.failed,
        logicalCalls,
        batchPeakInFlight: stats.byTenant[BATCH]?.peakInFlight ?? 0,
      },
      batch: {
        workflows: batch.length,
        completionSec: (Math.max(...ends) - batch[0]!.at) / 1000,
        completed: batchRuns.filter((r) => r.outcome?.startsWith("ok")).length,
        failed: batchRuns.filter((r) => r.outcome && !r.outcome.startsWith("ok")).length,
        reruns: batchRuns.reduce((s, r) => s + r.starts - 1, 0),
        peakRunning,
      },
      throttled,
      hostCpuBusy: { baseline: cpuBase, storm: cpuStorm },
    };
  } finally {
    await sys.close();
    await ds.stop();
  }
}

export async function runStorm(redisUrl: string, o: { quick: boolean }): Promise<StormResult> {
  const scale = o.quick ? 0.25 : 1;
  return {
    scale,
    params: { agents: Math.round(1200 * scale), fanout: 6, steps: 3, toolLatencyMs: "200-400", downstreamCapacity: Math.round(600 * scale), slots: 3 * Math.round(100 * scale), timeScale: "1 s = 1 min" },
    off: await runOne("off", redisUrl, scale, o.quick),
    on: await runOne("on", redisUrl, scale, o.quick),
  };
}
