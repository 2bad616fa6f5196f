import { fairAt, plainBest, type Round, type ThroughputResult } from "../scenarios/throughput.ts";
import type { DrainResult } from "./drain.ts";
import { byRole } from "./meter.ts";
import { fmt, median } from "./stats.ts";

/**
 * The throughput part of the report and of the `--json` contract (issue 20).
 * Every ratio of the contract comes from one round: the one whose drain ratio
 * is the median of the rounds (the only one, by default); `byRound` lists each
 * round's ratios, so their spread shows.
 */
const r3 = (x: number) => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : null);
const layout = (d: DrainResult) => `${d.layout.processes}×${d.layout.concurrency}`;
/** Enqueue plus drain: everything one workflow (job) costs from producer to completion. */
const cpu = (d: DrainResult) => d.enqueue.cpuUs + d.drain.cpuUs;
const commands = (d: DrainResult) => d.enqueue.commands + d.drain.commands;
const scripts = (d: DrainResult) => d.enqueue.scripts + d.drain.scripts;

export interface RoundRatios {
  drainVsPlainBest: number;
  drainVsPlainSameLayout: number;
  cpuPerWorkflowVsPlain: number;
  cpuPerWorkflowDrainVsPlain: number;
  commandsPerWorkflowVsPlain: number;
  commandsPerWorkflowDrainVsPlain: number;
  scriptCallsPerWorkflowVsPlain: number;
  tenants10kVs10: number;
  tenants1kVs10: number;
  redisBytesPerQueuedVsPlain: number;
  /** Plain plus the least per-workflow state (lib/leastState.ts): the cheapest such a design could be. */
  floorCpuVsPlain: number;
  floorDrainVsPlain: number;
}

export function ratios(t: ThroughputResult, r: Round): RoundRatios {
  const best = plainBest(r);
  const ten = fairAt(r, t.params.tenants[0]!)!;
  const same = r.plain.find((p) => p.layout.processes === ten.layout.processes && p.layout.concurrency === ten.layout.concurrency);
  const at = (n: number) => fairAt(r, n)?.drain.perSec ?? NaN;
  return {
    drainVsPlainBest: ten.drain.perSec / best.drain.perSec,
    drainVsPlainSameLayout: same ? ten.drain.perSec / same.drain.perSec : NaN,
    cpuPerWorkflowVsPlain: cpu(ten) / cpu(best),
    cpuPerWorkflowDrainVsPlain: ten.drain.cpuUs / best.drain.cpuUs,
    commandsPerWorkflowVsPlain: commands(ten) / commands(best),
    commandsPerWorkflowDrainVsPlain: ten.drain.commands / best.drain.commands,
    scriptCallsPerWorkflowVsPlain: scripts(ten) / scripts(best),
    tenants10kVs10: at(10_000) / ten.drain.perSec,
    tenants1kVs10: at(1_000) / ten.drain.perSec,
    redisBytesPerQueuedVsPlain: ten.bytes.queued / best.bytes.queued,
    floorCpuVsPlain: (cpu(best) + r.least.redisCpuUs) / cpu(best),
    // The drain, when the machine's CPU is what bounds it (as on 2 cores).
    floorDrainVsPlain: best.drain.cpuUs / (best.drain.cpuUs + r.least.redisCpuUs),
  };
}

/** The round the contract reports: the median drain ratio. */
function middle(t: ThroughputResult): { round: Round; ratios: RoundRatios; all: RoundRatios[] } {
  const all = t.rounds.map((r) => ratios(t, r));
  const m = median(all.map((x) => x.drainVsPlainBest));
  const i = all.reduce((bi, x, k) => (Math.abs(x.drainVsPlainBest - m) < Math.abs(all[bi]!.drainVsPlainBest - m) ? k : bi), 0);
  return { round: t.rounds[i]!, ratios: all[i]!, all };
}

const e2e = (t: ThroughputResult, prefix: string, via: "in-process" | "http") =>
  t.endToEnd.find((e) => e.name.startsWith(prefix) && e.via === via);

