import { setTimeout as sleep } from "node:timers/promises";
import { context, ROOT_CONTEXT, SpanKind, trace } from "@opentelemetry/api";
import type { RunInfo, RunTracking, RuntimeDeps, WorkflowContext } from "./workflowContext.ts";
import { toolAllowed } from "./budget.ts";
import type { ParallelismHint } from "./gateRule.ts";
import { DEFAULT_RETRY, withDeadlineRetry } from "./retry.ts";
import { untilAborted } from "../lib/abortable.ts";
import { metrics } from "../observability/metrics.ts";
import { activeOr, ATTR, endSpan, tracer } from "../observability/tracing.ts";
import type { Permit } from "./toolGate.ts";
import type { SpendArgs } from "../../queues/lua/permits.ts";
import { defaultTransient, NotSentError, toolDefinition, type ToolDefinition, type ToolResult } from "./tools.ts";
import { current, type StepScope } from "./current.ts";

/**
 * One tool call, as a pipeline of small stages. Before a permit, in order:
 *   allowed     the tool exists and the tenant's allow/deny lists let it through
 *   deadline    time is left
 *   healthy     its dependency is not known to be unhealthy (else the workflow parks)
 *   budget      its cost fits the workflow's and the month's budget
 *   rate limit  the tenant's limits for the tool and its dependency
 * then the gate's permit (MCTC; THROTTLED is a result, not an exception; no permit while any process has
 * marked the dependency degraded or down, which parks the workflow), a second health look
 * (the wait may have outlasted the dependency), the call with deadline-aware retries, and the
 * outcome: a value, or a result that names why not (park, deadline, tool error). Every stage either
 * lets the call on (undefined) or ends it with a result; none throws for a policy outcome.
 */

/** What a tool call needs from its run (createContext builds it once per run). */
export interface ToolRun {
  d: RuntimeDeps;
  r: RunInfo;
  tracking: RunTracking;
  hint: ParallelismHint;
  /** The tenant's metrics label (its id, or an aggregate beyond the label cap). */
  tenant: string;
  remainingMs(): number;
  budgetFor(estimateUsd: number): Promise<"ok" | "degrade" | "refuse">;
  scope(): StepScope;
  /** The context every call's ALS scope carries when none is active (the run's own). */
  ctx(): WorkflowContext;
}

export interface CallOptions {
  signal?: AbortSignal;
  /** A tool defined for this call only (an AI SDK tool's execute), else the one registered as the name. */
  def?: ToolDefinition;
  /** The call's idempotency key within its step (ctx.agent's: tool, arguments, occurrence), else its index. */
  keyPart?: string;
  /** `signal` already aborts when the run's does (ctx.all's group): the call uses it as it is. */
  followsRun?: boolean;
}

interface Call {
  name: string;
  args: unknown;
  def: ToolDefinition;
  idempotencyKey: string;
  signal: AbortSignal;
  cost: number;
}

type Stop = ToolResult<never>;
type Stage = (run: ToolRun, call: Call) => Promise<Stop | undefined> | Stop | undefined;

const sleepFor = (ms: number, sig?: AbortSignal) => sleep(ms, undefined, { signal: sig }).then(() => undefined);

/** One call in a `fairlane.tool_call` span, a child of the run (or of the handler's active span). */
export async function callTool<R>(run: ToolRun, name: string, args: unknown, opts: CallOptions = {}): Promise<ToolResult<R>> {
  const { r } = run;
  const runTrace = activeOr(r.trace ?? ROOT_CONTEXT);
  const span = tracer.startSpan("fairlane.tool_call", { kind: SpanKind.CLIENT }, runTrace);
  if (span.isRecording()) {
    const left = run.remainingMs();
    span.setAttributes({ [ATTR.tenant]: r.tenant, [ATTR.cls]: r.cls, [ATTR.workflowId]: r.workflowId, "tool.name": name });
    if (left !== Infinity) span.setAttribute(ATTR.remainingMs, left);
  }
  const spanCtx = trace.setSpan(runTrace, span);
  let result: ToolResult<R> | undefined;
  try {
    const store = current.getStore();
    result = await current.run({ ctx: store?.ctx ?? run.ctx(), scope: run.scope(), toolTrace: spanCtx }, () =>
      context.with(spanCtx, () => callToolOnce<R>(run, name, args, opts)),
    );
    return result;
  } finally {
    const code = result === undefined ? "INTERNAL" : result.ok ? undefined : result.code;
    metrics.toolCalls.inc({ tenant: run.tenant, outcome: code ?? "ok" });
    endSpan(span, code, result?.ok ? { "fairlane.tool.attempts": result.attempts, "fairlane.gate.wait_ms": result.waitedMs } : undefined);
  }
}

