/**
 * Scenario 2, the loan-platform burst of seed 002: 200 institutions share 100
 * worker slots; 199 send their normal volume while institution X submits
 * 5,000 applications in "30 minutes". Per-tenant cap 20. Controls off (one
 * FIFO BullMQ queue, 100 slots, no caps) vs on (Fairlane, mca = burst = 20).
 *
 * Time scale 1:225 — a 45 s decision takes 200 ms, X's 30 minutes take 8 s.
 * The others' normal volume is 40% of the pool (200 decisions/s, spread
 * over the 199 with a seeded random choice). Quick mode: X sends 1,250 in 2 s
 * and the others run 8 s instead of 20 s.
 *
 * "Normal latency" is the others' mean end-to-end latency with no burst,
 * measured first on the same system; a tenant breaches the SLA when its own
 * p95 end-to-end latency during the burst exceeds twice that.
 * Jain's index is short-term fairness (lib/stats.ts sliceJain): per 1 s slice
 * of the burst window, each tenant's slot-time received over its max-min fair
 * share of the slice given what it wanted (a waiting workflow wants a slot),
 * averaged over the slices. FIFO serves everyone eventually, so a long-window
 * share would call it fair; the slices see the others waiting while X runs.
 * X's cap of 20 is below its fair share by design, so Fairlane stays under 1.
 */
import { mulberry32 } from "../../../src/dev/downstream/simulator.ts";
import type { PolicySpec } from "../../../src/tenancy/policy.ts";
import { steady } from "../lib/infra.ts";
import { mean, percentile, sliceJain, summarize, type Percentiles, type Span } from "../lib/stats.ts";
import { fairlane, plainBullmq, waitIdle, type Enqueued, type Item, type System } from "../lib/systems.ts";
import { runWeighted, type WeightedResult } from "./weighted.ts";

export interface LoanRun {
  system: "on" | "off";
  normalMs: number;
  slaMs: number;
  others: { endToEndMs: Percentiles; startMs: Percentiles; breaches: number; tenants: number; perTenantP95: Percentiles };
  burst: { workflows: number; completionSec: number; startMs: Percentiles };
  jain: number;
  /** Share of the window's slot-time that X got. */
  burstShare: number;
}

export interface LoanResult {
  scale: number;
  params: Record<string, unknown>;
  off: LoanRun;
  on: LoanRun;
  /** The same platform at scale with mixed weights, all backlogged (Fairlane only). */
  weighted: WeightedResult;
}

const X = "inst-x";
const DURATION_MS = 200;
const SLOTS = 100;

function otherNames(): string[] {
  return Array.from({ length: 199 }, (_, i) => `inst-${String(i).padStart(3, "0")}`);
}

function tenants(): Record<string, PolicySpec> {
  const spec: PolicySpec = { tier: "professional", mca: 20, burst: { mca: 20, seconds: 0, cooldownSeconds: 0 }, maxQueueDepth: 100_000 };
  return Object.fromEntries([X, ...otherNames()].map((t) => [t, spec]));
}

const decision = (): Item => ({ type: "bench-sleep", cls: "B", payload: { durationMs: DURATION_MS } });

/** The others' normal volume: every 50 ms, 10 decisions for 10 random institutions (200/s). */
function normalVolume(sys: System, forMs: number, seed: number, into: Enqueued[]): Promise<void> {
  const rnd = mulberry32(seed);
  const names = otherNames();
  return steady(forMs, 50, async () => {
    const picks = Array.from({ length: 10 }, () => names[Math.floor(rnd() * names.length)]!);
    await Promise.all(picks.map(async (t) => into.push(...(await sys.enqueue(t, [decision()])))));
  });
}

