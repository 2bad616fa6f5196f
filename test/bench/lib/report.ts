import type { LoanResult, LoanRun } from "../scenarios/loan.ts";
import type { OutageResult } from "../scenarios/outage.ts";
import type { StormResult, StormRun, TenantLatency } from "../scenarios/storm.ts";
import type { ThroughputResult } from "../scenarios/throughput.ts";
import { fmt } from "./stats.ts";

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
const tenantOf = (run: StormRun, which: "baseline" | "storm", cls: string) => run[which].find((t) => t.cls === cls)!;
const p99Ratio = (run: StormRun, cls: string, what: "startMs" | "endToEndMs") => tenantOf(run, "storm", cls)[what].p99 / tenantOf(run, "baseline", cls)[what].p99;

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
  if (r.throughput) {
    const t = r.throughput;
    const [plain, ...fair] = t.phases;
    const at = (n: number) => fair.find((f) => f.tenants === n)?.perSec ?? NaN;
    out.throughput = {
      fairVsPlain: r3(at(10) / plain!.perSec),
      tenants1kVs10: r3(at(1000) / at(10)),
      tenants10kVs10: r3(at(10_000) / at(10)),
      redisBytesPerQueuedVsPlain: r3(t.memory.fairBytesPerWorkflow / t.memory.plainBytesPerJob),
      perSec: Object.fromEntries(t.phases.map((p) => [p.tenants === 1 ? "plain" : `fair${p.tenants}`, Math.round(p.perSec)])),
      gatePairsPerSec: Math.round(t.gate.uncontendedPairsPerSec),
      gateContendedPairsPerSec: Math.round(t.gate.contendedPairsPerSec),
      admissionAlwaysVsEverysec: r3(t.durability.alwaysPerSec / t.durability.everysecPerSec),
    };
  }
  if (r.outage) {
    const { on, off } = r.outage;
    out.outage = {
      amplificationOn: r3(on.amplification),
      amplificationOff: r3(off.amplification),
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
    rows.push(["storm: downstream peak utilisation", pct(off.downstream.peakUtil), pct(on.downstream.peakUtil), "seed 000: ≤ 71% on, > 100% off"]);
    rows.push(["storm: Class A start p99, storm ÷ no storm", `${fmt(p99Ratio(off, "A", "startMs"), 1)}×`, `${fmt(p99Ratio(on, "A", "startMs"), 1)}×`, "no cross-tenant impact"]);
    rows.push(["storm: Class A end-to-end p99, storm ÷ no storm", `${fmt(p99Ratio(off, "A", "endToEndMs"), 2)}×`, `${fmt(p99Ratio(on, "A", "endToEndMs"), 2)}×`, "no cross-tenant impact"]);
    rows.push(["storm: Class B end-to-end p99, storm ÷ no storm", `${fmt(p99Ratio(off, "B", "endToEndMs"), 2)}×`, `${fmt(p99Ratio(on, "B", "endToEndMs"), 2)}×`, "no cross-tenant impact"]);
    rows.push(["storm: batch completion", `${fmt(off.batch.completionSec, 1)} s`, `${fmt(on.batch.completionSec, 1)} s`, "seed: longer, accepted"]);
    rows.push(["storm: THROTTLED signals / batch failures", `— / ${off.batch.failed}`, `${on.throttled} / ${on.batch.failed}`, "agents adapt, none lost"]);
  }
  if (r.loan) {
    const { on, off } = r.loan;
    rows.push(["loan: others breaching SLA (p95 > 2× normal)", `${off.others.breaches} of ${off.others.tenants}`, `${on.others.breaches} of ${on.others.tenants}`, "seed 002: 47 → 0"]);
    rows.push(["loan: others' mean / p95 end-to-end", `${fmt(off.others.endToEndMs.mean)} / ${fmt(off.others.endToEndMs.p95)} ms`, `${fmt(on.others.endToEndMs.mean)} / ${fmt(on.others.endToEndMs.p95)} ms`, `normal ≈ ${fmt(on.normalMs)} ms`]);
    rows.push(["loan: Jain's index (1 s slices)", fmt(off.jain, 3), fmt(on.jain, 3), "1 = fair"]);
    rows.push(["loan: burst completion", `${fmt(off.burst.completionSec, 1)} s`, `${fmt(on.burst.completionSec, 1)} s`, "capped at 20: longer"]);
    const w = r.loan.weighted;
    rows.push(["loan at scale, weights 1/2/4/400: share of fair share, worst / best", "–", `${fmt(w.worst.share, 3)} / ${fmt(w.shares.max, 3)}`, `±10% asked; ${w.outside10} outside`]);
  }
  if (r.throughput) {
    const c = contract(r).throughput as Record<string, number>;
    const t = r.throughput;
    rows.push(["throughput: no-op jobs/s (10 tenants vs plain)", fmt(t.phases[0]!.perSec), fmt(t.phases.find((p) => p.tenants === 10)?.perSec), `ratio ${fmt(c.fairVsPlain, 2)} (target 0.8)`]);
    rows.push(["throughput: 10,000 tenants ÷ 10 tenants", "", fmt(c.tenants10kVs10, 2), "target 0.9"]);
    rows.push(["memory: bytes per queued workflow", fmt(t.memory.plainBytesPerJob), fmt(t.memory.fairBytesPerWorkflow), `ratio ${fmt(c.redisBytesPerQueuedVsPlain, 2)}`]);
    rows.push(["tool gate: acquire+release pairs/s", "", `${fmt(t.gate.uncontendedPairsPerSec)} (${fmt(t.gate.contendedPairsPerSec)} contended)`, `${t.gate.callers} callers`]);
    rows.push(["admission/s: appendfsync everysec vs always", fmt(t.durability.everysecPerSec), fmt(t.durability.alwaysPerSec), `always costs ${fmt((1 - c.admissionAlwaysVsEverysec!) * 100)}%`]);
  }
  if (r.outage) {
    const { on, off } = r.outage;
    rows.push(["outage: calls to the failed dependency per workflow", fmt(off.amplification, 1), fmt(on.amplification, 1), `probes apart: ${on.probesDuringOutage}`]);
    rows.push(["outage: completed after recovery", `${off.completed} of ${off.workflows}`, `${on.completed} of ${on.workflows}`, "none lost"]);
  }
  return rows;
}