async function callToolOnce<R>(run: ToolRun, name: string, args: unknown, opts: CallOptions): Promise<ToolResult<R>> {
  const { r } = run;
  const def = opts.def ?? toolDefinition(name);
  if (!def) return { ok: false, code: "UNKNOWN_TOOL", tool: name, message: `no tool "${name}" is defined` };
  if (!toolAllowed(name, r.policy.allowedTools, r.policy.deniedTools))
    return { ok: false, code: "TOOL_NOT_ALLOWED", tool: name, message: `tool "${name}" is not allowed by the tenant's policy` };
  const s = run.scope();
  const call: Call = {
    name,
    args,
    def,
    // Counted once the call is allowed: a refused call takes no place in its step's numbering.
    idempotencyKey: `${r.workflowId}:${s.step}:${opts.keyPart ?? s.calls++}`,
    signal: !opts.signal ? r.signal : opts.followsRun ? opts.signal : AbortSignal.any([r.signal, opts.signal]),
    cost: def.costUsd ?? 0,
  };
  for (const stage of BEFORE_PERMIT) {
    const stop = await stage(run, call);
    if (stop) return stop;
  }
  const permit = await acquirePermit(run, call);
  if (!permit.ok) return permit.stop;
  // The wait for a permit may have outlasted the dependency: look again before calling it.
  const dep = unhealthyDependency(run, call);
  if (dep) {
    await run.d.gate.release(permit.permit);
    return park(run, call, dep);
  }
  return invokeHolding<R>(run, call, permit.permit, permit.waitedMs);
}

const deadlineLeft: Stage = (run, call) =>
  run.remainingMs() <= 0
    ? { ok: false, code: "DEADLINE_EXCEEDED", tool: call.name, message: "the workflow's deadline has passed" }
    : undefined;

/** The call's dependency when this process knows it is unhealthy. */
function unhealthyDependency({ d, r }: ToolRun, call: Call): string | undefined {
  const dep = call.def.dependency;
  return dep && d.health && !d.health.peek(r.cellName, dep) ? dep : undefined;
}

function park({ r }: ToolRun, call: Call, dep: string): Stop {
  r.park(dep, `${dep} is not healthy`);
  return { ok: false, code: "PARKED", tool: call.name, message: `parked: ${dep} is not healthy` };
}

/** A dependency this process knows is unhealthy gets no new call: park now, retry nothing. */
const dependencyHealthy: Stage = (run, call) => {
  const dep = unhealthyDependency(run, call);
  return dep ? park(run, call, dep) : undefined;
};

const withinBudget: Stage = async (run, call) =>
  (await untilAborted(run.budgetFor(call.cost), call.signal)) === "refuse"
    ? { ok: false, code: "BUDGET_EXCEEDED", tool: call.name, message: "the call would exceed the workflow's or the tenant's cost budget" }
    : undefined;

const withinRateLimits: Stage = async ({ d, r, tracking }, call) => {
  const dep = call.def.dependency;
  if (!r.policy.rateLimits[call.name] && !(dep && r.policy.rateLimits[dep])) return undefined; // most calls: no limit
  for (const limited of [call.name, dep].filter((x): x is string => !!x && !!r.policy.rateLimits[x])) {
    const opts = { deadlineAt: r.deadlineAt, clock: d.clock, sleep: sleepFor, signal: call.signal };
    const rl = await untilAborted(d.rateLimits.consume(r.tenant, limited, r.policy.rateLimits, opts), call.signal);
    if (!rl.ok) {
      tracking.rateLimited++;
      return {
        ok: false,
        code: "RATE_LIMITED",
        tool: call.name,
        retryAfterMs: rl.retryAfterMs,
        message: `tenant ${r.tenant} is over its rate limit for ${limited}`,
      };
    }
  }
  return undefined;
};

