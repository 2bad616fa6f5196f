/** From what the soak saw to its result: trends, latency by window and third, keys by kind, endings, verdict. */
import type { RunSummary } from "../../bench/lib/observer.ts";
import type { Workers } from "../../bench/lib/systems.ts";
import { envelope, memoryOk, p99Ok, thirds, TOLERANCE, trend, windowP99, type Start, type Trend } from "./analysis.ts";
import type { Endings } from "./endings.ts";
import { diff, serializeCensus, type Census, type Leak } from "./keyCensus.ts";
import type { LoadLog } from "./load.ts";
import type { Sample } from "./sampler.ts";

export interface SoakParams {
  runSec: number;
  sampleSec: number;
  seed: number;
  utilization: number;
  ratePerSec: number;
  slots: number;
  workers: Workers;
  recordTtlSec: number;
  tenants: string[];
  mix: string;
}

export interface SoakResult {
  date: string;
  params: SoakParams;
  seconds?: number;
  /** Set when `--reanalyse` judged the stored samples again (the memory verdict is then the later rule's). */
  reanalysedAt?: string;
  machine?: { cpus: number; node: string };
  load: {
    arrivals: number;
    accepted: number;
    keyed: number;
    replays: number;
    cancels: Record<string, number>;
    measuredUtilization: number;
    errors: string[];
  };
  memory: MemoryResult;
  latency: {
    n: number;
    first: { n: number; p99: number };
    last: { n: number; p99: number };
    ratio: number;
    windows: { from: number; n: number; p99: number }[];
    p99Trend: Trend;
  };
  keys: {
    before: ReturnType<typeof serializeCensus>;
    after: ReturnType<typeof serializeCensus>;
    leaks: Leak[];
    grown: Leak[];
    leakedRecordStates: Record<string, number>;
    workflowRecordsAfter: { total: number; withoutTtl: number };
  };
  workflows: { byState: Record<string, number>; open: number; failedWithoutReason: number; drained: boolean; openExamples: string[] };
  verdict: {
    pass: boolean;
    memoryFlat: boolean;
    p99Flat: boolean;
    noLeakedKeys: boolean;
    allEnded: boolean;
    idempotent: boolean;
    noRefusals: boolean;
    failures: string[];
  };
}

export interface MemoryResult {
  /** Least-squares trend of each role's raw RSS samples (reported). */
  rss: Record<string, Trend>;
  /** The same over each role's RSS envelope, the per-tenth-of-the-run peaks (judged; analysis.ts envelope()). */
  rssPeak: Record<string, Trend>;
  rssJudged: boolean;
  redisNet: Trend;
  redisUsed: Trend;
  noTtlKeys: Trend;
  eventStreamMaxLen: number;
  /** Violations, empty when memory is flat. */
  failures: string[];
}

/** The memory half of the verdict: from the samples alone, so a stored run can be judged again (run.ts --reanalyse). */
export function memoryTrends(samples: readonly Sample[], runSec: number): MemoryResult {
  const runMin = runSec / 60;
  const series = (f: (s: Sample) => number) => samples.map((s) => ({ min: s.min, y: f(s) }));
  const roles = Object.keys(samples[0]?.rss ?? {});
  const rss = Object.fromEntries(
    roles.map((role) => [
      role,
      trend(
        series((s) => s.rss[role]!),
        runMin,
      ),
    ]),
  );
  const rssPeak = Object.fromEntries(
    roles.map((role) => [
      role,
      trend(
        envelope(
          series((s) => s.rss[role]!),
          runMin / 10,
          runMin,
        ),
        runMin,
      ),
    ]),
  );
  const redisNet = trend(
    series((s) => s.redis.net),
    runMin,
  );
  const rssJudged = runSec >= TOLERANCE.rssMinRunSec;
  const failures: string[] = [];
  if (rssJudged)
    for (const [role, t] of Object.entries(rssPeak))
      if (!memoryOk(t)) failures.push(`${role} RSS peaks grow ${(t.relative * 100).toFixed(1)}% per run`);
  if (!memoryOk(redisNet)) failures.push(`Redis memory grows ${(redisNet.relative * 100).toFixed(1)}% per run`);
  return {
    rss,
    rssPeak,
    rssJudged,
    redisNet,
    redisUsed: trend(
      series((s) => s.redis.used),
      runMin,
    ),
    noTtlKeys: trend(
      series((s) => s.keys.perWorkflowNoTtl),
      runMin,
    ),
    eventStreamMaxLen: Math.max(0, ...samples.map((s) => s.redis.eventStreamMaxLen)),
    failures,
  };
}

