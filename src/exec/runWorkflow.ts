import { randomUUID } from "node:crypto";
import { context, SpanKind, trace, type Context } from "@opentelemetry/api";
import { WaitingError, type Job } from "bullmq";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { CellKeys } from "../../queues/keys.ts";
import { parkRun } from "../../queues/lua/parking.ts";
import { finishRun, requeueRun, startRun, type FinishInput } from "../../queues/lua/runLifecycle.ts";
import type { IngressJobData } from "../admission/admit.ts";
import type { Clock } from "../lib/clock.ts";
import type { RuntimePolicy } from "../tenancy/policy.ts";
import { metrics } from "../observability/metrics.ts";
import { tenantLabel } from "../observability/tenantLabel.ts";
import { ATTR, contextFromTraceparent, endSpan, tracer } from "../observability/tracing.ts";
import { createContext } from "../runtime/context.ts";
import type { HealthCache } from "../backpressure/healthCache.ts";
import type { TenantBudget } from "../runtime/budget.ts";
import type { CpuPool } from "../runtime/cpuPool.ts";
import type { TenantRateLimits } from "../runtime/rateLimit.ts";
import type { ToolGate } from "../runtime/toolGate.ts";
import { workflowHandler, type AbortReason } from "../workflows/registry.ts";

export interface RunDeps {
  redis: Redis;
  clock: Clock;
  log: Logger;
  pool: string;
  workerId: string;
  recordTtlSec: number;
  /** Running workflows of this process, so signals (preempt, cancel) can reach them. */
  running: Map<string, AbortController>;
  gate: ToolGate;
  rateLimits: TenantRateLimits;
  budget: TenantBudget;
  modelUrl: string;
  cpu?: CpuPool;
  health?: HealthCache;
  onOutcome?: (cell: string, dep: string, ok: boolean, overloaded: boolean) => void;
  /** Tool calls still running when their workflow ended (must stay 0). */
  onOrphans?: (n: number) => void;
  /**
   * The tenant's policy now (the process's live registry), so an operator's change of mctc, budgets
   * or allowed tools reaches workflows already queued or running; undefined: the admission snapshot.
   */
  livePolicy?: (tenant: string) => RuntimePolicy | undefined;
}

/**
 * One run of one workflow on an exec worker. States:
 *   start     startRun decides atomically: run, or end/hand back at once
 *             (already ended, cancelled, expired, asked to yield, no slot)
 *   run       the handler, with an AbortSignal that fires at the deadline,
 *             on cancel, on preemption and on shutdown
 *   finish    completed / failed with a reason / cancelled: finishRun
 *             records it and releases the slot, once
 *   hand back preempted or shut down: requeueRun puts it at the head of its
 *             ingress queue with its attempt given back, then WaitingError
 *             tells BullMQ to leave the job alone
 * Every outcome but hand back returns normally, so BullMQ completes and
 * removes the exec job; the workflow record keeps the outcome.
 */
/** Error codes a handler may throw to end its workflow with that code rather than WORKFLOW_ERROR. */
const RUNTIME_CODES = new Set(["DEADLINE_EXCEEDED", "BUDGET_EXCEEDED", "RATE_LIMITED", "TOOL_NOT_ALLOWED", "THROTTLED"]);

/**
 * The run in a `fairlane.workflow.run` span, a child of the context admission
 * stored with the workflow (the producer's trace), ended with its outcome.
 */
export async function runWorkflow(d: RunDeps, cellName: string, cell: CellKeys, job: Job, token: string): Promise<unknown> {
  const data = job.data as IngressJobData;
  const span = tracer.startSpan(
    "fairlane.workflow.run",
    { kind: SpanKind.CONSUMER, attributes: { [ATTR.tenant]: data.tenant, [ATTR.cls]: data.class, [ATTR.workflowId]: job.id!, [ATTR.type]: data.type } },
    contextFromTraceparent(data.traceparent),
  );
  const outcome: RunOutcome = {};
  try {
    // Passed down as well as made active: without an SDK's context manager nothing is "active".
    const runCtx = trace.setSpan(context.active(), span);
    return await context.with(runCtx, () => runIn(d, cellName, cell, job, token, runCtx, outcome));
  } catch (err) {
    outcome.value ??= err instanceof WaitingError ? "handed_back" : "error";
    throw err;
  } finally {
    endSpan(span, outcome.error, { "fairlane.outcome": outcome.value ?? "unknown" });
  }
}

