import type { Redis } from "ioredis";
import type { CellKeys, WorkflowClass } from "../../queues/keys.ts";

/**
 * The workflow record: one Redis hash per workflow (queues/keys.ts `wf:<id>`),
 * the stable place the API reads while the job itself moves between ingress,
 * exec, parked and review queues. Times are epoch ms strings.
 */
export type WorkflowState = "queued" | "dispatched" | "running" | "parked" | "review" | "completed" | "failed" | "cancelled";

export interface WorkflowView {
  id: string;
  tenant: string;
  type: string;
  class: WorkflowClass;
  /** "review": suspended until a reviewer decides (ctx.review). */
  state: "queued" | "running" | "parked" | "review" | "completed" | "failed" | "cancelled";
  enqueuedAt: string | null;
  dispatchedAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  deadlineAt: string | null;
  attempts: number;
  result: unknown;
  error: { code: string; message: string } | null;
  cancelRequested?: boolean;
  waitingReason?: string;
}

const iso = (ms: string | undefined) => (ms ? new Date(Number(ms)).toISOString() : null);

/** `dispatched` is internal (moved to exec, not yet picked up); the API says running. */
function publicState(s: string): WorkflowView["state"] {
  return s === "dispatched" ? "running" : (s as WorkflowView["state"]);
}

export function toView(id: string, h: Record<string, string>): WorkflowView {
  const view: WorkflowView = {
    id,
    tenant: h.tenant!,
    type: h.type!,
    class: h.class as WorkflowClass,
    state: publicState(h.state ?? "queued"),
    enqueuedAt: iso(h.enqueuedAt),
    dispatchedAt: iso(h.dispatchedAt),
    startedAt: iso(h.startedAt),
    finishedAt: iso(h.finishedAt),
    deadlineAt: iso(h.deadlineAt),
    attempts: Number(h.attempts ?? 0),
    result: h.result === undefined ? null : JSON.parse(h.result),
    error: h.errorCode ? { code: h.errorCode, message: h.errorMessage ?? "" } : null,
  };
  if (h.cancelRequested) view.cancelRequested = true;
  if (h.waitingReason) view.waitingReason = h.waitingReason;
  return view;
}

/** Reads a workflow for a tenant; another tenant's workflow reads as missing. */
export async function readWorkflow(redis: Redis, cell: CellKeys, id: string, tenant: string): Promise<WorkflowView | null> {
  const h = await redis.hgetall(cell.workflow(id));
  if (!h.tenant || h.tenant !== tenant) return null;
  return toView(id, h);
}
