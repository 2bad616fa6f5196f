import { context, ROOT_CONTEXT } from "@opentelemetry/api";
import type { ReviewRequest, RunInfo, RunTracking, RuntimeDeps, WorkflowContext } from "./workflowContext.ts";
import { stepBudgetDecision } from "./budget.ts";
import { ParallelismHint } from "./gateRule.ts";
import { childSignal, untilAborted } from "../lib/abortable.ts";
import { modelTier, modelTimeBox, streamModel, type ModelRequest, type ModelResult } from "./model.ts";
import { runInline, type CpuTaskName } from "./cpuPool.ts";
import { tenantLabel } from "../observability/tenantLabel.ts";
import { activeOr } from "../observability/tracing.ts";
import { callTool, type ToolRun } from "./toolCall.ts";
import { current, type StepScope } from "./current.ts";
import { createAgent, type WorkflowAgent } from "../agents/aiSdk.ts";
import { IterationBudget } from "../agents/iterations.ts";
import { requestReview } from "./review.ts";

export type { RunInfo, RunTracking, RuntimeDeps } from "./workflowContext.ts";
export { currentToolCallTrace, currentWorkflow } from "./current.ts";

/**
 * Builds a run's WorkflowContext. Its deadline is fixed here and read-only:
 * no call can extend it. `run(fn)` enters the context's AsyncLocalStorage scope.
 * A tool call is the pipeline of src/runtime/toolCall.ts; this file wires the rest.
 * The per-run functions are methods rather than arrow-function properties: as detachable (none reads
 * `this`), and tsx's esbuild (keepNames) does not redefine a method's name on every run, as it does an
 * arrow's (~0.25 µs each, docs/benchmarks.md). The live properties (signal, parallelism, agent,
 * budget.spentUsd) are getters on a prototype shared by every run (CTX_PROTO), not in the run's object
 * literal: a getter there is a hidden class of its own for every context, which made a context cost
 * ~10 µs, most of it in garbage collection (docs/benchmarks.md).
 */
export function createContext(
  d: RuntimeDeps,
  r: RunInfo,
): { ctx: WorkflowContext; run<T>(fn: () => Promise<T>): Promise<T>; tracking: RunTracking } {
  const tracking: RunTracking = { active: new Set(), throttled: 0, rateLimited: 0, spentUsd: 0, wroteSteps: false };
  const rootScope: StepScope = { step: "-", calls: 0, generations: 0 };
  const run = toolRun(d, r, tracking, rootScope, () => ctx);
  const iterations = new IterationBudget(r.policy.deadline.maxIterations);
  const live: Live = { r, run, iterations, agent: undefined };
  const ctx: WorkflowContext = Object.freeze(
    Object.assign(Object.create(CTX_PROTO) as WorkflowContext, {
      [LIVE]: live,
      workflowId: r.workflowId,
      tenant: r.tenant,
      class: r.cls,
      type: r.type,
      payload: r.payload,
      deadlineAt: r.deadlineAt,
      traceId: r.traceId,
      attempt: r.attempt,
      policy: r.policy,
      remainingMs: run.remainingMs,
      iterations,
      cpu<T>(task: CpuTaskName, input: unknown): Promise<T> {
        return d.cpu ? d.cpu.run<T>(task, input, r.signal) : Promise.resolve(runInline<T>(task, input));
      },
      model(req: ModelRequest = {}) {
        return callModel(run, req);
      },
      budget: Object.assign(Object.create(BUDGET_PROTO) as WorkflowContext["budget"], { [TRACKING]: tracking, decide: run.budgetFor }),
      tool<R>(name: string, args?: unknown, opts?: { signal?: AbortSignal }) {
        return callTool<R>(run, name, args, opts);
      },
      all(calls: { tool: string; args?: unknown }[]) {
        return callAll(run, calls);
      },
      step<T>(name: string, fn: () => Promise<T>) {
        return durableStep(run, name, fn);
      },
      review(req: ReviewRequest) {
        return requestReview(d, r, req);
      },
    }),
  );
  return {
    ctx,
    tracking,
    run(fn) {
      return current.run({ ctx, scope: rootScope }, () => context.with(activeOr(r.trace ?? ROOT_CONTEXT), fn));
    },
  };
}

/** What a context's getters read: the run, and its agent once made. */
const LIVE = Symbol("fairlane.context");
interface Live {
  r: RunInfo;
  run: ToolRun;
  iterations: IterationBudget;
  agent: WorkflowAgent | undefined;
}

/** The context's live properties, one prototype for every run (see createContext). */
const CTX_PROTO: object = Object.defineProperties(
  {},
  {
    signal: {
      get(this: { [LIVE]: Live }) {
        return this[LIVE].r.signal;
      },
    },
    parallelism: {
      get(this: { [LIVE]: Live }) {
        return this[LIVE].run.hint.value;
      },
    },
    agent: {
      get(this: { [LIVE]: Live }) {
        const l = this[LIVE];
        return (l.agent ??= agentFor(l.run, l.iterations));
      },
    },
  },
);