export interface AnalyseInput {
  params: SoakParams;
  samples: Sample[];
  before: Census;
  after: Census;
  t0: number;
  loadEnd: number;
  drained: boolean;
  runs: Map<string, RunSummary>;
  load: LoadLog;
  endings: Endings;
  prefix: string;
  tenants: string[];
  /** Leaked workflow records by "state / errorCode / errorMessage". */
  leakedRecordStates: Record<string, number>;
}

const overlap = (a0: number, a1: number, b0: number, b1: number) => Math.max(0, Math.min(a1, b1) - Math.max(a0, b0));

export function analyse(x: AnalyseInput): SoakResult {
  const runMin = x.params.runSec / 60;
  const memory = memoryTrends(x.samples, x.params.runSec);

  // Enqueue→start of the workflows admitted during the load, by the workflows' own start record.
  const starts: Start[] = [];
  let busyMs = 0;
  for (const [id, a] of x.load.accepted) {
    const run = x.runs.get(id);
    if (run) busyMs += overlap(run.firstStart, run.lastEnd ?? x.loadEnd, x.t0, x.loadEnd);
    if (!run || a.at < x.t0) continue;
    starts.push({ at: run.firstStart, latencyMs: run.firstStart - a.at });
  }
  const edges = [...x.samples.map((s) => s.at), x.loadEnd].filter((t, i, all) => i === 0 || t > all[i - 1]!);
  const windows = windowP99(starts, edges);
  const th = thirds(starts, x.t0, x.loadEnd);
  const p99Trend = trend(
    windows.filter((w) => Number.isFinite(w.p99)).map((w) => ({ min: (w.from - x.t0) / 60_000, y: w.p99 })),
    runMin,
  );

  const { leaks, grown } = diff(x.before, x.after, x.prefix, x.tenants);
  const rec = x.after.byKind["workflow record"];
  const ends = x.endings.summary(x.load.accepted.keys());
  const cancels: Record<string, number> = {};
  for (const c of x.load.cancels) cancels[`${c.when}: ${c.outcome}`] = (cancels[`${c.when}: ${c.outcome}`] ?? 0) + 1;

  const failures: string[] = [...memory.failures];
  const memoryFlat = memory.failures.length === 0;
  const p99Flat = p99Ok(th.first.p99, th.last.p99);
  if (!p99Flat) failures.push(`p99 enqueue→start ${th.first.p99} ms → ${th.last.p99} ms`);
  const noLeakedKeys = leaks.length === 0;
  if (!noLeakedKeys) failures.push(`keys without TTL left after draining: ${leaks.map((l) => `${l.count} × ${l.pattern}`).join(", ")}`);
  const allEnded = x.drained && ends.open.length === 0 && ends.failedWithoutReason.length === 0;
  if (!allEnded)
    failures.push(
      `${ends.open.length} workflows never ended, ${ends.failedWithoutReason.length} failed without a reason${x.drained ? "" : ", queues never drained"}`,
    );
  const badReplays = x.load.replays.filter((rp) => !rp.duplicate || rp.id !== rp.firstId);
  const idempotent = badReplays.length === 0;
  if (!idempotent) failures.push(`${badReplays.length} idempotency replays created a new workflow`);
  const noRefusals = x.load.errors.length === 0;
  if (!noRefusals) failures.push(`${x.load.errors.length} enqueues refused: ${x.load.errors[0]}`);

  return {
    date: new Date(x.t0).toISOString(),
    params: x.params,
    load: {
      arrivals: x.load.arrivals,
      accepted: x.load.accepted.size,
      keyed: x.load.keyed,
      replays: x.load.replays.length,
      cancels,
      measuredUtilization: busyMs / (x.params.slots * (x.loadEnd - x.t0)),
      errors: x.load.errors.slice(0, 10),
    },
    memory,
    latency: { n: starts.length, first: th.first, last: th.last, ratio: th.last.p99 / th.first.p99, windows, p99Trend },
    keys: {
      before: serializeCensus(x.before),
      after: serializeCensus(x.after),
      leaks,
      grown,
      leakedRecordStates: x.leakedRecordStates,
      workflowRecordsAfter: { total: rec?.total ?? 0, withoutTtl: rec?.noTtl ?? 0 },
    },
    workflows: {
      byState: ends.byState,
      open: ends.open.length,
      failedWithoutReason: ends.failedWithoutReason.length,
      drained: x.drained,
      openExamples: ends.open.slice(0, 5),
    },
    verdict: { pass: failures.length === 0, memoryFlat, p99Flat, noLeakedKeys, allEnded, idempotent, noRefusals, failures },
  };
}
