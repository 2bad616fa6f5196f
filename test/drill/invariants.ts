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
}

/**
 * How long a run on a frozen process may go on after SIGCONT and still count as stopped on resuming.
 * The stall watchdog stops every run in the first timer pass after the freeze, but a callback that fell
 * due before its tick (a sleep that ended, a reply that arrived) runs first: a few lines of the handler,
 * whose result is refused (the lock is gone) and whose next tool call is aborted before any reply. 1 s
 * bounds that pass on a busy 2-core machine; the drill reports the longest run-on it saw.
 */
export const RESUME_GRACE_MS = 1_000;

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
 * The SIGSTOP a run was frozen in and stopped within RESUME_GRACE_MS of its SIGCONT, if any. An end line
 * written in the freeze window came after SIGCONT: the drill reads its clock only once the signal is sent.
 */
function stoppedOnResuming(r: Run, faults: FaultRecord[]): FaultRecord | undefined {
  return faults.find(
    (f) =>
      f.kind === "sigstop-exec" &&
      f.pid === r.pid &&
      f.until !== undefined &&
      r.start < f.at &&
      r.end !== undefined &&
      r.end > f.at &&
      r.end - f.until <= RESUME_GRACE_MS,
  );
}

/** Runs on a frozen process that stopped on resuming: how long each went on after SIGCONT (ms). */
export function runOns(runs: Run[], faults: FaultRecord[]): number[] {
  return runs.flatMap((r) => {
    const f = stoppedOnResuming(r, faults);
    return f ? [Math.max(0, r.end! - f.until!)] : [];
  });
}

/**
 * The run's intervals of real execution: [start, end) minus the windows its process was frozen. A run
 * its process stopped on resuming (within RESUME_GRACE_MS of SIGCONT, however it ended) executes
 * nothing after the freeze; runOns reports how long it went on.
 */
export function executing(r: Run, faults: FaultRecord[], now: number): [number, number][] {
  const resumed = stoppedOnResuming(r, faults);
  let parts: [number, number][] = [[r.start, resumed ? resumed.at : (r.end ?? now)]];
  for (const f of faults) {
    if (f.kind !== "sigstop-exec" || f.pid !== r.pid || f.until === undefined) continue;
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
        if (ms > 0) out.push({ id, ms });
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