async function runOne(system: "on" | "off", redisUrl: string, quick: boolean): Promise<LoanRun> {
  const workers = { processes: 2, concurrency: SLOTS / 2 };
  // All work is Class B: the 100 slots are the seed's worker pool, none reserved.
  const sys =
    system === "on"
      ? await fairlane(redisUrl, {
          tenants: tenants(),
          workers,
          downstreamUrl: "http://127.0.0.1:9",
          env: { FAIRLANE_RESERVE_A: "0", LOG_LEVEL: "error" },
        })
      : await plainBullmq(redisUrl, { workers, downstreamUrl: "http://127.0.0.1:9" });
  try {
    // Warm up (first dispatches of 200 tenants, JIT) unmeasured, so "normal" is the steady state.
    await normalVolume(sys, 1_000, 9, []);
    if (!(await waitIdle(sys, 60_000))) throw new Error(`loan ${system}: warm-up did not drain`);
    const base: Enqueued[] = [];
    await normalVolume(sys, quick ? 3_000 : 5_000, 1, base);
    if (!(await waitIdle(sys, 60_000))) throw new Error(`loan ${system}: baseline did not drain`);

    const windowMs = quick ? 8_000 : 20_000;
    const burstMs = quick ? 2_000 : 8_000;
    const burstN = quick ? 1_250 : 5_000;
    const others: Enqueued[] = [];
    const xs: Enqueued[] = [];
    const t0 = Date.now();
    const volume = normalVolume(sys, windowMs, 2, others);
    // X's burst starts a second in, in 100 ms chunks.
    await new Promise((r) => setTimeout(r, 1000));
    const chunks = burstMs / 100;
    await steady(burstMs, 100, async (i) => {
      if (i < chunks) xs.push(...(await sys.enqueue(X, Array.from({ length: Math.round(burstN / chunks) }, decision))));
    });
    await volume;
    const t1 = Date.now();
    if (!(await waitIdle(sys, quick ? 120_000 : 600_000))) throw new Error(`loan ${system}: did not drain`);
    const runs = await sys.runs();

    const e2e = (list: Enqueued[]) =>
      list
        .map((e) => runs.get(e.id))
        .map((r, i) => (r?.lastEnd ?? NaN) - list[i]!.at)
        .filter(Number.isFinite);
    const starts = (list: Enqueued[]) =>
      list
        .map((e) => runs.get(e.id))
        .map((r, i) => (r?.firstStart ?? NaN) - list[i]!.at)
        .filter(Number.isFinite);
    const normalMs = mean(e2e(base));
    const slaMs = 2 * normalMs;
    const byTenant = new Map<string, Enqueued[]>();
    for (const e of others) byTenant.set(e.tenant, [...(byTenant.get(e.tenant) ?? []), e]);
    const p95s = [...byTenant.values()].map((l) => percentile(e2e(l), 95));

    // Fairness and X's share from the observer's own start/end times over the burst window [t0, t1].
    const spans: Span[] = [];
    for (const e of [...others, ...xs]) {
      const r = runs.get(e.id);
      if (r?.lastEnd !== undefined) spans.push({ tenant: e.tenant, enq: e.at, start: r.firstStart, end: r.lastEnd });
    }
    const held = (t?: string) =>
      spans.filter((x) => !t || x.tenant === t).reduce((sum, x) => sum + Math.max(0, Math.min(x.end, t1) - Math.max(x.start, t0)), 0);
    const xEnds = xs.map((e) => runs.get(e.id)?.lastEnd ?? NaN);
    return {
      system,
      normalMs,
      slaMs,
      others: {
        endToEndMs: summarize(e2e(others)),
        startMs: summarize(starts(others)),
        breaches: p95s.filter((p) => p > slaMs).length,
        tenants: byTenant.size,
        perTenantP95: summarize(p95s),
      },
      burst: { workflows: xs.length, completionSec: (Math.max(...xEnds) - xs[0]!.at) / 1000, startMs: summarize(starts(xs)) },
      jain: sliceJain(spans, SLOTS, t0, t1, 1000),
      burstShare: held(X) / held(),
    };
  } finally {
    await sys.close();
  }
}

export async function runLoan(redisUrl: string, o: { quick: boolean }): Promise<LoanResult> {
  return {
    scale: o.quick ? 0.25 : 1,
    params: {
      tenants: 200,
      slots: SLOTS,
      cap: 20,
      burst: o.quick ? 1_250 : 5_000,
      decisionMs: DURATION_MS,
      othersPerSec: 200,
      timeScale: "1:225 (45 s decision = 200 ms)",
    },
    off: await runOne("off", redisUrl, o.quick),
    on: await runOne("on", redisUrl, o.quick),
    weighted: await runWeighted(redisUrl, o),
  };
}