export function throughputContract(t: ThroughputResult): Record<string, unknown> {
  const { round, ratios: x, all } = middle(t);
  const best = plainBest(round);
  const ten = fairAt(round, t.params.tenants[0]!)!;
  const [ePlain, eFair, eHttp] = [e2e(t, "plain", "in-process"), e2e(t, "Fairlane", "in-process"), e2e(t, "Fairlane", "http")];
  const out: Record<string, unknown> = {
    drainVsPlainBest: r3(x.drainVsPlainBest),
    cpuPerWorkflowVsPlain: r3(x.cpuPerWorkflowVsPlain),
    commandsPerWorkflowVsPlain: r3(x.commandsPerWorkflowVsPlain),
    tenants10kVs10: r3(x.tenants10kVs10),
    redisBytesPerQueuedVsPlain: r3(x.redisBytesPerQueuedVsPlain),
    floorCpuVsPlain: r3(x.floorCpuVsPlain),
    floorDrainVsPlain: r3(x.floorDrainVsPlain),
    // End to end in process (first enqueue → last completion), the ratio reported before drains were measured.
    fairVsPlain: r3((eFair?.cost.perSec ?? NaN) / (ePlain?.cost.perSec ?? NaN)),
    drainVsPlainSameLayout: r3(x.drainVsPlainSameLayout),
    cpuPerWorkflowDrainVsPlain: r3(x.cpuPerWorkflowDrainVsPlain),
    commandsPerWorkflowDrainVsPlain: r3(x.commandsPerWorkflowDrainVsPlain),
    scriptCallsPerWorkflowVsPlain: r3(x.scriptCallsPerWorkflowVsPlain),
    plainBest: layout(best),
    fairLayout: `${layout(ten)} + dispatcher`,
    perSec: {
      ...Object.fromEntries(round.plain.map((p) => [`plain${p.layout.processes}x${p.layout.concurrency}`, Math.round(p.drain.perSec)])),
      ...Object.fromEntries(round.fair.map((f) => [`fair${f.tenants}`, Math.round(f.drain.perSec)])),
      e2ePlain: Math.round(ePlain?.cost.perSec ?? NaN),
      e2eFair: Math.round(eFair?.cost.perSec ?? NaN),
      e2eFairHttp: Math.round(eHttp?.cost.perSec ?? NaN),
    },
    cpuUsPerWorkflow: {
      plain: Math.round(cpu(best)),
      fair: Math.round(cpu(ten)),
      plainDrain: Math.round(best.drain.cpuUs),
      fairDrain: Math.round(ten.drain.cpuUs),
    },
    commandsPerWorkflow: {
      plain: r3(commands(best)),
      fair: r3(commands(ten)),
      plainScripts: r3(scripts(best)),
      fairScripts: r3(scripts(ten)),
    },
    // From the MONITOR census: commands sent to Redis, a script call counting as one.
    commandsSentPerWorkflow: { plain: r3(t.census.plain.sent), fair: r3(t.census.fair.sent) },
    // Per role while draining: CPU µs and write syscalls (≈ round trips) per workflow.
    perProcess: {
      plain: Object.fromEntries(byRole(best.drain.processes).map((p) => [p.role, { cpuUs: Math.round(p.cpuUs), writes: r3(p.writes) }])),
      fair: Object.fromEntries(byRole(ten.drain.processes).map((p) => [p.role, { cpuUs: Math.round(p.cpuUs), writes: r3(p.writes) }])),
      redisCpuUs: { plain: Math.round(best.drain.redisCpuUs), fair: Math.round(ten.drain.redisCpuUs) },
    },
    redisBytesPerQueued: { plain: Math.round(best.bytes.queued), fair: Math.round(ten.bytes.queued) },
    redisBytesPerFinished: { plain: Math.round(best.bytes.finished), fair: Math.round(ten.bytes.finished) },
    e2eHttpVsInProcess: r3((eHttp?.cost.perSec ?? NaN) / (eFair?.cost.perSec ?? NaN)),
    rounds: t.rounds.length,
    gatePairsPerSec: Math.round(t.gate.uncontendedPairsPerSec),
    gateContendedPairsPerSec: Math.round(t.gate.contendedPairsPerSec),
    admissionAlwaysVsEverysec: r3(t.durability.alwaysPerSec / t.durability.everysecPerSec),
  };
  if (Number.isFinite(x.tenants1kVs10)) out.tenants1kVs10 = r3(x.tenants1kVs10);
  if (all.length > 1)
    out.byRound = all.map((a) =>
      Object.fromEntries(
        Object.entries(a)
          .filter(([, v]) => Number.isFinite(v))
          .map(([k, v]) => [k, r3(v)]),
      ),
    );
  return out;
}

type Row = [string, string, string, string];

