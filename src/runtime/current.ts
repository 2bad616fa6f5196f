import { AsyncLocalStorage } from "node:async_hooks";
import type { Context } from "@opentelemetry/api";
import type { WorkflowContext } from "./workflowContext.ts";

/** The durable step a call runs in: its calls' idempotency keys are `<workflow>:<step>:<n>`. */
export interface StepScope {
  step: string;
  calls: number;
  /** ctx.agent generations started in this step: part of their calls' idempotency keys. */
  generations: number;
}

/** The running workflow, for code deep in a call stack or in background work it started. */
export const current = new AsyncLocalStorage<{ ctx: WorkflowContext; scope: StepScope; toolTrace?: Context }>();

export function currentWorkflow(): WorkflowContext | undefined {
  return current.getStore()?.ctx;
}

/** The trace context of the tool call running now (its span), for tools that propagate it (httpTool). */
export function currentToolCallTrace(): Context | undefined {
  return current.getStore()?.toolTrace;
}