export function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

const latRows = (system: string, ts: TenantLatency[]) =>
  ts.map((t) => [system, `${t.tenant} (${t.cls})`, ...(["startMs", "endToEndMs"] as const).flatMap((k) => [fmt(t[k].p50), fmt(t[k].p95), fmt(t[k].p99)]), String(t.failed)]);

function stormSection(s: StormResult): string {
  const head = ["system", "tenant (class)", "start p50", "start p95", "start p99", "e2e p50", "e2e p95", "e2e p99", "failed"];
  const d = (x: StormRun) => [x.system, fmt(x.downstream.capacity), fmt(x.downstream.peakInFlight), fmt(x.downstream.peakDemand), `${fmt(x.downstream.peakUtil * 100)}%`, fmt(x.downstream.batchPeakInFlight), fmt(x.downstream.requests), fmt(x.downstream.logicalCalls), fmt(x.downstream.rejected)];
  const b = (x: StormRun) => [x.system, fmt(x.batch.workflows), fmt(x.batch.peakRunning), `${fmt(x.batch.completionSec, 1)} s`, fmt(x.batch.completed), fmt(x.batch.failed), fmt(x.batch.reruns), fmt(x.throttled)];
  return [
    `## 1. Fan-out storm (seed 000)`,
    "",
    `Parameters: ${JSON.stringify(s.params)}.`,
    "",
    "The other tenants' latency (ms) with no storm (their normal) and during it. Start = enqueue→start, e2e = enqueue→end, from the workflows' own timestamps:",
    "",
    "**No storm**",
    "",
    table(head, [...latRows("off", s.off.baseline), ...latRows("on", s.on.baseline)]),
    "",
    "**During the storm**",
    "",
    table(head, [...latRows("off", s.off.storm), ...latRows("on", s.on.storm)]),
    "",
    "The downstream's own counters (demand = calls in flight plus calls queued for a connection):",
    "",
    table(["system", "pool", "peak in flight", "peak demand", "peak utilisation", "batch tenant peak in flight", "requests", "calls the agents meant", "refused"], [d(s.off), d(s.on)]),
    "",
    "The batch:",
    "",
    table(["system", "agents", "peak running at once", "completion", "completed", "failed", "re-runs", "THROTTLED signals"], [b(s.off), b(s.on)]),
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
      ["system", "normal (ms)", "others mean", "others p50", "others p95", "others p99", "tenants breaching SLA", "per-tenant p95: median / p95 / worst", "Jain", "burst completion", "burst's slot share"],
      [row(l.off), row(l.on)],
    ),
    "",
    `### At scale with weights (Fairlane only)`,
    "",
    `Parameters: ${JSON.stringify(l.weighted.params)}. Every institution backlogged over a ${fmt(l.weighted.windowSec, 1)} s window (${fmt(l.weighted.workflows)} workflows), from the observer's start/end times: the three large ones (weighted share above their cap) against their cap, the other 197 against a by-weight split of what the large ones leave.`,
    "",
    table(
      ["share: worst", "median", "p95", "best", "outside ±10%", "Jain of shares", "large ones: most running (cap 20), lowest share of their cap"],
      [[`${fmt(l.weighted.worst.share, 3)} (${l.weighted.worst.tenant})`, fmt(l.weighted.shares.p50, 3), fmt(l.weighted.shares.p95, 3), fmt(l.weighted.shares.max, 3), `${l.weighted.outside10} of ${l.weighted.shares.n}`, fmt(l.weighted.jain, 4), `${l.weighted.largeMaxRunning}, ${fmt(l.weighted.largeCapShare, 3)}`]],
    ),
  ].join("\n");
}

