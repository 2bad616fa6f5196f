/**
 * Scenario 3, throughput and scale, on one Redis, each measure from one run:
 *   - backlog drain (lib/drain.ts): `jobs` no-op jobs prefilled with no consumer
 *     running, then drained, timed from the first handler call to the last.
 *     Plain BullMQ in each of `plainLayouts` (processes × concurrency), the
 *     fastest being "plain's best" on this machine; Fairlane in its normal
 *     layout (exec processes + a dispatcher process) at the same total
 *     concurrency, at each tenant count (Class B, caps that never bind);
 *     per phase (enqueue, drain) CPU per workflow of Redis and of each process,
 *     write syscalls per process (≈ round trips), Redis commands per workflow;
 *     Redis bytes per queued and per finished workflow. `rounds` repeats the
 *     whole comparison, so the spread shows; every ratio is within one round;
 *   - end to end (lib/endToEnd.ts), the figure reported before drains: workers
 *     running, first enqueue to last handler call, plain vs Fairlane in process
 *     and Fairlane over HTTP;
 *   - the floor: the least state a fair, durable scheduler keeps per workflow, alone (lib/leastState.ts),
 *     in each round; plain's drain plus it is the cheapest drain such a design could have;
 *   - who sends which commands (lib/census.ts): a small drain of each under MONITOR;
 *   - tool-gate acquire+release pairs per second, uncontended and contended;
 *   - the admission cost of appendfsync always vs everysec (two Redis servers).
 */
import { Redis } from "ioredis";
import { createKeys } from "../../../queues/keys.ts";
import { systemClock } from "../../../src/lib/clock.ts";
import { loadConfig } from "../../../src/lib/config.ts";
import { connect } from "../../../src/lib/redis.ts";
import { createLogger } from "../../../src/observability/logger.ts";
import { openPlatform } from "../../../src/platform.ts";
import { ToolGate } from "../../../src/runtime/toolGate.ts";
import type { Census } from "../lib/census.ts";
import { fairDrain, PAYLOAD, plainDrain, type Ctx, type DrainResult } from "../lib/drain.ts";
import { fairEndToEnd, plainEndToEnd, type EndToEnd } from "../lib/endToEnd.ts";
import { benchRedis } from "../lib/infra.ts";
import { leastState } from "../lib/leastState.ts";
import type { PhaseCost } from "../lib/meter.ts";
import type { Workers } from "../lib/systems.ts";

export interface Round {
  plain: DrainResult[];
  /** Fairlane, one drain per tenant count. */
  fair: DrainResult[];
  /** The least per-workflow state alone, 10 workflows a script call (lib/leastState.ts): the floor's part. */
  least: PhaseCost;
}

export interface ThroughputResult {
  params: {
    jobs: number;
    plainLayouts: Workers[];
    fairLayout: Workers;
    tenants: number[];
    rounds: number;
    payloadBytes: number;
    censusJobs: number;
  };
  rounds: Round[];
  endToEnd: EndToEnd[];
  census: { plain: Census; fair: Census; plainLayout: Workers };
  gate: { uncontendedPairsPerSec: number; contendedPairsPerSec: number; callers: number; contendedMctc: number };
  durability: { everysecPerSec: number; alwaysPerSec: number; callers: number; disk: string };
}

export interface ThroughputOptions {
  jobs: number;
  plainLayouts: Workers[];
  fairLayout: Workers;
  tenants: number[];
  rounds: number;
  censusJobs: number;
  gateMs: number;
  durabilityAdmissions: number;
  log(msg: string): void;
}

const tag = (w: Workers) => `${w.processes}x${w.concurrency}`;

/** The fastest plain layout of a round. */
export const plainBest = (r: Round): DrainResult => r.plain.reduce((a, b) => (b.drain.perSec > a.drain.perSec ? b : a));
export const fairAt = (r: Round, tenants: number): DrainResult | undefined => r.fair.find((f) => f.tenants === tenants);

async function round(c: Ctx, o: ThroughputOptions, i: number): Promise<Round> {
  const plain: DrainResult[] = [];
  for (const layout of o.plainLayouts) {
    o.log(`  round ${i}: plain BullMQ ${tag(layout)} drain`);
    plain.push(await plainDrain(c, { name: `plain BullMQ ${tag(layout)}`, tag: `r${i}-${tag(layout)}`, jobs: o.jobs, layout }));
  }
  const fair: DrainResult[] = [];
  for (const tenants of o.tenants) {
    o.log(`  round ${i}: Fairlane ${tenants} tenants drain`);
    fair.push(
      await fairDrain(c, {
        name: `Fairlane ${tag(o.fairLayout)} + dispatcher, ${tenants.toLocaleString("en")} tenants`,
        tag: `r${i}-t${tenants}`,
        jobs: o.jobs,
        tenants,
        layout: o.fairLayout,
      }),
    );
  }
  o.log(`  round ${i}: the least per-workflow state`);
  return { plain, fair, least: await leastState(c, `r${i}`, o.jobs, 10) };
}

