/**
 * TypeScript client for producers. Same calls as the HTTP API:
 *   const fl = new FairlaneClient({ baseUrl: "http://localhost:3000", apiKey });
 *   const { id } = await fl.enqueue({ type: "prior-auth", class: "C", payload });
 * Errors come back as FairlaneApiError with the API's code; a 429 carries
 * retryAfterSec. `enqueueMany` sends any number of workflows in bulk requests
 * and waits out backpressure instead of failing.
 */
// Types only: the client shares the server's shapes and carries none of its code.
import type { Accepted, BulkResult as ServerBulkResult } from "../admission/admit.ts";
import type { WorkflowRequestInput } from "../admission/schema.ts";
import type { WorkflowView } from "../workflows/record.ts";

export type WorkflowRequest = WorkflowRequestInput;
export type Workflow = WorkflowView;
export type { Accepted };

export interface BulkResult {
  accepted: ServerBulkResult["accepted"];
  rejected: { index: number; error: { code: string; message: string } }[];
}

export class FairlaneApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    readonly retryAfterSec?: number,
    readonly body?: unknown,
  ) {
    super(`${status} ${code}: ${message}`);
    this.name = "FairlaneApiError";
  }
}

export interface ClientOptions {
  baseUrl: string;
  apiKey: string;
  fetch?: typeof fetch;
  /** Sent as X-Request-Id / traceparent when given. */
  headers?: Record<string, string>;
}

const BULK_MAX = 1000;

export class FairlaneClient {
  private readonly base: string;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly opts: ClientOptions) {
    this.base = opts.baseUrl.replace(/\/+$/, "");
    this.fetchImpl = opts.fetch ?? fetch;
  }

  enqueue(req: WorkflowRequest): Promise<Accepted> {
    return this.call<Accepted>("POST", "/v1/workflows", req);
  }

  enqueueBulk(workflows: WorkflowRequest[]): Promise<BulkResult> {
    return this.call<BulkResult>("POST", "/v1/workflows/bulk", { workflows });
  }

  get(id: string): Promise<Workflow> {
    return this.call<Workflow>("GET", `/v1/workflows/${encodeURIComponent(id)}`);
  }

  cancel(id: string): Promise<Workflow> {
    return this.call<Workflow>("DELETE", `/v1/workflows/${encodeURIComponent(id)}`);
  }

  /**
   * Enqueues any number of workflows, `chunkSize` per request (≤ 1000). On 429
   * it waits Retry-After and sends the same chunk again, so nothing is dropped;
   * items the API rejects for backpressure are retried the same way. Indexes in
   * the result refer to `workflows`.
   */
  async enqueueMany(
    workflows: WorkflowRequest[],
    opts: { chunkSize?: number; onProgress?: (done: number) => void; sleep?: (ms: number) => Promise<void>; maxWaits?: number } = {},
  ): Promise<BulkResult> {
    const size = Math.min(Math.max(1, opts.chunkSize ?? 500), BULK_MAX);
    const sleep = opts.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
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
          if (++waits > (opts.maxWaits ?? 1000)) throw err;
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
          if (++waits > (opts.maxWaits ?? 1000)) {
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

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.fetchImpl(this.base + path, {
      method,
      headers: {
        authorization: `Bearer ${this.opts.apiKey}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...this.opts.headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const parsed = text ? (JSON.parse(text) as unknown) : undefined;
    if (!res.ok) {
      const e = (parsed as { error?: { code?: string; message?: string; details?: unknown } })?.error ?? {};
      const retry = res.headers.get("retry-after");
      throw new FairlaneApiError(res.status, e.code ?? "HTTP_ERROR", e.message ?? res.statusText, e.details, retry ? Number(retry) : undefined, parsed);
    }
    return parsed as T;
  }
}
