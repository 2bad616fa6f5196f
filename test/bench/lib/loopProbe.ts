import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { isMainThread } from "node:worker_threads";
import { quantile } from "./stats.ts";

/**
 * Event-loop delay of a benchmark process, without touching the role's code:
 * preloaded with `node --import tsx --import ./test/bench/lib/loopProbe.ts`
 * (lib/systems.ts does so when BENCH_LOOP_FILE is set), or started in process
 * with startLoopProbe(). A 10 ms timer measures how late it fires; the
 * lateness is counted in 1 ms buckets and appended, once a second, to
 * BENCH_LOOP_FILE as one JSON line {role, pid, t, b: {ms: count}}, so a phase's
 * histogram per process is the exact sum of its seconds (lines with t in the
 * phase). Role: BENCH_ROLE (default the script's name).
 */
const PERIOD_MS = 10;
const FLUSH_MS = 1_000;

interface Line {
  role: string;
  pid: number;
  t: number;
  b: Record<string, number>;
}

export function startLoopProbe(file: string, role: string): () => void {
  let buckets = new Map<number, number>();
  let due = performance.now() + PERIOD_MS;
  let timer: NodeJS.Timeout;
  const tick = () => {
    const now = performance.now();
    const late = Math.max(0, Math.round(now - due));
    buckets.set(late, (buckets.get(late) ?? 0) + 1);
    due = now + PERIOD_MS;
    timer = setTimeout(tick, PERIOD_MS).unref();
  };
  timer = setTimeout(tick, PERIOD_MS).unref();
  const flush = () => {
    if (!buckets.size) return;
    const line: Line = { role, pid: process.pid, t: Date.now(), b: Object.fromEntries(buckets) };
    buckets = new Map();
    try {
      appendFileSync(file, `${JSON.stringify(line)}\n`);
    } catch {
      // the benchmark removed its folder: nothing left to report to
    }
  };
  const flusher = setInterval(flush, FLUSH_MS).unref();
  return () => {
    clearTimeout(timer);
    clearInterval(flusher);
    flush();
  };
}

if (isMainThread && process.env.BENCH_LOOP_FILE)
  startLoopProbe(
    process.env.BENCH_LOOP_FILE,
    process.env.BENCH_ROLE ?? (process.argv[1] ?? "node").split("/").at(-1)!.replace(/\.ts$/, ""),
  );

/** One process's event-loop delay over a window (ms late per 10 ms tick). */
export interface LoopDelay {
  role: string;
  pid: number;
  /** Ticks seen: about 100 a second when the loop is free. */
  ticks: number;
  p50: number;
  p99: number;
  max: number;
}

/** Per process, the delay histogram of the seconds in [from, to]: the lines flushed in [from + 1 s, to + 1 s] (each covers the second before it). */
export function readLoopDelay(file: string, from: number, to: number): LoopDelay[] {
  if (!existsSync(file)) return [];
  const by = new Map<string, { role: string; pid: number; b: Map<number, number> }>();
  for (const text of readFileSync(file, "utf8").split("\n")) {
    if (!text) continue;
    const l = JSON.parse(text) as Line;
    if (l.t < from + FLUSH_MS || l.t > to + FLUSH_MS) continue;
    const k = `${l.role}/${l.pid}`;
    let e = by.get(k);
    if (!e) by.set(k, (e = { role: l.role, pid: l.pid, b: new Map() }));
    for (const [ms, c] of Object.entries(l.b)) e.b.set(Number(ms), (e.b.get(Number(ms)) ?? 0) + c);
  }
  return [...by.values()]
    .map(({ role, pid, b }) => {
      const sorted = [...b].sort((x, y) => x[0] - y[0]);
      const ticks = sorted.reduce((s, [, c]) => s + c, 0);
      const at = (q: number) => {
        let seen = 0;
        for (const [ms, c] of sorted) if ((seen += c) >= q * ticks) return ms;
        return sorted.at(-1)?.[0] ?? NaN;
      };
      return { role, pid, ticks, p50: at(0.5), p99: at(0.99), max: sorted.at(-1)?.[0] ?? NaN };
    })
    .sort((a, b) => a.role.localeCompare(b.role) || a.pid - b.pid);
}

/** Per role: the processes' p99s summarised (median and worst) and the worst single stall. */
export function loopDelayByRole(
  ps: LoopDelay[],
): { role: string; processes: number; p50: number; p99: number; p99Worst: number; max: number }[] {
  const roles = [...new Set(ps.map((p) => p.role))];
  return roles.map((role) => {
    const mine = ps.filter((p) => p.role === role);
    return {
      role,
      processes: mine.length,
      p50: quantile(
        mine.map((p) => p.p50),
        0.5,
      ),
      p99: quantile(
        mine.map((p) => p.p99),
        0.5,
      ),
      p99Worst: Math.max(...mine.map((p) => p.p99)),
      max: Math.max(...mine.map((p) => p.max)),
    };
  });
}
