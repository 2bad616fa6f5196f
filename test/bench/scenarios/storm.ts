/**
 * Scenario 1, the fan-out storm of seed 000: a hospital network enqueues its
 * nightly batch of prior-auth agents (Class C, 6 parallel tool calls per
 * reasoning step) at once, while other tenants send a steady trickle of
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
 *
 * The trickle: the seed's Class A and Class B tenants plus a second Class A
 * tenant (professional tier, mcaUrgent 3), each one small agent (4 tool
 * calls) every 250 ms, the seed's rate, for 26 s in each phase of a full run:
 * over 200 Class A samples in each, so a p99 is an interpolated quantile with a
 * stated range, not the maximum. A 4 s trickle before the first phase warms the
 * system up and is left out of every figure. (More trickle tenants would add their own
 * calls to the downstream's peak, which the storm is judged by.)
 * Per sample on Fairlane, from its record (queues/lua: enqueuedAt at
 * admission, dispatchedAt when moved to exec, startedAt when a worker's
 * startRun took it) and the observer's handler start and end: enqueue →
 * dispatch → start → handler → end; and whether the tenant's own Class A cap
 * (mcaUrgent) was full when it was enqueued. Per process: event-loop delay
 * (lib/loopProbe.ts) and run-queue wait (/proc/<pid>/schedstat) in each phase.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PolicySpec } from "../../../src/tenancy/policy.ts";
import { startDownstream } from "../lib/downstreamProcess.ts";
import { steady } from "../lib/infra.ts";
import { loopDelayByRole, readLoopDelay, startLoopProbe } from "../lib/loopProbe.ts";
import { distribution, type Distribution } from "../lib/stats.ts";
import { fairlane, plainBullmq, waitIdle, type Enqueued, type FairlaneSystem, type Item, type System } from "../lib/systems.ts";
import { busyFraction, hostCpu, runQueueSeconds } from "../procStats.ts";

/** One class's trickle samples, all its tenants pooled. */
export interface ClassLatency {
  cls: "A" | "B";
  tenants: string[];
  /** enqueue → start of the handler, and → its end (the producer's clock, the observer's times). */
  startMs: Distribution;
  endToEndMs: Distribution;
  failed: number;
  /** Fairlane only: the same samples split at their record's times. */
  stages?: { queueMs: Distribution; pickupMs: Distribution; startRunToHandlerMs: Distribution; runMs: Distribution };
  /** Fairlane, Class A only: samples enqueued while their tenant already held mcaUrgent Class A slots. */
  ownCapFull?: number;
  /** Fairlane, Class A only: the slowest starts (a p99 of ~200 samples is about the third), when in the phase and where the time went. */
  slowest?: SlowSample[];
}

/**
 * One sample's start split at its record's times (ms); `atMs` is its enqueue, from the phase's first.
 * `admitMs` is the admission call's round trip as the producer saw it (call → reply). `queueMs` (the
 * record's enqueue → dispatch) starts at the same call's clock reading, so it holds the admission's wait
 * up to its script but not its reply: an admission that waits in Redis behind other work shows in both,
 * a producer whose event loop is busy in a long `admitMs` over a short `queueMs`. `scriptMs` splits
 * `queueMs` at Redis's own time of the admission script (its run list entry's ID): before it, the
 * producer's loop and Redis's queue; after it (`queueMs - scriptMs`), the wait for a dispatch call.
 */
export interface SlowSample {
  tenant: string;
  atMs: number;
  startMs: number;
  admitMs: number;
  queueMs: number;
  scriptMs: number;
  pickupMs: number;
  handlerMs: number;
}

export interface ProcessLoad {
  role: string;
  processes: number;
  /** Event-loop delay (ms): median of the processes' p50 and p99, the worst p99, the longest stall. */
  loop: { p50: number; p99: number; p99Worst: number; max: number };
  /** Fraction of the phase a process of this role spent runnable but waiting for a CPU (mean over its processes). */
  runQueueWait: number;
}

