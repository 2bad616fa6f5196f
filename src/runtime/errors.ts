/**
 * Errors the workflow runtime raises when a policy stops a tool or model call.
 * Each carries a stable, readonly `code` (the one a workflow record's
 * `error.code` shows) and a `name` equal to its class, so callers can tell them
 * apart across module copies without `instanceof`.
 *
 *   DEADLINE_EXCEEDED  no viable time was left for an attempt before the deadline
 *   RATE_LIMITED       the tenant's rate limit for a tool/dependency is spent and the
 *                      window reopens only after the deadline (`retryAfterMs` says when)
 *   BUDGET_EXCEEDED    the step would exceed the per-workflow or monthly cost budget
 *   TOOL_NOT_ALLOWED   the tool is denied, or not in the tenant's allowed list
 *   MAX_ITERATIONS     the agent used every model step its tier allows (policy.deadline.maxIterations)
 *   MODEL_UNAVAILABLE  the model endpoint the tenant may use did not answer (no other region is tried)
 *   RESIDENCY_UNAVAILABLE  no model endpoint is configured for the tenant's data residency
 *   MODEL_ERROR        the model request failed otherwise (a 4xx, an answer the SDK could not read)
 */

export class DeadlineExceededError extends Error {
  readonly code = "DEADLINE_EXCEEDED" as const;
  constructor(message = "no viable time is left before the deadline", options?: ErrorOptions) {
    super(message, options);
    this.name = "DeadlineExceededError";
  }
}

export class RateLimitedError extends Error {
  readonly code = "RATE_LIMITED" as const;
  constructor(
    readonly retryAfterMs: number,
    message = `rate limited; the window reopens in ${retryAfterMs} ms`,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "RateLimitedError";
  }
}

export class BudgetExceededError extends Error {
  readonly code = "BUDGET_EXCEEDED" as const;
  constructor(message = "the step would exceed the cost budget", options?: ErrorOptions) {
    super(message, options);
    this.name = "BudgetExceededError";
  }
}

export class ToolNotAllowedError extends Error {
  readonly code = "TOOL_NOT_ALLOWED" as const;
  constructor(
    readonly tool: string,
    message = `tool "${tool}" is not allowed by the tenant's policy`,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "ToolNotAllowedError";
  }
}

export class MaxIterationsError extends Error {
  readonly code = "MAX_ITERATIONS" as const;
  constructor(
    readonly limit: number,
    message = `the agent used all ${limit} model steps its tier allows`,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "MaxIterationsError";
  }
}

export class ModelUnavailableError extends Error {
  constructor(
    readonly code: "MODEL_UNAVAILABLE" | "RESIDENCY_UNAVAILABLE" | "MODEL_ERROR",
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "ModelUnavailableError";
  }
}
