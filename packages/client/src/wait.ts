import { FairlaneApiError } from "./apiError.js";
import { FINAL_STATES, type AbortSignalLike, type ClientClock, type Workflow, type WorkflowState } from "./types.js";
import { FairlaneWaitError } from "./waitError.js";

export const DEFAULT_POLL_MS = 250;
export const MAX_POLL_MS = 2_000;
export const DEFAULT_WAIT_TIMEOUT_MS = 5 * 60_000;

export interface WaitOptions {
  /** Give up (FairlaneWaitError "timeout") after this long. Default 5 minutes. */
  timeoutMs?: number;
  /** The first pause between looks; each next one doubles, up to 2 s. Default 250. */
  pollMs?: number;
  /** Give up (FairlaneWaitError "aborted") as soon as it aborts. */
  signal?: AbortSignalLike;
}

/** The pause after `lastMs`: doubled, at most 2 s (or pollMs, if that is longer). */
export function nextPollMs(lastMs: number, pollMs: number): number {
  return Math.min(lastMs * 2, Math.max(MAX_POLL_MS, pollMs));
}

/**
 * How long an error of a look asks to wait before the next one, or undefined when
 * it is not worth another look: a 429 (Retry-After, 1 s if it gave none) and a 503
 * with Retry-After (Redis away or full) are; anything else (404, 401) is thrown.
 */
function retryAfterMs(err: unknown): number | undefined {
  if (!(err instanceof FairlaneApiError)) return undefined;
  if (err.status === 429) return (err.retryAfterSec ?? 1) * 1000;
  if (err.status === 503 && err.retryAfterSec !== undefined) return err.retryAfterSec * 1000;
  return undefined;
}

/**
 * Looks at a workflow until it has ended, in three steps that repeat:
 *   look   `look()` (GET the workflow). Completed, failed or cancelled: return it. A 429 or
 *          503 with Retry-After: the next pause is at least that long. Any other error: thrown.
 *   check  the deadline (start + timeoutMs) has passed: FairlaneWaitError "timeout".
 *   pause  sleep the pause, cut short at the deadline so that the last look falls on it;
 *          the pause then doubles (nextPollMs). An abort ends the pause and the wait at once.
 */
export async function waitUntilEnded(
  id: string,
  look: (signal: AbortSignalLike) => Promise<Workflow>,
  clock: ClientClock,
  opts: WaitOptions = {},
): Promise<Workflow> {
  const pollMs = Math.max(1, opts.pollMs ?? DEFAULT_POLL_MS);
  const start = clock.now();
  const deadline = start + Math.max(0, opts.timeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS);
  let lastState: WorkflowState | undefined;
  const gaveUp = (reason: "timeout" | "aborted") => new FairlaneWaitError(reason, id, lastState, clock.now() - start);
  for (let pause = pollMs; ; pause = nextPollMs(pause, pollMs)) {
    if (opts.signal?.aborted) throw gaveUp("aborted");
    let delay = pause;
    // A look that has not answered by the deadline (a proxy that accepts and never answers) is cut off there:
    // a network guard in real time (setTimeout), cleared as soon as the look settles.
    const cut = new AbortController();
    const onAbort = () => cut.abort(opts.signal?.reason);
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    const guard = setTimeout(() => cut.abort(new Error("deadline")), Math.max(0, deadline - clock.now()));
    try {
      const wf = await look(cut.signal);
      lastState = wf.state;
      if (FINAL_STATES.includes(wf.state)) return wf;
    } catch (err) {
      if (opts.signal?.aborted) throw gaveUp("aborted");
      if (cut.signal.aborted) throw gaveUp("timeout");
      const asked = retryAfterMs(err);
      if (asked === undefined) throw err;
      delay = Math.max(delay, asked);
    } finally {
      clearTimeout(guard);
      opts.signal?.removeEventListener("abort", onAbort);
    }
    const left = deadline - clock.now();
    if (left <= 0) throw gaveUp("timeout");
    if (opts.signal?.aborted) throw gaveUp("aborted");
    try {
      await clock.sleep(Math.min(delay, left), opts.signal);
    } catch (err) {
      if (opts.signal?.aborted) throw gaveUp("aborted");
      throw err;
    }
  }
}
