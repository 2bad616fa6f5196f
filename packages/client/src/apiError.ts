/**
 * An answer of the API that is not a success: its HTTP status and the API's error code
 * (INVALID_REQUEST, BACKPRESSURE, NOT_FOUND, ALREADY_FINISHED, ...). A 429 or 503 carries
 * retryAfterSec, the seconds its Retry-After asked to wait before sending again.
 */
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
