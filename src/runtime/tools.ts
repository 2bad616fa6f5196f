/**
 * Tools a workflow calls through `ctx.tool(name, args)`. A tool declares the
 * dependency it uses (for rate limits and, later, health), an estimated cost,
 * a timeout, and which of its errors are transient (worth a deadline-aware
 * retry). Its `run` gets an AbortSignal that fires at the deadline, on cancel
 * or preemption, when a fan-out sibling fails, and at the attempt timeout,
 * plus the idempotency key a downstream can use to drop a repeat.
 */
export interface ToolCallContext {
  readonly tenant: string;
  readonly workflowId: string;
  readonly deadlineAt: number | null;
  readonly signal: AbortSignal;
  /** `<workflow id>:<step>:<call index>`: the same on a re-run of the same step. */
  readonly idempotencyKey: string;
  readonly traceId: string;
  remainingMs(): number;
  /**
   * The last look: false once this process knows the call's dependency is not healthy (its own failed
   * answer, another process's announcement, a probe's signal). A tool whose request can wait before it is
   * written (an HTTP client waiting for a connection) asks right before the write and, when false, sends
   * nothing and throws NotSentError: the workflow parks, as when the gate refuses a permit.
   */
  mayCall(): boolean;
  /** The answer's status as soon as it is known, before its body is read: a 503 or 429 marks the dependency degraded at once. */
  answered(status: number): void;
}

/** A call its tool did not send: its dependency was known to be unhealthy when the request was about to be written (`mayCall`). */
export class NotSentError extends Error {
  readonly transient = true;
  constructor(message: string) {
    super(message);
    this.name = "NotSentError";
  }
}

export interface ToolDefinition<A = unknown, R = unknown> {
  name: string;
  /** The downstream dependency it uses: rate limits apply to it too. */
  dependency?: string;
  /** Estimated cost of one call, in USD. */
  costUsd?: number;
  timeoutMs?: number;
  isTransient?: (err: unknown) => boolean;
  run(args: A, ctx: ToolCallContext): Promise<R>;
}

/** A tool call's outcome: never a silent drop, never an unbounded wait. */
export type ToolResult<R = unknown> =
  | { ok: true; value: R; waitedMs: number; attempts: number }
  | { ok: false; code: "THROTTLED"; tool: string; reason: "queue_full" | "wait_timeout"; retryAfterMs: number; message: string }
  | { ok: false; code: "RATE_LIMITED"; tool: string; retryAfterMs: number; message: string }
  | {
      ok: false;
      code: "DEADLINE_EXCEEDED" | "TOOL_NOT_ALLOWED" | "BUDGET_EXCEEDED" | "TOOL_ERROR" | "ABORTED" | "UNKNOWN_TOOL" | "PARKED";
      tool: string;
      message: string;
    };

const tools = new Map<string, ToolDefinition>();

export function defineTool<A, R>(def: ToolDefinition<A, R>): ToolDefinition<A, R> {
  tools.set(def.name, def as ToolDefinition);
  return def;
}

export function toolDefinition(name: string): ToolDefinition | undefined {
  return tools.get(name);
}

/** Errors worth a retry by default: network failures and 5xx/429 answers (see httpTool). */
export function defaultTransient(err: unknown): boolean {
  const e = err as { transient?: boolean; name?: string };
  return e?.transient === true || e?.name === "TimeoutError";
}
