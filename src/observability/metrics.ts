import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { tenantLabel, tenantLabels } from "./tenantLabel.ts";

/**
 * Prometheus metrics (prom-client), one registry per process: *events*,
 * recorded where they happen (admission, dispatch, run, tool call). The api
 * role serves it at /metrics; other roles at FAIRLANE_METRICS_PORT when set
 * (src/observability/metricsEndpoint.ts). Per-tenant *state* (running vs mca,
 * queued, parked, at cap, pool use) is read from Redis at scrape by
 * usageMetrics.ts. docs/observability.md lists every metric.
 *
 * Cardinality: a `tenant` label value always comes from tenantLabel(), so at
 * most FAIRLANE_METRICS_MAX_TENANTS tenants (+ `_other_<tier>`) have series;
 * every other label has a fixed, small set of values (class, outcome code,
 * tier, phase, pool, dependency). Never workflow ids or payload values.
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: "fairlane_process_" });

const tenant = ["tenant"] as const;

let gateDepthSource: (() => Promise<Map<string, number>>) | undefined;
/** The exec role tells the gate-queue-depth gauge where to read from. */
export function setGateQueueDepthSource(fn: () => Promise<Map<string, number>>): void {
  gateDepthSource = fn;
}

let reviewDepthSource: (() => Promise<{ pool: string; tenant: string; cls: string; waiting: number }[]>) | undefined;
/** The api role tells the reviewer-queue-depth gauge where to read from (src/workflows/reviewQueues.ts). */
export function setReviewDepthSource(fn: typeof reviewDepthSource): void {
  reviewDepthSource = fn;
}

/** Enqueue→start for the Class A p99 alert: fine buckets around the target (deploy/prometheus/alerts.yml). */
const LATENCY_FINE = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900];
/** Per-tenant histograms: few buckets, since every bucket is a series per labelled tenant. */
const LATENCY_COARSE = [0.01, 0.1, 0.5, 2.5, 10, 60, 300];
const POOL_WAIT = [0.005, 0.025, 0.1, 0.5, 2.5, 10];

const parkedByTenantGauge = new Gauge({
  name: "fairlane_parked_by_tenant",
  help: "Workflows parked now, by tenant (refreshed every 5 s by the recovery role)",
  labelNames: tenant,
  registers: [registry],
});