interface RunOutcome {
  value?: string;
  /** An error code: the span's status is ERROR. */
  error?: string;
}

async function runIn(d: RunDeps, cellName: string, cell: CellKeys, job: Job, token: string, runCtx: Context, outcome: RunOutcome): Promise<unknown> {
  const span = trace.getSpan(runCtx)!;
  const id = job.id!;
  const data = job.data as IngressJobData;
  const runId: string = randomUUID();
  const tenant = tenantLabel(data.tenant, data.policy.tier); // once per run: inc and dec use the same series
  const log = () => d.log.child({ tenant: data.tenant, workflowId: id, class: data.class });
  let startedAt: number | undefined;
  const finish = (f: Omit<FinishInput, "id" | "now" | "runId" | "recordTtlSec">, run = runId) => {
    outcome.value = f.error?.code ?? f.state;
    if (f.state === "failed") outcome.error = f.error?.code;
    metrics.runs.inc({ tenant, class: data.class, outcome: outcome.value });
    if (startedAt !== undefined) metrics.runSeconds.observe({ class: data.class }, (d.clock.now() - startedAt) / 1000);
    if (f.error?.code === "DEADLINE_EXCEEDED") metrics.deadlineExpired.inc({ tier: data.policy.tier, where: run === "" ? "queued" : "running" });
    return finishRun(d.redis, cell, { id, now: d.clock.now(), runId: run, recordTtlSec: d.recordTtlSec, ...f });
  };
  const handBack = async (reason: string, started: boolean): Promise<never> => {
    outcome.value = reason;
    if (startedAt !== undefined) metrics.runSeconds.observe({ class: data.class }, (d.clock.now() - startedAt) / 1000);
    const r = await requeueRun(d.redis, cell, d.pool, { id, now: d.clock.now(), token, reason, started });
    log().info({ reason, outcome: r }, "handed back to ingress");
    throw new WaitingError();
  };

  const start = await startRun(d.redis, cell, id, d.clock.now(), runId, d.workerId);
  switch (start.kind) {
    case "final":
      outcome.value = "skipped";
      return { skipped: start.state };
    case "cancel":
      await finish({ state: "cancelled", error: { code: "CANCELLED", message: "cancelled by the producer" } }, "");
      return null;
    case "expired":
      await finish({ state: "failed", error: { code: "DEADLINE_EXCEEDED", message: "the deadline passed before the workflow started" } }, "");
      return null;
    case "yield":
      return handBack("preempted", false);
    case "noslot":
      return handBack("noslot", false);
  }

  startedAt = d.clock.now();
  const queuedMs = Math.max(0, startedAt - data.enqueuedAt);
  // The exec job's timestamp is the dispatch instant (the dispatch script writes it).
  const poolWaitMs = Math.max(0, startedAt - job.timestamp);
  metrics.deadlinePhase.inc({ tenant, phase: "queue_wait" }, queuedMs / 1000);
  metrics.poolWait.observe({ tenant }, poolWaitMs / 1000);
  // Enqueue->start counts a workflow's first start only, not a resume (preempted, parked, crashed).
  if (start.firstStart) {
    metrics.enqueueToStart.observe({ class: data.class }, queuedMs / 1000);
    metrics.enqueueToStartByTenant.observe({ tenant, class: data.class }, queuedMs / 1000);
  }
  if (span.isRecording()) {
    span.setAttributes({ "fairlane.attempt": start.attempts, "fairlane.pool": d.pool, "fairlane.queue_wait_ms": queuedMs, "fairlane.pool_wait_ms": poolWaitMs });
    if (start.deadlineAt !== null) span.setAttribute(ATTR.remainingMs, Math.max(0, start.deadlineAt - startedAt));
  }
  const handler = workflowHandler(job.name);
  if (!handler) {
    await finish({ state: "failed", error: { code: "UNKNOWN_WORKFLOW_TYPE", message: `no handler is registered for type "${job.name}"` } });
    return null;
  }
  const controller = new AbortController();
  d.running.set(id, controller);
  let parkOn: { dependency: string; reason: string } | undefined;
  const deadlineAt = start.deadlineAt;
  const timer =
    deadlineAt === null ? undefined : setTimeout(() => controller.abort("deadline" satisfies AbortReason), Math.max(0, deadlineAt - d.clock.now()));
  const { ctx, run, tracking } = createContext(
    { redis: d.redis, gate: d.gate, clock: d.clock, rateLimits: d.rateLimits, budget: d.budget, modelUrl: d.modelUrl, cpu: d.cpu, health: d.health, onOutcome: d.onOutcome },
    {
      cellName,
      cell,
      workflowId: id,
      tenant: data.tenant,
      cls: data.class,
      type: data.type,
      payload: data.payload,
      deadlineAt,
      traceId: data.traceId,
      trace: runCtx,
      attempt: start.attempts,
      policy: d.livePolicy?.(data.tenant) ?? data.policy,
      signal: controller.signal,
      park(dependency, reason) {
        parkOn ??= { dependency, reason };
        if (!controller.signal.aborted) controller.abort("park" satisfies AbortReason);
      },
    },
  );

  let result: unknown;
  let error: Error | undefined;
  try {
    result = await run(() => handler(ctx));
  } catch (err) {
    error = err as Error;
  } finally {
    clearTimeout(timer);
    d.running.delete(id);
    if (tracking.active.size) {
      metrics.orphanedCalls.inc(tracking.active.size);
      d.onOrphans?.(tracking.active.size);
    }
  }

  const reason = controller.signal.aborted ? (controller.signal.reason as AbortReason) : undefined;
  if (reason === "lost") {
    // Another run owns the workflow now: write nothing (finishRun would answer "stale" anyway).
    log().warn("run stopped: its lock was lost while the process stalled; another worker owns it");
    metrics.runs.inc({ tenant, class: data.class, outcome: "lost" });
    return null;
  }
  if (reason === "preempted" || reason === "shutdown" || reason === "stalled") return handBack(reason, true);
  if (reason === "park" && parkOn) {
    const r = await parkRun(d.redis, cell, d.pool, { id, now: d.clock.now(), token, started: true, ...parkOn });
    outcome.value = "parked";
    metrics.runs.inc({ tenant, class: data.class, outcome: "parked" });
    metrics.runSeconds.observe({ class: data.class }, (d.clock.now() - startedAt) / 1000);
    metrics.parkedTotal.inc({ dependency: parkOn.dependency, where: "run" });
    log().info({ dependency: parkOn.dependency, outcome: r }, "parked: dependency not healthy");
    throw new WaitingError();
  }
  if (reason === "cancelled") {
    await finish({ state: "cancelled", error: { code: "CANCELLED", message: "cancelled by the producer while running" } });
  } else if (reason === "deadline" || (deadlineAt !== null && d.clock.now() >= deadlineAt)) {
    await finish({ state: "failed", error: { code: "DEADLINE_EXCEEDED", message: "the workflow's deadline passed while it ran" } });
  } else if (error && RUNTIME_CODES.has((error as { code?: string }).code ?? "")) {
    // A policy outcome the handler passed on (e.g. its tool calls ran out of deadline or budget).
    await finish({ state: "failed", error: { code: (error as unknown as { code: string }).code, message: error.message } });
  } else if (error) {
    // The message is the handler's and goes to the tenant's own record; logs get only the error name (no PHI).
    log().warn({ error: error.name }, "workflow failed");
    await finish({ state: "failed", error: { code: "WORKFLOW_ERROR", message: error.message || error.name } });
  } else {
    await finish({ state: "completed", result: result === undefined ? null : result });
  }
  return null;
}