const BEFORE_PERMIT: Stage[] = [deadlineLeft, dependencyHealthy, withinBudget, withinRateLimits];

/** The tenant's MCTC gate: a permit, or the result that says why not (THROTTLED, aborted, out of time). */
async function acquirePermit(
  run: ToolRun,
  call: Call,
): Promise<{ ok: true; permit: Permit; waitedMs: number } | { ok: false; stop: Stop }> {
  const { d, r, tenant } = run;
  const permit = await d.gate.acquire({
    cell: r.cellName,
    tenant: r.tenant,
    batch: r.cls === "C",
    limits: {
      mctc: r.policy.mctc,
      mctcBatch: r.policy.mctcBatch,
      depth: r.policy.toolQueueDepth,
      ...(r.policy.orgGate ? { org: r.policy.orgGate } : {}),
    },
    deadlineAt: r.deadlineAt,
    waitTimeoutMs: r.policy.toolWaitTimeoutMs,
    signal: call.signal,
    ...(call.def.dependency ? { dependency: call.def.dependency } : {}),
  });
  metrics.gateWait.observe({ tenant }, permit.waitedMs / 1000);
  metrics.deadlinePhase.inc({ tenant, phase: "gate_wait" }, permit.waitedMs / 1000);
  if (permit.ok) return { ok: true, permit: permit.permit, waitedMs: permit.waitedMs };
  if (permit.code === "THROTTLED") {
    run.hint.throttled();
    run.tracking.throttled++;
    const message = `tenant ${r.tenant} is at its tool-call limit`;
    return {
      ok: false,
      stop: { ok: false, code: "THROTTLED", tool: call.name, reason: permit.reason, retryAfterMs: permit.retryAfterMs, message },
    };
  }
  if (permit.code === "UNHEALTHY") {
    // Another process marked it (its announcement may not have arrived yet): this process knows now too.
    d.health?.set(r.cellName, permit.dependency, false);
    return { ok: false, stop: park(run, call, permit.dependency) };
  }
  if (permit.code === "ABORTED")
    return { ok: false, stop: { ok: false, code: "ABORTED", tool: call.name, message: String(call.signal.reason ?? "aborted") } };
  return {
    ok: false,
    stop: { ok: false, code: "DEADLINE_EXCEEDED", tool: call.name, message: "the deadline came before a tool-call permit" },
  };
}

/** The call itself, holding a permit: retries within the deadline, then its outcome; the permit goes back once. */
async function invokeHolding<R>(run: ToolRun, c: Call, permit: Permit, waitedMs: number): Promise<ToolResult<R>> {
  const { d, r, tracking, tenant } = run;
  let attempts = 0;
  const call = withRetries(run, c, (n) => (attempts = n));
  tracking.active.add(call);
  const started = d.clock.now();
  metrics.toolCallsInFlight.inc({ tenant });
  if (tenant === r.tenant) metrics.toolCallCeiling.set({ tenant }, r.policy.mctc); // an _other_ aggregate has no one ceiling
  // A call that returned a value is paid for: its cost goes with the permit's release, in one round trip.
  let spend: SpendArgs | undefined;
  try {
    const value = (await call) as R;
    if (c.cost > 0) {
      tracking.spentUsd += c.cost;
      spend = d.budget.spendOf(r.tenant, c.cost);
    }
    run.hint.passed();
    return { ok: true, value, waitedMs, attempts };
  } catch (err) {
    return await failed(run, c, err);
  } finally {
    tracking.active.delete(call);
    metrics.toolCallsInFlight.dec({ tenant });
    metrics.deadlinePhase.inc({ tenant, phase: "tool" }, (d.clock.now() - started) / 1000);
    // A stopped run does not wait for Redis to hand its permit back (the release still goes out).
    const paid = spend;
    const released = d.gate.release(permit, paid);
    if (paid) void released.then((totals) => totals && d.budget.spent(paid, totals)).catch(() => undefined);
    await untilAborted(released, c.signal).catch((err) => {
      if (!c.signal.aborted) throw err;
    });
  }
}

