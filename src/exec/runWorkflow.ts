import { randomUUID } from "node:crypto";
import { context, SpanKind, trace, type Context } from "@opentelemetry/api";
import { WaitingError, type Job } from "bullmq";
import type { Logger } from "pino";
import type { CellKeys, WorkflowClass } from "../../queues/keys.ts";
import { parkRun } from "../../queues/lua/parking.ts";
import { finishRun, requeueRun, startRun, type FinishInput, type StartOutcome } from "../../queues/lua/runLifecycle.ts";
import type { LegacyJobData } from "../admission/admit.ts";
import type { RuntimePolicy } from "../tenancy/policy.ts";
import { metrics } from "../observability/metrics.ts";
import { tenantLabel } from "../observability/tenantLabel.ts";
import { ATTR, contextFromTraceparent, endSpan, tracer } from "../observability/tracing.ts";
import { createContext, type RuntimeDeps } from "../runtime/context.ts";
import { workflowHandler, type AbortReason } from "../workflows/registry.ts";

/** What a run needs beyond the runtime's dependencies (RuntimeDeps: Redis, gate, budgets, models, health...). */
export interface RunDeps extends RuntimeDeps {
  log: Logger;
  pool: string;
  workerId: string;
  recordTtlSec: number;
  /** Running workflows of this process, so signals (preempt, cancel) can reach them. */
  running: Map<string, AbortController>;
  /** Tool calls still running when their workflow ended (must stay 0). */
  onOrphans?: (n: number) => void;
  /**
   * The tenant's policy now (the process's live registry, reloaded once for a tenant it has not seen),
   * so an operator's change of mctc, budgets or allowed tools reaches workflows already queued or
   * running. Undefined when the tenant has no valid policy.
   */
  livePolicy: (tenant: string) => Promise<RuntimePolicy | undefined>;
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
const RUNTIME_CODES = new Set([
  "DEADLINE_EXCEEDED",
  "BUDGET_EXCEEDED",
  "RATE_LIMITED",
  "TOOL_NOT_ALLOWED",
  "THROTTLED",
  "MAX_ITERATIONS",
  "MODEL_UNAVAILABLE",
  "RESIDENCY_UNAVAILABLE",
  "MODEL_ERROR",
]);

/** A run's inputs: from the record (startRun's reply) and the job. */
interface RunInput {
  job: Job;
  token: string;
  runId: string;
  start: StartOutcome;
  tenant: string;
  cls: WorkflowClass;
  enqueuedAt: number;
  payload: Record<string, unknown>;
  traceparent: string | undefined;
  /** A job admitted before the record kept the trace context carries an envelope with its policy. */
  legacy: LegacyJobData | undefined;
}

/**
 * The run in a `fairlane.workflow.run` span, a child of the context admission
 * stored with the workflow (the producer's trace), ended with its outcome.
 * startRun comes first: the record holds what the span and the run need.
 */
export async function runWorkflow(d: RunDeps, cellName: string, cell: CellKeys, job: Job, token: string): Promise<unknown> {
  const runId: string = randomUUID();
  const start = await startRun(d.redis, cell, job.id!, d.clock.now(), runId, d.workerId);
  // The record is gone (ended long ago and expired): a re-delivered job with nothing left to do.
  if (!start.meta) return { skipped: start.kind === "final" ? start.state : "missing" };
  const legacy = start.meta.traceparent === null ? (job.data as LegacyJobData) : undefined;
  const input: RunInput = {
    job,
    token,
    runId,
    start,
    tenant: start.meta.tenant,
    cls: start.meta.cls,
    enqueuedAt: start.meta.enqueuedAt,
    payload: legacy ? legacy.payload : (job.data as Record<string, unknown>),
    traceparent: start.meta.traceparent ?? legacy?.traceparent,
    legacy,
  };
  const span = tracer.startSpan(
    "fairlane.workflow.run",
    { kind: SpanKind.CONSUMER, attributes: { [ATTR.tenant]: input.tenant, [ATTR.cls]: input.cls, [ATTR.workflowId]: job.id!, [ATTR.type]: job.name } },
    contextFromTraceparent(input.traceparent),
  );
  const outcome: RunOutcome = {};
  try {
    // Passed down as well as made active: without an SDK's context manager nothing is "active".
    const runCtx = trace.setSpan(context.active(), span);
    return await context.with(runCtx, () => runIn(d, cellName, cell, input, runCtx, outcome));
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

async function runIn(d: RunDeps, cellName: string, cell: CellKeys, w: RunInput, runCtx: Context, outcome: RunOutcome): Promise<unknown> {
  const span = trace.getSpan(runCtx)!;
  const { job, token, runId, start } = w;
  const id = job.id!;
  // The live registry's policy; a job admitted before jobs stopped carrying one falls back to its snapshot.
  const policy = (await d.livePolicy(w.tenant)) ?? w.legacy?.policy;
  const traceId = w.traceparent?.slice(3, 35) ?? w.legacy?.traceId ?? "";
  const tenant = tenantLabel(w.tenant, policy?.tier ?? "free"); // once per run: inc and dec use the same series
  const log = () => d.log.child({ tenant: w.tenant, workflowId: id, class: w.cls });
  let startedAt: number | undefined;
  const finish = (f: Omit<FinishInput, "id" | "now" | "runId" | "recordTtlSec">, run = runId) => {
    outcome.value = f.error?.code ?? f.state;
    if (f.state === "failed") outcome.error = f.error?.code;
    metrics.runs.inc({ tenant, class: w.cls, outcome: outcome.value });
    if (startedAt !== undefined) metrics.runSeconds.observe({ class: w.cls }, (d.clock.now() - startedAt) / 1000);
    if (f.error?.code === "DEADLINE_EXCEEDED") metrics.deadlineExpired.inc({ tier: policy?.tier ?? "free", where: run === "" ? "queued" : "running" });
    return finishRun(d.redis, cell, { id, now: d.clock.now(), runId: run, recordTtlSec: d.recordTtlSec, ...f });
  };
  const handBack = async (reason: string, started: boolean): Promise<never> => {
    outcome.value = reason;
    if (startedAt !== undefined) metrics.runSeconds.observe({ class: w.cls }, (d.clock.now() - startedAt) / 1000);
    const r = await requeueRun(d.redis, cell, d.pool, { id, now: d.clock.now(), token, reason, started });
    log().info({ reason, outcome: r }, "handed back to ingress");
    throw new WaitingError();
  };

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
  const queuedMs = Math.max(0, startedAt - w.enqueuedAt);
  // The exec job's timestamp is the dispatch instant (the dispatch script writes it).
  const poolWaitMs = Math.max(0, startedAt - job.timestamp);
  metrics.deadlinePhase.inc({ tenant, phase: "queue_wait" }, queuedMs / 1000);
  metrics.poolWait.observe({ tenant }, poolWaitMs / 1000);
  // Enqueue->start counts a workflow's first start only, not a resume (preempted, parked, crashed).
  if (start.firstStart) {
    metrics.enqueueToStart.observe({ class: w.cls }, queuedMs / 1000);
    metrics.enqueueToStartByTenant.observe({ tenant, class: w.cls }, queuedMs / 1000);
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
  if (!policy) {
    // The registry keeps a tenant whose spec no longer resolves out rather than run it half-configured.
    await finish({ state: "failed", error: { code: "POLICY_UNAVAILABLE", message: "the tenant has no valid policy; an operator must correct it" } });
    return null;
  }
  const controller = new AbortController();
  d.running.set(id, controller);
  let parkOn: { dependency: string; reason: string } | undefined;
  const deadlineAt = start.deadlineAt;
  const timer =
    deadlineAt === null ? undefined : setTimeout(() => controller.abort("deadline" satisfies AbortReason), Math.max(0, deadlineAt - d.clock.now()));
  const { ctx, run, tracking } = createContext(
    d, // RunDeps is RuntimeDeps and more: every runtime dependency reaches the context, none is listed twice
    {
      cellName,
      cell,
      workflowId: id,
      tenant: w.tenant,
      cls: w.cls,
      type: job.name,
      payload: w.payload,
      deadlineAt,
      traceId,
      trace: runCtx,
      attempt: start.attempts,
      policy,
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
    metrics.runs.inc({ tenant, class: w.cls, outcome: "lost" });
    return null;
  }
  if (reason === "preempted" || reason === "shutdown" || reason === "stalled") return handBack(reason, true);
  if (reason === "park" && parkOn) {
    const r = await parkRun(d.redis, cell, d.pool, { id, now: d.clock.now(), token, started: true, ...parkOn });
    outcome.value = "parked";
    metrics.runs.inc({ tenant, class: w.cls, outcome: "parked" });
    metrics.runSeconds.observe({ class: w.cls }, (d.clock.now() - startedAt) / 1000);
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