export interface StormRun {
  system: "on" | "off";
  baseline: ClassLatency[];
  storm: ClassLatency[];
  downstream: {
    capacity: number;
    peakInFlight: number;
    peakDemand: number;
    peakUtil: number;
    requests: number;
    rejected: number;
    failed: number;
    logicalCalls: number;
    batchPeakInFlight: number;
  };
  batch: { workflows: number; completionSec: number; completed: number; failed: number; reruns: number; peakRunning: number };
  throttled: number;
  /** The machine's CPU busy fraction during the no-storm and the storm phase (all processes share it). */
  hostCpuBusy: { baseline: number; storm: number };
  processes: { baseline: ProcessLoad[]; storm: ProcessLoad[] };
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
  { tenant: "harbor-urgent-care", cls: "A" as const },
  { tenant: "cedar-practice", cls: "B" as const },
];
const EVERY_MS = 250;
const MCA_URGENT = 3;
/** Each phase's trickle in a full run: 2 Class A tenants × 4 a second × 26 s ≈ 208 samples. */
const TRICKLE_MS = 26_000;
/** The trickle before the first phase, left out of every figure (a full run). */
const WARMUP_MS = 4_000;

function tenants(scale: number): Record<string, PolicySpec> {
  const n = (x: number) => Math.max(1, Math.round(x * scale));
  const out: Record<string, PolicySpec> = {
    [BATCH]: {
      tier: "enterprise",
      mca: n(150),
      burst: { mca: n(250), seconds: 1, cooldownSeconds: 10 },
      mcaUrgent: 20,
      mctc: n(400),
      mctcBatch: n(400),
      maxQueueDepth: 100_000,
    },
  };
  for (const t of TRICKLE) out[t.tenant] = { tier: "professional", mca: 10, mcaUrgent: MCA_URGENT, mctc: 40 };
  return out;
}

const FIELDS = ["enqueuedAt", "dispatchedAt", "startedAt"];
const SLOWEST = 4;

async function latencies(sys: System, enq: Enqueued[], runs: Awaited<ReturnType<System["runs"]>>): Promise<ClassLatency[]> {
  const fair = sys.name === "on" ? (sys as FairlaneSystem) : undefined;
  const records = await fair?.records(
    enq.map((e) => e.id),
    FIELDS,
  );
  const scripted = await fair?.admittedAt(TRICKLE.map((t) => t.tenant));
  // Every Class A hold of a slot (dispatch → end) per tenant, to tell when its own urgent cap was full.
  const holds = new Map<string, [number, number][]>();
  for (const e of enq) {
    const r = runs.get(e.id);
    const d = Number(records?.get(e.id)?.dispatchedAt);
    if (e.cls === "A" && r?.lastEnd && Number.isFinite(d)) holds.set(e.tenant, [...(holds.get(e.tenant) ?? []), [d, r.lastEnd]]);
  }
  return (["A", "B"] as const).map((cls) => {
    const mine = enq.filter((e) => e.cls === cls && TRICKLE.some((t) => t.tenant === e.tenant));
    const start: number[] = [];
    const e2e: number[] = [];
    const stage = { queueMs: [] as number[], pickupMs: [] as number[], startRunToHandlerMs: [] as number[], runMs: [] as number[] };
    let failed = 0;
    let capFull = 0;
    const split: SlowSample[] = [];
    const phaseStart = Math.min(...mine.map((e) => e.at));
    for (const e of mine) {
      const r = runs.get(e.id);
      if (!r) continue;
      start.push(r.firstStart - e.at);
      if (r.lastEnd !== undefined) e2e.push(r.lastEnd - e.at);
      if (r.outcome && !r.outcome.startsWith("ok")) failed++;
      const rec = records?.get(e.id);
      if (rec?.dispatchedAt && rec.startedAt) {
        const [d, s] = [Number(rec.dispatchedAt), Number(rec.startedAt)];
        stage.queueMs.push(d - e.at);
        stage.pickupMs.push(s - d);
        stage.startRunToHandlerMs.push(r.firstStart - s);
        const admitted = Number(rec.enqueuedAt);
        split.push({
          tenant: e.tenant,
          atMs: e.at - phaseStart,
          startMs: r.firstStart - e.at,
          admitMs: e.ackAt - e.at,
          queueMs: d - admitted,
          scriptMs: (scripted?.get(e.id) ?? NaN) - admitted,
          pickupMs: s - d,
          handlerMs: r.firstStart - s,
        });
        if (r.lastEnd !== undefined) stage.runMs.push(r.lastEnd - r.firstStart);
      }
      if (cls === "A" && (holds.get(e.tenant) ?? []).filter(([a, b]) => a <= e.at && e.at < b).length >= MCA_URGENT) capFull++;
    }
    const out: ClassLatency = {
      cls,
      tenants: [...new Set(mine.map((e) => e.tenant))],
      startMs: distribution(start),
      endToEndMs: distribution(e2e),
      failed,
    };
    if (records) {
      out.stages = {
        queueMs: distribution(stage.queueMs),
        pickupMs: distribution(stage.pickupMs),
        startRunToHandlerMs: distribution(stage.startRunToHandlerMs),
        runMs: distribution(stage.runMs),
      };
      if (cls === "A") {
        out.ownCapFull = capFull;
        out.slowest = split.sort((a, b) => b.startMs - a.startMs).slice(0, SLOWEST);
      }
    }
    return out;
  });
}

