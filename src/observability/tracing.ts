import {
  context,
  isSpanContextValid,
  ROOT_CONTEXT,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Attributes,
  type Context,
  type Span,
  type SpanContext,
} from "@opentelemetry/api";
import { randomToken } from "../lib/random.ts";

/**
 * OpenTelemetry spans through `@opentelemetry/api` only: Fairlane registers no
 * SDK and no exporter. With none registered (the default) every span is a
 * non-recording no-op that still carries its parent's ids, so the W3C trace
 * context flows producer → record → run → tool call either way; a process
 * that registers an SDK (docs/observability.md) records real spans.
 *
 * Spans (one trace per workflow, rooted at the producer's request):
 *   fairlane.enqueue        api, PRODUCER: one per request (a bulk request: one for its batch)
 *   fairlane.dispatch       dispatcher, INTERNAL: one per dispatch call that changed something;
 *                           its own trace (the script moves many workflows and names none)
 *   fairlane.workflow.run   exec, CONSUMER: child of the context stored at admission
 *   fairlane.tool_call      exec, CLIENT: each ctx.tool call, child of the run (or of the
 *                           handler's active span)
 * Attributes: tenant.id, workflow.class, workflow.id, workflow.type, deadline.remaining_ms;
 * never payload values, arguments or results.
 */
export const tracer = trace.getTracer("fairlane");

export const ATTR = {
  tenant: "tenant.id",
  cls: "workflow.class",
  workflowId: "workflow.id",
  type: "workflow.type",
  remainingMs: "deadline.remaining_ms",
} as const;

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/;

/** A W3C `traceparent` header as a remote span context, or undefined when absent or invalid. */
export function parseTraceparent(header: unknown): SpanContext | undefined {
  if (typeof header !== "string") return undefined;
  const m = TRACEPARENT.exec(header.trim());
  if (!m || m[1] === "ff") return undefined;
  const sc: SpanContext = { traceId: m[2]!, spanId: m[3]!, traceFlags: parseInt(m[4]!, 16) & 1, isRemote: true };
  return isSpanContextValid(sc) ? sc : undefined;
}

export function formatTraceparent(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags & TraceFlags.SAMPLED ? 1 : 0}`;
}

/** The context to start a child of: the stored/sent `traceparent`, else no parent (a new trace). */
export function contextFromTraceparent(header: unknown): Context {
  const sc = parseTraceparent(header);
  return sc ? trace.setSpanContext(ROOT_CONTEXT, sc) : ROOT_CONTEXT;
}

/** The active context when it holds a span (an SDK with a context manager, or instrumentation), else `fallback`. */
export function activeOr(fallback: Context): Context {
  const active = context.active();
  return trace.getSpan(active) ? active : fallback;
}

/**
 * What admission stores with a workflow: the enqueue span's context as a
 * `traceparent`, and its trace id. Without an SDK and without a producer's
 * traceparent the span is invalid; a new trace id and span id then stand for
 * the request, flagged sampled so a traced exec role still records the run.
 */
export function traceOrigin(span: Span): { traceId: string; traceparent: string } {
  const sc = span.spanContext();
  if (isSpanContextValid(sc)) return { traceId: sc.traceId, traceparent: formatTraceparent(sc) };
  const traceId = randomToken(16, "hex");
  return { traceId, traceparent: `00-${traceId}-${randomToken(8, "hex")}-01` };
}

/** Ends `span`, marking it an error with `code` when given. */
export function endSpan(span: Span, code?: string, attributes?: Attributes): void {
  if (span.isRecording()) {
    if (attributes) span.setAttributes(attributes);
    if (code) span.setStatus({ code: SpanStatusCode.ERROR, message: code });
  }
  span.end();
}
