import type { Redis } from "ioredis";
import type { Keys, WorkflowClass } from "../../queues/keys.ts";
import { ingressQueue } from "../../queues/names.ts";
import type { TenantEntry } from "../tenancy/registry.ts";
import { poolShares, type ShareOptions } from "../scheduler/policy/shares.ts";
import { atCap, burstState, type AtCap, type BurstState } from "./capState.ts";
import { SlotPipeline } from "../lib/slotPipeline.ts";
import { capsFromHash, countByReason, explainTenantState, headlineReason, parkedReason, poolCapacity, type Holder, type PoolView, type ReasonCode } from "../scheduler/policy/explain.ts";
import { publishedSettings } from "../workflows/explain.ts";
import { summarizeLatency, type LatencySummary } from "./percentiles.ts";
import { addBucket, bucketsInWindow, emptyEvents, type TenantEvents } from "./usageBuckets.ts";

/**
 * One read of every tenant's live usage, from Redis (any number of api,
 * dispatcher and exec processes share nothing else), in three pipelined round
 * trips whatever the number of tenants:
 *   1. per cell: slot leases (running per tenant and class), pools, dependencies,
 *      the last minute's usage-event buckets; per tenant: burst start, permits
 *      held (A/B and C), gate waiters, ingress depth per class (7 commands);
 *   2. per pool: workers, concurrency, used; per dependency: health, operator
 *      mark, parked ids;
 *   3. the tenant of parked ids not seen before (cached: an id's tenant never changes);
 *   4. only for tenants with queued work: their caps as the dispatcher reads them
 *      (tp:<t>) and slots held (run:<t>), to say what holds that work (`held`,
 *      `waitingBy`: src/scheduler/policy/explain.ts, the dispatch rule's own
 *      functions, over the pools read in 2 and the Class C holders of 1).
 * Only ids, tenants and counts are read: never a payload.
 */
export interface TenantUsage {
  tenant: string;
  tier: string;
  cell: string;
  weight: number;
  paused: boolean;
  running: Record<WorkflowClass | "total", number>;
  mca: number;
  burstMca: number;
  burst: { state: BurstState; until: number | null };
  mcaUrgent: number;
  tools: { inFlight: number; inFlightC: number; mctc: number; mctcBatch: number; waiting: number; avgWaitMs: number | null; acquiredPerMin: number };
  throttledPerMin: number;
  queued: Record<WorkflowClass | "total", number>;
  parked: number;
  latency: LatencySummary;
  atCap: AtCap;
  /**
   * Slot-time received ÷ capped weighted fair share over the sampler's window,
   * only over the ticks it was backlogged in (fairShareRatios); null when it
   * was not backlogged (or its share was 0). Filled by the sampler, not here.
   */
  fairShare: { ratio: number | null; backloggedTicks: number };
  /**
   * What holds its queued work, from the dispatcher's state: the first class's
   * hold that is not just its turn (else `turn`); null with nothing queued.
   */
  held: { code: ReasonCode; message: string } | null;
  /** Queued workflows by the reason code holding their class (fairlane_waiting_workflows). */
  waitingBy: Partial<Record<ReasonCode, number>>;
}

export interface PoolUsage {
  cell: string;
  pool: string;
  workers: number;
  capacity: number;
  used: number;
  usedA: number;
  usedC: number;
  reserveA: number;
}

export interface DependencyUsage {
  cell: string;
  dependency: string;
  state: "healthy" | "degraded" | "down" | "missing";
  source: string | null;
  since: number | null;
  parked: number;
}

export interface UsageSnapshot {
  at: number;
  /** How long the read took (ms). */
  readMs: number;
  /** Window of the event rates and latency percentiles (ms). */
  windowMs: number;
  tenants: TenantUsage[];
  pools: PoolUsage[];
  dependencies: DependencyUsage[];
}

export const RATE_WINDOW_MS = 60_000;
const CLASSES: WorkflowClass[] = ["A", "B", "C"];