/** The steady Class A and Class B trickle: each tenant one small agent every EVERY_MS. */
function trickle(sys: System, type: Item["type"], forMs: number, into: Enqueued[]): Promise<void> {
  const item = (cls: "A" | "B"): Item => ({ type, cls, payload: { steps: 1, fanout: 4, submit: false } });
  return steady(forMs, EVERY_MS, () => Promise.all(TRICKLE.map(async (t) => into.push(...(await sys.enqueue(t.tenant, [item(t.cls)]))))));
}

/** Event-loop delay and run-queue wait per role over one phase (Redis: run-queue wait only). */
function processLoad(
  loopFile: string,
  from: number,
  to: number,
  waited: Map<number, number>,
  pids: { role: string; pid: number }[],
): ProcessLoad[] {
  const secs = (to - from) / 1000;
  const loops = loopDelayByRole(readLoopDelay(loopFile, from, to));
  return [...new Set(pids.map((p) => p.role))].map((role) => {
    const mine = pids.filter((p) => p.role === role);
    const wait = mine.map((p) => (runQueueSeconds(p.pid) - (waited.get(p.pid) ?? 0)) / secs);
    const l = loops.find((x) => x.role === role);
    return {
      role,
      processes: mine.length,
      loop: { p50: l?.p50 ?? NaN, p99: l?.p99 ?? NaN, p99Worst: l?.p99Worst ?? NaN, max: l?.max ?? NaN },
      runQueueWait: wait.reduce((s, x) => s + x, 0) / wait.length,
    };
  });
}

/**
 * The agent Fairlane runs: the hand-written one, the same agent on the Vercel AI SDK (ctx.agent) for every
 * tenant, or for the batch only (the trickle keeps the hand-written agent, so its figures compare directly).
 */
export type StormAgent = "handwritten" | "ai-sdk" | "ai-sdk-batch";
const SDK: Item["type"] = "bench-prior-auth-agent";
const HAND: Item["type"] = "bench-prior-auth";

