import { onAbort } from "../lib/abortable.ts";
import { DeadlineExceededError } from "./errors.ts";

/**
 * Deadline-aware retry of transient tool failures (seed rule). Pure decisions
 * (`attemptTimeout`, `nextRetry`) plus a runner that takes its clock and sleep
 * from the caller, so unit tests never sleep.
 *
 * Before every attempt, with `remaining` = deadlineAt − now:
 *   remaining < minViableAttemptMs          → no attempt (DeadlineExceededError if none was made yet)
 *   otherwise                               → attempt, bounded by min(toolTimeoutMs, attemptFraction × remaining)
 * After a failed attempt number n (1-based):
 *   outer signal aborted                    → stop: throw the outer signal's reason
 *   not isTransient(error)                  → stop: throw the error
 *   n > maxRetries                          → stop (NO_RETRIES_LEFT): throw the error
 *   remaining − backoff < minViableAttemptMs → stop (DEADLINE_TOO_CLOSE): throw the error
 *   otherwise                               → sleep backoff, then attempt n + 1
 * backoff = min(random() × backoffBaseMs × 2^(n−1)  (full jitter), backoffFraction × remaining).
 *
 * The attempt timeout is a real timer (`setTimeout`, cleared when the attempt
 * settles) because it must fire while `fn` runs; the attempt's AbortSignal then
 * fires with a DOMException named "TimeoutError" (what `AbortSignal.timeout` uses),
 * or with the outer signal's reason when the outer signal fires. Cancellation is
 * cooperative: the runner waits for `fn` to settle rather than racing it, so an
 * abandoned attempt never overlaps its retry.
 */

export interface RetryPolicy {
  /** Retries after the first attempt (the tier's `deadline.toolRetries`). */
  maxRetries: number;
  /** Below this much time left, an attempt is not even started. */
  minViableAttemptMs: number;
  /** An attempt may use at most this fraction of the time left. */
  attemptFraction: number;
  backoffBaseMs: number;
  /** A backoff may use at most this fraction of the time left. */
  backoffFraction: number;
}

export const DEFAULT_RETRY: Omit<RetryPolicy, "maxRetries"> = {
  minViableAttemptMs: 250,
  attemptFraction: 0.5,
  backoffBaseMs: 100,
  backoffFraction: 0.1,
};

/** The retry policy of a tenant's runtime policy (`deadline.toolRetries`). */
export function retryPolicyFor(deadline: { toolRetries: number }, base: Omit<RetryPolicy, "maxRetries"> = DEFAULT_RETRY): RetryPolicy {
  return { ...base, maxRetries: deadline.toolRetries };
}

export type RetryDecision = { retry: false; reason: "NO_RETRIES_LEFT" | "DEADLINE_TOO_CLOSE" } | { retry: true; backoffMs: number };

/** Timeout for the next attempt: min(toolTimeoutMs, attemptFraction × remaining) — or null if remaining < minViableAttemptMs (do not even try). */
export function attemptTimeout(remainingMs: number, toolTimeoutMs: number, p: RetryPolicy): number | null {
  if (!(remainingMs >= p.minViableAttemptMs)) return null; // also refuses NaN
  return Math.max(0, Math.floor(Math.min(toolTimeoutMs, p.attemptFraction * remainingMs)));
}

/** After a transient failure on attempt number `attempt` (1-based), whether and when to retry. */
export function nextRetry(attempt: number, remainingMs: number, p: RetryPolicy, random: () => number): RetryDecision {
  if (attempt > p.maxRetries) return { retry: false, reason: "NO_RETRIES_LEFT" };
  const jitter = Math.min(1, Math.max(0, random()));
  const backoffMs = Math.floor(Math.min(jitter * p.backoffBaseMs * 2 ** (attempt - 1), p.backoffFraction * Math.max(0, remainingMs)));
  if (!(remainingMs - backoffMs >= p.minViableAttemptMs)) return { retry: false, reason: "DEADLINE_TOO_CLOSE" };
  return { retry: true, backoffMs };
}

export interface DeadlineRetryOptions {
  /** Absolute epoch ms (deadlines cross processes). */
  deadlineAt: number;
  clock: { now(): number };
  /** Resolves after ms; rejects when signal fires. */
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  policy: RetryPolicy;
  toolTimeoutMs: number;
  /** The workflow's signal (cancel, preempt, deadline): stops the attempt and every retry. */
  signal?: AbortSignal;
  isTransient: (err: unknown) => boolean;
  random?: () => number;
}

/** Runs fn with retries per the rules above. Returns the result or throws the last error (DeadlineExceededError when no attempt was viable). */
export async function withDeadlineRetry<T>(fn: (signal: AbortSignal, attempt: number) => Promise<T>, o: DeadlineRetryOptions): Promise<T> {
  const random = o.random ?? Math.random;
  for (let attempt = 1; ; attempt++) {
    o.signal?.throwIfAborted();
    const remaining = o.deadlineAt - o.clock.now();
    const timeout = attemptTimeout(remaining, o.toolTimeoutMs, o.policy);
    if (timeout === null) {
      // No attempt was made yet (after a backoff the last error is thrown below instead).
      throw new DeadlineExceededError(
        `${Math.max(0, remaining)} ms left before the deadline, less than the ${o.policy.minViableAttemptMs} ms an attempt needs`,
      );
    }
    try {
      return await runAttempt(fn, attempt, timeout, o.signal);
    } catch (err) {
      if (o.signal?.aborted) throw o.signal.reason;
      if (!o.isTransient(err)) throw err;
      const decision = nextRetry(attempt, o.deadlineAt - o.clock.now(), o.policy, random);
      if (!decision.retry) throw err;
      if (decision.backoffMs > 0) {
        try {
          await o.sleep(decision.backoffMs, o.signal);
        } catch (sleepErr) {
          throw o.signal?.aborted ? o.signal.reason : sleepErr;
        }
      }
      // The sleep may overshoot: if no viable time is left now, the tool's error is the more useful one.
      if (attemptTimeout(o.deadlineAt - o.clock.now(), o.toolTimeoutMs, o.policy) === null) throw err;
    }
  }
}

async function runAttempt<T>(
  fn: (signal: AbortSignal, attempt: number) => Promise<T>,
  attempt: number,
  timeoutMs: number,
  outer?: AbortSignal,
): Promise<T> {
  const ctl = new AbortController();
  const stopFollowing = outer ? onAbort(outer, () => ctl.abort(outer.reason)) : undefined;
  const timer = setTimeout(
    () => ctl.abort(new DOMException(`tool attempt ${attempt} timed out after ${timeoutMs} ms`, "TimeoutError")),
    timeoutMs,
  );
  try {
    return await fn(ctl.signal, attempt);
  } finally {
    clearTimeout(timer);
    stopFollowing?.();
  }
}
