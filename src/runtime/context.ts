import { AsyncLocalStorage } from "node:async_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { context, ROOT_CONTEXT, SpanKind, trace, type Context } from "@opentelemetry/api";
import type { Redis } from "ioredis";
import type { CellKeys } from "../../queues/keys.ts";
import type { Clock } from "../lib/clock.ts";
import type { WorkflowClass } from "../../queues/keys.ts";
import type { RuntimePolicy } from "../tenancy/policy.ts";
import type { WorkflowContext } from "../workflows/registry.ts";
import { stepBudgetDecision, toolAllowed, type TenantBudget } from "./budget.ts";
import { ParallelismHint } from "./gateRule.ts";
import type { TenantRateLimits } from "./rateLimit.ts";
import { DEFAULT_RETRY, withDeadlineRetry } from "./retry.ts";
import { untilAborted } from "../lib/abortable.ts";
import { modelTier, modelTimeBox, streamModel, type ModelRequest, type ModelResult } from "./model.ts";
import type { HealthCache } from "../backpressure/healthCache.ts";
import { runInline, type CpuPool, type CpuTaskName } from "./cpuPool.ts";
import { metrics } from "../observability/metrics.ts";
import { tenantLabel } from "../observability/tenantLabel.ts";
import { activeOr, ATTR, endSpan, tracer } from "../observability/tracing.ts";
import type { ToolGate } from "./toolGate.ts";
import { defaultTransient, toolDefinition, type ToolDefinition, type ToolResult } from "./tools.ts";
import { createAgent, type WorkflowAgent } from "../agents/aiSdk.ts";
import { IterationBudget } from "../agents/iterations.ts";
import type { LlmSettings } from "../agents/models.ts";

/** What every run shares: the process's gate, rate limiters, budget and Redis. */
export interface RuntimeDeps {
  redis: Redis;
  gate: ToolGate;
  clock: Clock;
  rateLimits: TenantRateLimits;
  budget: TenantBudget;
  /** The streaming model endpoint ctx.model calls. */
  modelUrl: string;
  /** The OpenAI-compatible endpoints, models and prices ctx.agent uses (src/agents/models.ts). */
  llm?: LlmSettings;
  /** Dependency health, when backpressure is on: a transient failure into an unhealthy dependency parks the workflow. */
  health?: HealthCache;
  /** Worker threads for CPU-heavy result processing (ctx.cpu); inline when absent. */
  cpu?: CpuPool;
  /** Tool-call outcomes per dependency (passive health). */
  onOutcome?: (cell: string, dep: string, ok: boolean, overloaded: boolean) => void;
}

export interface RunInfo {
  cellName: string;
  cell: CellKeys;
  workflowId: string;
  tenant: string;
  cls: WorkflowClass;
  type: string;
  payload: Record<string, unknown>;
  deadlineAt: number | null;
  traceId: string;
  /** The run span's context: tool-call spans are its children (src/observability/tracing.ts). */
  trace?: Context;
  attempt: number;
  policy: RuntimePolicy;
  signal: AbortSignal;
  /** Ends the run as parked (pending-backpressure) on `dependency`: the runner moves it to the parked queue. */
  park(dependency: string, reason: string): void;
}

interface CallOptions {
  signal?: AbortSignal;
  def?: ToolDefinition;
  keyPart?: string;
}

interface StepScope {
  step: string;
  calls: number;
  /** ctx.agent generations started in this step: part of their calls' idempotency keys. */
  generations: number;
}

/** The running workflow, for code deep in a call stack or in background work it started. */
const current = new AsyncLocalStorage<{ ctx: WorkflowContext; scope: StepScope; toolTrace?: Context }>();

export function currentWorkflow(): WorkflowContext | undefined {
  return current.getStore()?.ctx;
}

/** The trace context of the tool call running now (its span), for tools that propagate it (httpTool). */
export function currentToolCallTrace(): Context | undefined {
  return current.getStore()?.toolTrace;
}

export interface RunTracking {
  /** Tool calls still running: must be 0 when the workflow ends (no orphaned calls). */
  active: Set<Promise<unknown>>;
  throttled: number;
  rateLimited: number;
  /** What this run has spent (tool and model cost estimates), USD. */
  spentUsd: number;
}

/**
 * Builds a run's WorkflowContext. Its deadline is fixed here and read-only:
 * no call can extend it. `run(fn)` enters the context's AsyncLocalStorage scope.
 */
