/** An error with a stable code that the API turns into `{ error: { code, message, details } }`. */
export class FairlaneError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
    readonly details?: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "FairlaneError";
  }
}

export const invalidRequest = (message: string, details?: unknown) =>
  new FairlaneError("INVALID_REQUEST", message, 400, details);

export const notFound = (what = "workflow") =>
  new FairlaneError("NOT_FOUND", `${what} not found`, 404);

export const unauthorized = (message = "a valid API key is required (Authorization: Bearer <key>)") =>
  new FairlaneError("UNAUTHORIZED", message, 401, undefined, { "WWW-Authenticate": "Bearer" });

export const backpressure = (message: string, retryAfterSec: number) =>
  new FairlaneError("BACKPRESSURE", message, 429, { retryAfterSec }, { "Retry-After": String(retryAfterSec) });
