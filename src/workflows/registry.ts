import type { WorkflowClass } from "../../queues/keys.ts";
import type { RuntimePolicy } from "../tenancy/policy.ts";
import type { ToolResult } from "../runtime/tools.ts";
import type { ModelRequest, ModelResult } from "../runtime/model.ts";
import type { CpuTaskName } from "../runtime/cpuPool.ts";
import type { WorkflowAgent } from "../agents/aiSdk.ts";

/**
 * What a workflow handler sees. The deadline is absolute and can only be
 * read; `signal` fires at the deadline, on cancel and on preemption, with
 * reason "deadline" | "cancelled" | "preempted" | "shutdown" | "park" (a
 * dependency is unhealthy: the workflow is set aside and resumes later).
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
export type AbortReason = "deadline" | "cancelled" | "preempted" | "shutdown" | "park" | "stalled" | "lost";

export type WorkflowHandler = (ctx: WorkflowContext) => Promise<unknown>;

const handlers = new Map<string, WorkflowHandler>();
const dependencies = new Map<string, string[]>();

/**
 * Registers the handler for a workflow type; exec workers run it for jobs of
 * that type. `dependencies` names the downstream systems it needs: while one
 * is down, the dispatcher parks new workflows of this type instead of starting them.
 */
export function defineWorkflow(
  type: string,
  handler: WorkflowHandler,
  opts: { dependencies?: string[] } = {},
): { type: string; handler: WorkflowHandler } {
  handlers.set(type, handler);
  if (opts.dependencies?.length) dependencies.set(type, opts.dependencies);
  return { type, handler };
}

/** Workflow type -> declared dependencies, for the dispatcher (exec workers publish it). */
export function workflowDependencies(): Map<string, string[]> {
  return dependencies;
}

export function workflowHandler(type: string): WorkflowHandler | undefined {
  return handlers.get(type);
}

export function workflowTypes(): string[] {
  return [...handlers.keys()].sort();
}
