import { randomBytes } from "node:crypto";
import type { Request } from "express";

/** The W3C trace id of the producer's request (traceparent header), or a new one. */
export function traceIdOf(req: Request): string {
  const tp = req.headers.traceparent;
  const m = typeof tp === "string" ? /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(tp) : null;
  return m && m[1] !== "0".repeat(32) ? m[1]! : randomBytes(16).toString("hex");
}
