/**
 * The drill's checks, pure: from the workflows' own start/end lines and the
 * faults the drill injected, what really ran where and when — never
 * Fairlane's counters.
 */
export interface RunLine {
  kind: "start" | "end";
  id: string;
  tenant: string;
  cls: "A" | "B" | "C";
  pool: string;
  pid: number;
  at: number;
  how?: string;
}

export interface FaultRecord {
  kind: string;
  pid?: number;
  at: number;
  /** SIGSTOP: when SIGCONT came. */
  until?: number;
}

export interface Run {
  id: string;
  tenant: string;
  cls: "A" | "B" | "C";
  pool: string;
  pid: number;
  start: number;
  /** The end line, or the kill of its process; undefined: never ended. */
  end?: number;
  how: string;
}

export interface Caps {
  /** Per tenant: most B + C at once (burst.mca), most A at once (mcaUrgent). */
  tenants: Record<string, { bc: number; a: number }>;
  /** Per pool: slots, and most Class C at once. */
  pools: Record<string, { slots: number; maxC: number }>;
}

export interface Overlap {
  id: string;
  ms: number;
  /** One of the two runs was on a process frozen by SIGSTOP: how long after SIGCONT it stopped. */
  afterResumeMs?: number;
}

/**
 * The drill's one clock: Linux's CLOCK_MONOTONIC in ms (sub-ms precision), the same in every process
 * of the machine and never stepped. Run lines, fault times and the checks' "now" all read it; wall
 * time (`Date.now()`, `performance.timeOrigin`) can jump between processes started at different times.
 */
export const drillNow = (): number => Number(process.hrtime.bigint()) / 1e6;

/** Pairs start and end lines per id and process; a run on a killed process ends at the kill. */
export function runsFrom(lines: RunLine[], faults: FaultRecord[]): Run[] {
  const kills = faults.filter((f) => f.kind.startsWith("kill") && f.pid !== undefined);
  const open = new Map<string, Run>();
  const runs: Run[] = [];
  for (const l of [...lines].sort((a, b) => a.at - b.at)) {
    const key = `${l.id}|${l.pid}`;
    if (l.kind === "start") {
      const r: Run = { id: l.id, tenant: l.tenant, cls: l.cls, pool: l.pool, pid: l.pid, start: l.at, how: "open" };
      open.set(key, r);
      runs.push(r);
    } else {
      const r = open.get(key);
      if (!r) continue;
      r.end = l.at;
      r.how = l.how ?? "done";
      open.delete(key);
    }
  }
  for (const r of open.values()) {
    const k = kills.find((f) => f.pid === r.pid && f.at >= r.start);
    if (k) {
      r.end = k.at;
      r.how = "killed";
    }
  }
  return runs;
}

/**
 * The run's intervals of real execution: [start, end) minus the windows its process was frozen. A run
 * its process stopped on resuming (ended "stalled": aborted by the stall watchdog in the first timer
 * pass, before any of its own timers) executes nothing after the freeze; only its end line comes later.
 */
export function executing(r: Run, faults: FaultRecord[], now: number): [number, number][] {
  let parts: [number, number][] = [[r.start, r.end ?? now]];
  for (const f of faults) {
    if (f.kind !== "sigstop-exec" || f.pid !== r.pid || f.until === undefined) continue;
    if (r.how === "stalled" && r.start < f.at && (r.end ?? now) >= f.until) {
      parts = parts.map(([a, b]): [number, number] => [a, Math.min(b, f.at)]).filter(([a, b]) => b > a);
      continue;
    }
    parts = parts.flatMap(([a, b]): [number, number][] => {
      if (f.until! <= a || f.at >= b) return [[a, b]];
      return [
        [a, Math.max(a, f.at)],
        [Math.min(b, f.until!), b],
      ].filter(([x, y]) => y! > x!) as [number, number][];
    });
  }
  return parts;
}

/** Two runs of one workflow executing at the same time (after removing frozen windows). */
export function overlaps(runs: Run[], faults: FaultRecord[], now: number): Overlap[] {
  const byId = new Map<string, Run[]>();
  for (const r of runs) byId.set(r.id, [...(byId.get(r.id) ?? []), r]);
  const out: Overlap[] = [];
  for (const [id, rs] of byId) {
    for (let i = 0; i < rs.length; i++)
      for (let j = i + 1; j < rs.length; j++) {
        let ms = 0;
        for (const [a0, a1] of executing(rs[i]!, faults, now))
          for (const [b0, b1] of executing(rs[j]!, faults, now)) ms += Math.max(0, Math.min(a1, b1) - Math.max(a0, b0));
        if (ms <= 0) continue;
        const stall = faults.find(
          (f) => f.kind === "sigstop-exec" && (f.pid === rs[i]!.pid || f.pid === rs[j]!.pid) && f.until !== undefined,
        );
        const stalled = stall ? rs.find((r) => r.pid === stall.pid) : undefined;
        out.push({ id, ms, afterResumeMs: stall && stalled?.end !== undefined ? stalled.end - stall.until! : undefined });
      }
  }
  return out;
}

export interface Overshoot {
  what: string;
  limit: number;
  seen: number;
  at: number;
}

/** Sweeps every executing interval: no tenant, class or pool over its cap at any moment. */
export function overshoots(runs: Run[], faults: FaultRecord[], caps: Caps, now: number): Overshoot[] {
  const edges: { at: number; d: number; r: Run }[] = [];
  for (const r of runs) for (const [a, b] of executing(r, faults, now)) edges.push({ at: a, d: 1, r }, { at: b, d: -1, r });
  // Ends before starts at the same instant: a slot handed over is not two at once.
  edges.sort((x, y) => x.at - y.at || x.d - y.d);
  const count = new Map<string, number>();
  const worst = new Map<string, Overshoot>();
  const bump = (key: string, d: number, limit: number | undefined, at: number) => {
    const n = (count.get(key) ?? 0) + d;
    count.set(key, n);
    if (limit !== undefined && n > limit && n > (worst.get(key)?.seen ?? 0)) worst.set(key, { what: key, limit, seen: n, at });
  };
  for (const e of edges) {
    const t = caps.tenants[e.r.tenant];
    const p = caps.pools[e.r.pool];
    bump(`tenant ${e.r.tenant} ${e.r.cls === "A" ? "A" : "B+C"}`, e.d, e.r.cls === "A" ? t?.a : t?.bc, e.at);
    bump(`pool ${e.r.pool}`, e.d, p?.slots, e.at);
    if (e.r.cls === "C") bump(`pool ${e.r.pool} class C`, e.d, p?.maxC, e.at);
  }
  return [...worst.values()];
}