export function createContext(d: RuntimeDeps, r: RunInfo): { ctx: WorkflowContext; run<T>(fn: () => Promise<T>): Promise<T>; tracking: RunTracking } {
  const hint = new ParallelismHint(Math.max(1, Math.min(16, r.policy.mctc)));
  const tracking: RunTracking = { active: new Set(), throttled: 0, rateLimited: 0, spentUsd: 0 };
  const sleepFor = (ms: number, sig?: AbortSignal) => sleep(ms, undefined, { signal: sig }).then(() => undefined);

  /** Per-workflow and monthly budget before spending `estimateUsd`. */
  async function budgetFor(estimateUsd: number): Promise<"ok" | "degrade" | "refuse"> {
    if (estimateUsd <= 0) return "ok";
    const month = r.policy.budget.monthlyUsd - (await d.budget.monthSpentUsd(r.tenant));
    return stepBudgetDecision(tracking.spentUsd, estimateUsd, r.policy.budget.perWorkflowUsd, month);
  }
  const rootScope: StepScope = { step: "-", calls: 0, generations: 0 };
  const remainingMs = () => (r.deadlineAt === null ? Infinity : Math.max(0, r.deadlineAt - d.clock.now()));
  const scope = () => current.getStore()?.scope ?? rootScope;
  const tenant = tenantLabel(r.tenant, r.policy.tier); // once per run: inc and dec use the same series
  const runTrace = r.trace ?? ROOT_CONTEXT;

  /**
   * One call in a `fairlane.tool_call` span, a child of the run (or of the handler's active span).
   * `def`: a tool defined for this call only (an AI SDK tool's execute), else the one registered as `name`.
   * `keyPart`: the call's idempotency key within its step (ctx.agent's: tool, arguments, occurrence), else its index.
   */
  async function callTool<R>(name: string, args: unknown, opts: CallOptions = {}): Promise<ToolResult<R>> {
    const span = tracer.startSpan("fairlane.tool_call", { kind: SpanKind.CLIENT }, activeOr(runTrace));
    if (span.isRecording()) {
      const left = remainingMs();
      span.setAttributes({ [ATTR.tenant]: r.tenant, [ATTR.cls]: r.cls, [ATTR.workflowId]: r.workflowId, "tool.name": name });
      if (left !== Infinity) span.setAttribute(ATTR.remainingMs, left);
    }
    const spanCtx = trace.setSpan(activeOr(runTrace), span);
    let result: ToolResult<R> | undefined;
    try {
      const store = current.getStore();
      result = await current.run({ ctx: store?.ctx ?? ctx, scope: scope(), toolTrace: spanCtx }, () =>
        context.with(spanCtx, () => callToolOnce<R>(name, args, opts)),
      );
      return result;
    } finally {
      const code = result === undefined ? "INTERNAL" : result.ok ? undefined : result.code;
      metrics.toolCalls.inc({ tenant, outcome: code ?? "ok" });
      endSpan(span, code, result?.ok ? { "fairlane.tool.attempts": result.attempts, "fairlane.gate.wait_ms": result.waitedMs } : undefined);
    }
  }

  async function callToolOnce<R>(name: string, args: unknown, opts: CallOptions): Promise<ToolResult<R>> {
    const def = opts.def ?? toolDefinition(name);
    if (!def) return { ok: false, code: "UNKNOWN_TOOL", tool: name, message: `no tool "${name}" is defined` };
    if (!toolAllowed(name, r.policy.allowedTools, r.policy.deniedTools)) return { ok: false, code: "TOOL_NOT_ALLOWED", tool: name, message: `tool "${name}" is not allowed by the tenant's policy` };
    const s = scope();
    const idempotencyKey = `${r.workflowId}:${s.step}:${opts.keyPart ?? s.calls++}`;
    if (remainingMs() <= 0) return { ok: false, code: "DEADLINE_EXCEEDED", tool: name, message: "the workflow's deadline has passed" };
    const signal = opts.signal ? AbortSignal.any([r.signal, opts.signal]) : r.signal;
    // A dependency this process knows is unhealthy gets no new call: park now, retry nothing.
    if (def.dependency && d.health && !d.health.peek(r.cellName, def.dependency)) {
      r.park(def.dependency, `${def.dependency} is not healthy`);
      return { ok: false, code: "PARKED", tool: name, message: `parked: ${def.dependency} is not healthy` };
    }
    const cost = def.costUsd ?? 0;
    if ((await untilAborted(budgetFor(cost), signal)) === "refuse")
      return { ok: false, code: "BUDGET_EXCEEDED", tool: name, message: "the call would exceed the workflow's or the tenant's cost budget" };
    for (const limited of [name, def.dependency].filter((x): x is string => !!x && !!r.policy.rateLimits[x])) {
      const rl = await untilAborted(d.rateLimits.consume(r.tenant, limited, r.policy.rateLimits, { deadlineAt: r.deadlineAt, clock: d.clock, sleep: sleepFor, signal }), signal);
      if (!rl.ok) {
        tracking.rateLimited++;
        return { ok: false, code: "RATE_LIMITED", tool: name, retryAfterMs: rl.retryAfterMs, message: `tenant ${r.tenant} is over its rate limit for ${limited}` };
      }
    }

    const permit = await d.gate.acquire({
      cell: r.cellName,
      tenant: r.tenant,
      batch: r.cls === "C",
      limits: { mctc: r.policy.mctc, mctcBatch: r.policy.mctcBatch, depth: r.policy.toolQueueDepth },
      deadlineAt: r.deadlineAt,
      waitTimeoutMs: r.policy.toolWaitTimeoutMs,
      signal,
    });
    metrics.gateWait.observe({ tenant }, permit.waitedMs / 1000);
    metrics.deadlinePhase.inc({ tenant, phase: "gate_wait" }, permit.waitedMs / 1000);
    if (!permit.ok) {
      if (permit.code === "THROTTLED") {
        hint.throttled();
        tracking.throttled++;
        return { ok: false, code: "THROTTLED", tool: name, reason: permit.reason, retryAfterMs: permit.retryAfterMs, message: `tenant ${r.tenant} is at its tool-call limit` };
      }
      if (permit.code === "ABORTED") return { ok: false, code: "ABORTED", tool: name, message: String(signal.reason ?? "aborted") };
      return { ok: false, code: "DEADLINE_EXCEEDED", tool: name, message: "the deadline came before a tool-call permit" };
    }
    // The wait for a permit may have outlasted the dependency: look again before calling it.
    if (def.dependency && d.health && !d.health.peek(r.cellName, def.dependency)) {
      await d.gate.release(permit.permit);
      r.park(def.dependency, `${def.dependency} is not healthy`);
      return { ok: false, code: "PARKED", tool: name, message: `parked: ${def.dependency} is not healthy` };
    }
    let attempts = 0;
    const call = withDeadlineRetry(
      async (attemptSignal, attempt) => {
        attempts = attempt;
        try {
          const value = (await def.run(args, {
            tenant: r.tenant,
            workflowId: r.workflowId,
            deadlineAt: r.deadlineAt,
            signal: attemptSignal,
            idempotencyKey,
            traceId: r.traceId,
            remainingMs,
          })) as R;
          if (def.dependency) d.onOutcome?.(r.cellName, def.dependency, true, false);
          return value;
        } catch (err) {
          // Every failed attempt feeds passive health at once, so the next retry decision already knows.
          const status = (err as { status?: number }).status;
          if (def.dependency && !attemptSignal.aborted) d.onOutcome?.(r.cellName, def.dependency, false, status === 503 || status === 429);
          throw err;
        }
      },
      {
        deadlineAt: r.deadlineAt ?? d.clock.now() + 24 * 3600_000,
        clock: d.clock,
        sleep: sleepFor,
        policy: { ...DEFAULT_RETRY, maxRetries: r.policy.deadline.toolRetries },
        toolTimeoutMs: def.timeoutMs ?? 30_000,
        signal,
        // No retry into a dependency this process already knows is unhealthy: park instead.
        isTransient: (err) => (def.isTransient ?? defaultTransient)(err) && !(def.dependency && d.health && !d.health.peek(r.cellName, def.dependency)),
      },
    );
    tracking.active.add(call);
    const started = d.clock.now();
    metrics.toolCallsInFlight.inc({ tenant });
    if (tenant === r.tenant) metrics.toolCallCeiling.set({ tenant }, r.policy.mctc); // an _other_ aggregate has no one ceiling
    try {
      const value = await call;
      if (cost > 0) {
        tracking.spentUsd += cost;
        await untilAborted(d.budget.record(r.tenant, cost), signal).catch((err) => {
          if (!signal.aborted) throw err;
        });
      }
      hint.passed();
      return { ok: true, value, waitedMs: permit.waitedMs, attempts };
    } catch (err) {
      const e = err as { code?: string; message?: string };
      if (signal.aborted) return { ok: false, code: "ABORTED", tool: name, message: String(signal.reason ?? "aborted") };
      const transient = (def.isTransient ?? defaultTransient)(err);
      if (transient && def.dependency && d.health && !(await d.health.check(r.cellName, def.dependency))) {
        r.park(def.dependency, `${name} failed while ${def.dependency} is not healthy`);
        return { ok: false, code: "PARKED", tool: name, message: `parked: ${def.dependency} is not healthy` };
      }
      // An attempt cut by its timeout with too little time left for another is the deadline's doing.
      const outOfTime = (err as Error)?.name === "TimeoutError" && remainingMs() < 2 * DEFAULT_RETRY.minViableAttemptMs;
      if (e?.code === "DEADLINE_EXCEEDED" || outOfTime)
        return { ok: false, code: "DEADLINE_EXCEEDED", tool: name, message: "the workflow's deadline left no time to finish the call" };
      return { ok: false, code: "TOOL_ERROR", tool: name, message: e?.message ?? String(err) };
    } finally {
      tracking.active.delete(call);
      metrics.toolCallsInFlight.dec({ tenant });
      metrics.deadlinePhase.inc({ tenant, phase: "tool" }, (d.clock.now() - started) / 1000);
      // A stopped run does not wait for Redis to hand its permit back (the release still goes out).
      await untilAborted(d.gate.release(permit.permit), signal).catch((err) => {
        if (!signal.aborted) throw err;
      });
    }
  }

  const iterations = new IterationBudget(r.policy.deadline.maxIterations);
  let agent: WorkflowAgent | undefined;
  const ctx: WorkflowContext = Object.freeze({
    workflowId: r.workflowId,
    tenant: r.tenant,
    class: r.cls,
    type: r.type,
    payload: r.payload,
    deadlineAt: r.deadlineAt,
    traceId: r.traceId,
    attempt: r.attempt,
    policy: r.policy,
    signal: r.signal,
    remainingMs,
    get parallelism() {
      return hint.value;
    },
    iterations,
    get agent() {
      return (agent ??= createAgent({
        tenant: r.tenant,
        cellName: r.cellName,
        deadlineAt: r.deadlineAt,
        policy: r.policy,
        signal: r.signal,
        remainingMs,
        parallelism: () => hint.value,
        nextGeneration: () => scope().generations++,
        throttled() {
          hint.throttled();
          tracking.throttled++;
        },
        iterations,
        callTool: (name, args, opts) => callTool(name, args, opts),
        budget: budgetFor,
        async charge(usd) {
          if (usd <= 0) return;
          await untilAborted(d.budget.record(r.tenant, usd), r.signal);
          tracking.spentUsd += usd;
        },
        dependencyHealthy: async (dep) => !d.health || d.health.check(r.cellName, dep),
        park: r.park,
        llm: d.llm,
      }));
    },
    cpu<T>(task: CpuTaskName, input: unknown): Promise<T> {
      return d.cpu ? d.cpu.run<T>(task, input, r.signal) : Promise.resolve(runInline<T>(task, input));
    },
    async model(req: ModelRequest = {}): Promise<ModelResult> {
      const cost = req.costUsd ?? 0.01;
      const decision = await budgetFor(cost);
      if (decision === "refuse") throw Object.assign(new Error("the model call would exceed the cost budget"), { code: "BUDGET_EXCEEDED" });
      const tier = modelTier(r.policy.modelTier, decision === "degrade");
      const result = await streamModel(d.modelUrl, {
        ...req,
        tier,
        signal: r.signal,
        timeBoxMs: modelTimeBox(remainingMs() === Infinity ? 60_000 : remainingMs(), req.reserveMs),
        headers: { "X-Tenant-Id": r.tenant, ...(r.deadlineAt === null ? {} : { "X-Request-Deadline": new Date(r.deadlineAt).toISOString() }) },
      });
      tracking.spentUsd += cost;
      await d.budget.record(r.tenant, cost);
      return result;
    },
    budget: {
      get spentUsd() {
        return tracking.spentUsd;
      },
      decide: budgetFor,
    },
    tool: callTool,
    async all(calls: { tool: string; args?: unknown }[]) {
      const group = new AbortController();
      return Promise.all(
        calls.map(async (c) => {
          const res = await callTool(c.tool, c.args, { signal: group.signal });
          if (!res.ok && !group.signal.aborted) group.abort(`sibling ${c.tool} failed: ${res.code}`);
          return res;
        }),
      );
    },
    async step<T>(name: string, fn: () => Promise<T>): Promise<T> {
      const key = r.cell.steps(r.workflowId);
      const done = await untilAborted(d.redis.hget(key, name), r.signal);
      if (done !== null) return (JSON.parse(done) as { v: T }).v;
      const store = current.getStore();
      const result = await current.run({ ctx: store?.ctx ?? ctx, scope: { step: name, calls: 0, generations: 0 } }, fn);
      await untilAborted(d.redis.hset(key, name, JSON.stringify({ v: result === undefined ? null : result })), r.signal);
      return result;
    },
  });
  return {
    ctx,
    tracking,
    run: (fn) => current.run({ ctx, scope: rootScope }, () => context.with(activeOr(runTrace), fn)),
  };
}
