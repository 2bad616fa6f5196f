import type { LoanResult, LoanRun } from "../scenarios/loan.ts";
import type { OutageResult } from "../scenarios/outage.ts";
import type { ClassLatency, ProcessLoad, StormResult, StormRun } from "../scenarios/storm.ts";
import type { ThroughputResult } from "../scenarios/throughput.ts";
import { fmt } from "./stats.ts";
import { throughputContract, throughputRows, throughputSection } from "./throughputReport.ts";

/** Everything one `npm run bench` measured. */
export interface BenchResults {
  date: string;
  mode: "quick" | "full";
  machine: Record<string, string | number>;
  seconds: number;
  storm?: StormResult;
  loan?: LoanResult;
  throughput?: ThroughputResult;
  outage?: OutageResult;
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;
const classOf = (run: StormRun, which: "baseline" | "storm", cls: string) => run[which].find((t) => t.cls === cls)!;
const p99Ratio = (run: StormRun, cls: string, what: "startMs" | "endToEndMs") =>
  classOf(run, "storm", cls)[what].p99 / classOf(run, "baseline", cls)[what].p99;

/** The `--json` contract (issue 7), plus more detail under each key. */
export function contract(r: BenchResults): Record<string, unknown> {
  const out: Record<string, unknown> = { date: r.date, mode: r.mode, seconds: Math.round(r.seconds) };
  if (r.storm) {
    const { on, off } = r.storm;
    out.storm = {
      downstreamPeakUtilOn: r3(on.downstream.peakUtil),
      downstreamPeakUtilOff: r3(off.downstream.peakUtil),
      classAP99Ratio: r3(p99Ratio(on, "A", "startMs")),
      classAP99RatioOff: r3(p99Ratio(off, "A", "startMs")),
      classAE2eP99Ratio: r3(p99Ratio(on, "A", "endToEndMs")),
      classBE2eP99Ratio: r3(p99Ratio(on, "B", "endToEndMs")),
      classASamples: { baseline: classOf(on, "baseline", "A").startMs.n, storm: classOf(on, "storm", "A").startMs.n },
      classAStartP99Ms: { baseline: r3(classOf(on, "baseline", "A").startMs.p99), storm: r3(classOf(on, "storm", "A").startMs.p99) },
      classAOwnCapFullOn: classOf(on, "storm", "A").ownCapFull ?? null,
      hostCpuBusyStormOn: r3(on.hostCpuBusy.storm),
      classAEndToEndP99Ratio: r3(p99Ratio(on, "A", "endToEndMs")),
      classAEndToEndP99RatioOff: r3(p99Ratio(off, "A", "endToEndMs")),
      classBEndToEndP99Ratio: r3(p99Ratio(on, "B", "endToEndMs")),
      classBEndToEndP99RatioOff: r3(p99Ratio(off, "B", "endToEndMs")),
      batchCompletionSecOn: r3(on.batch.completionSec),
      batchCompletionSecOff: r3(off.batch.completionSec),
      throttledOn: on.throttled,
      batchFailedOn: on.batch.failed,
      batchFailedOff: off.batch.failed,
      scale: r.storm.scale,
    };
  }
  if (r.loan) {
    const { on, off } = r.loan;
    out.loan = {
      slaBreachesOn: on.others.breaches,
      slaBreachesOff: off.others.breaches,
      othersP95MsOn: Math.round(on.others.endToEndMs.p95),
      othersP95MsOff: Math.round(off.others.endToEndMs.p95),
      othersMeanMsOn: Math.round(on.others.endToEndMs.mean),
      othersMeanMsOff: Math.round(off.others.endToEndMs.mean),
      jainOn: r3(on.jain),
      jainOff: r3(off.jain),
      burstCompletionSecOn: r3(on.burst.completionSec),
      burstCompletionSecOff: r3(off.burst.completionSec),
      burstShareOn: r3(on.burstShare),
      burstShareOff: r3(off.burstShare),
      weightedShareMin: r3(r.loan.weighted.worst.share),
      weightedShareMax: r3(r.loan.weighted.shares.max),
      weightedJain: r3(r.loan.weighted.jain),
      weightedOutside10: r.loan.weighted.outside10,
    };
  }
  if (r.throughput) out.throughput = throughputContract(r.throughput);
  if (r.outage) {
    const { on, off } = r.outage;
    out.outage = {
      amplificationOn: r3(on.amplification),
      amplificationOff: r3(off.amplification),
      afterFirstFailurePerWorkflowOn: r3(on.afterFirstFailurePerWorkflow),
      afterFirstFailurePerWorkflowOff: r3(off.afterFirstFailurePerWorkflow),
      inFlightAtFailurePerWorkflowOn: r3(on.inFlightPerWorkflow),
      inFlightAtFailurePerWorkflowOff: r3(off.inFlightPerWorkflow),
      afterFirstFailureMaxPerWorkflowOn: on.afterFirstFailureMaxPerWorkflow ?? null,
      afterFirstFailureLastMsOn: on.afterFirstFailureLastMs ?? null,
      startedAfterObservedPerWorkflowOn: r3(on.startedAfterObservedPerWorkflow),
      startedAfterObservedPerWorkflowOff: r3(off.startedAfterObservedPerWorkflow),
      startedAfterObservedMaxPerWorkflowOn: on.startedAfterObservedMaxPerWorkflow ?? null,
      observedFailureMsOn: r3(on.observedFailureMs),
      probesOn: on.probesDuringOutage,
      completedOn: on.completed,
      completedOff: off.completed,
      failedOff: off.failed,
    };
  }
  return out;
}

type Row = [string, string, string, string];

/** One table over all four scenarios: what, controls off, controls on, the bar it is judged by. */
export function summaryRows(r: BenchResults): Row[] {
  const rows: Row[] = [];
  const pct = (x: number) => `${fmt(x * 100)}%`;
  if (r.storm) {
    const { on, off } = r.storm;
    rows.push([
      "storm: downstream peak utilisation",
      pct(off.downstream.peakUtil),
      pct(on.downstream.peakUtil),
      "seed 000: ≤ 71% on, > 100% off",
    ]);
    rows.push([
      "storm: Class A start p99, storm ÷ no storm",
      `${fmt(p99Ratio(off, "A", "startMs"), 1)}×`,
      `${fmt(p99Ratio(on, "A", "startMs"), 1)}×`,
      "no cross-tenant impact",
    ]);
    rows.push([
      "storm: Class A end-to-end p99, storm ÷ no storm",
      `${fmt(p99Ratio(off, "A", "endToEndMs"), 2)}×`,
      `${fmt(p99Ratio(on, "A", "endToEndMs"), 2)}×`,
      "no cross-tenant impact",
    ]);
    rows.push([
      "storm: Class B end-to-end p99, storm ÷ no storm",
      `${fmt(p99Ratio(off, "B", "endToEndMs"), 2)}×`,
      `${fmt(p99Ratio(on, "B", "endToEndMs"), 2)}×`,
      "no cross-tenant impact",
    ]);
    rows.push([
      "storm: batch completion",
      `${fmt(off.batch.completionSec, 1)} s`,
      `${fmt(on.batch.completionSec, 1)} s`,
      "seed: longer, accepted",
    ]);
    rows.push([
      "storm: THROTTLED signals / batch failures",
      `— / ${off.batch.failed}`,
      `${on.throttled} / ${on.batch.failed}`,
      "agents adapt, none lost",
    ]);
  }
  if (r.loan) {
    const { on, off } = r.loan;
    rows.push([
      "loan: others breaching SLA (p95 > 2× normal)",
      `${off.others.breaches} of ${off.others.tenants}`,
      `${on.others.breaches} of ${on.others.tenants}`,
      "seed 002: 47 → 0",
    ]);
    rows.push([
      "loan: others' mean / p95 end-to-end",
      `${fmt(off.others.endToEndMs.mean)} / ${fmt(off.others.endToEndMs.p95)} ms`,
      `${fmt(on.others.endToEndMs.mean)} / ${fmt(on.others.endToEndMs.p95)} ms`,
      `normal ≈ ${fmt(on.normalMs)} ms`,
    ]);
    rows.push(["loan: Jain's index (1 s slices)", fmt(off.jain, 3), fmt(on.jain, 3), "1 = fair"]);
    rows.push([
      "loan: burst completion",
      `${fmt(off.burst.completionSec, 1)} s`,
      `${fmt(on.burst.completionSec, 1)} s`,
      "capped at 20: longer",
    ]);
    const w = r.loan.weighted;
    rows.push([
      "loan at scale, weights 1/2/4/400: share of fair share, worst / best",
      "–",
      `${fmt(w.worst.share, 3)} / ${fmt(w.shares.max, 3)}`,
      `±10% asked; ${w.outside10} outside`,
    ]);
  }
  if (r.throughput) rows.push(...throughputRows(r.throughput));
  if (r.outage) {
    const { on, off } = r.outage;
    rows.push([
      "outage: calls to the failed dependency per workflow",
      fmt(off.amplification, 1),
      fmt(on.amplification, 1),
      `probes apart: ${on.probesDuringOutage}`,
    ]);
    rows.push([
      "outage: calls started after the first failure a caller saw, per workflow (callers' side)",
      fmt(off.startedAfterObservedPerWorkflow, 2),
      fmt(on.startedAfterObservedPerWorkflow, 2),
      "≤ 1",
    ]);
    rows.push([
      "outage: calls that reached it after its first failed answer, per workflow (its clock)",
      fmt(off.afterFirstFailurePerWorkflow, 2),
      fmt(on.afterFirstFailurePerWorkflow, 2),
      "the same, stamped late by a busy downstream",
    ]);
    rows.push([
      "outage: calls in flight when it failed, per workflow",
      fmt(off.inFlightPerWorkflow, 2),
      fmt(on.inFlightPerWorkflow, 2),
      "could not be avoided",
    ]);
    rows.push([
      "outage: completed after recovery",
      `${off.completed} of ${off.workflows}`,
      `${on.completed} of ${on.workflows}`,
      "none lost",
    ]);
  }
  return rows;
}

export function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

const p99Cell = (d: ClassLatency["startMs"]) => `${fmt(d.p99)} [${fmt(d.p99Low)}–${fmt(d.p99High)}]`;
const latRows = (system: string, ts: ClassLatency[]) =>
  ts.map((t) => [
    system,
    `${t.cls} (${t.tenants.length} tenant${t.tenants.length === 1 ? "" : "s"})`,
    fmt(t.startMs.n),
    fmt(t.startMs.p50),
    fmt(t.startMs.p90),
    p99Cell(t.startMs),
    fmt(t.endToEndMs.p50),
    fmt(t.endToEndMs.p90),
    p99Cell(t.endToEndMs),
    String(t.failed),
  ]);

const stageRows = (phase: string, ts: ClassLatency[]) =>
  ts.flatMap((t) =>
    t.stages
      ? [
          [
            phase,
            t.cls,
            ...[t.stages.queueMs, t.stages.pickupMs, t.stages.startRunToHandlerMs, t.stages.runMs].map(
              (d) => `${fmt(d.p50)} / ${fmt(d.p90)} / ${fmt(d.p99)}`,
            ),
            t.ownCapFull === undefined ? "–" : `${t.ownCapFull} of ${t.startMs.n}`,
          ],
        ]
      : [],
  );

const slowRows = (phase: string, ts: ClassLatency[]) =>
  ts.flatMap((t) =>
    (t.slowest ?? []).map((x) => [
      phase,
      `${fmt(x.atMs / 1000, 2)} s`,
      fmt(x.startMs),
      fmt(x.admitMs),
      fmt(x.queueMs),
      fmt(x.scriptMs),
      fmt(x.pickupMs),
      fmt(x.handlerMs),
    ]),
  );

const loadRows = (system: string, phase: string, ps: ProcessLoad[]) =>
  ps.map((p) => [
    system,
    phase,
    `${p.role} ×${p.processes}`,
    Number.isFinite(p.loop.p99) ? `${fmt(p.loop.p50)} / ${fmt(p.loop.p99)} / ${fmt(p.loop.p99Worst)} / ${fmt(p.loop.max)}` : "–",
    `${fmt(p.runQueueWait * 100)}%`,
  ]);

function stormSection(s: StormResult): string {
  const head = [
    "system",
    "class (tenants)",
    "samples",
    "start p50",
    "start p90",
    "start p99 [95% range]",
    "e2e p50",
    "e2e p90",
    "e2e p99 [95% range]",
    "failed",
  ];
  const d = (x: StormRun) => [
    x.system,
    fmt(x.downstream.capacity),
    fmt(x.downstream.peakInFlight),
    fmt(x.downstream.peakDemand),
    `${fmt(x.downstream.peakUtil * 100)}%`,
    fmt(x.downstream.batchPeakInFlight),
    fmt(x.downstream.requests),
    fmt(x.downstream.logicalCalls),
    fmt(x.downstream.rejected),
  ];
  const b = (x: StormRun) => [
    x.system,
    fmt(x.batch.workflows),
    fmt(x.batch.peakRunning),
    `${fmt(x.batch.completionSec, 1)} s`,
    fmt(x.batch.completed),
    fmt(x.batch.failed),
    fmt(x.batch.reruns),
    fmt(x.throttled),
  ];
  return [
    `## 1. Fan-out storm (seed 000)`,
    "",
    `Parameters: ${JSON.stringify(s.params)}.`,
    "",
    "The other tenants' latency (ms) with no storm (their normal) and during it, every tenant of a class pooled. Start = enqueue→handler start, e2e = enqueue→end, from the producer's clock and the workflows' own start/end log. Quantiles are interpolated; the p99's 95% range is the pair of order statistics it could lie between (its top is the maximum below ~100 samples):",
    "",
    "**No storm**",
    "",
    table(head, [...latRows("off", s.off.baseline), ...latRows("on", s.on.baseline)]),
    "",
    "**During the storm**",
    "",
    table(head, [...latRows("off", s.off.storm), ...latRows("on", s.on.storm)]),
    "",
    "Fairlane's samples split at their record's times (ms, p50 / p90 / p99): waiting in ingress (enqueue→dispatchedAt), pickup from the exec queue (dispatchedAt→startedAt, the worker's startRun), startRun→handler, and the handler's run; and how many Class A samples were enqueued while their own tenant already held its mcaUrgent Class A slots (its own cap, not another tenant, made them wait):",
    "",
    table(
      ["phase", "class", "enqueue→dispatch", "dispatch→start", "start→handler", "run", "own urgent cap full"],
      [...stageRows("no storm", s.on.baseline), ...stageRows("storm", s.on.storm)],
    ),
    "",
    "A p99 over ~200 samples is about the third slowest, and the trickle enqueues its two Class A tenants' agents in the same instant: one slow moment makes it. Fairlane's slowest Class A starts in each phase, when they were enqueued (from the phase's first sample; the storm's batch arrives at 0.5 s) and where their time went (ms; the admission is its call's round trip as the producer saw it; ingress starts at the record's enqueue, the call's start, so it holds the admission's wait up to its script but not its reply; the script's time is Redis's, its run list entry's ID):",
    "",
    table(
      [
        "phase",
        "enqueued at",
        "enqueue→start",
        "admission (call→reply)",
        "ingress (→dispatchedAt)",
        "of it, to the admission's script",
        "pickup (→startedAt)",
        "startRun→handler",
      ],
      [...slowRows("no storm", s.on.baseline), ...slowRows("storm", s.on.storm)],
    ),
    "",
    "Per process role: event-loop delay (ms late per 10 ms timer: median of the processes' p50 / median p99 / worst p99 / longest stall) and the share of the phase a process spent runnable but waiting for a CPU (/proc/<pid>/schedstat):",
    "",
    table(
      ["system", "phase", "role", "loop delay p50 / p99 / worst p99 / max", "run-queue wait"],
      [
        ...loadRows("off", "no storm", s.off.processes.baseline),
        ...loadRows("off", "storm", s.off.processes.storm),
        ...loadRows("on", "no storm", s.on.processes.baseline),
        ...loadRows("on", "storm", s.on.processes.storm),
      ],
    ),
    "",
    "The downstream's own counters (demand = calls in flight plus calls queued for a connection):",
    "",
    table(
      [
        "system",
        "pool",
        "peak in flight",
        "peak demand",
        "peak utilisation",
        "batch tenant peak in flight",
        "requests",
        "calls the agents meant",
        "refused",
      ],
      [d(s.off), d(s.on)],
    ),
    "",
    "The batch:",
    "",
    table(
      ["system", "agents", "peak running at once", "completion", "completed", "failed", "re-runs", "THROTTLED signals"],
      [b(s.off), b(s.on)],
    ),
    "",
    `Machine CPU busy (every process of the run shares the same cores): off ${fmt(s.off.hostCpuBusy.baseline * 100)}% with no storm, ${fmt(s.off.hostCpuBusy.storm * 100)}% during it; on ${fmt(s.on.hostCpuBusy.baseline * 100)}% and ${fmt(s.on.hostCpuBusy.storm * 100)}%.`,
  ].join("\n");
}

function loanSection(l: LoanResult): string {
  const row = (x: LoanRun) => [
    x.system,
    fmt(x.normalMs),
    fmt(x.others.endToEndMs.mean),
    fmt(x.others.endToEndMs.p50),
    fmt(x.others.endToEndMs.p95),
    fmt(x.others.endToEndMs.p99),
    `${x.others.breaches} of ${x.others.tenants}`,
    `${fmt(x.others.perTenantP95.p50)} / ${fmt(x.others.perTenantP95.p95)} / ${fmt(x.others.perTenantP95.max)}`,
    fmt(x.jain, 3),
    `${fmt(x.burst.completionSec, 1)} s`,
    `${fmt(x.burstShare * 100)}%`,
  ];
  return [
    `## 2. Loan-platform burst (seed 002)`,
    "",
    `Parameters: ${JSON.stringify(l.params)}.`,
    "",
    table(
      [
        "system",
        "normal (ms)",
        "others mean",
        "others p50",
        "others p95",
        "others p99",
        "tenants breaching SLA",
        "per-tenant p95: median / p95 / worst",
        "Jain",
        "burst completion",
        "burst's slot share",
      ],
      [row(l.off), row(l.on)],
    ),
    "",
    `### At scale with weights (Fairlane only)`,
    "",
    `Parameters: ${JSON.stringify(l.weighted.params)}. Every institution backlogged over a ${fmt(l.weighted.windowSec, 1)} s window (${fmt(l.weighted.workflows)} workflows), from the observer's start/end times: the three large ones (weighted share above their cap) against their cap, the other 197 against a by-weight split of what the large ones leave.`,
    "",
    table(
      [
        "share: worst",
        "median",
        "p95",
        "best",
        "outside ±10%",
        "Jain of shares",
        "large ones: most running (cap 20), lowest share of their cap",
      ],
      [
        [
          `${fmt(l.weighted.worst.share, 3)} (${l.weighted.worst.tenant})`,
          fmt(l.weighted.shares.p50, 3),
          fmt(l.weighted.shares.p95, 3),
          fmt(l.weighted.shares.max, 3),
          `${l.weighted.outside10} of ${l.weighted.shares.n}`,
          fmt(l.weighted.jain, 4),
          `${l.weighted.largeMaxRunning}, ${fmt(l.weighted.largeCapShare, 3)}`,
        ],
      ],
    ),
  ].join("\n");
}

function outageSection(o: OutageResult): string {
  const row = (x: OutageResult["on"]) => [
    x.system,
    fmt(x.affected),
    fmt(x.callsDuringOutage),
    fmt(x.amplification, 1),
    fmt(x.probesDuringOutage),
    `${x.completed} of ${x.workflows}`,
    fmt(x.failed),
    `${fmt(x.recoverySec, 1)} s`,
  ];
  const split = (x: OutageResult["on"]) => [
    x.system,
    `${fmt(x.inFlightAtFailure)} (${fmt(x.inFlightPerWorkflow, 2)})`,
    fmt(x.beforeFirstFailure),
    `${fmt(x.firstFailureMs)} ms (${x.cut})`,
    `${fmt(x.afterFirstFailure)} (${fmt(x.afterFirstFailurePerWorkflow, 2)})`,
    x.afterFirstFailureMaxPerWorkflow === undefined
      ? "–"
      : `${x.afterFirstFailureMaxPerWorkflow} (${x.workflowsCallingAfterFirstFailure} workflows sent any)`,
    x.afterFirstFailureLastMs === undefined ? "–" : `${fmt(x.afterFirstFailureLastMs)} ms`,
  ];
  const callers = (x: OutageResult["on"]) => [
    x.system,
    `${fmt(x.observedFailureMs)} ms`,
    `${fmt(x.startedAfterObserved)} (${fmt(x.startedAfterObservedPerWorkflow, 2)})`,
    x.startedAfterObservedMaxPerWorkflow === undefined ? "–" : fmt(x.startedAfterObservedMaxPerWorkflow),
  ];
  return [
    `## 4. Backpressure drill`,
    "",
    `Parameters: ${JSON.stringify(o.params)}.`,
    "",
    table(
      [
        "system",
        "affected workflows",
        "calls that reached the failed dependency",
        "per workflow",
        "health probes",
        "completed",
        "failed",
        "last one done after healing",
      ],
      [row(o.off), row(o.on)],
    ),
    "",
    "The same calls by when they reached the dependency, on its own counters and clock: in flight when it failed (they fail as they finish; per affected workflow), arrived after it failed but before its first failed answer, and arrived after that answer (the calls a caller could have held back; per affected workflow). The cut is the downstream's own time of its first failed answer against each call's arrival on its list of its last 1,000 calls, a call in the same millisecond counting as after (exact); where that list overflowed, the last 10 ms poll of its counters that saw no failure, so a call up to 10 ms before it counts as after (poll). The downstream notes a call's arrival when its event loop handles it: on a busy machine a call sent before anyone could know of the failure can be noted tens of ms after it, which the last column shows:",
    "",
    table(
      [
        "system",
        "in flight at failure (per workflow)",
        "before the first failed answer",
        "first failed answer after",
        "after it (per workflow)",
        "most from one workflow after it",
        "the last after it",
      ],
      [split(o.off), split(o.on)],
    ),
    "",
    "The same on the callers' side of the wire (test/bench/lib/callProbe.ts: undici's own events in each calling process, not Fairlane's code): when the first answer ≥ 500 reached a caller (a tool call's or a health probe's), and the tool calls started (their requests handed to a socket) from then until the downstream healed (per affected workflow): the issue's \"calls started after the first observed failure\". A call sent before any caller saw a failure is not among them, however late the downstream noted it:",
    "",
    table(
      ["system", "first failure a caller saw after", "calls started after it (per workflow)", "most from one workflow"],
      [callers(o.off), callers(o.on)],
    ),
  ].join("\n");
}

export function markdown(r: BenchResults): string {
  return [
    `# Fairlane benchmark report (${r.mode} run, ${r.date})`,
    "",
    `Machine: ${Object.entries(r.machine)
      .map(([k, v]) => `${k} ${v}`)
      .join(
        ", ",
      )}. The run took ${fmt(r.seconds)} s. Generated by \`npm run bench\`${r.mode === "quick" ? " -- --quick" : ""}; every figure is from this one run.`,
    "",
    "## Summary",
    "",
    table(["measure", "controls off", "controls on (Fairlane)", "bar"], summaryRows(r)),
    "",
    r.storm ? stormSection(r.storm) : "",
    "",
    r.loan ? loanSection(r.loan) : "",
    "",
    r.throughput ? throughputSection(r.throughput) : "",
    "",
    r.outage ? outageSection(r.outage) : "",
    "",
  ].join("\n");
}
