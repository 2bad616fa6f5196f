/** The soak's printed table and markdown report. */
import { table } from "../../bench/lib/report.ts";
import { fmt } from "../../bench/lib/stats.ts";
import type { SoakResult } from "./analyse.ts";
import { memoryOk, TOLERANCE, type Trend } from "./analysis.ts";
import type { KeyKind } from "./keyCensus.ts";
import type { Sample } from "./sampler.ts";

const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : "—");
const ok = (b: boolean) => (b ? "ok" : "**FAIL**");

const trendRow = (name: string, unit: string, t: Trend, judged: boolean | string = true) => [
  name,
  `${fmt(t.mean, 1)} ${unit}`,
  `${fmt(t.first, 1)} → ${fmt(t.last, 1)}`,
  `${Number.isFinite(t.slopePerMin) ? (t.slopePerMin >= 0 ? "+" : "") + t.slopePerMin.toFixed(3) : "—"} ${unit}/min`,
  pct(t.relative),
  judged === true ? ok(memoryOk(t)) : typeof judged === "string" ? judged : "info",
];
/** RSS rows are judged only in runs long enough to get past a Node process's heap warm-up (analysis.ts). */
const rssVerdict = (r: SoakResult, t: Trend): boolean | string =>
  r.memory.rssJudged ? true : `info (run < ${TOLERANCE.rssMinRunSec / 60} min${memoryOk(t) ? "" : ", would fail"})`;

export function trendTable(r: SoakResult): string {
  const rows = [
    ...Object.entries(r.memory.rssPeak).flatMap(([role, t]) => [
      trendRow(`RSS ${role}, peak per tenth of the run`, "MiB", t, rssVerdict(r, t)),
      trendRow(`RSS ${role}, every sample`, "MiB", r.memory.rss[role]!, false),
    ]),
    trendRow("Redis used_memory, net of the observer log and BullMQ event streams", "MiB", r.memory.redisNet),
    trendRow("Redis used_memory (raw)", "MiB", r.memory.redisUsed, false),
    trendRow("per-workflow keys without TTL (in flight)", "keys", r.memory.noTtlKeys, false),
    trendRow("p99 enqueue→start per window", "ms", r.latency.p99Trend, false),
  ];
  return table(["series (second half)", "mean", "first → last", "slope", "slope × run ÷ mean", "verdict"], rows);
}

export function keysTable(r: SoakResult): string {
  const kinds = new Set([...Object.keys(r.keys.before.byKind), ...Object.keys(r.keys.after.byKind)] as KeyKind[]);
  const rows = [...kinds].sort().map((k) => {
    const b = r.keys.before.byKind[k];
    const a = r.keys.after.byKind[k];
    return [k, `${b?.total ?? 0} (${b?.noTtl ?? 0})`, `${a?.total ?? 0} (${a?.noTtl ?? 0})`];
  });
  rows.push(["**all**", String(r.keys.before.total), String(r.keys.after.total)]);
  return table(["kind", "before: keys (without TTL)", "after draining: keys (without TTL)"], rows);
}

export function summaryTable(r: SoakResult): string {
  const lat = r.latency;
  const rows = [
    [
      "load",
      `${r.load.accepted} workflows (${r.load.arrivals} arrivals, ${r.load.replays} replays) at ${fmt(r.params.ratePerSec, 1)}/s; measured utilization ${pct(r.load.measuredUtilization)}`,
      ok(r.verdict.noRefusals),
    ],
    ...Object.entries(r.memory.rssPeak).map(([role, t]) => {
      const v = rssVerdict(r, t);
      const raw = r.memory.rss[role]!;
      return [
        `RSS ${role}`,
        `peaks ${fmt(t.mean, 1)} MiB, ${t.slopePerMin.toFixed(3)} MiB/min, ${pct(t.relative)} per run (every sample: ${raw.slopePerMin.toFixed(3)} MiB/min, ${pct(raw.relative)})`,
        v === true ? ok(memoryOk(t)) : String(v),
      ];
    }),
    [
      "Redis memory (net)",
      `${fmt(r.memory.redisNet.mean, 2)} MiB, ${r.memory.redisNet.slopePerMin.toFixed(4)} MiB/min, ${pct(r.memory.redisNet.relative)} per run`,
      ok(memoryOk(r.memory.redisNet)),
    ],
    ["BullMQ event streams", `longest ${r.memory.eventStreamMaxLen} entries (trimmed at maxLenEvents, 10,000 by default)`, "info"],
    [
      "p99 enqueue→start",
      `first third ${fmt(lat.first.p99)} ms (n ${lat.first.n}), last third ${fmt(lat.last.p99)} ms (n ${lat.last.n})`,
      ok(r.verdict.p99Flat),
    ],
    [
      "keys",
      `${r.keys.before.total} before, ${r.keys.after.total} after; workflow records left ${r.keys.workflowRecordsAfter.total} (${r.keys.workflowRecordsAfter.withoutTtl} without TTL)`,
      ok(r.verdict.noLeakedKeys),
    ],
    ...r.keys.leaks.map((l) => ["  leaked", `${l.count} × ${l.pattern} (${l.kind}), e.g. ${l.examples[0]}`, "**FAIL**"]),
    ...Object.entries(r.keys.leakedRecordStates).map(([s, n]) => ["  leaked records say", `${n} × ${s}`, "**FAIL**"]),
    ...r.keys.grown.map((l) => ["  new, bounded", `${l.count} × ${l.pattern} (${l.kind})`, "info"]),
    [
      "workflows",
      `${Object.entries(r.workflows.byState)
        .map(([s, n]) => `${n} ${s}`)
        .join(", ")}; ${r.workflows.open} not ended`,
      ok(r.verdict.allEnded),
    ],
    [
      "cancels",
      Object.entries(r.load.cancels)
        .map(([s, n]) => `${n} ${s}`)
        .join(", ") || "none",
      "info",
    ],
    ["idempotency replays", `${r.load.replays} replays of ${r.load.keyed} keyed requests`, ok(r.verdict.idempotent)],
  ];
  return table(["measure", "value", "verdict"], rows);
}

