import { randomUUID } from "node:crypto";
import { context, SpanKind, trace, type Context, type Span } from "@opentelemetry/api";
import { WaitingError, type Job } from "bullmq";
import type { CellKeys } from "../../queues/keys.ts";
import { startRun } from "../../queues/lua/runLifecycle.ts";
import type { RuntimePolicy } from "../tenancy/policy.ts";
import { metrics } from "../observability/metrics.ts";
import { tenantLabel } from "../observability/tenantLabel.ts";
import { ATTR, contextFromTraceparent, endSpan, tracer, workflowTraceparent } from "../observability/tracing.ts";
import { createContext, type RunInfo } from "../runtime/context.ts";
import { workflowHandler, type WorkflowHandler } from "../workflows/registry.ts";
import { RunAbort } from "./runAbort.ts";
import { finish, handBack, settle } from "./runEnd.ts";
import type { Ended, LegacyJobData, Run, RunDeps, RunInput, RunOutcome, Started } from "./runTypes.ts";

export type { RunDeps } from "./runTypes.ts";

/**
 * The run in a `fairlane.workflow.run` span, a child of the context admission
 * stored with the workflow (the producer's trace), ended with its outcome.
 * startRun comes first: the record holds what the span and the run need.
 */
export async function runWorkflow(d: RunDeps, cellName: string, cell: CellKeys, job: Job, token: string): Promise<unknown> {
  // Its fetch started it (the exec consumer, execBackend.ts), or this does.
  const handed = d.handoff?.takeStart(job.id!);
  const runId: string = handed?.runId ?? randomUUID();
  const start = handed?.start ?? (await startRun(d.redis, cell, job.id!, d.clock.now(), runId, d.workerId));
  // The record is gone (ended long ago and expired): a re-delivered job with nothing left to do.
  if (!start.meta) return { skipped: start.kind === "final" ? start.state : "missing" };
  const stored = start.meta.traceparent;
  const legacy = stored === null ? (job.data as LegacyJobData) : undefined;
  const input: RunInput = {
    job,
    token,
    runId,
    start,
    tenant: start.meta.tenant,
    cls: start.meta.cls,
    enqueuedAt: start.meta.enqueuedAt,
    payload: legacy ? legacy.payload : (job.data as Record<string, unknown>),
    traceparent: stored === "" ? workflowTraceparent(job.id!) : (stored ?? legacy?.traceparent),
    legacy,
  };
  const span = tracer.startSpan(
    "fairlane.workflow.run",
    {
      kind: SpanKind.CONSUMER,
      attributes: { [ATTR.tenant]: input.tenant, [ATTR.cls]: input.cls, [ATTR.workflowId]: job.id!, [ATTR.type]: job.name },
    },
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

async function runIn(d: RunDeps, cellName: string, cell: CellKeys, w: RunInput, runCtx: Context, outcome: RunOutcome): Promise<unknown> {
  // The live registry's policy; a job admitted before jobs stopped carrying one falls back to its snapshot.
  const policy = (await d.livePolicy(w.tenant)) ?? w.legacy?.policy;
  const id = w.job.id!;
  const run: Run = {
    d,
    w,
    cellName,
    cell,
    id,
    policy,
    tenant: tenantLabel(w.tenant, policy?.tier ?? "free"),
    outcome,
    log() {
      return d.log.child({ tenant: w.tenant, workflowId: id, class: w.cls });
    },
  };
  const early = await beforeStart(run);
  if (early.done) return early.value;
  // The fetch's reply can reach a process that froze (SIGSTOP, a long GC pause) past the job's lock, after
  // another worker took the job over and even ran it: its handler must not start here too. What stops a
  // running run on a lock it could not renew (execWorker.ts) decides this, before the first line runs.
  if (d.lockMayHaveLapsed?.(id)) return handBack(run, "stalled", true);
  run.startedAt = d.clock.now();
  recordStart(run, early.started, trace.getSpan(runCtx)!);
  const handler = workflowHandler(w.job.name);
  if (!handler) {
    await finish(run, {
      state: "failed",
      error: { code: "UNKNOWN_WORKFLOW_TYPE", message: `no handler is registered for type "${w.job.name}"` },
    });
    return null;
  }
  if (!policy) {
    // The registry keeps a tenant whose spec no longer resolves out rather than run it half-configured.
    await finish(run, {
      state: "failed",
      error: { code: "POLICY_UNAVAILABLE", message: "the tenant has no valid policy; an operator must correct it" },
    });
    return null;
  }
  const ended = await execute(run, early.started, policy, handler, runCtx);
  return settle(run, ended);
}

/** startRun's verdict before anything runs: skip, end at once, or hand back; `done: false` means run. */
async function beforeStart(run: Run): Promise<{ done: true; value: unknown } | { done: false; started: Started }> {
  const { start } = run.w;
  switch (start.kind) {
    case "final":
      run.outcome.value = "skipped";
      return { done: true, value: { skipped: start.state } };
    case "cancel":
      await finish(run, { state: "cancelled", error: { code: "CANCELLED", message: "cancelled by the producer" } }, "");
      return { done: true, value: null };
    case "expired":
      await finish(
        run,
        { state: "failed", error: { code: "DEADLINE_EXCEEDED", message: "the deadline passed before the workflow started" } },
        "",
      );
      return { done: true, value: null };
    case "yield":
      return handBack(run, "preempted", false);
    case "noslot":
      return handBack(run, "noslot", false);
  }
  return { done: false, started: start };
}

/** The start's latencies: queue wait, pool wait and (on a first start only) enqueue->start. */
function recordStart({ d, w, cell, tenant, startedAt }: Run, start: Started, span: Span): void {
  const { job } = w;
  const queuedMs = Math.max(0, startedAt! - w.enqueuedAt);
  // From the record's dispatch instant (the exec job's timestamp is when it entered ingress).
  const poolWaitMs = Math.max(0, startedAt! - (start.meta?.dispatchedAt ?? job.timestamp));
  metrics.deadlinePhase.inc({ tenant, phase: "queue_wait" }, queuedMs / 1000);
  metrics.poolWait.observe({ tenant }, poolWaitMs / 1000);
  // Enqueue->start counts a workflow's first start only, not a resume (preempted, parked, crashed).
  if (start.firstStart) {
    metrics.enqueueToStart.observe({ class: w.cls }, queuedMs / 1000);
    metrics.enqueueToStartByTenant.observe({ tenant, class: w.cls }, queuedMs / 1000);
    d.latency?.count(cell, w.tenant, w.enqueuedAt, startedAt!);
  }
  if (span.isRecording()) {
    span.setAttributes({
      "fairlane.attempt": start.attempts,
      "fairlane.pool": d.pool,
      "fairlane.queue_wait_ms": queuedMs,
      "fairlane.pool_wait_ms": poolWaitMs,
    });
    if (start.deadlineAt !== null) span.setAttribute(ATTR.remainingMs, Math.max(0, start.deadlineAt - startedAt!));
  }
}

/**
 * A run's `signal`, its RunAbort's: read by what needs it (ctx.signal, a tool call, a step), so a run that
 * never does makes no controller. A getter on one prototype for every run: in the run's object literal it
 * would give each run's info a hidden class of its own (src/runtime/context.ts).
 */
const ABORT = Symbol("fairlane.abort");
const INFO_PROTO: object = Object.defineProperties(
  {},
  {
    signal: {
      get(this: { [ABORT]: RunAbort }) {
        return this[ABORT].signal;
      },
    },
  },
);

/** The handler, with an AbortSignal that fires at the deadline, on cancel, on preemption, on park and on shutdown. */
async function execute(r: Run, start: Started, policy: RuntimePolicy, handler: WorkflowHandler, runCtx: Context): Promise<Ended> {
  const { d, w, id } = r;
  const deadlineAt = start.deadlineAt;
  const abort = new RunAbort(() => (deadlineAt === null ? null : deadlineAt - d.clock.now()));
  d.running.set(id, abort);
  if (w.cls === "C") d.runningC?.add(id);
  const ended: Ended = { result: undefined, error: undefined, reason: undefined, parkOn: undefined, deadlineAt };
  const traceId = w.traceparent?.slice(3, 35) ?? w.legacy?.traceId ?? "";
  const { ctx, run, tracking } = createContext(
    d, // RunDeps is RuntimeDeps and more: every runtime dependency reaches the context, none is listed twice
    Object.assign(Object.create(INFO_PROTO) as RunInfo, {
      [ABORT]: abort,
      cellName: r.cellName,
      cell: r.cell,
      workflowId: id,
      tenant: w.tenant,
      cls: w.cls,
      type: w.job.name,
      payload: w.payload,
      deadlineAt,
      traceId,
      trace: runCtx,
      attempt: start.attempts,
      policy,
      park(dependency: string, reason: string) {
        ended.parkOn ??= { dependency, reason };
        abort.abort("park");
      },
      review(step: string, request: string) {
        ended.reviewOn ??= { step, request };
        abort.abort("review");
      },
    }),
  );
  try {
    ended.result = await run(() => handler(ctx));
  } catch (err) {
    ended.error = err as Error;
  } finally {
    abort.close();
    r.steps = tracking.wroteSteps || !start.firstStart;
    d.running.delete(id);
    d.runningC?.delete(id);
    if (tracking.active.size) {
      metrics.orphanedCalls.inc(tracking.active.size);
      d.onOrphans?.(tracking.active.size);
    }
  }
  ended.reason = abort.reason;
  return ended;
}