export class UsageReader {
  private readonly parkedTenant = new Map<string, string>();

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly shares: ShareOptions,
    /** FAIRLANE_POOL_CAPACITY_CAP as the dispatcher caps capacity (0 = none). */
    private readonly capacityCap = 0,
  ) {}

  async read(entries: TenantEntry[], now: number, cells: string[] = ["default"]): Promise<UsageSnapshot> {
    const t0 = performance.now();
    const allCells = [...new Set([...cells, ...entries.map((e) => e.policy.cell)])].sort();
    const buckets = bucketsInWindow(now, RATE_WINDOW_MS);
    const windowMs = Math.max(1, now - buckets[0]!);

    // 1. Per cell and per tenant.
    // Cells are different hash slots: SlotPipeline sends one pipeline per cell (a cluster refuses a mixed one).
    const p1 = new SlotPipeline(this.redis);
    for (const c of allCells) {
      const ck = this.keys.cell(c);
      p1.add(ck.slots, (p) => p.hgetall(ck.slots))
        .add(ck.pools, (p) => p.smembers(ck.pools))
        .add(ck.deps, (p) => p.smembers(ck.deps));
      for (const b of buckets) p1.add(ck.usageEvents(b), (p) => p.hgetall(ck.usageEvents(b)));
    }
    for (const e of entries) {
      const ck = this.keys.cell(e.policy.cell);
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
    const r1 = await p1.exec();
    let i = 0;
    const next = () => {
      const [err, v] = r1[i++] ?? [new Error("missing reply"), null];
      if (err) throw err;
      return v;
    };
    const running = new Map<string, Record<WorkflowClass, number>>();
    const holdersC = new Map<string, Map<string, number>>(); // cell|pool -> tenant -> Class C slots
    const events = new Map<string, TenantEvents>();
    const poolsOf = new Map<string, string[]>();
    const depsOf = new Map<string, string[]>();
    for (const c of allCells) {
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
      poolsOf.set(c, [...new Set(["default", ...(next() as string[])])].sort());
      depsOf.set(c, (next() as string[]).filter((d) => /^[^\s{}]{1,200}$/.test(d) && !d.endsWith(":override")).sort());
      for (let b = 0; b < buckets.length; b++) {
        const perCell = new Map<string, TenantEvents>();
        addBucket(perCell, next() as Record<string, string>);
        for (const [t, ev] of perCell) events.set(`${c}|${t}`, mergeEvents(events.get(`${c}|${t}`), ev));
      }
    }
    const perMin = (n: number) => Math.round((n * 60_000 * 10) / windowMs) / 10;
    const rows: TenantUsage[] = entries.map((e) => {
      const p = e.policy;
      const burstStartRaw = next() as string | null;
      const held = Number(next());
      const heldC = Number(next());
      const waiting = Number(next()) + Number(next());
      const queued = { A: Number(next()), B: Number(next()), C: Number(next()), total: 0 };
      queued.total = queued.A + queued.B + queued.C;
      const run = running.get(`${p.cell}|${e.tenant}`) ?? { A: 0, B: 0, C: 0 };
      const ev = events.get(`${p.cell}|${e.tenant}`) ?? emptyEvents();
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
          { mca: p.mca, burstMca: p.burst.mca, burstMs: p.burst.seconds * 1000, cooldownMs: p.burst.cooldownSeconds * 1000, burstStart: Number.isFinite(burstStart) ? burstStart : null },
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
    });

    // 2. Pools and dependencies.
    const p2 = new SlotPipeline(this.redis);
    for (const c of allCells) {
      const ck = this.keys.cell(c);
      p2.add(ck.dispatchSettings, (p) => p.hgetall(ck.dispatchSettings));
      for (const pool of poolsOf.get(c)!) {
        const [w, conc, used] = [ck.poolWorkers(pool), ck.poolConcurrency(pool), ck.poolUsed(pool)];
        p2.add(w, (p) => p.zrangebyscore(w, `(${now}`, "+inf"))
          .add(conc, (p) => p.hgetall(conc))
          .add(used, (p) => p.hgetall(used));
      }
      for (const dep of depsOf.get(c)!) {
        const [o, h, parked] = [ck.healthOverride(dep), ck.health(dep), ck.parked(dep)];
        p2.add(o, (p) => p.hgetall(o))
          .add(h, (p) => p.hgetall(h))
          .add(parked, (p) => p.zrange(parked, 0, -1));
      }
    }
    const r2 = await p2.exec();
    i = 0;
    const next2 = () => {
      const [err, v] = r2[i++] ?? [new Error("missing reply"), null];
      if (err) throw err;
      return v;
    };
    const pools: PoolUsage[] = [];
    const dependencies: DependencyUsage[] = [];
    const parkedIds: { cell: string; id: string; dep: string }[] = [];
    // Per cell: the share options and cap its dispatcher published (this process's own until one has).
    const settings = new Map<string, { shares: ShareOptions; capacityCap: number }>();
    for (const c of allCells) {
      const published = publishedSettings(next2() as Record<string, string>);
      const { shares, capacityCap } = published ?? { shares: this.shares, capacityCap: this.capacityCap };
      settings.set(c, { shares, capacityCap });
      for (const pool of poolsOf.get(c)!) {
        const live = next2() as string[];
        const conc = next2() as Record<string, string>;
        const used = next2() as Record<string, string>;
        const capacity = poolCapacity(live.map((w) => Number(conc[w]) || 0), capacityCap);
        pools.push({
          cell: c,
          pool,
          workers: live.length,
          capacity,
          used: Number(used.total ?? 0),
          usedA: Number(used.A ?? 0),
          usedC: Number(used.C ?? 0),
          reserveA: poolShares(capacity, shares).reserveA,
        });
      }
      for (const dep of depsOf.get(c)!) {
        const override = next2() as Record<string, string>;
        const measured = next2() as Record<string, string>;
        const ids = next2() as string[];
        const s = override.state ? override : measured.state ? measured : null;
        const state = s && ["healthy", "degraded", "down"].includes(s.state!) ? (s.state as DependencyUsage["state"]) : "missing";
        dependencies.push({ cell: c, dependency: dep, state, source: s?.source ?? null, since: s?.since ? Number(s.since) : null, parked: ids.length });
        for (const id of ids) parkedIds.push({ cell: c, id, dep });
      }
    }

    // 3. Tenants of parked workflows (cached per id).
    const unknown = parkedIds.filter((p) => !this.parkedTenant.has(p.id));
    if (unknown.length) {
      const p3 = new SlotPipeline(this.redis);
      for (const u of unknown) {
        const wf = this.keys.cell(u.cell).workflow(u.id);
        p3.add(wf, (p) => p.hget(wf, "tenant"));
      }
      const r3 = await p3.exec();
      unknown.forEach((u, k) => {
        const t = r3[k]?.[1];
        if (typeof t === "string") this.parkedTenant.set(u.id, t);
      });
      if (this.parkedTenant.size > 200_000) this.parkedTenant.clear();
    }
    const byTenant = new Map(rows.map((r) => [`${r.cell}|${r.tenant}`, r]));
    const parkedBy = new Map<TenantUsage, Map<string, number>>(); // row -> dependency -> parked
    for (const p of parkedIds) {
      const t = this.parkedTenant.get(p.id);
      const row = t ? byTenant.get(`${p.cell}|${t}`) : undefined;
      if (!row) continue;
      row.parked++;
      const m = parkedBy.get(row) ?? new Map<string, number>();
      parkedBy.set(row, m.set(p.dep, (m.get(p.dep) ?? 0) + 1));
    }
    await this.explainHeld(rows, pools, holdersC, settings, now);
    // A tenant whose work is parked and nothing queued held: its parked work is what waits, and why.
    const depOf = new Map(dependencies.map((d) => [`${d.cell}|${d.dependency}`, d]));
    for (const [row, byDep] of parkedBy) {
      if (row.held) continue;
      const [dep, n] = [...byDep].sort((a, b) => b[1] - a[1])[0]!;
      const d = depOf.get(`${row.cell}|${dep}`);
      const r = parkedReason(dep, n, undefined, d?.since != null ? { dependency: dep, since: d.since, source: d.source } : null, d?.state ?? "missing");
      row.held = { code: r.code, message: r.message };
    }
    return { at: now, readMs: Math.round((performance.now() - t0) * 10) / 10, windowMs, tenants: rows, pools, dependencies };
  }

  /** 4. What holds each tenant's queued work: two reads per tenant with queued work, none for the others. */
  private async explainHeld(
    rows: TenantUsage[],
    pools: PoolUsage[],
    holdersC: Map<string, Map<string, number>>,
    settings: Map<string, { shares: ShareOptions }>,
    now: number,
  ): Promise<void> {
    const queuedRows = rows.filter((r) => r.queued.total > 0);
    if (!queuedRows.length) return;
    const p4 = new SlotPipeline(this.redis);
    for (const r of queuedRows) {
      const ck = this.keys.cell(r.cell);
      const [caps, run] = [ck.tenantCaps(r.tenant), ck.running(r.tenant)];
      p4.add(caps, (p) => p.hgetall(caps)).add(run, (p) => p.hmget(run, "A", "BC"));
    }
    const r4 = await p4.exec();
    const poolOf = new Map(pools.map((p) => [`${p.cell}|${p.pool}`, p]));
    queuedRows.forEach((row, k) => {
      const [e1, h] = r4[2 * k] ?? [new Error("missing reply"), null];
      const [e2, run] = r4[2 * k + 1] ?? [new Error("missing reply"), null];
      if (e1 || e2) return; // left unexplained this tick rather than explained wrong
      const caps = capsFromHash(h as Record<string, string>);
      const views: PoolView[] = (caps?.pools ?? []).map((pool) => {
        const p = poolOf.get(`${row.cell}|${pool}`);
        const state = p ? { capacity: p.capacity, used: p.used, usedA: p.usedA, usedC: p.usedC } : { capacity: 0, used: 0, usedA: 0, usedC: 0 };
        return { pool, ...state, holdersC: topHolders(holdersC.get(`${row.cell}|${pool}`)) };
      });
      const [a, bc] = run as (string | null)[];
      const queued = { A: row.queued.A, B: row.queued.B, C: row.queued.C };
      const shares = settings.get(row.cell)?.shares ?? this.shares;
      const { held } = explainTenantState({ now, caps, running: { A: Number(a ?? 0), BC: Number(bc ?? 0) }, queued, pools: views, shares });
      const top = headlineReason(held);
      row.held = top ? { code: top.code, message: top.message } : null;
      row.waitingBy = countByReason(queued, held);
    });
  }
}

/** Top 3 holders of a pool's Class C slots, most first. */
function topHolders(m: Map<string, number> | undefined): Holder[] {
  return [...(m ?? [])].map(([tenant, slots]) => ({ tenant, slots })).sort((a, b) => b.slots - a.slots || (a.tenant < b.tenant ? -1 : 1)).slice(0, 3);
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