export function throughputRows(t: ThroughputResult): Row[] {
  const { round, ratios: x, all } = middle(t);
  const best = plainBest(round);
  const ten = fairAt(round, t.params.tenants[0]!)!;
  const spread = (k: keyof RoundRatios) =>
    all.length > 1 ? ` (rounds ${fmt(Math.min(...all.map((a) => a[k])), 2)}–${fmt(Math.max(...all.map((a) => a[k])), 2)})` : "";
  const [ePlain, eFair, eHttp] = [e2e(t, "plain", "in-process"), e2e(t, "Fairlane", "in-process"), e2e(t, "Fairlane", "http")];
  return [
    [
      `throughput: backlog drain, jobs/s (plain's best ${layout(best)}; Fairlane ${layout(ten)} + dispatcher)`,
      fmt(best.drain.perSec),
      fmt(ten.drain.perSec),
      `ratio ${fmt(x.drainVsPlainBest, 2)}${spread("drainVsPlainBest")} (target 0.8)`,
    ],
    [
      "throughput: CPU µs per workflow, enqueue + drain, every process + Redis",
      fmt(cpu(best)),
      fmt(cpu(ten)),
      `ratio ${fmt(x.cpuPerWorkflowVsPlain, 2)}${spread("cpuPerWorkflowVsPlain")} (target ≤ 1.25)`,
    ],
    [
      "throughput: Redis commands per workflow (script calls)",
      `${fmt(commands(best), 1)} (${fmt(scripts(best), 1)})`,
      `${fmt(commands(ten), 1)} (${fmt(scripts(ten), 1)})`,
      `ratio ${fmt(x.commandsPerWorkflowVsPlain, 2)}${spread("commandsPerWorkflowVsPlain")} (target ≤ 1.25)`,
    ],
    [
      `throughput, the floor: plain plus the least per-workflow state (${fmt(round.least.commands, 0)} commands, ${fmt(round.least.redisCpuUs)} µs of Redis)`,
      fmt(cpu(best)),
      fmt(cpu(best) + round.least.redisCpuUs),
      `CPU ${fmt(x.floorCpuVsPlain, 2)}${spread("floorCpuVsPlain")}, drain at most ${fmt(x.floorDrainVsPlain, 2)}${spread("floorDrainVsPlain")}`,
    ],
    ["throughput: 10,000 tenants ÷ 10 tenants, drain", "", fmt(x.tenants10kVs10, 2), `target 0.9${spread("tenants10kVs10")}`],
    [
      "memory: Redis bytes per queued workflow",
      fmt(best.bytes.queued),
      fmt(ten.bytes.queued),
      `ratio ${fmt(x.redisBytesPerQueuedVsPlain, 2)} (target ≤ 1.2)`,
    ],
    ["memory: Redis bytes left per finished workflow", fmt(best.bytes.finished), fmt(ten.bytes.finished), "bounded by policy"],
    [
      "throughput end to end, admission in process, jobs/s",
      fmt(ePlain?.cost.perSec),
      fmt(eFair?.cost.perSec),
      `ratio ${fmt((eFair?.cost.perSec ?? NaN) / (ePlain?.cost.perSec ?? NaN), 2)}; over HTTP ${fmt(eHttp?.cost.perSec)}/s`,
    ],
    [
      "tool gate: acquire+release pairs/s",
      "",
      `${fmt(t.gate.uncontendedPairsPerSec)} (${fmt(t.gate.contendedPairsPerSec)} contended)`,
      `${t.gate.callers} callers`,
    ],
    [
      "admission/s: appendfsync everysec vs always",
      fmt(t.durability.everysecPerSec),
      fmt(t.durability.alwaysPerSec),
      `always costs ${fmt((1 - t.durability.alwaysPerSec / t.durability.everysecPerSec) * 100)}%`,
    ],
  ];
}

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

const roles = (d: DrainResult["drain"]) =>
  byRole(d.processes)
    .map((p) => `${p.role}${p.processes > 1 ? ` ×${p.processes}` : ""} ${fmt(p.cpuUs)} µs, ${fmt(p.writes, 2)} writes`)
    .join("; ");

function drainRows(i: number, r: Round): string[][] {
  return [...r.plain, ...r.fair].map((d) => [
    String(i),
    d.name,
    fmt(d.drain.seconds, 2),
    fmt(d.drain.perSec),
    fmt(d.enqueue.cpuUs),
    fmt(d.drain.cpuUs),
    fmt(d.drain.redisCpuUs),
    roles(d.drain),
    `${fmt(d.enqueue.commands, 1)} + ${fmt(d.drain.commands, 1)}`,
    `${fmt(d.enqueue.scripts, 2)} + ${fmt(d.drain.scripts, 2)}`,
    d.drain.top,
  ]);
}

