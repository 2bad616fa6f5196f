/**
 * The Redis reads behind a "why does it wait" explanation (explain.ts), from the keys the dispatch
 * script decides on (dispatch-18.lua), each round one pipeline in the cell's hash slot:
 *   1. tp:<t> (caps), run:<t> (slots held), ingress wait lengths and heads, wfdeps;
 *   2. per allowed pool: live workers and their concurrency, used {total,A,C},
 *      the ready sets (size, this tenant's rank); per queued head: its job's type
 *      and deadline; per dependency in question: health and operator mark;
 *   3. only when needed: the slot leases (who holds the Class C share) and the
 *      tenant's parked workflows (the tenant explain, not a workflow read).
 */
import type { Redis } from "ioredis";
import { CLASSES, type CellKeys, type WorkflowClass } from "../../queues/keys.ts";
import { ingressQueue } from "../../queues/names.ts";
import {
  capsFromHash,
  poolBatchCapacity,
  poolCapacity,
  type DownDependency,
  type Holder,
  type PoolView,
  type TenantState,
} from "../dispatch/policy/explain.ts";
import type { ExplainSettings } from "./explainSettings.ts";

type Reply = [Error | null, unknown][];
const replies = async (p: ReturnType<Redis["pipeline"]>): Promise<unknown[]> =>
  ((await p.exec()) as Reply).map(([err, v]) => {
    if (err) throw err;
    return v;
  });

/** The script's downDependency: an operator mark wins; else the probe's state. Null when not down. */
function downOf(dep: string, override: Record<string, string>, measured: Record<string, string>): DownDependency | null {
  const down = override.state === "down" || (override.state !== "healthy" && measured.state === "down");
  if (!down) return null;
  const s = override.state === "down" ? override : measured;
  return { dependency: dep, since: s.since ? Number(s.since) : null, source: s.source ?? null };
}

const stateOf = (override: Record<string, string>, measured: Record<string, string>) => override.state ?? measured.state ?? "missing";

export interface Read {
  state: TenantState;
  heads: Partial<Record<WorkflowClass, { id: string; deadlineAt: number | null; down: DownDependency | null }>>;
  health: Map<string, { down: DownDependency | null; state: string }>;
  wfdeps: Record<string, string>;
}

/** Rounds 1 and 2: the tenant's dispatch state, its queue heads and the health of `deps` and the heads' dependencies. */
export async function readState(
  redis: Redis,
  cell: CellKeys,
  tenant: string,
  now: number,
  s: ExplainSettings,
  deps: string[] = [],
): Promise<Read> {
  const p1 = redis.pipeline().hgetall(cell.tenantCaps(tenant)).hmget(cell.running(tenant), "A", "BC").hgetall(cell.workflowDeps);
  for (const c of CLASSES)
    p1.llen(cell.queueKey(ingressQueue(tenant, c), "wait")).lindex(cell.queueKey(ingressQueue(tenant, c), "wait"), -1);
  const r1 = await replies(p1);
  const capsHash = r1[0] as Record<string, string>;
  const caps = capsFromHash(capsHash);
  const run = r1[1] as (string | null)[];
  const wfdeps = r1[2] as Record<string, string>;
  const queued = {} as Record<WorkflowClass, number>;
  const headIds: Partial<Record<WorkflowClass, string>> = {};
  CLASSES.forEach((c, k) => {
    queued[c] = Number(r1[3 + 2 * k]);
    const id = r1[4 + 2 * k] as string | null;
    if (id) headIds[c] = id;
  });

  const pools = caps?.pools ?? [];
  const p2 = redis.pipeline();
  for (const pool of pools) {
    const member = capsHash[`m:${pool}`] ?? `${"0".repeat(14)}:${tenant}`;
    p2.zrangebyscore(cell.poolWorkers(pool), `(${now}`, "+inf")
      .hgetall(cell.poolConcurrency(pool))
      .hgetall(cell.poolBatch(pool))
      .hmget(cell.poolUsed(pool), "total", "A", "C");
    for (const c of CLASSES) p2.zcard(cell.ready(pool, c)).zrank(cell.ready(pool, c), member);
  }
  const heads = Object.entries(headIds) as [WorkflowClass, string][];
  for (const [c, id] of heads) p2.hget(cell.jobKey(ingressQueue(tenant, c), id), "name").hget(cell.workflow(id), "deadlineAt");
  const r2 = await replies(p2);
  let i = 0;
  const views: PoolView[] = pools.map((pool) => {
    const live = r2[i++] as string[];
    const conc = r2[i++] as Record<string, string>;
    const batch = r2[i++] as Record<string, string>;
    const used = r2[i++] as (string | null)[];
    const ready: PoolView["ready"] = {};
    for (const c of CLASSES) {
      const size = Number(r2[i++]);
      const rank = r2[i++] as number | null;
      ready[c] = { size, ahead: rank };
    }
    const capacity = poolCapacity(
      live.map((w) => Number(conc[w] ?? 0)),
      s.capacityCap,
    );
    const batchCapacity = poolBatchCapacity(live, conc, batch);
    const [usedAll, usedA, usedC] = used.map((u) => Number(u ?? 0)) as [number, number, number];
    return { pool, capacity, used: usedAll, usedA, usedC, batchCapacity, ready };
  });
  const headTypes = new Map<WorkflowClass, { id: string; type: string; deadlineAt: number | null }>();
  for (const [c, id] of heads) {
    const type = (r2[i++] as string | null) ?? "";
    const d = r2[i++] as string | null;
    headTypes.set(c, { id, type, deadlineAt: d ? Number(d) : null });
  }

  const wanted = new Set(deps);
  for (const h of headTypes.values()) for (const dep of depsOf(wfdeps, h.type)) wanted.add(dep);
  const health = await readHealth(redis, cell, [...wanted]);
  const headsOut: Read["heads"] = {};
  for (const [c, h] of headTypes) headsOut[c] = { id: h.id, deadlineAt: h.deadlineAt, down: firstDown(wfdeps, h.type, health) };
  const state: TenantState = { now, caps, running: { A: Number(run[0] ?? 0), BC: Number(run[1] ?? 0) }, queued, pools: views, shares: s };
  return { state, heads: headsOut, health, wfdeps };
}

