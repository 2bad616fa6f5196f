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
import { createHash } from "node:crypto";
import { WORKFLOW_ID } from "../../queues/names.ts";

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
 * What admission stores with a workflow: the enqueue span's context as a `traceparent`. Without an SDK
 * and without a producer's traceparent the span is invalid, and the record keeps "": every process
 * then derives the workflow's trace context from its id (workflowTraceparent), so the record does not
 * carry 55 bytes that only stand for the request (64–96 B of a record's memory on Redis 7).
 */
export function traceOrigin(span: Span): string {
  const sc = span.spanContext();
  return isSpanContextValid(sc) ? formatTraceparent(sc) : "";
}

/**
 * The trace context of a workflow admitted without one, flagged sampled so a traced exec role still
 * records the run; the same in every process, stored nowhere. Its trace id is "f1" and the hex of the
 * id's 15 random bytes (queues/names.ts WORKFLOW_ID), so a trace id in a downstream's log names its
 * workflow: "wf_" and the base64url of its last 30 hex digits. An id of another shape (a test's): the
 * sha256 of it.
 */
export function workflowTraceparent(workflowId: string): string {
  const hex = WORKFLOW_ID.test(workflowId)
    ? `f1${Buffer.from(workflowId.slice(3), "base64url").toString("hex")}`
    : createHash("sha256").update(workflowId).digest("hex");
  return `00-${hex.slice(0, 32)}-${hex.slice(2, 18)}-01`;
}

/** Ends `span`, marking it an error with `code` when given. */
export function endSpan(span: Span, code?: string, attributes?: Attributes): void {
  if (span.isRecording()) {
    if (attributes) span.setAttributes(attributes);
    if (code) span.setStatus({ code: SpanStatusCode.ERROR, message: code });
  }
  span.end();
}
