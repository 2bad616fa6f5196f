import { FairlaneApiError } from "./apiError.js";
import { retryAfterSeconds, systemClock } from "./clock.js";
import type {
  AbortSignalLike,
  Accepted,
  BulkResult,
  ClientClock,
  FetchLike,
  ListQuery,
  Workflow,
  WorkflowPage,
  WorkflowRequest,
} from "./types.js";
import { waitUntilEnded, type WaitOptions } from "./wait.js";

export interface ClientOptions {
  baseUrl: string;
  apiKey: string;
  /** Default: the global fetch (Node 20+, browsers). */
  fetch?: FetchLike;
  /** Sent with every request, e.g. X-Request-Id or traceparent. */
  headers?: Record<string, string>;
  /** Time for `wait` and `enqueueMany`'s pauses; tests give a fake one. */
  clock?: ClientClock;
}

export interface EnqueueManyOptions {
  /** Workflows per bulk request, 1..1000. Default 500. */
  chunkSize?: number;
  /** Called after each chunk with how many of `workflows` are done. */
  onProgress?: (done: number) => void;
  /** How the client pauses before sending again. Default: the client's clock. */
  sleep?: (ms: number) => Promise<void>;
  /** Pauses allowed in all before giving up. Default 1000. */
  maxWaits?: number;
}

const BULK_MAX = 1000;

/**
 * A producer's calls, one per route of the producer API (/v1/workflows). Errors
 * come back as FairlaneApiError with the API's code; a 429 carries retryAfterSec.
 * `enqueueMany` and `wait` wait out backpressure instead of failing.
 */
export class FairlaneClient {
  private readonly base: string;
  private readonly fetchImpl: FetchLike;
  private readonly clock: ClientClock;

  constructor(private readonly opts: ClientOptions) {
    this.base = opts.baseUrl.replace(/\/+$/, "");
    // The only signal the client passes is an AbortController's (wait.ts): the platform's AbortSignal.
    this.fetchImpl = opts.fetch ?? ((url, init) => fetch(url, init as RequestInit));
    this.clock = opts.clock ?? systemClock;
  }

  /** One workflow. With an `idempotencyKey` already used for the same request: that workflow, `duplicate: true`. */
  enqueue(req: WorkflowRequest): Promise<Accepted> {
    return this.call<Accepted>("POST", "/v1/workflows", req);
  }

  /** Up to 1000 workflows in one request; a 429 when every one was refused for backpressure. */
  enqueueBulk(workflows: WorkflowRequest[]): Promise<BulkResult> {
    return this.call<BulkResult>("POST", "/v1/workflows/bulk", { workflows });
  }

  get(id: string): Promise<Workflow> {
    return this.call<Workflow>("GET", `/v1/workflows/${encodeURIComponent(id)}`);
  }

  /** Cancels a queued workflow at once (its state is cancelled), or asks a running one to stop (`cancelRequested`). */
  cancel(id: string): Promise<Workflow> {
    return this.call<Workflow>("DELETE", `/v1/workflows/${encodeURIComponent(id)}`);
  }