export function markdown(r: SoakResult, samples: Sample[]): string {
  const p = r.params;
  const step = Math.max(1, Math.round(samples.length / 20));
  const sampleRows = samples
    .filter((_, i) => i % step === 0 || i === samples.length - 1)
    .map((s) => [
      s.min.toFixed(2),
      ...Object.values(s.rss).map((v) => v.toFixed(1)),
      s.redis.net.toFixed(2),
      String(s.keys.total),
      String(s.keys.perWorkflowNoTtl),
    ]);
  return [
    `# Fairlane load soak`,
    "",
    `${r.date}, ${p.runSec / 60} min of load (${fmt(r.seconds ?? NaN)} s in all), seed ${p.seed}, ${r.machine?.cpus ?? "?"} CPUs, Node ${r.machine?.node ?? "?"}. ` +
      `Verdict: **${r.verdict.pass ? "PASS" : "FAIL"}**${r.verdict.failures.length ? ` — ${r.verdict.failures.join("; ")}` : ""}.`,
    "",
    `Produced by \`npm run soak -- --minutes ${p.runSec / 60} --seed ${p.seed} --out <dir>\` (test/soak/run.ts)` +
      (r.reanalysedAt ? `; memory judged again from the stored samples with \`--reanalyse\` on ${r.reanalysedAt}.` : "."),
    "",
    "## Load",
    "",
    `${p.workers.processes} exec processes × ${p.workers.concurrency} slots = ${p.slots} slots; arrivals a Poisson stream of ${fmt(p.ratePerSec, 1)}/s ` +
      `(${pct(p.utilization)} of the pool's capacity at the mix's expected slot time), measured utilization ${pct(r.load.measuredUtilization)}. ` +
      `Tenants: ${p.tenants.join(", ")}. Mix: ${p.mix}. Workflow records and idempotency keys live ${p.recordTtlSec} s (FAIRLANE_RECORD_TTL_SEC, ` +
      `FAIRLANE_IDEMPOTENCY_TTL_SEC shortened so expiring data reaches a steady state within the run).`,
    "",
    "## Verdict",
    "",
    summaryTable(r),
    "",
    "## Trends after warm-up",
    "",
    `Least-squares slope over the second half of the run (the first half is warm-up); "slope × run ÷ mean" is how much the series would grow over ` +
      `one run length as a fraction of its mean. Tolerance for memory: under ${TOLERANCE.memoryRelative * 100}% — a V8 heap's collection ` +
      `sawtooth moves a ~100 MiB process by a few MiB, which a fit over many samples averages out, while a leak of even 2 KiB per workflow ` +
      `over a full run's thousands of workflows is several MiB of steady climb. RSS is judged on its peaks (the highest sample in each tenth ` +
      `of the run): the exec processes' RSS is a sawtooth (drops of ~30 MiB every few minutes, back to a plateau within a minute), and a fit of ` +
      `every sample reads a drop early in the window as growth and a late one as shrinkage, while a leak lifts the plateau. Both fits are shown. ` +
      `RSS is judged only in runs of ${TOLERANCE.rssMinRunSec / 60} minutes or more (shorter runs see the heap's warm-up steps, not leaks). Redis memory is net of the harness's observer log and of BullMQ's event ` +
      `streams, which fill to maxLenEvents and are trimmed there (their longest length is reported).`,
    "",
    trendTable(r),
    "",
    `p99 enqueue→start: first third ${fmt(r.latency.first.p99)} ms (n ${r.latency.first.n}), last third ${fmt(r.latency.last.p99)} ms (n ${r.latency.last.n}); ` +
      `tolerance: last ≤ max(${TOLERANCE.p99Ratio} × first, first + ${TOLERANCE.p99SlackMs} ms).`,
    "",
    "## Keys by kind",
    "",
    "SCAN of the deployment's prefix before the load (after priming every tenant × class × type) and after draining. Per-workflow kinds " +
      "(records, steps, idempotency keys, jobs) must each carry a TTL once the queues are empty; a key without one that was not there before is a leak.",
    "",
    keysTable(r),
    "",
    r.keys.leaks.length
      ? `Leaked (no TTL, new since before): ${r.keys.leaks.map((l) => `${l.count} × \`${l.pattern}\` (${l.kind}; e.g. \`${l.examples[0]}\`)`).join("; ")}.`
      : "No per-workflow key without a TTL was left.",
    r.keys.grown.length
      ? `New bounded state keys (not per workflow): ${r.keys.grown.map((l) => `${l.count} × \`${l.pattern}\``).join(", ")}.`
      : "",
    "",
    "## Samples",
    "",
    table(
      ["min", ...Object.keys(samples[0]?.rss ?? {}).map((k) => `RSS ${k} MiB`), "Redis net MiB", "keys", "per-wf keys w/o TTL"],
      sampleRows,
    ),
    "",
  ].join("\n");
}
