import type { NextFunction, Request, Response } from "express";
import type { Logger } from "pino";
import { FairlaneError, redisError, redisTrouble } from "../lib/errors.ts";
import { LogThrottle } from "../observability/logger.ts";

/**
 * Turns every error into `{ error: { code, message, details? } }`. Body-parser
 * errors (malformed JSON, too large, bad charset) are the client's, so 4xx.
 * A Redis that is away, full or read-only is a 503 with Retry-After
 * (REDIS_UNAVAILABLE, REDIS_FULL, REDIS_READ_ONLY: src/lib/errors.ts), logged
 * at most once per 30 s per code. Only a genuine bug reaches 500. Both are
 * logged without the request body, and without any Redis command's args (the
 * logger's err serializer).
 */
export function errorHandler(log: Logger, opts: { retryAfterSec?: number } = {}) {
  const redisLog = new LogThrottle(log);
  return (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const trouble = err instanceof FairlaneError ? undefined : redisTrouble(err);
    const e = trouble ? redisError(trouble, opts.retryAfterSec ?? 5) : toFairlaneError(err);
    if (trouble) redisLog.warn({ err, code: e.code, reqId: req.id }, `${e.code}: requests answer 503`);
    else if (e.status >= 500) log.error({ err, reqId: req.id }, "unhandled error");
    for (const [k, v] of Object.entries(e.headers)) res.setHeader(k, v);
    const body: Record<string, unknown> = { code: e.code, message: e.message };
    if (e.details !== undefined) body.details = e.details;
    res.status(e.status).json({ error: body });
  };
}

function toFairlaneError(err: unknown): FairlaneError {
  if (err instanceof FairlaneError) return err;
  const e = err as { type?: string; status?: number; statusCode?: number; message?: string; limit?: number };
  switch (e?.type) {
    case "entity.parse.failed":
      return new FairlaneError("INVALID_REQUEST", `malformed JSON body: ${e.message}`, 400);
    case "entity.too.large":
      return new FairlaneError("PAYLOAD_TOO_LARGE", `request body is larger than ${e.limit} bytes`, 413);
    case "encoding.unsupported":
    case "charset.unsupported":
      return new FairlaneError("UNSUPPORTED_MEDIA_TYPE", e.message ?? "unsupported encoding", 415);
  }
  const status = e?.status ?? e?.statusCode;
  if (typeof status === "number" && status >= 400 && status < 500)
    return new FairlaneError("INVALID_REQUEST", e.message ?? "bad request", status);
  return new FairlaneError("INTERNAL", "internal error", 500);
}

export function notFoundHandler(req: Request, res: Response) {
  res.status(404).json({ error: { code: "NOT_FOUND", message: `no route ${req.method} ${req.path}` } });
}
