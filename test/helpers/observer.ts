import type { Redis } from "ioredis";

export interface ObservedEvent {
  seq: number;
  /** "killed": the test killed process `pid` here; its open runs ended with it. */
  kind: "start" | "end" | "killed";
  id: string;
  tenant: string;
  cls: "A" | "B" | "C";
  pool: string;
  pid: number;
  at: number;
  reason?: string;
}

export interface Observation {
  events: ObservedEvent[];
  maxTotal: number;
  maxByPool: Record<string, number>;
  maxC: number;
  maxA: Record<string, number>;
  maxBC: Record<string, number>;
  /** Workflows seen starting while a run of theirs was still going. */
  doubleRuns: string[];
  starts: Record<string, number>;
  /** Busy run-time per tenant (ms) within [from, to]. */
  busyMs(from: number, to: number): Record<string, number>;
}

/** Marks in the observer's log that the test killed process `pid` now. */
export function killedEvent(pid: number): (string | number)[] {
  return ["killed", "-", "-", "-", "-", pid, Date.now()];
}

export async function readObservation(redis: Redis, obs: string): Promise<Observation> {
  const raw = await redis.lrange(`${obs}:log`, 0, -1);
  const events = raw
    .map((l) => {
      const [seq, kind, id, tenant, cls, pool, pid, at, reason] = l.split("|");
      return { seq: Number(seq), kind, id, tenant, cls, pool, pid: Number(pid), at: Number(at), reason } as ObservedEvent;
    })
    .sort((a, b) => a.seq - b.seq);
  const o: Observation = {
    events,
    maxTotal: 0,
    maxByPool: {},
    maxC: 0,
    maxA: {},
    maxBC: {},
    doubleRuns: [],
    starts: {},
    busyMs: () => ({}),
  };
  const running = new Map<string, ObservedEvent>();
  const count = { total: 0, C: 0, pool: {} as Record<string, number>, A: {} as Record<string, number>, BC: {} as Record<string, number> };
  const bump = (m: Record<string, number>, k: string, d: number) => (m[k] = (m[k] ?? 0) + d);
  const closeRun = (e: ObservedEvent) => {
    running.delete(e.id);
    count.total--;
    count.pool[e.pool]!--;
    if (e.cls === "C") count.C--;
    (e.cls === "A" ? count.A : count.BC)[e.tenant]!--;
  };
  for (const e of events) {
    if (e.kind === "killed") {
      for (const r of [...running.values()]) if (r.pid === e.pid) closeRun(r);
      continue;
    }
    if (e.kind === "end" && !running.has(e.id)) continue;
    const d = e.kind === "start" ? 1 : -1;
    if (e.kind === "start") {
      if (running.has(e.id)) o.doubleRuns.push(e.id);
      running.set(e.id, e);
      bump(o.starts, e.tenant, 1);
    } else running.delete(e.id);
    count.total += d;
    bump(count.pool, e.pool, d);
    if (e.cls === "C") count.C += d;
    bump(e.cls === "A" ? count.A : count.BC, e.tenant, d);
    o.maxTotal = Math.max(o.maxTotal, count.total);
    o.maxC = Math.max(o.maxC, count.C);
    o.maxByPool[e.pool] = Math.max(o.maxByPool[e.pool] ?? 0, count.pool[e.pool]!);
    const m = e.cls === "A" ? o.maxA : o.maxBC;
    m[e.tenant] = Math.max(m[e.tenant] ?? 0, (e.cls === "A" ? count.A : count.BC)[e.tenant]!);
  }
  o.busyMs = (from, to) => {
    const open = new Map<string, number>();
    const busy: Record<string, number> = {};
    for (const e of events) {
      if (e.kind === "start") open.set(e.id, e.at);
      else {
        const s = open.get(e.id);
        open.delete(e.id);
        if (s === undefined) continue;
        const ms = Math.max(0, Math.min(e.at, to) - Math.max(s, from));
        busy[e.tenant] = (busy[e.tenant] ?? 0) + ms;
      }
    }
    return busy;
  };
  return o;
}