async function gateRate(url: string, forMs: number): Promise<ThroughputResult["gate"]> {
  const redis = connect(url);
  const sub = connect(url);
  const gate = new ToolGate(redis, sub, createKeys("bench-gate"), systemClock, { leaseMs: 15_000, renewMs: 5_000, pollMs: 200 });
  await gate.start(["default"]);
  const callers = 64;
  const contendedMctc = 16;
  const run = async (tenant: string, mctc: number) => {
    let pairs = 0;
    const until = Date.now() + forMs;
    await Promise.all(
      Array.from({ length: callers }, async () => {
        while (Date.now() < until) {
          const r = await gate.acquire({
            cell: "default",
            tenant,
            batch: false,
            limits: { mctc, mctcBatch: mctc, depth: callers * 2 },
            deadlineAt: null,
            waitTimeoutMs: 10_000,
          });
          if (r.ok) {
            await gate.release(r.permit);
            pairs++;
          }
        }
      }),
    );
    return pairs / (forMs / 1000);
  };
  const uncontended = await run("open", 10_000);
  const contended = await run("tight", contendedMctc);
  gate.stop();
  await sub.quit();
  await redis.quit();
  return { uncontendedPairsPerSec: uncontended, contendedPairsPerSec: contended, callers, contendedMctc };
}

/** Single-workflow admissions (as POST /v1/workflows makes them) from 32 concurrent callers. */
async function admissionRate(url: string, n: number): Promise<number> {
  const config = loadConfig({ ...process.env, FAIRLANE_PREFIX: "bench-dur", FAIRLANE_MAX_QUEUED_TOTAL: String(n * 2) });
  const p = await openPlatform(config, url, createLogger("bench", "silent"));
  await p.registry.seed(new Map([["t0", { tier: "enterprise", maxQueueDepth: 1_000_000 }]]), true);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next++ < n) await p.admission.admitOne("t0", { type: "prior-auth", class: "B", payload: PAYLOAD }, "0".repeat(32));
    }),
  );
  const perSec = n / ((performance.now() - t0) / 1000);
  await p.close();
  return perSec;
}

async function durability(n: number): Promise<ThroughputResult["durability"]> {
  const rates: Record<string, number> = {};
  for (const mode of ["everysec", "always"] as const) {
    const r = await benchRedis(mode);
    try {
      rates[mode] = await admissionRate(r.url, n);
    } finally {
      await r.stop();
    }
  }
  return { everysecPerSec: rates.everysec!, alwaysPerSec: rates.always!, callers: 32, disk: "the temp folder's disk" };
}

export async function runThroughput(url: string, redisPid: number, o: ThroughputOptions): Promise<ThroughputResult> {
  const admin = new Redis(url);
  const c: Ctx = { url, redisPid, admin };
  try {
    const rounds: Round[] = [];
    for (let i = 1; i <= o.rounds; i++) rounds.push(await round(c, o, i));
    const best = plainBest(rounds[0]!).layout;
    const ten = o.tenants[0]!;
    o.log("  end to end: plain, Fairlane in process, Fairlane over HTTP");
    const endToEnd = [
      await plainEndToEnd(c, { tag: "e2e", jobs: o.jobs, layout: best }),
      await fairEndToEnd(c, { tag: "e2e", jobs: o.jobs, tenants: ten, layout: o.fairLayout, via: "in-process" }),
      await fairEndToEnd(c, { tag: "e2e-http", jobs: o.jobs, tenants: ten, layout: o.fairLayout, via: "http" }),
    ];
    o.log("  census under MONITOR");
    const plainCensus = await plainDrain(c, { name: "census", tag: "census", jobs: o.censusJobs, layout: best, census: true });
    const fairCensus = await fairDrain(c, {
      name: "census",
      tag: "census",
      jobs: o.censusJobs,
      tenants: ten,
      layout: o.fairLayout,
      census: true,
    });
    o.log("  tool gate, durability");
    return {
      params: {
        jobs: o.jobs,
        plainLayouts: o.plainLayouts,
        fairLayout: o.fairLayout,
        tenants: o.tenants,
        rounds: o.rounds,
        payloadBytes: JSON.stringify(PAYLOAD).length,
        censusJobs: o.censusJobs,
      },
      rounds,
      endToEnd,
      census: { plain: plainCensus.census!, fair: fairCensus.census!, plainLayout: best },
      gate: await gateRate(url, o.gateMs),
      durability: await durability(o.durabilityAdmissions),
    };
  } finally {
    await admin.quit();
  }
}
