import type { Context } from "@opentelemetry/api";
import type { Request } from "express";
import { activeOr, contextFromTraceparent } from "../observability/tracing.ts";

/**
 * The trace a producer's request continues: the active span when HTTP
 * instrumentation made one (it has already read the headers), else the
 * request's W3C `traceparent` header, else none (admission starts a trace).
 */
export function producerContext(req: Request): Context {
  return activeOr(contextFromTraceparent(req.headers.traceparent));
}