  /** One page of the tenant's workflows, newest first; pass `nextCursor` back as `cursor` for the next. */
  list(query: ListQuery = {}): Promise<WorkflowPage> {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query) as [string, ListQuery[keyof ListQuery]][])
      if (value !== undefined) params.set(name, value instanceof Date ? value.toISOString() : String(value));
    const q = params.toString();
    return this.call<WorkflowPage>("GET", `/v1/workflows${q ? `?${q}` : ""}`);
  }

  /** Every workflow `query` matches, newest first, a page at a time. */
  async *listAll(query: Omit<ListQuery, "cursor"> = {}): AsyncGenerator<Workflow, void, undefined> {
    let cursor: string | null = null;
    do {
      const page: WorkflowPage = await this.list(cursor ? { ...query, cursor } : query);
      yield* page.workflows;
      cursor = page.nextCursor;
    } while (cursor);
  }

  /**
   * Resolves with the workflow once it is completed, failed or cancelled (look at its
   * `state`: a failed workflow resolves too). Polls from `pollMs` (250) doubling to 2 s,
   * waits out 429s; rejects with FairlaneWaitError after `timeoutMs` (5 minutes) or on abort.
   */
  wait(id: string, opts: WaitOptions = {}): Promise<Workflow> {
    // Each look carries a signal that fires at the wait's deadline or abort: a hung answer cannot outlast it.
    return waitUntilEnded(
      id,
      (signal) => this.call<Workflow>("GET", `/v1/workflows/${encodeURIComponent(id)}`, undefined, signal),
      this.clock,
      opts,
    );
  }

  /**
   * Enqueues any number of workflows, `chunkSize` per request (≤ 1000). On 429
   * it waits Retry-After and sends the same chunk again, so nothing is dropped;
   * items the API rejects for backpressure are retried the same way. Indexes in
   * the result refer to `workflows`.
   */
  async enqueueMany(workflows: WorkflowRequest[], opts: EnqueueManyOptions = {}): Promise<BulkResult> {
    const size = Math.min(Math.max(1, opts.chunkSize ?? 500), BULK_MAX);
    const sleep = opts.sleep ?? ((ms: number) => this.clock.sleep(ms));
    const maxWaits = opts.maxWaits ?? 1000;
    const out: BulkResult = { accepted: [], rejected: [] };
    let waits = 0;
    for (let start = 0; start < workflows.length; ) {
      let pending = workflows.slice(start, start + size).map((w, i) => ({ w, index: start + i }));
      while (pending.length) {
        let result: BulkResult;
        try {
          result = await this.enqueueBulk(pending.map((p) => p.w));
        } catch (err) {
          if (!(err instanceof FairlaneApiError) || err.status !== 429) throw err;
          if (++waits > maxWaits) throw err;
          await sleep((err.retryAfterSec ?? 1) * 1000);
          continue;
        }
        for (const a of result.accepted) out.accepted.push({ ...a, index: pending[a.index]!.index });
        const retry: typeof pending = [];
        for (const r of result.rejected) {
          if (r.error.code === "BACKPRESSURE") retry.push(pending[r.index]!);
          else out.rejected.push({ ...r, index: pending[r.index]!.index });
        }
        if (retry.length) {
          if (++waits > maxWaits) {
            for (const p of retry) out.rejected.push({ index: p.index, error: { code: "BACKPRESSURE", message: "gave up waiting" } });
            break;
          }
          await sleep(1000);
        }
        pending = retry;
      }
      start += size;
      opts.onProgress?.(Math.min(start, workflows.length));
    }
    out.accepted.sort((a, b) => a.index - b.index);
    out.rejected.sort((a, b) => a.index - b.index);
    return out;
  }

  private async call<T>(method: string, path: string, body?: unknown, signal?: AbortSignalLike): Promise<T> {
    const res = await this.fetchImpl(this.base + path, {
      method,
      ...(signal ? { signal } : {}),
      headers: {
        authorization: `Bearer ${this.opts.apiKey}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...this.opts.headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // Not JSON (a proxy's HTML page): an error below, with the text as its body.
      if (res.ok)
        throw new FairlaneApiError(
          res.status,
          "INVALID_RESPONSE",
          "the API answered with something that is not JSON",
          undefined,
          undefined,
          text,
        );
      parsed = text;
    }
    if (!res.ok) {
      const e = (parsed as { error?: { code?: string; message?: string; details?: unknown } } | undefined)?.error ?? {};
      const retryAfter = retryAfterSeconds(res.headers.get("retry-after"), this.clock.now());
      throw new FairlaneApiError(res.status, e.code ?? "HTTP_ERROR", e.message ?? res.statusText, e.details, retryAfter, parsed);
    }
    return parsed as T;
  }
}
