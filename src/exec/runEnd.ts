import { WaitingError } from "bullmq";
import { parkRun } from "../../queues/lua/parking.ts";
import { awaitReview } from "../../queues/lua/review.ts";
import { REVIEW_DEFAULTS } from "../tenancy/policy.ts";
import { finishRun, requeueRun, type FinishInput } from "../../queues/lua/runLifecycle.ts";
import { metrics } from "../observability/metrics.ts";
import type { Ended, Run } from "./runTypes.ts";

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

/** Records an ended run (completed / failed with a reason / cancelled) and releases its slot, once. */
export function finish(run: Run, f: Omit<FinishInput, "id" | "now" | "runId" | "recordTtlSec">, runId = run.w.runId): Promise<unknown> {
  const { d, w, outcome, tenant, startedAt } = run;
  outcome.value = f.error?.code ?? f.state;
  if (f.state === "failed") outcome.error = f.error?.code;
  metrics.runs.inc({ tenant, class: w.cls, outcome: outcome.value });
  if (startedAt !== undefined) metrics.runSeconds.observe({ class: w.cls }, (d.clock.now() - startedAt) / 1000);
  if (f.error?.code === "DEADLINE_EXCEEDED")
    metrics.deadlineExpired.inc({ tier: run.policy?.tier ?? "free", where: runId === "" ? "queued" : "running" });
  const input = { id: run.id, now: d.clock.now(), runId, recordTtlSec: d.recordTtlSec, steps: run.steps ?? true, ...f };
  // The processor returns next: BullMQ's finish of the job writes it, in the same script (execBackend.ts).
  if (d.handoff) return Promise.resolve(d.handoff.deferFinish(input));
  return finishRun(d.redis, run.cell, input);
}

/** Puts the workflow back at the head of its ingress queue, its attempt given back; BullMQ leaves the job alone. */
export async function handBack(run: Run, reason: string, started: boolean): Promise<never> {
  const { d, w, outcome, startedAt } = run;
  outcome.value = reason;
  if (startedAt !== undefined) metrics.runSeconds.observe({ class: w.cls }, (d.clock.now() - startedAt) / 1000);
  const r = await requeueRun(d.redis, run.cell, d.pool, { id: run.id, now: d.clock.now(), token: w.token, reason, started });
  run.log().info({ reason, outcome: r }, "handed back to ingress");
  throw new WaitingError();
}

/** Sets the workflow aside as pending-backpressure on its unhealthy dependency; recovery requeues it. */
async function park(run: Run, parkOn: { dependency: string; reason: string }): Promise<never> {
  const { d, w, tenant } = run;
  const r = await parkRun(d.redis, run.cell, d.pool, { id: run.id, now: d.clock.now(), token: w.token, started: true, ...parkOn });
  run.outcome.value = "parked";
  metrics.runs.inc({ tenant, class: w.cls, outcome: "parked" });
  metrics.runSeconds.observe({ class: w.cls }, (d.clock.now() - run.startedAt!) / 1000);
  metrics.parkedTotal.inc({ dependency: parkOn.dependency, where: "run" });
  run.log().info({ dependency: parkOn.dependency, outcome: r }, "parked: dependency not healthy");
  throw new WaitingError();
}

/**
 * Suspends the workflow until a reviewer decides (ctx.review): due at the tenant's review SLA or at the
 * workflow's deadline, whichever comes first (queues/lua/expireReviews-1.lua then escalates or fails it).
 */
async function suspendForReview(run: Run, on: { step: string; request: string }, deadlineAt: number | null): Promise<unknown> {
  const { d, w, tenant } = run;
  const now = d.clock.now();
  const policy = run.policy?.review ?? REVIEW_DEFAULTS;
  const slaAt = policy.slaSeconds === null ? null : now + policy.slaSeconds * 1000;
  const dueWhy = slaAt !== null && (deadlineAt === null || slaAt < deadlineAt) ? "sla" : "deadline";
  const r = await awaitReview(d.redis, run.cell, d.pool, {
    id: run.id,
    now,
    token: w.token,
    pool: policy.pool,
    ...on,
    dueAt: dueWhy === "sla" ? slaAt : deadlineAt,
    dueWhy,
    onTimeout: policy.onTimeout,
    escalateTo: policy.escalateTo,
    deadlineAt,
  });
  // Cancelled while it asked: it ends as a cancel that reached it running would have ended it.
  if (r === "cancel")
    return finish(run, { state: "cancelled", error: { code: "CANCELLED", message: "cancelled by the producer while running" } });
  run.outcome.value = "review";
  metrics.runs.inc({ tenant, class: w.cls, outcome: "review" });
  metrics.runSeconds.observe({ class: w.cls }, (now - run.startedAt!) / 1000);
  // The request is the tenant's data: never logged.
  run.log().info({ pool: policy.pool, outcome: r }, "awaiting review");
  throw new WaitingError();
}

/** The run's end, from how its handler ended: lost, handed back, parked, or finished with its outcome. */
export async function settle(run: Run, { result, error, reason, parkOn, reviewOn, deadlineAt }: Ended): Promise<unknown> {
  const { d, w } = run;
  if (reason === "lost") {
    // Another run owns the workflow now: write nothing (finishRun would answer "stale" anyway).
    run.log().warn("run stopped: its lock was lost while the process stalled; another worker owns it");
    metrics.runs.inc({ tenant: run.tenant, class: w.cls, outcome: "lost" });
    return null;
  }
  if (reason === "preempted" || reason === "shutdown" || reason === "stalled") return handBack(run, reason, true);
  if (reason === "park" && parkOn) return park(run, parkOn);
  if (reason === "review" && reviewOn) return suspendForReview(run, reviewOn, deadlineAt);
  if (reason === "cancelled") {
    await finish(run, { state: "cancelled", error: { code: "CANCELLED", message: "cancelled by the producer while running" } });
  } else if (reason === "deadline" || (deadlineAt !== null && d.clock.now() >= deadlineAt)) {
    await finish(run, { state: "failed", error: { code: "DEADLINE_EXCEEDED", message: "the workflow's deadline passed while it ran" } });
  } else if (error && RUNTIME_CODES.has((error as { code?: string }).code ?? "")) {
    // A policy outcome the handler passed on (e.g. its tool calls ran out of deadline or budget).
    await finish(run, { state: "failed", error: { code: (error as unknown as { code: string }).code, message: error.message } });
  } else if (error) {
    // The message is the handler's and goes to the tenant's own record; logs get only the error name (no PHI).
    run.log().warn({ error: error.name }, "workflow failed");
    await finish(run, { state: "failed", error: { code: "WORKFLOW_ERROR", message: error.message || error.name } });
  } else {
    await finish(run, { state: "completed", result: result === undefined ? null : result });
  }
  return null;
}