/** What ctx.budget's getter reads: the run's tracking. */
const TRACKING = Symbol("fairlane.tracking");

/** ctx.budget's spend so far, read live. */
const BUDGET_PROTO: object = Object.defineProperties(
  {},
  {
    spentUsd: {
      get(this: { [TRACKING]: RunTracking }) {
        return this[TRACKING].spentUsd;
      },
    },
  },
);

/** What the run's tool and model calls share (src/runtime/toolCall.ts); `ctx` answers the run's context once built. */
function toolRun(d: RuntimeDeps, r: RunInfo, tracking: RunTracking, rootScope: StepScope, ctx: () => WorkflowContext): ToolRun {
  return {
    d,
    r,
    tracking,
    hint: new ParallelismHint(Math.max(1, Math.min(16, r.policy.mctc))),
    tenant: tenantLabel(r.tenant, r.policy.tier), // once per run: inc and dec use the same series
    remainingMs() {
      return r.deadlineAt === null ? Infinity : Math.max(0, r.deadlineAt - d.clock.now());
    },
    /** Per-workflow and monthly budget before spending `estimateUsd`. */
    async budgetFor(estimateUsd: number) {
      if (estimateUsd <= 0) return "ok";
      const month = await d.budget.monthRemainingUsd(r.tenant, r.policy.budget.monthlyUsd);
      return stepBudgetDecision(tracking.spentUsd, estimateUsd, r.policy.budget.perWorkflowUsd, month);
    },
    scope() {
      return current.getStore()?.scope ?? rootScope;
    },
    ctx,
  };
}

/** ctx.all: the calls run at once; the first one that fails aborts its siblings. */
async function callAll(run: ToolRun, calls: { tool: string; args?: unknown }[]) {
  // Aborted by the run's signal too: each call uses it as its own, with no AbortSignal.any per call.
  const group = childSignal(run.r.signal);
  try {
    return await Promise.all(
      calls.map(async (c) => {
        const res = await callTool(run, c.tool, c.args, { signal: group.signal, followsRun: true });
        if (!res.ok && !group.signal.aborted) group.abort(`sibling ${c.tool} failed: ${res.code}`);
        return res;
      }),
    );
  } finally {
    group.release();
  }
}

/** ctx.step: a checkpointed result is returned as is; otherwise `fn` runs in its own step scope and is checkpointed. */
async function durableStep<T>({ d, r, ctx, tracking }: ToolRun, name: string, fn: () => Promise<T>): Promise<T> {
  // Flagged before anything is awaited: a step its handler left running (not awaited) may still write after
  // the handler returned, and the run's end then still expires the steps hash (FinishInput.steps).
  tracking.wroteSteps = true;
  const key = r.cell.steps(r.workflowId);
  const done = await untilAborted(d.redis.hget(key, name), r.signal);
  if (done !== null) return (JSON.parse(done) as { v: T }).v;
  const store = current.getStore();
  const result = await current.run({ ctx: store?.ctx ?? ctx(), scope: { step: name, calls: 0, generations: 0 } }, fn);
  await untilAborted(d.redis.hset(key, name, JSON.stringify({ v: result === undefined ? null : result })), r.signal);
  return result;
}

/** ctx.model: the streaming model endpoint, in the deadline's time box, on the tier the budget allows. */
async function callModel({ d, r, tracking, budgetFor, remainingMs }: ToolRun, req: ModelRequest): Promise<ModelResult> {
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
}

/** ctx.agent: the Vercel AI SDK adapter bound to this run's gate, budget, deadline and parallelism. */
function agentFor(run: ToolRun, iterations: IterationBudget): WorkflowAgent {
  const { d, r, tracking } = run;
  return createAgent({
    tenant: r.tenant,
    cellName: r.cellName,
    deadlineAt: r.deadlineAt,
    policy: r.policy,
    signal: r.signal,
    remainingMs: run.remainingMs,
    parallelism: () => run.hint.value,
    nextGeneration: () => run.scope().generations++,
    throttled() {
      run.hint.throttled();
      tracking.throttled++;
    },
    iterations,
    callTool: (name, args, opts) => callTool(run, name, args, opts),
    budget: run.budgetFor,
    async charge(usd) {
      if (usd <= 0) return;
      await untilAborted(d.budget.record(r.tenant, usd), r.signal);
      tracking.spentUsd += usd;
    },
    dependencyHealthy: async (dep) => !d.health || d.health.check(r.cellName, dep),
    park: r.park,
    llm: d.llm,
  });
}
