import type { Redis } from "ioredis";
import type { Keys, WorkflowClass } from "../../queues/keys.ts";
import { ingressQueue } from "../../queues/names.ts";
import { addBucket, emptyEvents, type TenantEvents } from "../../queues/usageEvents.ts";
import { replyCursor } from "../lib/replyCursor.ts";
import { SlotPipeline } from "../lib/slotPipeline.ts";
import type { TenantEntry } from "../tenancy/registry.ts";
import { atCap, burstState } from "./capState.ts";
import { summarizeLatency } from "./percentiles.ts";
import type { TenantUsage } from "./usageTypes.ts";

const CLASSES: WorkflowClass[] = ["A", "B", "C"];

/** What round trip 1 learns per cell; maps keyed "<cell>|<tenant>" or "<cell>|<pool>". */
export interface CellReads {
  running: Map<string, Record<WorkflowClass, number>>;
  /** cell|pool -> tenant -> Class C slots */
  holdersC: Map<string, Map<string, number>>;
  events: Map<string, TenantEvents>;
  poolsOf: Map<string, string[]>;
  depsOf: Map<string, string[]>;
}

/**
 * Round trip 1 of the usage snapshot (usageSnapshot.ts): per cell, slot leases (running per tenant
 * and class), pools, dependencies and the window's usage-event buckets; per tenant, burst start,
 * permits held (A/B and C), gate waiters and ingress depth per class (7 commands). Returns the
 * cells' reads and one row per tenant (parked, fair share and held are filled later).
 */
export async function readTenants(
  redis: Redis,
  keys: Keys,
  cells: string[],
  entries: TenantEntry[],
  buckets: number[],
  windowMs: number,
  now: number,
): Promise<{ reads: CellReads; rows: TenantUsage[] }> {
  // Cells are different hash slots: SlotPipeline sends one pipeline per cell (a cluster refuses a mixed one).
  const p1 = new SlotPipeline(redis);
  for (const c of cells) {
    const ck = keys.cell(c);
    p1.add(ck.slots, (p) => p.hgetall(ck.slots))
      .add(ck.pools, (p) => p.smembers(ck.pools))
      .add(ck.deps, (p) => p.smembers(ck.deps));
    for (const b of buckets) p1.add(ck.usageEvents(b), (p) => p.hgetall(ck.usageEvents(b)));
  }
  for (const e of entries) {
    const ck = keys.cell(e.policy.cell);
    const g = ck.gate(e.tenant);
    const caps = ck.tenantCaps(e.tenant);
    p1.add(caps, (p) => p.hget(caps, "burstStart"))
      .add(g.held, (p) => p.zcount(g.held, `(${now}`, "+inf"))
      .add(g.heldC, (p) => p.zcount(g.heldC, `(${now}`, "+inf"))
      .add(g.wait, (p) => p.zcard(g.wait))
      .add(g.waitC, (p) => p.zcard(g.waitC));
    for (const cls of CLASSES) {
      const wait = ck.queueKey(ingressQueue(e.tenant, cls), "wait");
      p1.add(wait, (p) => p.llen(wait));
    }
  }
  const next = replyCursor(await p1.exec());
  const reads = cellReads(next, cells, buckets.length);
  const perMin = (n: number) => Math.round((n * 60_000 * 10) / windowMs) / 10;
  const rows = entries.map((e) => tenantRow(e, next, reads, perMin, now));
  return { reads, rows };
}

/** The cells' replies, in the order readTenants queued them. */
function cellReads(next: () => unknown, cells: string[], bucketCount: number): CellReads {
  const reads: CellReads = { running: new Map(), holdersC: new Map(), events: new Map(), poolsOf: new Map(), depsOf: new Map() };
  const { running, holdersC, events } = reads;
  for (const c of cells) {
    for (const lease of Object.values(next() as Record<string, string>)) {
      const [tenant, cls, pool] = lease.split("|");
      if (!tenant || (cls !== "A" && cls !== "B" && cls !== "C")) continue;
      if (cls === "C") {
        const h = holdersC.get(`${c}|${pool}`) ?? new Map<string, number>();
        h.set(tenant, (h.get(tenant) ?? 0) + 1);
        holdersC.set(`${c}|${pool}`, h);
      }
      const key = `${c}|${tenant}`;
      const r = running.get(key) ?? { A: 0, B: 0, C: 0 };
      r[cls]++;
      running.set(key, r);
    }
    reads.poolsOf.set(c, [...new Set(["default", ...(next() as string[])])].sort());
    reads.depsOf.set(c, (next() as string[]).filter((d) => /^[^\s{}]{1,200}$/.test(d) && !d.endsWith(":override")).sort());
    for (let b = 0; b < bucketCount; b++) {
      const perCell = new Map<string, TenantEvents>();
      addBucket(perCell, next() as Record<string, string>);
      for (const [t, ev] of perCell) events.set(`${c}|${t}`, mergeEvents(events.get(`${c}|${t}`), ev));
    }
  }
  return reads;
}

/** One tenant's row from its 7 replies and its cell's reads. */
function tenantRow(e: TenantEntry, next: () => unknown, reads: CellReads, perMin: (n: number) => number, now: number): TenantUsage {
  const p = e.policy;
  const burstStartRaw = next() as string | null;
  const held = Number(next());
  const heldC = Number(next());
  const waiting = Number(next()) + Number(next());
  const queued = { A: Number(next()), B: Number(next()), C: Number(next()), total: 0 };
  queued.total = queued.A + queued.B + queued.C;
  const run = reads.running.get(`${p.cell}|${e.tenant}`) ?? { A: 0, B: 0, C: 0 };
  const ev = reads.events.get(`${p.cell}|${e.tenant}`) ?? emptyEvents();
  const burstStart = burstStartRaw === null ? null : Number(burstStartRaw);
  return {
    tenant: e.tenant,
    tier: p.tier,
    cell: p.cell,
    weight: p.weight,
    paused: p.paused,
    running: { ...run, total: run.A + run.B + run.C },
    mca: p.mca,
    burstMca: p.burst.mca,
    burst: burstState(
      {
        mca: p.mca,
        burstMca: p.burst.mca,
        burstMs: p.burst.seconds * 1000,
        cooldownMs: p.burst.cooldownSeconds * 1000,
        burstStart: Number.isFinite(burstStart) ? burstStart : null,
      },
      now,
    ),
    mcaUrgent: p.mcaUrgent,
    tools: {
      inFlight: held,
      inFlightC: heldC,
      mctc: p.mctc,
      mctcBatch: p.mctcBatch,
      waiting,
      avgWaitMs: ev.acquired > 0 ? Math.round(ev.gateWaitMs / ev.acquired) : null,
      acquiredPerMin: perMin(ev.acquired),
    },
    throttledPerMin: perMin(ev.throttled),
    queued,
    parked: 0,
    latency: summarizeLatency(ev.latency),
    atCap: atCap({ runningA: run.A, runningBC: run.B + run.C, mca: p.mca, mcaUrgent: p.mcaUrgent, toolsInFlight: held, mctc: p.mctc }),
    fairShare: { ratio: null, backloggedTicks: 0 },
    held: null,
    waitingBy: {},
  };
}

function mergeEvents(a: TenantEvents | undefined, b: TenantEvents): TenantEvents {
  if (!a) return b;
  return {
    latency: a.latency.map((x, k) => x + (b.latency[k] ?? 0)),
    throttled: a.throttled + b.throttled,
    acquired: a.acquired + b.acquired,
    gateWaitMs: a.gateWaitMs + b.gateWaitMs,
  };
}
