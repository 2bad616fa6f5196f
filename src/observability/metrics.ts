import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/**
 * Prometheus metrics (prom-client), one registry per process. The api role
 * serves it at /metrics; other roles at FAIRLANE_METRICS_PORT when set.
 * Labels: `tenant` on per-tenant series (one series per tenant per outcome:
 * bounded by the tenant count), never workflow ids or payload values.
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: "fairlane_process_" });

const tenant = ["tenant"] as const;

let gateDepthSource: (() => Promise<Map<string, number>>) | undefined;
/** The exec role tells the gate-queue-depth gauge where to read from. */
export function setGateQueueDepthSource(fn: () => Promise<Map<string, number>>): void {
  gateDepthSource = fn;
}

export const metrics = {
  toolCalls: new Counter({
    name: "fairlane_tool_calls_total",
    help: "Tool calls by outcome: ok, THROTTLED, RATE_LIMITED, DEADLINE_EXCEEDED, BUDGET_EXCEEDED, TOOL_NOT_ALLOWED, TOOL_ERROR, ABORTED",
    labelNames: ["tenant", "outcome"] as const,
    registers: [registry],
  }),
  toolCallsInFlight: new Gauge({ name: "fairlane_tool_calls_in_flight", help: "Tool calls holding a gate permit in this process", labelNames: tenant, registers: [registry] }),
  toolCallCeiling: new Gauge({ name: "fairlane_tool_call_ceiling", help: "The tenant's mctc (Max Concurrent Tool Calls)", labelNames: tenant, registers: [registry] }),
  gateWait: new Histogram({
    name: "fairlane_tool_gate_wait_seconds",
    help: "Time a tool call waited for a gate permit (granted or not)",
    labelNames: tenant,
    buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 1, 2, 5, 10, 30],
    registers: [registry],
  }),
  deadlinePhase: new Counter({
    name: "fairlane_deadline_budget_seconds_total",
    help: "Deadline budget consumed, by phase: queue_wait (enqueue to start), gate_wait (tool-gate permits), tool (tool calls running)",
    labelNames: ["tenant", "phase"] as const,
    registers: [registry],
  }),
  deadlineExpired: new Counter({
    name: "fairlane_deadline_expired_total",
    help: "Workflows that ended DEADLINE_EXCEEDED, by tier and where: queued (never started) or running",
    labelNames: ["tier", "where"] as const,
    registers: [registry],
  }),
  orphanedCalls: new Counter({ name: "fairlane_orphaned_tool_calls_total", help: "Tool calls still running when their workflow ended (must stay 0)", registers: [registry] }),
  runs: new Counter({ name: "fairlane_workflow_runs_total", help: "Workflow runs by class and outcome", labelNames: ["tenant", "class", "outcome"] as const, registers: [registry] }),
  preemptionsIgnored: new Gauge({ name: "fairlane_preemptions_ignored", help: "Preemption requests older than 5 s whose workflow has not yielded", registers: [registry] }),
  dispatched: new Counter({ name: "fairlane_dispatched_total", help: "Workflows moved from ingress to exec", registers: [registry] }),
  parkedTotal: new Counter({
    name: "fairlane_parked_total",
    help: "Workflows parked (pending-backpressure), by dependency and where: run (a call failed) or dispatch (held back)",
    labelNames: ["dependency", "where"] as const,
    registers: [registry],
  }),
  recoveredTotal: new Counter({
    name: "fairlane_recovered_total",
    help: "Parked workflows that left the parked queue, by dependency and outcome: requeued or expired",
    labelNames: ["dependency", "outcome"] as const,
    registers: [registry],
  }),
  parked: new Gauge({ name: "fairlane_parked", help: "Workflows parked now, by dependency", labelNames: ["dependency"] as const, registers: [registry] }),
  parkedByTenant: new Gauge({ name: "fairlane_parked_by_tenant", help: "Workflows parked now, by tenant (refreshed every 5 s)", labelNames: tenant, registers: [registry] }),
  timeParked: new Histogram({
    name: "fairlane_time_parked_seconds",
    help: "How long requeued workflows were parked",
    labelNames: ["dependency"] as const,
    buckets: [1, 5, 15, 60, 300, 900, 3600],
    registers: [registry],
  }),
  gateQueueDepth: new Gauge({
    name: "fairlane_tool_gate_queue_depth",
    help: "Tool calls waiting for a gate permit, per tenant (read from Redis at scrape)",
    labelNames: tenant,
    registers: [registry],
    async collect() {
      if (!gateDepthSource) return;
      this.reset();
      for (const [t, n] of await gateDepthSource().catch(() => new Map<string, number>())) this.set({ tenant: t }, n);
    },
  }),
  dependencyState: new Gauge({
    name: "fairlane_dependency_state",
    help: "Dependency health as the monitor last wrote it: 2 healthy, 1 degraded, 0 down",
    labelNames: ["dependency"] as const,
    registers: [registry],
  }),
};