/** The tool's own run with deadline-aware retries; every attempt's outcome feeds passive health. */
function withRetries(run: ToolRun, c: Call, onAttempt: (n: number) => void): Promise<unknown> {
  const { d, r, remainingMs } = run;
  const dep = c.def.dependency;
  return withDeadlineRetry(
    async (attemptSignal, attempt) => {
      onAttempt(attempt);
      // An overloaded answer (503, 429) feeds passive health as soon as the tool sees its status (`answered`),
      // before its body is read: this process's other calls waiting to be written see it at their last look
      // (`mayCall`), and the mark and its announcement leave for the other processes that much sooner.
      let reported = false;
      const answered = (status: number) => {
        if (!dep || reported || (status !== 503 && status !== 429)) return;
        reported = true;
        d.onOutcome?.(r.cellName, dep, false, true);
      };
      try {
        const meta = { tenant: r.tenant, workflowId: r.workflowId, deadlineAt: r.deadlineAt, traceId: r.traceId, remainingMs };
        const mayCall = () => !unhealthyDependency(run, c);
        const value = await c.def.run(c.args, { ...meta, signal: attemptSignal, idempotencyKey: c.idempotencyKey, mayCall, answered });
        if (dep) d.onOutcome?.(r.cellName, dep, true, false);
        return value;
      } catch (err) {
        // Every failed attempt feeds passive health at once, so the next retry decision already knows; a call
        // its tool did not send tells nothing about the dependency.
        const status = (err as { status?: number }).status;
        if (dep && !attemptSignal.aborted && !reported && !(err instanceof NotSentError))
          d.onOutcome?.(r.cellName, dep, false, status === 503 || status === 429);
        throw err;
      }
    },
    {
      deadlineAt: r.deadlineAt ?? d.clock.now() + 24 * 3600_000,
      clock: d.clock,
      sleep: sleepFor,
      policy: { ...DEFAULT_RETRY, maxRetries: r.policy.deadline.toolRetries },
      toolTimeoutMs: c.def.timeoutMs ?? 30_000,
      signal: c.signal,
      // No retry into a dependency this process already knows is unhealthy: park instead.
      isTransient: (err) => (c.def.isTransient ?? defaultTransient)(err) && !unhealthyDependency(run, c),
    },
  );
}

/** What a failed call tells the handler: aborted, parked, out of time, or the tool's own error. */
async function failed(run: ToolRun, c: Call, err: unknown): Promise<Stop> {
  const { d, r, remainingMs } = run;
  const e = err as { code?: string; message?: string };
  if (c.signal.aborted) return { ok: false, code: "ABORTED", tool: c.name, message: String(c.signal.reason ?? "aborted") };
  const dep = c.def.dependency;
  // Not sent: its dependency became unhealthy while the request waited to be written. Park, as the gate would have.
  if (err instanceof NotSentError && dep) return park(run, c, dep);
  const transient = (c.def.isTransient ?? defaultTransient)(err);
  if (transient && dep && d.health && !(await d.health.check(r.cellName, dep))) {
    r.park(dep, `${c.name} failed while ${dep} is not healthy`);
    return { ok: false, code: "PARKED", tool: c.name, message: `parked: ${dep} is not healthy` };
  }
  // An attempt cut by its timeout with too little time left for another is the deadline's doing.
  const outOfTime = (err as Error)?.name === "TimeoutError" && remainingMs() < 2 * DEFAULT_RETRY.minViableAttemptMs;
  if (e?.code === "DEADLINE_EXCEEDED" || outOfTime)
    return { ok: false, code: "DEADLINE_EXCEEDED", tool: c.name, message: "the workflow's deadline left no time to finish the call" };
  return { ok: false, code: "TOOL_ERROR", tool: c.name, message: e?.message ?? String(err) };
}