const kinds = (by: Record<string, number>) =>
  Object.entries(by)
    .filter(([, v]) => Math.abs(v) >= 1)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${fmt(v)}`)
    .join(", ");

export function throughputSection(t: ThroughputResult): string {
  const { round, all } = middle(t);
  const best = plainBest(round);
  const ten = fairAt(round, t.params.tenants[0]!)!;
  const rr = (a: RoundRatios) => [
    fmt(a.drainVsPlainBest, 3),
    fmt(a.drainVsPlainSameLayout, 3),
    fmt(a.cpuPerWorkflowVsPlain, 3),
    fmt(a.commandsPerWorkflowVsPlain, 3),
    fmt(a.tenants10kVs10, 3),
    fmt(a.redisBytesPerQueuedVsPlain, 3),
    `${fmt(a.floorCpuVsPlain, 3)} / ${fmt(a.floorDrainVsPlain, 3)}`,
  ];
  const census = (who: string, c: ThroughputResult["census"]["plain"]) =>
    c.processes.map((p) => [who, p.role, fmt(p.sent, 2), fmt(p.scripts, 2), fmt(p.inScripts, 1), fmt(p.sent + p.inScripts, 1)]);
  return [
    `## 3. Throughput and scale`,
    "",
    `Backlog drain: ${fmt(t.params.jobs)} no-op jobs (${t.params.payloadBytes}-byte payload) prefilled with no consumer running, then drained; timed from the first handler call to the last, in the workers' own clock (test/bench/lib/drainClock.ts). Plain BullMQ in ${t.params.plainLayouts.map((l) => `${l.processes}×${l.concurrency}`).join(" and ")} (processes × concurrency; the fastest is "plain's best"), Fairlane in ${t.params.fairLayout.processes}×${t.params.fairLayout.concurrency} exec + its dispatcher, Class B, caps that never bind. CPU is µs per workflow from /proc (enqueue: the producer and Redis while admitting; drain: every worker process from when it had booted, the dispatcher from its "started" line, and Redis); writes are write syscalls per workflow (≈ round trips to Redis); commands are Redis's own counts per workflow, enqueue + drain, script-internal commands included (Redis 7), and script calls among them. ${t.params.rounds} round(s); the ratios come from one round (the median drain ratio).`,
    "",
    table(
      [
        "round",
        "run",
        "drain s",
        "jobs/s",
        "enqueue CPU µs",
        "drain CPU µs (all)",
        "of it Redis",
        "per process: CPU µs, writes",
        "commands (enqueue + drain)",
        "script calls",
        "top Redis commands while draining",
      ],
      t.rounds.flatMap((r, i) => drainRows(i + 1, r)),
    ),
    "",
    table(
      [
        "round",
        "drain ÷ plain's best",
        "drain ÷ plain same layout",
        "CPU/workflow ÷ plain",
        "commands/workflow ÷ plain",
        "10,000 ÷ 10 tenants",
        "bytes queued ÷ plain",
        "the floor: CPU ÷ plain / drain at most",
      ],
      all.map((a, i) => [String(i + 1), ...rr(a)]),
    ),
    "",
    `Redis bytes per workflow (MEMORY USAGE of every key under the deployment's prefix, less what was there before; lists and indexes shared by all jobs are divided among them; BullMQ's events streams are shown but not counted, being capped at 10,000 entries whatever the backlog). Queued: plain ${fmt(best.bytes.queued)} B (${kinds(best.bytes.queuedByKind)}); Fairlane ${fmt(ten.bytes.queued)} B (${kinds(ten.bytes.queuedByKind)}). Left after completion: plain ${fmt(best.bytes.finished)} B (${kinds(best.bytes.finishedByKind)}); Fairlane ${fmt(ten.bytes.finished)} B (${kinds(ten.bytes.finishedByKind)}).`,
    "",
    "End to end: consumers running, first enqueue to last handler call, every process's CPU and the producer's:",
    "",
    table(
      ["run", "seconds", "jobs/s", "CPU µs/workflow (all)", "Redis CPU µs", "commands/workflow", "script calls"],
      t.endToEnd.map((e) => [
        e.name,
        fmt(e.cost.seconds, 2),
        fmt(e.cost.perSec),
        fmt(e.cost.cpuUs),
        fmt(e.cost.redisCpuUs),
        fmt(e.cost.commands, 1),
        fmt(e.cost.scripts, 2),
      ]),
    ),
    "",
    `Who sends what, per workflow, counted with MONITOR over ${fmt(t.params.censusJobs)} more jobs each (enqueue and drain; plain in ${t.census.plainLayout.processes}×${t.census.plainLayout.concurrency}): commands a process sent (a script call counts as one), script calls among them, and the commands those scripts ran inside Redis:`,
    "",
    table(
      ["system", "process", "sent", "script calls", "run inside scripts", "commands executed"],
      [...census("plain", t.census.plain), ...census("Fairlane", t.census.fair)],
    ),
    "",
    `Tool gate, ${t.gate.callers} concurrent callers in one process: ${fmt(t.gate.uncontendedPairsPerSec)} acquire+release pairs/s when the MCTC never binds, ${fmt(t.gate.contendedPairsPerSec)}/s at MCTC ${t.gate.contendedMctc} (every release hands over to a waiter).`,
    "",
    `Admission (single workflows, ${t.durability.callers} callers): ${fmt(t.durability.everysecPerSec)}/s with appendfsync everysec, ${fmt(t.durability.alwaysPerSec)}/s with always.`,
  ].join("\n");
}