async function runOne(
  system: "on" | "off",
  redisUrl: string,
  redisPid: number,
  scale: number,
  quick: boolean,
  agent: StormAgent,
): Promise<StormRun> {
  // Controls off is plain BullMQ with its own hand-written agent (test/bench/plainWorker.ts) either way.
  const type = system === "on" && agent !== "handwritten" ? SDK : HAND;
  const trickleType = system === "on" && agent === "ai-sdk" ? SDK : HAND;
  const capacity = Math.round(600 * scale);
  const dir = mkdtempSync(join(tmpdir(), "fl-storm-"));
  const loopFile = join(dir, "loop.jsonl");
  const stopProbe = startLoopProbe(loopFile, "producer");
  const ds = await startDownstream({ capacity, latencyMs: [200, 400], queueTimeoutMs: 1000, seed: 7, loopFile });
  const workers = { processes: 3, concurrency: Math.round(100 * scale) };
  const env = { BENCH_LOOP_FILE: loopFile };
  const sys =
    system === "on"
      ? await fairlane(redisUrl, {
          tenants: tenants(scale),
          workers,
          downstreamUrl: ds.url,
          // Class C may take up to 85% of the pool, so the batch can reach its burst of 250 of 300 slots.
          env: { FAIRLANE_BATCH_MAX_SHARE: "0.85", LOG_LEVEL: "error", ...env },
        })
      : await plainBullmq(redisUrl, { workers, downstreamUrl: ds.url, env });
  // The simulated downstream shares the machine's two cores too (and, with --agent ai-sdk, serves the model).
  const pids = [
    ...sys.roles,
    { role: "producer", pid: process.pid },
    { role: "downstream", pid: ds.pid },
    { role: "redis", pid: redisPid },
  ];
  const waitedNow = () => new Map(pids.map((p) => [p.pid, runQueueSeconds(p.pid)]));
  try {
    // 0. A warm-up the figures leave out: a fresh system's first seconds (JIT, scripts loaded, pools
    // filled) are not its normal, and a slow normal would flatter the storm's ratio to it.
    await trickle(sys, trickleType, quick ? 1_000 : WARMUP_MS, []);
    if (!(await waitIdle(sys, 60_000))) throw new Error(`storm ${system}: the warm-up did not drain`);
    await ds.reset();

    // 1. The trickle alone: the other tenants' normal latency on this system.
    const base: Enqueued[] = [];
    const cpu0 = hostCpu();
    const [b0, w0] = [Date.now(), waitedNow()];
    await trickle(sys, trickleType, quick ? 4_000 : TRICKLE_MS, base);
    const b1 = Date.now();
    const baseLoad = processLoad(loopFile, b0, b1, w0, pids);
    const cpuBase = busyFraction(cpu0, hostCpu());
    if (!(await waitIdle(sys, 60_000))) throw new Error(`storm ${system}: the baseline did not drain`);
    await ds.reset();

    // 2. The storm: the whole batch at once, the trickle going on meanwhile.
    const n = Math.round(1200 * scale);
    const storm: Enqueued[] = [];
    const cpu1 = hostCpu();
    const [s0, w1] = [Date.now(), waitedNow()];
    const trickling = trickle(sys, trickleType, quick ? 8_000 : TRICKLE_MS, storm);
    await new Promise((r) => setTimeout(r, 500));
    const batch = await sys.enqueue(
      BATCH,
      Array.from({ length: n }, () => ({ type, cls: "C", payload: { steps: 3, fanout: 6 } })),
    );
    await trickling;
    const s1 = Date.now();
    const stormLoad = processLoad(loopFile, s0, s1, w1, pids);
    const cpuStorm = busyFraction(cpu1, hostCpu());
    if (!(await waitIdle(sys, quick ? 120_000 : 600_000))) throw new Error(`storm ${system}: the batch did not finish`);
    const runs = await sys.runs();
    const stats = await ds.stats();

    const batchRuns = batch.map((e) => runs.get(e.id)).filter((r) => r !== undefined);
    const ends = batchRuns.map((r) => r.lastEnd ?? 0);
    // Peak of batch agents running at once, from the observer's start/end times.
    const edges = batchRuns
      .flatMap((r) => [[r.firstStart, 1] as const, [r.lastEnd ?? Infinity, -1] as const])
      .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let running = 0;
    let peakRunning = 0;
    for (const [, d] of edges) peakRunning = Math.max(peakRunning, (running += d));
    const throttled = [...runs.values()].reduce((s, r) => s + Number(/throttled=(\d+)/.exec(r.outcome ?? "")?.[1] ?? 0), 0);
    const logicalCalls = batch.length * 19 + storm.length * 4;
    return {
      system,
      baseline: await latencies(sys, base, runs),
      storm: await latencies(sys, storm, runs),
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
      processes: { baseline: baseLoad, storm: stormLoad },
    };
  } finally {
    stopProbe();
    await sys.close();
    await ds.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runStorm(redisUrl: string, o: { quick: boolean; redisPid: number; agent?: StormAgent }): Promise<StormResult> {
  const scale = o.quick ? 0.25 : 1;
  const agent = o.agent ?? "handwritten";
  return {
    scale,
    params: {
      agent: {
        handwritten: "hand-written",
        "ai-sdk": "Vercel AI SDK agent (ctx.agent, prior-auth-agent) for every tenant on Fairlane; plain BullMQ keeps its hand-written one",
        "ai-sdk-batch":
          "Vercel AI SDK agent (ctx.agent, prior-auth-agent) for the batch on Fairlane, the trickle hand-written; plain BullMQ keeps its hand-written one",
      }[agent],
      agents: Math.round(1200 * scale),
      fanout: 6,
      steps: 3,
      toolLatencyMs: "200-400",
      downstreamCapacity: Math.round(600 * scale),
      slots: 3 * Math.round(100 * scale),
      timeScale: "1 s = 1 min",
      warmupSec: (o.quick ? 1_000 : WARMUP_MS) / 1000,
      trickle: `${TRICKLE.filter((t) => t.cls === "A").length} Class A + ${TRICKLE.filter((t) => t.cls === "B").length} Class B tenants (mcaUrgent ${MCA_URGENT}), one agent each every ${EVERY_MS} ms`,
    },
    off: await runOne("off", redisUrl, o.redisPid, scale, o.quick, agent),
    on: await runOne("on", redisUrl, o.redisPid, scale, o.quick, agent),
  };
}