function throughputSection(t: ThroughputResult): string {
  return [
    `## 3. Throughput and scale`,
    "",
    `${fmt(t.params.jobs)} no-op jobs per run, ${t.params.workers} worker processes × ${t.params.concurrency}.`,
    "",
    table(
      ["run", "seconds", "jobs/s", "CPU µs/job (all)", "Redis CPU µs/job", "Redis calls/job", "top Redis commands"],
      t.phases.map((p) => [p.name, fmt(p.seconds, 2), fmt(p.perSec), fmt(p.cpuPerJobUs), fmt(p.redisCpuPerJobUs), fmt(p.callsPerJob, 1), p.top]),
    ),
    "",
    `Redis memory per queued workflow (${fmt(t.memory.workflows)} queued, ${t.memory.payloadBytes}-byte payload): plain BullMQ job ${fmt(t.memory.plainBytesPerJob)} B, Fairlane workflow ${fmt(t.memory.fairBytesPerWorkflow)} B (ingress job + workflow record).`,
    "",
    `Tool gate, ${t.gate.callers} concurrent callers in one process: ${fmt(t.gate.uncontendedPairsPerSec)} acquire+release pairs/s when the MCTC never binds, ${fmt(t.gate.contendedPairsPerSec)}/s at MCTC ${t.gate.contendedMctc} (every release hands over to a waiter).`,
    "",
    `Admission (single workflows, ${t.durability.callers} callers): ${fmt(t.durability.everysecPerSec)}/s with appendfsync everysec, ${fmt(t.durability.alwaysPerSec)}/s with always.`,
  ].join("\n");
}

function outageSection(o: OutageResult): string {
  const row = (x: OutageResult["on"]) => [x.system, fmt(x.affected), fmt(x.callsDuringOutage), fmt(x.amplification, 1), fmt(x.probesDuringOutage), `${x.completed} of ${x.workflows}`, fmt(x.failed), `${fmt(x.recoverySec, 1)} s`];
  return [
    `## 4. Backpressure drill`,
    "",
    `Parameters: ${JSON.stringify(o.params)}.`,
    "",
    table(["system", "affected workflows", "calls that reached the failed dependency", "per workflow", "health probes", "completed", "failed", "last one done after healing"], [row(o.off), row(o.on)]),
  ].join("\n");
}

export function markdown(r: BenchResults): string {
  return [
    `# Fairlane benchmark report (${r.mode} run, ${r.date})`,
    "",
    `Machine: ${Object.entries(r.machine).map(([k, v]) => `${k} ${v}`).join(", ")}. The run took ${fmt(r.seconds)} s. Generated by \`npm run bench\`${r.mode === "quick" ? " -- --quick" : ""}; every figure is from this one run.`,
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
