/**
 * node --import tsx test/bench/eventLoop.ts
 *
 * Seed 001's noisy neighbour on one event loop: a "heavy" tenant processes
 * N = 20 large clinical-notes results (parse-and-summarise on a ~3 MB JSON,
 * two workflows at a time, each result arriving after a 1 ms simulated tool
 * call) while a "light" tenant makes a small tool call every 5 ms (a 1 ms
 * simulated downstream round trip). Run three ways in one process: the light
 * tenant alone (reference), the heavy work inline on the loop, and the heavy
 * work offloaded to a CpuPool.
 *
 * Measured per run: event-loop delay (perf_hooks.monitorEventLoopDelay,
 * 1 ms resolution) p50/p99/max, and the light tenant's call latency from the
 * moment each call was due to its completion. Calls are due on a fixed 5 ms
 * schedule and every overdue call is started as soon as the loop is free, so
 * calls that should have happened during a stall count as delayed instead of
 * silently not happening (no coordinated omission).
 *
 * Prints a markdown table; the last line is one JSON object whose p99s are the
 * event-loop delay p99 (ms) inline and offloaded, ratio = inline / offloaded.
 */
import { availableParallelism } from "node:os";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { setImmediate as yieldToLoop, setTimeout as sleep } from "node:timers/promises";
import { CpuPool, runInline } from "../../src/runtime/cpuPool.ts";
import type { ParseAndSummariseResult } from "../../src/runtime/cpuTasks.ts";

const TASKS = 20;
const HEAVY_LANES = 2;
const LIGHT_PERIOD_MS = 5;
const REFERENCE_MS = 1_000;

type Process = (input: { json: string }) => Promise<ParseAndSummariseResult>;

interface RunStats {
  name: string;
  wallMs: number;
  loop: { p50: number; p99: number; max: number };
  light: { calls: number; p50: number; p99: number; max: number };
}

/** ~`targetBytes` of notes: a skewed clinical vocabulary plus ids and numbers, so terms are many and uneven. */
function clinicalNotesJson(targetBytes: number): string {
  const vocab = (
    "patient presents with chronic hypertension diabetes mellitus type metformin insulin hba1c " +
    "glucose lisinopril creatinine egfr dyspnea exertion bilateral edema echocardiogram ejection fraction " +
    "reduced wound dressing changed sepsis ruled lactate ceftriaxone started mri lumbar spine radiculopathy " +
    "physiotherapy weeks failed conservative management prior authorization requested imaging approved " +
    "denied appeal follow-up referral cardiology nephrology vitals stable afebrile tolerating diet plan"
  ).split(" ");
  let seed = 42;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const notes: object[] = [];
  let bytes = 0;
  for (let i = 0; bytes < targetBytes; i++) {
    const words = Array.from({ length: 60 + Math.floor(rand() * 60) }, () =>
      rand() < 0.08 ? `rx${Math.floor(rand() * 5_000)}` : vocab[Math.floor(rand() ** 1.7 * vocab.length)],
    );
    const note = { id: `note-${i}`, patientId: `pt-${i % 400}`, author: `dr-${i % 37}`, text: `${words.join(" ")}.` };
    bytes += JSON.stringify(note).length + 1;
    notes.push(note);
  }
  return JSON.stringify({ notes });
}

function percentiles(values: number[]): { p50: number; p99: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0;
  return { p50: at(0.5), p99: at(0.99), max: sorted.at(-1) ?? 0 };
}

/** Runs the light tenant until `heavy` settles (or for REFERENCE_MS when there is none). */
async function measure(name: string, heavy: (() => Promise<void>) | null): Promise<RunStats> {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  const latencies: number[] = [];
  const inFlight: Promise<void>[] = [];
  let done = false;

  const lightCall = async (dueAt: number) => {
    await sleep(1); // the downstream round trip
    latencies.push(performance.now() - dueAt);
  };
  const lightTenant = async (start: number) => {
    for (let i = 0; !done; ) {
      while (start + i * LIGHT_PERIOD_MS <= performance.now()) inFlight.push(lightCall(start + i++ * LIGHT_PERIOD_MS));
      await sleep(Math.max(0, start + i * LIGHT_PERIOD_MS - performance.now()));
    }
  };

  histogram.enable();
  const start = performance.now();
  const light = lightTenant(start);
  if (heavy) await heavy();
  else await sleep(REFERENCE_MS);
  const wallMs = performance.now() - start;
  done = true;
  await light;
  await Promise.all(inFlight);
  histogram.disable();

  const ms = (ns: number) => ns / 1e6;
  return {
    name,
    wallMs,
    loop: { p50: ms(histogram.percentile(50)), p99: ms(histogram.percentile(99)), max: ms(histogram.max) },
    light: { calls: latencies.length, ...percentiles(latencies) },
  };
}

/** The heavy tenant: TASKS results over HEAVY_LANES workflows, each result after a 1 ms tool call. */
function heavyTenant(input: { json: string }, process: Process): () => Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < TASKS) {
      next++;
      await sleep(1);
      await process(input);
    }
  };
  return async () => {
    await Promise.all(Array.from({ length: HEAVY_LANES }, lane));
  };
}

const input = { json: clinicalNotesJson(3 * 1024 * 1024) };
const pool = new CpuPool();

// Warm up both paths (JIT inline; thread start, tsx compile and JIT in the pool), outside the measurements.
let inlineTaskMs = 0;
for (let i = 0; i < 3; i++) {
  const t0 = performance.now();
  runInline("parse-and-summarise", input);
  inlineTaskMs = performance.now() - t0; // the last, warm run
}
await Promise.all(Array.from({ length: HEAVY_LANES }, () => pool.run("parse-and-summarise", input)));

const runs = [
  await measure("light tenant alone", null),
  await measure(
    "heavy inline",
    heavyTenant(input, async (i) => {
      await yieldToLoop();
      return runInline<ParseAndSummariseResult>("parse-and-summarise", i);
    }),
  ),
  await measure(
    "heavy offloaded (CpuPool)",
    heavyTenant(input, (i) => pool.run("parse-and-summarise", i)),
  ),
];
const threads = pool.threads;
await pool.destroy();

const f = (n: number) => n.toFixed(1);
console.log(
  `\ninput ${(input.json.length / 1e6).toFixed(2)} MB, one parse-and-summarise ${f(inlineTaskMs)} ms (warm, inline); ` +
    `${TASKS} tasks over ${HEAVY_LANES} lanes; light call every ${LIGHT_PERIOD_MS} ms; ` +
    `${availableParallelism()} cores, pool threads ${threads}; Node ${process.version}\n`,
);
console.log("| run | wall s | loop delay p50 / p99 / max ms | light calls | light latency p50 / p99 / max ms |");
console.log("|---|---:|---:|---:|---:|");
for (const r of runs) {
  console.log(
    `| ${r.name} | ${(r.wallMs / 1000).toFixed(2)} | ${f(r.loop.p50)} / ${f(r.loop.p99)} / ${f(r.loop.max)} | ` +
      `${r.light.calls} | ${f(r.light.p50)} / ${f(r.light.p99)} / ${f(r.light.max)} |`,
  );
}
const [, inline, offload] = runs as [RunStats, RunStats, RunStats];
const round = (n: number) => Math.round(n * 100) / 100;
console.log(
  JSON.stringify({
    inlineP99Ms: round(inline.loop.p99),
    offloadP99Ms: round(offload.loop.p99),
    ratio: round(inline.loop.p99 / offload.loop.p99),
  }),
);
