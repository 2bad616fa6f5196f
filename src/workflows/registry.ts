import type { AbortReason, WorkflowContext } from "../runtime/workflowContext.ts";

/** The handler's contract lives with the runtime that provides it (src/runtime/workflowContext.ts). */
export type { AbortReason, WorkflowContext };

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
