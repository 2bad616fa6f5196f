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

export const invalidRequest = (message: string, details?: unknown) => new FairlaneError("INVALID_REQUEST", message, 400, details);

export const notFound = (what = "workflow") => new FairlaneError("NOT_FOUND", `${what} not found`, 404);

export const unauthorized = (message = "a valid API key is required (Authorization: Bearer <key>)") =>
  new FairlaneError("UNAUTHORIZED", message, 401, undefined, { "WWW-Authenticate": "Bearer" });

export const backpressure = (message: string, retryAfterSec: number) =>
  new FairlaneError("BACKPRESSURE", message, 429, { retryAfterSec }, { "Retry-After": String(retryAfterSec) });

/**
 * What a Redis error says about Redis, for the API (503s) and for the loops' logs:
 *   unavailable  not connected, timed out, failing over, loading, busy: try again shortly
 *   full         OOM (maxmemory reached) or MISCONF (it cannot persist: a full or failing disk)
 *   read_only    READONLY: we are talking to a replica (after a failover, before we follow it)
 * undefined for anything else (a bug, a bad argument). Errors raised inside a Lua script come
 * wrapped ("ERR Error running script ... OOM command not allowed ..."), and a MULTI refused
 * with EXECABORT keeps its cause in `previousErrors`: all of them are looked into.
 */
export type RedisTrouble = "unavailable" | "full" | "read_only";

const TROUBLE: [RegExp, RedisTrouble][] = [
  [/(^|\W)OOM command not allowed/, "full"],
  [/(^|\W)MISCONF\b/, "full"],
  [/(^|\W)READONLY\b/, "read_only"],
  [
    /^(Connection is closed\.|Command timed out|Stream isn't writeable|Cluster isn't ready|Cluster is disconnect|None of startup nodes is available|Failed to refresh slots cache|Too many Cluster redirections|Node is disconnected)|(^|\W)(CLUSTERDOWN|TRYAGAIN|MASTERDOWN|LOADING|BUSY|NOREPLICAS)\b/,
    "unavailable",
  ],
];
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "ECONNABORTED",
]);

export function redisTrouble(err: unknown, depth = 0): RedisTrouble | undefined {
  if (err === null || typeof err !== "object" || depth > 3) return undefined;
  const e = err as { name?: unknown; message?: unknown; code?: unknown; previousErrors?: unknown; lastNodeError?: unknown };
  if (e.name === "MaxRetriesPerRequestError") return "unavailable";
  if (typeof e.code === "string" && NETWORK_CODES.has(e.code)) return "unavailable";
  const message = typeof e.message === "string" ? e.message : "";
  for (const [re, trouble] of TROUBLE) if (re.test(message)) return trouble;
  for (const inner of [...(Array.isArray(e.previousErrors) ? e.previousErrors : []), e.lastNodeError]) {
    const t = redisTrouble(inner, depth + 1);
    if (t) return t;
  }
  return undefined;
}

const REDIS_ERRORS: Record<RedisTrouble, { code: string; message: string }> = {
  unavailable: {
    code: "REDIS_UNAVAILABLE",
    message: "the queue's Redis is not reachable; try again (a retry with the same idempotencyKey is safe)",
  },
  full: {
    code: "REDIS_FULL",
    message: "the queue's Redis is full (out of memory, or it cannot persist to disk) and takes no writes; try again later",
  },
  read_only: { code: "REDIS_READ_ONLY", message: "the queue's Redis is a read-only replica (a failover is under way); try again shortly" },
};

/** The 503 for a Redis in trouble, with Retry-After. */
export const redisError = (trouble: RedisTrouble, retryAfterSec: number) =>
  new FairlaneError(
    REDIS_ERRORS[trouble].code,
    REDIS_ERRORS[trouble].message,
    503,
    { retryAfterSec },
    { "Retry-After": String(retryAfterSec) },
  );
