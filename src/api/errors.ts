import type { NextFunction, Request, Response } from "express";
import type { Logger } from "pino";
import { FairlaneError } from "../lib/errors.ts";

/**
 * Turns every error into `{ error: { code, message, details? } }`. Body-parser
 * errors (malformed JSON, too large, bad charset) are the client's, so 4xx;
 * only a genuine bug reaches 500, and it is logged without the request body.
 */
export function errorHandler(log: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = toFairlaneError(err);
    if (e.status >= 500) log.error({ err, reqId: req.id }, "unhandled error");
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
