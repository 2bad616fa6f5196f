/**
 * Class C yields the CPU when an exec process falls behind.
 *
 * An exec process runs every class's handlers on one event loop. When a
 * batch saturates the CPU, each of its agents' continuations (parse a tool
 * result, build the next call) queues in front of the urgent work sharing the
 * loop, and a Class A agent's run doubles, so its tenant's own `mcaUrgent`
 * binds and its queue grows (issue 20, mechanism 2). Before each tool call and
 * each model step, a Class C workflow therefore waits while the loop is late:
 * the pause grows with the lag, and the batch slows down until the loop keeps
 * time again. Class A and B never wait here. A pause is bounded per call, so a
 * batch is slowed, never starved, and never past its deadline.
 *
 * The rule is pure (fake-clock tests in test/unit/batchYield.test.ts); the
 * sampler measures the lag as how late a 20 ms timer fires.
 */
import { setTimeout as sleep } from "node:timers/promises";

export interface BatchYieldOptions {
  /** Lag the loop may run at before Class C waits (ms); 0 turns yielding off. */
  targetLagMs: number;
  /** The longest single pause (ms). */
  maxPauseMs: number;
  /** The longest a call waits in all before it goes ahead anyway (ms). */
  maxWaitMs: number;
}

export const DEFAULT_BATCH_YIELD: BatchYieldOptions = { targetLagMs: 25, maxPauseMs: 200, maxWaitMs: 2_000 };

/**
 * How long a Class C call pauses now: nothing while the lag is within target, then the lag over target
 * (at most maxPauseMs), never past what is left of its wait or of its deadline. `jitter` in [0, 1)
 * spreads the batch's wake-ups over the second half of the pause.
 */
export function batchPauseMs(lagMs: number, waitedMs: number, remainingMs: number, o: BatchYieldOptions, jitter: number): number {
  if (o.targetLagMs <= 0 || lagMs <= o.targetLagMs) return 0;
  const room = Math.min(o.maxWaitMs - waitedMs, remainingMs / 2);
  if (room <= 0) return 0;
  const pause = Math.min(o.maxPauseMs, lagMs - o.targetLagMs) * (0.5 + jitter / 2);
  return Math.max(0, Math.min(room, Math.round(pause)));
}

/**
 * The loop's lag: how late a 20 ms timer fires, rising at once and decaying by a fifth per tick, so a
 * burst of lateness is seen at once and forgotten within a few hundred ms of keeping time.
 */
export class LoopLag {
  private lag = 0;
  private timer: NodeJS.Timeout | undefined;

  get ms(): number {
    return this.lag;
  }

  start(intervalMs = 20): this {
    let expected = performance.now() + intervalMs;
    this.timer = setInterval(() => {
      const now = performance.now();
      this.lag = Math.max(now - expected, this.lag * 0.8);
      expected = now + intervalMs;
    }, intervalMs);
    this.timer.unref();
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** What a Class C call awaits before it starts: pauses while the loop is late, within its bounds. */
export function batchYielder(lag: { readonly ms: number }, o: BatchYieldOptions = DEFAULT_BATCH_YIELD) {
  return async (remainingMs: () => number, signal: AbortSignal): Promise<number> => {
    let waited = 0;
    for (;;) {
      const pause = batchPauseMs(lag.ms, waited, remainingMs(), o, Math.random());
      if (pause <= 0 || signal.aborted) return waited;
      await sleep(pause, undefined, { signal }).catch(() => undefined);
      waited += pause;
    }
  };
}
