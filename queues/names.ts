import { compilePattern, type WorkflowClass } from "./keys.ts";

/**
 * BullMQ queue names. A cell's queues all live under the cell's prefix
 * (queues/keys.ts), so the names themselves carry no hash tag.
 *   ingress.<tenant>.<A|B|C>   one per tenant and class; producers write here
 *   exec.<pool>                one per exec pool; the dispatcher moves jobs here
 *   parked                     workflows set aside as pending-backpressure
 *   review                     workflows suspended until a human decides (ctx.review)
 * The names are patterns (placeholders as in queues/keys.ts), from which the builders below and
 * the Lua scripts' `ingressQueue` / `execQueue` / `PARKED_QUEUE` (queues/lua/includes/keys.lua) derive.
 */
export const QUEUE_NAME_PATTERNS = {
  ingressQueue: "ingress.<tenant>.<cls>",
  execQueue: "exec.<pool>",
} as const;

export const TENANT_ID = /^[a-z0-9][a-z0-9_-]{0,47}$/;
/** A workflow's id, which is also its job's id: "wf_" and 20 base64url characters (src/admission/workflowId.ts). */
export const WORKFLOW_ID = /^wf_[A-Za-z0-9_-]{20}$/;
export const POOL_ID = /^[a-z0-9][a-z0-9_-]{0,47}$/;

const ingress = compilePattern("", QUEUE_NAME_PATTERNS.ingressQueue);
const exec = compilePattern("", QUEUE_NAME_PATTERNS.execQueue);

export function ingressQueue(tenant: string, cls: WorkflowClass): string {
  return ingress(tenant, cls);
}

export function execQueue(pool: string): string {
  return exec(pool);
}

export const PARKED_QUEUE = "parked";
export const REVIEW_QUEUE = "review";

export function parseIngressQueue(name: string): { tenant: string; cls: WorkflowClass } | null {
  const m = /^ingress\.([a-z0-9_-]+)\.([ABC])$/.exec(name);
  return m ? { tenant: m[1]!, cls: m[2] as WorkflowClass } : null;
}
