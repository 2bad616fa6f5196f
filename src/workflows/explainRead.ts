/**
 * The Redis reads behind a "why does it wait" explanation (explain.ts), from the keys the dispatch
 * script decides on (dispatch-18.lua), each round one pipeline in the cell's hash slot:
 *   1. tp:<t> (caps), run:<t> (slots held), ingress wait lengths and heads, wfdeps;
 *   2. per allowed pool: live workers and their concurrency, used {total,A,C},
 *      the ready sets (size, this tenant's rank; for a tenant of an org, its rank
 *      in the org's sets); per queued head: its job's type and deadline; for a
 *      tenant of an org, the org's caps and slots held (tp:@<org>, run:@<org>)
 *      beside its own;
 *   3. per dependency in question: health and operator mark; for a tenant of an
 *      org, the org's rank in each pool's ready sets (its member is in tp:@<org>);
 *   4. only when needed: the slot leases (who holds the Class C share, which of an
 *      org's tenants hold its slots) and the tenant's parked workflows (the tenant
 *      explain, not a workflow read).
 */
import type { Redis } from "ioredis";
import { CLASSES, type CellKeys, type WorkflowClass } from "../../queues/keys.ts";
import { ingressQueue } from "../../queues/names.ts";
import {
  capsFromHash,
  poolBatchCapacity,
  poolCapacity,
  orgCapsFromHash,
  type DownDependency,
  type Holder,
  type OrgState,
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

/** Round 1: the tenant's caps (`tp:<t>`, raw and parsed), slots held, workflow dependencies, queue lengths and heads. */
async function readTenant(redis: Redis, cell: CellKeys, tenant: string) {
  const p1 = redis.pipeline().hgetall(cell.tenantCaps(tenant)).hmget(cell.running(tenant), "A", "BC").hgetall(cell.workflowDeps);
  for (const c of CLASSES)
    p1.llen(cell.queueKey(ingressQueue(tenant, c), "wait")).lindex(cell.queueKey(ingressQueue(tenant, c), "wait"), -1);
  const r1 = await replies(p1);
  const capsHash = r1[0] as Record<string, string>;
  const run = r1[1] as (string | null)[];
  const queued = {} as Record<WorkflowClass, number>;
  const headIds: [WorkflowClass, string][] = [];
  CLASSES.forEach((c, k) => {
    queued[c] = Number(r1[3 + 2 * k]);
    const id = r1[4 + 2 * k] as string | null;
    if (id) headIds.push([c, id]);
  });
  const running = { A: Number(run[0] ?? 0), BC: Number(run[1] ?? 0) };
  return { capsHash, caps: capsFromHash(capsHash), running, wfdeps: r1[2] as Record<string, string>, queued, headIds };
}

/** A member's place in a ready set as the script writes it: `m:<pool>` of its caps hash, else the entry member. */
const memberOf = (capsHash: Record<string, string>, pool: string, name: string) => capsHash[`m:${pool}`] ?? `${"0".repeat(14)}:${name}`;

/**
 * Round 2: per allowed pool, its workers, use and ready sets (for a tenant of an org, the pool's set
 * sizes and its rank in the org's own sets); per queued head, its type and deadline; the org's
 * `tp:@<org>` and `run:@<org>` beside the tenant's pools.
 */
async function readPools(
  redis: Redis,
  cell: CellKeys,
  tenant: string,
  t: Awaited<ReturnType<typeof readTenant>>,
  now: number,
  capacityCap: number,
) {
  const pools = t.caps?.pools ?? [];
  const org = t.caps?.org;
  const p2 = redis.pipeline();
  if (org) p2.hgetall(cell.tenantCaps(`@${org}`)).hmget(cell.running(`@${org}`), "A", "BC");
  for (const pool of pools) {
    const member = memberOf(t.capsHash, pool, tenant);
    p2.zrangebyscore(cell.poolWorkers(pool), `(${now}`, "+inf")
      .hgetall(cell.poolConcurrency(pool))
      .hgetall(cell.poolBatch(pool))
      .hmget(cell.poolUsed(pool), "total", "A", "C")
      .hget(cell.dispatchSettings, `prefetch:${pool}`);
    for (const c of CLASSES) {
      p2.zcard(cell.ready(pool, c));
      if (org) p2.zcard(cell.orgReady(pool, c, org)).zrank(cell.orgReady(pool, c, org), member);
      else p2.zrank(cell.ready(pool, c), member);
    }
  }
  for (const [c, id] of t.headIds) p2.hget(cell.jobKey(ingressQueue(tenant, c), id), "name").hget(cell.workflow(id), "deadlineAt");
  const r2 = await replies(p2);
  let i = 0;
  const orgHash = org ? (r2[i++] as Record<string, string>) : {};
  const orgRun = org ? (r2[i++] as (string | null)[]) : [];
  const views: PoolView[] = pools.map((pool) => {
    const live = r2[i++] as string[];
    const conc = r2[i++] as Record<string, string>;
    const batch = r2[i++] as Record<string, string>;
    const used = r2[i++] as (string | null)[];
    const prefetch = Number(r2[i++] ?? 0);
    const ready: PoolView["ready"] = {};
    for (const c of CLASSES) {
      const size = Number(r2[i++]);
      // A tenant of an org is in its org's set; the org's rank in the pool's set is read in round 3.
      if (org) ready[c] = { size, ahead: null, inOrg: { size: Number(r2[i++]), ahead: r2[i++] as number | null } };
      else ready[c] = { size, ahead: r2[i++] as number | null };
    }
    const capacity = poolCapacity(
      live.map((w) => Number(conc[w] ?? 0)),
      capacityCap,
    );
    const [usedAll, usedA, usedC] = used.map((u) => Number(u ?? 0)) as [number, number, number];
    return { pool, capacity, used: usedAll, usedA, usedC, prefetch, batchCapacity: poolBatchCapacity(live, conc, batch), ready };
  });
  const heads = t.headIds.map(([c, id]) => {
    const type = (r2[i++] as string | null) ?? "";
    const d = r2[i++] as string | null;
    return { c, id, type, deadlineAt: d ? Number(d) : null };
  });
  const orgState: OrgState | undefined = org
    ? { org, caps: orgCapsFromHash(orgHash), running: { A: Number(orgRun[0] ?? 0), BC: Number(orgRun[1] ?? 0) } }
    : undefined;
  return { views, heads, org: orgState, orgHash };
}

/**
 * Rounds 1 to 3: the tenant's dispatch state, its queue heads and the health of `deps` and the heads'
 * dependencies; round 3 (health, and a tenant of an org's org rank in each pool's ready sets) only when
 * there is one to read.
 */
export async function readState(
  redis: Redis,
  cell: CellKeys,
  tenant: string,
  now: number,
  s: ExplainSettings,
  deps: string[] = [],
): Promise<Read> {
  const t = await readTenant(redis, cell, tenant);
  const r = await readPools(redis, cell, tenant, t, now, s.capacityCap);
  const wanted = new Set(deps);
  for (const h of r.heads) for (const dep of depsOf(t.wfdeps, h.type)) wanted.add(dep);
  const p3 = redis.pipeline();
  const orgRanks = r.org ? r.views.flatMap((v) => CLASSES.map((c) => ({ v, c }))) : [];
  for (const { v, c } of orgRanks) p3.zrank(cell.ready(v.pool, c), memberOf(r.orgHash, v.pool, `@${r.org!.org}`));
  addHealth(p3, cell, [...wanted]);
  const r3 = orgRanks.length || wanted.size ? await replies(p3) : [];
  orgRanks.forEach(({ v, c }, k) => {
    const ready = v.ready![c]!;
    v.ready![c] = { ...ready, ahead: r3[k] as number | null };
  });
  const health = parseHealth([...wanted], r3.slice(orgRanks.length));
  const headsOut: Read["heads"] = {};
  for (const h of r.heads) headsOut[h.c] = { id: h.id, deadlineAt: h.deadlineAt, down: firstDown(t.wfdeps, h.type, health) };
  const state: TenantState = {
    now,
    caps: t.caps,
    running: t.running,
    queued: t.queued,
    ...(r.org ? { org: r.org } : {}),
    pools: r.views,
    shares: s,
  };
  return { state, heads: headsOut, health, wfdeps: t.wfdeps };
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

/** Queues the reads of each dependency's operator mark and measured health on `p`. */
function addHealth(p: ReturnType<Redis["pipeline"]>, cell: CellKeys, deps: string[]): void {
  for (const dep of deps) p.hgetall(cell.healthOverride(dep)).hgetall(cell.health(dep));
}

function parseHealth(deps: string[], r: unknown[]): Read["health"] {
  const out: Read["health"] = new Map();
  deps.forEach((dep, k) => {
    const o = r[2 * k] as Record<string, string>;
    const m = r[2 * k + 1] as Record<string, string>;
    out.set(dep, { down: downOf(dep, o, m), state: stateOf(o, m) });
  });
  return out;
}

export async function readHealth(redis: Redis, cell: CellKeys, deps: string[]): Promise<Read["health"]> {
  if (!deps.length) return new Map();
  const p = redis.pipeline();
  addHealth(p, cell, deps);
  return parseHealth(deps, await replies(p));
}

/** Top 3 of a count per tenant, most first. */
const top = (m: Map<string, number>): Holder[] =>
  [...m]
    .map(([tenant, slots]) => ({ tenant, slots }))
    .sort((a, b) => b.slots - a.slots || (a.tenant < b.tenant ? -1 : 1))
    .slice(0, 3);

const bump = <K>(m: Map<K, Map<string, number>>, k: K, t: string) => {
  const n = m.get(k) ?? new Map<string, number>();
  n.set(t, (n.get(t) ?? 0) + 1);
  m.set(k, n);
};

export interface Slots {
  /** The tenant's slots held per class. */
  running: Record<WorkflowClass, number>;
  /** Per pool, the tenants holding Class C, most first (top 3). */
  holdersC: Map<string, Holder[]>;
  /** Per org, its tenants holding its Class A and its Class B/C slots, most first (top 3 each). */
  holdersOrg: Map<string, { A: Holder[]; BC: Holder[] }>;
}

/** The slot leases ("tenant|class|pool|at|charge[|org|org charge]"): who holds what. */
export async function readSlots(redis: Redis, cell: CellKeys, tenant: string): Promise<Slots> {
  const leases = await redis.hgetall(cell.slots);
  const running = { A: 0, B: 0, C: 0 };
  const perPool = new Map<string, Map<string, number>>();
  const perOrg = new Map<string, Map<string, number>>();
  for (const lease of Object.values(leases)) {
    const [t, cls, pool, , , org] = lease.split("|");
    if (!t || !pool || (cls !== "A" && cls !== "B" && cls !== "C")) continue;
    if (t === tenant) running[cls]++;
    if (org) bump(perOrg, `${org}|${cls === "A" ? "A" : "BC"}`, t);
    if (cls === "C") bump(perPool, pool, t);
  }
  const holdersC = new Map([...perPool].map(([pool, m]) => [pool, top(m)]));
  const holdersOrg = new Map<string, { A: Holder[]; BC: Holder[] }>();
  for (const [k, m] of perOrg) {
    const [org, group] = k.split("|") as [string, "A" | "BC"];
    const h = holdersOrg.get(org) ?? { A: [], BC: [] };
    h[group] = top(m);
    holdersOrg.set(org, h);
  }
  return { running, holdersC, holdersOrg };
}

/** The state with who holds what (the admin's to see): each pool's Class C holders, its org's holders. */
export const withHolders = (state: TenantState, slots: Pick<Slots, "holdersC" | "holdersOrg">): TenantState => ({
  ...state,
  ...(state.org ? { org: { ...state.org, holders: slots.holdersOrg.get(state.org.org) ?? { A: [], BC: [] } } } : {}),
  pools: state.pools.map((p) => ({ ...p, holdersC: slots.holdersC.get(p.pool) ?? [] })),
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
