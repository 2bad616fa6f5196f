import type { WorkflowClass } from "../../queues/keys.ts";
import type { RuntimePolicy } from "../tenancy/policy.ts";

/**
 * What a workflow handler sees. The deadline is absolute and can only be
 * read; `signal` fires at the deadline, on cancel and on preemption, with
 * reason "deadline" | "cancelled" | "preempted" | "shutdown".
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
}

export type AbortReason = "deadline" | "cancelled" | "preempted" | "shutdown";

export type WorkflowHandler = (ctx: WorkflowContext) => Promise<unknown>;

const handlers = new Map<string, WorkflowHandler>();

/** Registers the handler for a workflow type; exec workers run it for jobs of that type. */
export function defineWorkflow(type: string, handler: WorkflowHandler): { type: string; handler: WorkflowHandler } {
  handlers.set(type, handler);
  return { type, handler };
}

export function workflowHandler(type: string): WorkflowHandler | undefined {
  return handlers.get(type);
}

export function workflowTypes(): string[] {
  return [...handlers.keys()].sort();
}