const depsOf = (wfdeps: Record<string, string>, type: string) => (wfdeps[type] ?? "").split(",").filter(Boolean);

/** The first declared dependency that is down, in declared order (as the script checks them). */
export function firstDown(wfdeps: Record<string, string>, type: string, health: Read["health"]): DownDependency | null {
  for (const dep of depsOf(wfdeps, type)) {
    const h = health.get(dep);
    if (h?.down) return h.down;
  }
  return null;
}

export async function readHealth(redis: Redis, cell: CellKeys, deps: string[]): Promise<Read["health"]> {
  const out: Read["health"] = new Map();
  if (!deps.length) return out;
  const p = redis.pipeline();
  for (const dep of deps) p.hgetall(cell.healthOverride(dep)).hgetall(cell.health(dep));
  const r = await replies(p);
  deps.forEach((dep, k) => {
    const o = r[2 * k] as Record<string, string>;
    const m = r[2 * k + 1] as Record<string, string>;
    out.set(dep, { down: downOf(dep, o, m), state: stateOf(o, m) });
  });
  return out;
}

/** The slot leases: the tenant's running per class, and per pool the tenants holding Class C, most first (top 3). */
export async function readSlots(
  redis: Redis,
  cell: CellKeys,
  tenant: string,
): Promise<{ running: Record<WorkflowClass, number>; holdersC: Map<string, Holder[]> }> {
  const leases = await redis.hgetall(cell.slots);
  const running = { A: 0, B: 0, C: 0 };
  const perPool = new Map<string, Map<string, number>>();
  for (const lease of Object.values(leases)) {
    const [t, cls, pool] = lease.split("|");
    if (!t || !pool || (cls !== "A" && cls !== "B" && cls !== "C")) continue;
    if (t === tenant) running[cls]++;
    if (cls !== "C") continue;
    const m = perPool.get(pool) ?? new Map<string, number>();
    m.set(t, (m.get(t) ?? 0) + 1);
    perPool.set(pool, m);
  }
  const holdersC = new Map<string, Holder[]>();
  for (const [pool, m] of perPool)
    holdersC.set(
      pool,
      [...m]
        .map(([t, slots]) => ({ tenant: t, slots }))
        .sort((a, b) => b.slots - a.slots || (a.tenant < b.tenant ? -1 : 1))
        .slice(0, 3),
    );
  return { running, holdersC };
}

export const withHolders = (state: TenantState, holdersC: Map<string, Holder[]>): TenantState => ({
  ...state,
  pools: state.pools.map((p) => ({ ...p, holdersC: holdersC.get(p.pool) ?? [] })),
});

/** The tenant's parked workflows in the cell, per dependency: how many, and how many the dispatcher held back. */
export async function readParked(redis: Redis, cell: CellKeys, tenant: string): Promise<Map<string, { parked: number; heldBack: number }>> {
  const deps = await redis.smembers(cell.deps);
  const p = redis.pipeline();
  for (const dep of deps) p.zrange(cell.parked(dep), 0, -1);
  const ids = (await replies(p)).flatMap((v, k) => (v as string[]).map((id) => ({ dep: deps[k]!, id })));
  const out = new Map<string, { parked: number; heldBack: number }>();
  if (!ids.length) return out;
  const q = redis.pipeline();
  for (const { id } of ids) q.hmget(cell.workflow(id), "tenant", "parkReason");
  (await replies(q)).forEach((v, k) => {
    const [t, reason] = v as (string | null)[];
    if (t !== tenant) return;
    const n = out.get(ids[k]!.dep) ?? { parked: 0, heldBack: 0 };
    n.parked++;
    if ((reason ?? "").startsWith("held back at dispatch")) n.heldBack++;
    out.set(ids[k]!.dep, n);
  });
  return out;
}
