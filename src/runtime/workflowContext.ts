import type { Context } from "@opentelemetry/api";
import type { Redis } from "ioredis";
import type { CellKeys, WorkflowClass } from "../../queues/keys.ts";
import type { Clock } from "../lib/clock.ts";
import type { RuntimePolicy } from "../tenancy/policy.ts";
import type { HealthCache } from "../backpressure/healthCache.ts";
import type { LlmSettings } from "../agents/models.ts";
import type { WorkflowAgent } from "../agents/aiSdk.ts";
import type { TenantBudget } from "./budget.ts";
import type { CpuPool, CpuTaskName } from "./cpuPool.ts";
import type { ModelRequest, ModelResult } from "./model.ts";
import type { TenantRateLimits } from "./rateLimit.ts";
import type { ToolGate } from "./toolGate.ts";
import type { ToolResult } from "./tools.ts";

/**
 * The runtime's contracts: what a workflow handler sees (WorkflowContext), what a run is given
 * (RunInfo) and what every run of a process shares (RuntimeDeps). The handler registry
 * (src/workflows/registry.ts) and the exec runner (src/exec/) build on these; the runtime
 * imports neither.
 */

/**
 * What a workflow handler sees. The deadline is absolute and can only be
 * read; `signal` fires at the deadline, on cancel and on preemption, with
 * reason "deadline" | "cancelled" | "preempted" | "shutdown" | "park" (a
 * dependency is unhealthy: the workflow is set aside and resumes later) | "review"
 * (it awaits a person's decision: ctx.review).
 */
export interface WorkflowContext {
  readonly workflowId: string;
  readonly tenant: string;
  readonly class: WorkflowClass;
  readonly type: string;
  readonly payload: Record<string, unknown>;
  readonly deadlineAt: number | null;
  readonly traceId: string;
  readonly attempt: number;
  readonly policy: RuntimePolicy;
  readonly signal: AbortSignal;
  remainingMs(): number;
  /** Calls a tool through the tenant's gate (MCTC), rate limits and deadline; never throws for policy outcomes. */
  tool<R = unknown>(name: string, args?: unknown, opts?: { signal?: AbortSignal }): Promise<ToolResult<R>>;
  /** Runs tool calls concurrently; when one fails, or the deadline passes, the others are aborted. */
  all(calls: { tool: string; args?: unknown }[]): Promise<ToolResult[]>;
  /** A durable step: its result is checkpointed, so a re-run (after preemption, parking, a crash) skips it. */
  step<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /**
   * Asks a person (the tenant's reviewer pool) to decide. The first time, the workflow is suspended: the
   * call throws REVIEW_PENDING, the slot and permits are released, and when a reviewer decides the workflow
   * runs again from the top, its durable steps skipping, and this call answers with the decision.
   */
  review(request: ReviewRequest): Promise<ReviewDecision>;
  /** How many tool calls to run at once now: 1 right after a THROTTLED, back up as calls pass. */
  readonly parallelism: number;
  /**
   * The cost budget: what this run spent, and before an expensive step whether
   * it fits ("ok"), should degrade (cheaper model tier, skip optional steps,
   * escalate) or would overspend ("refuse"; tool calls are then refused).
   */
  readonly budget: { readonly spentUsd: number; decide(estimateUsd: number): Promise<"ok" | "degrade" | "refuse"> };
  /** Runs CPU-heavy result processing on a worker thread, so one tenant's parsing never stalls another's calls. */
  cpu<T>(task: CpuTaskName, input: unknown): Promise<T>;
  /** Streams a model answer, cut off when the deadline's time box (remaining − reserve) runs out. */
  model(req?: ModelRequest): Promise<ModelResult>;
  /**
   * Model steps against the tier's `maxIterations`: a hand-written agent loop calls `next()` before each
   * reasoning step and stops when it answers false; ctx.agent counts its model requests here too.
   */
  readonly iterations: { readonly used: number; readonly limit: number; readonly left: number; next(): boolean };
  /** The Vercel AI SDK under this workflow's gate, budget, deadline and model policy (src/agents/aiSdk.ts). */
  readonly agent: WorkflowAgent;
}

/**
 * Why ctx.signal fired. "stalled": this process was frozen (a long GC pause, SIGSTOP, a starved VM) long
 * enough that its lock may have lapsed, so its runs stop before doing anything more and go back to their
 * queue (or to whoever took them over). "lost": the lock renewal said another worker owns the run.
 */
export type AbortReason = "deadline" | "cancelled" | "preempted" | "shutdown" | "park" | "review" | "stalled" | "lost";

/** What a reviewer sees: a summary and any JSON data (the tenant's, shown only to its reviewer pool; at most 64 KB). */
export interface ReviewRequest {
  /** Names the review step when a workflow asks more than once (default "review"). */
  name?: string;
  summary: string;
  data?: unknown;
}

/** A reviewer's decision, as ctx.review answers it. */
export interface ReviewDecision {
  decision: "approve" | "reject";
  note: string | null;
  /** The reviewer key's id. */
  reviewer: string;
  decidedAt: number;
  escalations: number;
}

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
  /** Ends the run as awaiting review: the runner suspends it (queues/lua/awaitReview-4.lua). */
  review(step: string, request: string): void;
}

export interface RunTracking {
  /** Tool calls still running: must be 0 when the workflow ends (no orphaned calls). */
  active: Set<Promise<unknown>>;
  throttled: number;
  rateLimited: number;
  /** What this run has spent (tool and model cost estimates), USD. */
  spentUsd: number;
  /** This run began a step (ctx.step): its steps hash may exist, and must end with the record's TTL. */
  wroteSteps: boolean;
}
