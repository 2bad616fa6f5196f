import { context, isSpanContextValid, propagation, trace } from "@opentelemetry/api";
import { DecoratorHandler, type Dispatcher, getGlobalDispatcher, request } from "undici";
import { formatTraceparent } from "../observability/tracing.ts";
import { currentToolCallTrace } from "./current.ts";
import { defineTool, NotSentError, type ToolCallContext, type ToolDefinition } from "./tools.ts";

/** An HTTP answer a retry may help with (5xx, 429) or a network failure. */
export class TransientHttpError extends Error {
  readonly transient = true;
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "TransientHttpError";
  }
}

/**
 * One request's last look and first sight, around undici's own handler (the rest forwarded as it is).
 * undici calls `onConnect` right before it writes the request to its socket, after any wait for a
 * connection, and writes nothing once it is aborted there: a call permitted before its dependency failed,
 * still waiting for a socket when this process learnt of it, is not sent (`mayCall`). `onHeaders` runs as
 * soon as the answer's status is parsed, before its body is read (`answered`).
 */
function lastLook(inner: Dispatcher.DispatchHandlers, ctx: ToolCallContext): Dispatcher.DispatchHandlers {
  const h: Dispatcher.DispatchHandlers = new DecoratorHandler(inner);
  h.onConnect = (abort) => {
    inner.onConnect?.(abort);
    if (!ctx.mayCall()) abort(new NotSentError("not sent: its dependency became unhealthy before the request was written"));
  };
  h.onHeaders = (statusCode, headers, resume, statusText) => {
    ctx.answered(statusCode);
    return inner.onHeaders?.(statusCode, headers, resume, statusText) ?? true;
  };
  return h;
}

/** The global dispatcher (read per call: a test's or a proxy's when one is set), each request under its last look. */
const lookingFor = (ctx: ToolCallContext) =>
  ({
    dispatch: (opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandlers) =>
      getGlobalDispatcher().dispatch(opts, lastLook(handler, ctx)),
  }) as unknown as Dispatcher;

/**
 * Defines a tool that calls an HTTP endpoint (undici's `request`, on keep-alive connections: a
 * third of the CPU of `fetch`, whose WHATWG streams and per-request objects were the exec
 * process's largest cost per tool call in the storm benchmark). Every request carries
 * the workflow's absolute deadline (`X-Request-Deadline`, ISO 8601), the call's
 * `Idempotency-Key`, the W3C trace context of its `fairlane.tool_call` span
 * (`traceparent`; plus `tracestate`/baggage when an SDK registers a
 * propagator) and the tenant (`X-Tenant-Id`), and is aborted by the call's
 * signal — at the deadline at the latest, so no request outlives its workflow.
 */
export function httpTool<A extends Record<string, unknown>>(o: {
  name: string;
  dependency?: string;
  costUsd?: number;
  timeoutMs?: number;
  method?: "GET" | "POST";
  url: (args: A) => string;
}): ToolDefinition<A, unknown> {
  return defineTool<A, unknown>({
    name: o.name,
    dependency: o.dependency,
    costUsd: o.costUsd,
    timeoutMs: o.timeoutMs,
    async run(args: A, ctx: ToolCallContext) {
      const headers: Record<string, string> = {
        "Idempotency-Key": ctx.idempotencyKey,
        "X-Tenant-Id": ctx.tenant,
        traceparent: traceparentOf(ctx),
      };
      propagation.inject(currentToolCallTrace() ?? context.active(), headers); // a no-op without an SDK
      if (ctx.deadlineAt !== null) headers["X-Request-Deadline"] = new Date(ctx.deadlineAt).toISOString();
      const method = o.method ?? "POST";
      let status: number;
      let text: string;
      try {
        const res = await request(o.url(args), {
          method,
          headers: method === "POST" ? { ...headers, "Content-Type": "application/json" } : headers,
          body: method === "POST" ? JSON.stringify(args) : undefined,
          signal: ctx.signal,
          dispatcher: lookingFor(ctx),
          maxRedirections: 5, // as fetch did (it followed up to 20); a 30x beyond them is an error
        });
        status = res.statusCode;
        text = await res.body.text();
      } catch (err) {
        if (ctx.signal.aborted || err instanceof NotSentError) throw err;
        throw new TransientHttpError(0, `network error: ${(err as Error).message}`);
      }
      if (status >= 500 || status === 429) throw new TransientHttpError(status, `HTTP ${status}`);
      if (status < 200 || status >= 300) throw new Error(`HTTP ${status}`);
      return text ? (JSON.parse(text) as unknown) : null;
    },
  });
}

/** The tool-call span's context; outside a tool call (a direct run), the workflow's trace id. */
export function traceparentOf(ctx: ToolCallContext): string {
  const sc = trace.getSpanContext(currentToolCallTrace() ?? context.active());
  return sc && isSpanContextValid(sc) ? formatTraceparent(sc) : `00-${ctx.traceId}-${"0".repeat(15)}1-01`;
}