export const metrics = {
  // --- admission (api role) ---
  admissions: new Counter({
    name: "fairlane_admissions_total",
    help: "Workflow admissions by outcome: accepted (202), duplicate (200, idempotent replay), backpressure_tenant / backpressure_platform (429), budget_exceeded (402), invalid (400; class none)",
    labelNames: ["tenant", "class", "outcome"] as const,
    registers: [registry],
  }),
  // --- dispatch (dispatcher role) ---
  dispatched: new Counter({
    name: "fairlane_dispatched_total",
    help: "Workflows moved from ingress to exec, by pool",
    labelNames: ["pool"] as const,
    registers: [registry],
  }),
  dispatchSeconds: new Histogram({
    name: "fairlane_dispatch_seconds",
    help: "Duration of one dispatch script call (decide and move up to FAIRLANE_DISPATCH_BATCH workflows)",
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
    registers: [registry],
  }),
  preempted: new Counter({
    name: "fairlane_preempted_total",
    help: "Class C workflows asked to yield to Class A, by pool",
    labelNames: ["pool"] as const,
    registers: [registry],
  }),
  reconciled: new Counter({
    name: "fairlane_reconciled_slots_total",
    help: "Slot leases the reconciler released because their run was gone",
    registers: [registry],
  }),
  preemptionsIgnored: new Gauge({
    name: "fairlane_preemptions_ignored",
    help: "Preemption requests older than 5 s whose workflow has not yielded",
    registers: [registry],
  }),
  // --- runs (exec role) ---
  enqueueToStart: new Histogram({
    name: "fairlane_enqueue_to_start_seconds",
    help: "Admission to first start of a workflow, by class (a run resumed after preemption, parking or a crash is not counted again)",
    labelNames: ["class"] as const,
    buckets: LATENCY_FINE,
    registers: [registry],
  }),
  enqueueToStartByTenant: new Histogram({
    name: "fairlane_enqueue_to_start_by_tenant_seconds",
    help: "Admission to first start, by tenant (bounded label) and class; coarse buckets",
    labelNames: ["tenant", "class"] as const,
    buckets: LATENCY_COARSE,
    registers: [registry],
  }),
  poolWait: new Histogram({
    name: "fairlane_pool_wait_seconds",
    help: "Dispatched to started: time a moved workflow waited in the exec queue for a worker, by tenant (bounded label)",
    labelNames: tenant,
    buckets: POOL_WAIT,
    registers: [registry],
  }),
  runSeconds: new Histogram({
    name: "fairlane_workflow_run_seconds",
    help: "Duration of one run (start to end or hand-back), by class",
    labelNames: ["class"] as const,
    buckets: [0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 900],
    registers: [registry],
  }),
  runs: new Counter({
    name: "fairlane_workflow_runs_total",
    help: "Workflow runs by class and outcome: completed, parked, or the error code (CANCELLED, DEADLINE_EXCEEDED, WORKFLOW_ERROR, ...)",
    labelNames: ["tenant", "class", "outcome"] as const,
    registers: [registry],
  }),
  deadlineExpired: new Counter({
    name: "fairlane_deadline_expired_total",
    help: "Workflows that ended DEADLINE_EXCEEDED, by tier and where: queued (never started) or running; tier any = expired by the dispatcher, whose script reports counts only",
    labelNames: ["tier", "where"] as const,
    registers: [registry],
  }),
  deadlinePhase: new Counter({
    name: "fairlane_deadline_budget_seconds_total",
    help: "Deadline budget consumed, by phase: queue_wait (enqueue to start), gate_wait (tool-gate permits), tool (tool calls running)",
    labelNames: ["tenant", "phase"] as const,
    registers: [registry],
  }),
  orphanedCalls: new Counter({
    name: "fairlane_orphaned_tool_calls_total",
    help: "Tool calls still running when their workflow ended (must stay 0)",
    registers: [registry],
  }),
  // --- tool calls (exec role, runtime) ---
  toolCalls: new Counter({
    name: "fairlane_tool_calls_total",
    help: "Tool calls by outcome: ok, THROTTLED, RATE_LIMITED, DEADLINE_EXCEEDED, BUDGET_EXCEEDED, TOOL_NOT_ALLOWED, TOOL_ERROR, ABORTED, UNKNOWN_TOOL, PARKED",
    labelNames: ["tenant", "outcome"] as const,
    registers: [registry],
  }),
  execBatchLimit: new Gauge({
    name: "fairlane_exec_batch_limit",
    help: "How many of this exec process's slots Class C may take now: lowered while its event loop lags (FAIRLANE_EXEC_LAG_TARGET_MS)",
    registers: [registry],
  }),
  toolCallsInFlight: new Gauge({
    name: "fairlane_tool_calls_in_flight",
    help: "Tool calls holding a gate permit in this process",
    labelNames: tenant,
    registers: [registry],
  }),
  toolCallCeiling: new Gauge({
    name: "fairlane_tool_call_ceiling",
    help: "The tenant's mctc (Max Concurrent Tool Calls); tenants with their own label only",
    labelNames: tenant,
    registers: [registry],
  }),
  gateWait: new Histogram({
    name: "fairlane_tool_gate_wait_seconds",
    help: "Time a tool call waited for a gate permit (granted or not)",
    labelNames: tenant,
    buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 1, 2, 5, 10, 30],
    registers: [registry],
  }),
  gateQueueDepth: new Gauge({
    name: "fairlane_tool_gate_queue_depth",
    help: "Tool calls waiting for a gate permit, per tenant (read from Redis at scrape)",
    labelNames: tenant,
    registers: [registry],
    async collect() {
      if (!gateDepthSource) return;
      const depths = await gateDepthSource().catch(() => new Map<string, number>());
      this.reset();
      const byLabel = new Map<string, number>();
      for (const [t, n] of depths) byLabel.set(tenantLabel(t), (byLabel.get(tenantLabel(t)) ?? 0) + n);
      for (const [t, n] of byLabel) this.set({ tenant: t }, n);
    },
  }),
  // --- human review (api role reads the queues; dispatcher times them out) ---
  reviewQueueDepth: new Gauge({
    name: "fairlane_review_queue_depth",
    help: "Review items waiting for a reviewer, by reviewer pool, tenant and class (read from Redis at scrape)",
    labelNames: ["pool", "tenant", "class"] as const,
    registers: [registry],
    async collect() {
      if (!reviewDepthSource) return;
      const rows = await reviewDepthSource().catch(() => []);
      this.reset();
      for (const r of rows) this.inc({ pool: r.pool, tenant: tenantLabel(r.tenant), class: r.cls }, r.waiting);
    },
  }),
  reviewTimeouts: new Counter({
    name: "fairlane_review_timeouts_total",
    help: "Review items past their SLA or their workflow's deadline, by outcome: escalated or failed",
    labelNames: ["outcome"] as const,
    registers: [registry],
  }),
  // --- backpressure (exec, dispatcher, recovery, health roles) ---
  parkedTotal: new Counter({
    name: "fairlane_parked_total",
    help: "Workflows parked (pending-backpressure), by dependency and where: run (a call failed) or dispatch (held back; dependency any)",
    labelNames: ["dependency", "where"] as const,
    registers: [registry],
  }),
  recoveredTotal: new Counter({
    name: "fairlane_recovered_total",
    help: "Parked workflows that left the parked queue, by dependency and outcome: requeued or expired",
    labelNames: ["dependency", "outcome"] as const,
    registers: [registry],
  }),
  parked: new Gauge({
    name: "fairlane_parked",
    help: "Workflows parked now, by dependency",
    labelNames: ["dependency"] as const,
    registers: [registry],
  }),
  /**
   * Refreshed whole (reset, then set per tenant): tenants without their own
   * label add up into their `_other_<tier>` series.
   */
  parkedByTenant: {
    reset: () => parkedByTenantGauge.reset(),
    set(labels: { tenant: string }, n: number) {
      const t = tenantLabel(labels.tenant);
      if (t === labels.tenant) parkedByTenantGauge.set({ tenant: t }, n);
      else parkedByTenantGauge.inc({ tenant: t }, n);
    },
  },
  timeParked: new Histogram({
    name: "fairlane_time_parked_seconds",
    help: "How long requeued workflows were parked",
    labelNames: ["dependency"] as const,
    buckets: [1, 5, 15, 60, 300, 900, 3600],
    registers: [registry],
  }),
  dependencyState: new Gauge({
    name: "fairlane_dependency_state",
    help: "Dependency health as the monitor last wrote it: 2 healthy, 1 degraded, 0 down",
    labelNames: ["dependency"] as const,
    registers: [registry],
  }),
  // --- the bound itself ---
  labelledTenants: new Gauge({
    name: "fairlane_metrics_labelled_tenants",
    help: "Tenants with their own tenant label value in this process (cap: FAIRLANE_METRICS_MAX_TENANTS); the rest are _other_<tier>",
    registers: [registry],
    aggregator: "max", // npm start's /metrics adds its exec processes' (metricsRelay.ts): each has its own labels
    collect() {
      this.set(tenantLabels.labelled);
    },
  }),
};

/** Every metric with a `tenant` label: the cardinality test and series removal walk these. */
export const TENANT_METRICS = [
  metrics.admissions,
  metrics.enqueueToStartByTenant,
  metrics.poolWait,
  metrics.runs,
  metrics.deadlinePhase,
  metrics.toolCalls,
  metrics.toolCallsInFlight,
  metrics.toolCallCeiling,
  metrics.gateWait,
  metrics.gateQueueDepth,
  parkedByTenantGauge,
] as const;

// A tenant that loses its own label (the registry ranked others above it) loses its series,
// so a long-running process stays within the bound; its later events count under _other_<tier>.
tenantLabels.onDemoted((demoted) => {
  const gone = new Set(demoted);
  for (const m of TENANT_METRICS) {
    void (async () => {
      const seen = new Set<string>();
      for (const v of (await m.get()).values) {
        if (!gone.has(String(v.labels.tenant))) continue;
        const { le: _le, ...labels } = v.labels as Record<string, string | number>;
        const key = JSON.stringify(labels);
        if (seen.has(key)) continue;
        seen.add(key);
        (m as unknown as { remove(l: Record<string, string | number>): void }).remove(labels);
      }
    })().catch(() => undefined);
  }
});
