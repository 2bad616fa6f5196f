/**
 * The producer API's shapes, written by hand against the server's
 * (src/admission/schema.ts, src/admission/settle.ts, src/workflows/record.ts):
 * the client carries no server code and no server types. Times are ISO 8601.
 * The runtime objects it needs (fetch, an abort signal) are described by the
 * little they must do, so these types need nothing beyond the ES2022 lib.
 */

/** A (urgent), B (standard), C (batch). */
export type WorkflowClass = "A" | "B" | "C";

export type WorkflowState = "queued" | "running" | "parked" | "review" | "completed" | "failed" | "cancelled";

/** The states a workflow never leaves. */
export const FINAL_STATES: readonly WorkflowState[] = ["completed", "failed", "cancelled"];

/** One workflow as a producer sends it. Unknown fields are refused by the API. */
export interface WorkflowRequest {
  /** 1-64 of lowercase letters, digits, '.', '_' or '-'; a type some exec worker runs. */
  type: string;
  /** Default B. */
  class?: WorkflowClass;
  /** Any JSON object. Default {}. */
  payload?: Record<string, unknown>;
  /**
   * 1-200 characters. Sending the same request with the same key again creates nothing:
   * the answer is the first workflow, with `duplicate: true`. The same key with a
   * different request is refused (409 IDEMPOTENCY_KEY_REUSED).
   */
  idempotencyKey?: string;
  /** An ISO 8601 time with a zone, e.g. 2026-11-24T10:00:00Z; must be in the future. */
  deadlineAt?: string;
}

/** The answer to an enqueue. */
export interface Accepted {
  id: string;
  tenant: string;
  class: WorkflowClass;
  state: WorkflowState;
  enqueuedAt: string | null;
  deadlineAt: string | null;
  /** True when an earlier request with the same idempotency key created this workflow. */
  duplicate?: boolean;
}

export interface BulkResult {
  /** `index` is the workflow's place in the request. */
  accepted: ({ index: number } & Accepted)[];
  rejected: { index: number; error: { code: string; message: string; details?: unknown } }[];
}

export interface Workflow {
  id: string;
  tenant: string;
  type: string;
  class: WorkflowClass;
  state: WorkflowState;
  enqueuedAt: string | null;
  dispatchedAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  deadlineAt: string | null;
  attempts: number;
  result: unknown;
  error: { code: string; message: string } | null;
  cancelRequested?: boolean;
  /** Why a queued workflow is not running yet, when the API knows. */
  waitingReason?: string;
}

/** GET /v1/workflows: the tenant's workflows, newest first. */
export interface ListQuery {
  /** Only workflows in this state (`running` includes those just dispatched). */
  state?: WorkflowState;
  class?: WorkflowClass;
  /** Only workflows of this type. */
  type?: string;
  /** Only workflows enqueued at or after this: an ISO time, epoch ms or a Date. */
  since?: string | number | Date;
  /** 1..200, default 50. */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
}

export interface WorkflowPage {
  workflows: Workflow[];
  /** Pass as `cursor` for the next page; null at the end. A filtered page may hold fewer than `limit` and still have one. */
  nextCursor: string | null;
}

/** What the client reads of a fetch response. */
export interface ResponseLike {
  ok: boolean;
  status: number;
  statusText: string;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}

/** What the client asks of fetch; the global fetch (Node 20+, browsers) is one. */
export type FetchLike = (
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string; signal?: AbortSignalLike },
) => Promise<ResponseLike>;

/** What the client asks of an AbortSignal. */
export interface AbortSignalLike {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: "abort", listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: "abort", listener: () => void): void;
}

/** Time, for `wait` and `enqueueMany`: the real one unless a test gives its own. */
export interface ClientClock {
  now(): number;
  /** Resolves after `ms`; rejects at once if `signal` aborts first. */
  sleep(ms: number, signal?: AbortSignalLike): Promise<void>;
}
