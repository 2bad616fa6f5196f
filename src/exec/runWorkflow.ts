import { randomUUID } from "node:crypto";
import { WaitingError, type Job } from "bullmq";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { CellKeys } from "../../queues/keys.ts";
import { parkRun } from "../../queues/lua/parking.ts";
import { finishRun, requeueRun, startRun, type FinishInput } from "../../queues/lua/runLifecycle.ts";
import type { IngressJobData } from "../admission/admit.ts";
import type { Clock } from "../lib/clock.ts";
import { metrics } from "../observability/metrics.ts";
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

export async function runWorkflow(d: RunDeps, cellName: string, cell: CellKeys, job: Job, token: string): Promise<unknown> {
  const id = job.id!;
  const data = job.data as IngressJobData;
  const runId: string = randomUUID();
  const log = () => d.log.child({ tenant: data.tenant, workflowId: id, class: data.class });
  const finish = (f: Omit<FinishInput, "id" | "now" | "runId" | "recordTtlSec">, run = runId) => {
    metrics.runs.inc({ tenant: data.tenant, class: data.class, outcome: f.error?.code ?? f.state });
    if (f.error?.code === "DEADLINE_EXCEEDED") metrics.deadlineExpired.inc({ tier: data.policy.tier, where: run === "" ? "queued" : "running" });
    return finishRun(d.redis, cell, { id, now: d.clock.now(), runId: run, recordTtlSec: d.recordTtlSec, ...f });
  };
  const handBack = async (reason: string, started: boolean): Promise<never> => {
    const r = await requeueRun(d.redis, cell, d.pool, { id, now: d.clock.now(), token, reason, started });
    log().info({ reason, outcome: r }, "handed back to ingress");
    throw new WaitingError();
  };

  const start = await startRun(d.redis, cell, id, d.clock.now(), runId, d.workerId);
  switch (start.kind) {
    case "final":
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

  metrics.deadlinePhase.inc({ tenant: data.tenant, phase: "queue_wait" }, Math.max(0, d.clock.now() - data.enqueuedAt) / 1000);
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
      attempt: start.attempts,
      policy: data.policy,
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
  if (reason === "preempted" || reason === "shutdown") return handBack(reason, true);
  if (reason === "park" && parkOn) {
    const r = await parkRun(d.redis, cell, d.pool, { id, now: d.clock.now(), token, started: true, ...parkOn });
    metrics.runs.inc({ tenant: data.tenant, class: data.class, outcome: "parked" });
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
