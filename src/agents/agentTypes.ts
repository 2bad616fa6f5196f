/**
 * What ctx.agent (aiSdk.ts) offers and needs: its interface (WorkflowAgent), the run it works for
 * (AgentHost, built by src/runtime/context.ts), the options of its tools and calls, and its outcome.
 */
import type { generateText, streamText, ToolSet } from "ai";
import type { ToolDefinition, ToolResult } from "../runtime/tools.ts";
import type { RuntimePolicy } from "../tenancy/policy.ts";
import type { IterationBudget } from "./iterations.ts";
import type { LlmSettings } from "./models.ts";

/** Per-tool settings a plain AI SDK tool does not carry. */
export interface AgentToolOptions {
  /** The downstream it calls: rate limits, health and parking apply to it. */
  dependency?: string;
  /** Estimated USD per call, checked against the budget before the call and charged after it. */
  costUsd?: number;
  timeoutMs?: number;
  /** Which errors a deadline-aware retry may help with (default: `transient: true` and timeouts). */
  isTransient?: (err: unknown) => boolean;
  /** What the tool receives, from the model's input (default: the input as is), e.g. to add fixed settings. */
  args?: (input: unknown) => unknown;
}

/** How the run ended, next to the AI SDK's own result. */
export interface AgentOutcome {
  /** Model steps this generation made, and the run's total against its limit. */
  steps: number;
  iterations: { used: number; limit: number };
  /** "max_iterations": the model still asked for tools when the tier's limit stopped it. */
  stoppedBy: "finished" | "max_iterations";
  /** The last step's tier and model (a degraded step shows the cheaper one). */
  tier: string;
  model: string;
  region: string;
  /** USD charged for this generation's tokens. */
  spentUsd: number;
}

/** What the adapter needs from the run (src/runtime/context.ts builds it). */
export interface AgentHost {
  tenant: string;
  cellName: string;
  deadlineAt: number | null;
  policy: RuntimePolicy;
  signal: AbortSignal;
  remainingMs(): number;
  parallelism(): number;
  /** Numbers the generations of the current ctx.step (0, 1, ...): the same on a re-run of the step. */
  nextGeneration(): number;
  /** A step ran past its cap: counts as a THROTTLED signal and narrows ctx.parallelism to 1. */
  throttled(): void;
  iterations: IterationBudget;
  /** `keyPart`: the call's idempotency key within the current ctx.step (default: its call index). */
  callTool(name: string, args: unknown, opts: { signal?: AbortSignal; def?: ToolDefinition; keyPart?: string }): Promise<ToolResult>;
  budget(estimateUsd: number): Promise<"ok" | "degrade" | "refuse">;
  charge(usd: number): Promise<void>;
  /** False when a watched dependency is down (a missing probe counts as healthy). */
  dependencyHealthy(dependency: string): Promise<boolean>;
  park(dependency: string, reason: string): void;
  llm: LlmSettings | undefined;
}

export type GenerateOptions<T extends ToolSet> = Omit<Parameters<typeof generateText<T>>[0], "model"> & AgentCallOptions;
export type StreamOptions<T extends ToolSet> = Omit<Parameters<typeof streamText<T>>[0], "model"> & AgentCallOptions;
export interface AgentCallOptions {
  /** Kept back from each model request's time box for the tool calls that follow (default 20% of what is left). */
  reserveMs?: number;
  /** Leave THROTTLE_PROMPT out of the system prompt. */
  fairlanePrompt?: false;
}

export interface WorkflowAgent {
  tools<T extends ToolSet>(set: T, options?: { [K in keyof T]?: AgentToolOptions }): T;
  generate<T extends ToolSet>(
    options: GenerateOptions<T>,
  ): Promise<Awaited<ReturnType<typeof generateText<T>>> & { fairlane: AgentOutcome }>;
  /**
   * As streamText's result; reading `textStream` throws what stopped the run (DEADLINE_EXCEEDED when the time
   * box cut it), and `await result.fairlane` gives the outcome or throws the same.
   */
  stream<T extends ToolSet>(options: StreamOptions<T>): ReturnType<typeof streamText<T>> & { fairlane: Promise<AgentOutcome> };
}
