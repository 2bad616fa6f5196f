import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";
import { metrics } from "../observability/metrics.ts";
import { nextBatchLimit, type BatchLimitOptions } from "./batchLimit.ts";

/** The histogram's timer period: Node records the time between its firings, so lateness is that less this. */
const RESOLUTION_MS = 10;

/** How late the loop ran (ms), from a p99 of monitorEventLoopDelay's intervals (ns). */
export function latenessMs(intervalP99Ns: number): number {
  return Math.max(0, intervalP99Ns / 1e6 - RESOLUTION_MS);
}

/**
 * The batch limit's mechanism in an exec process: every `intervalMs` the event loop's lateness p99 over
 * the interval and the Class C runs the process holds set the limit (nextBatchLimit, the rule), and
 * `onChange` advertises a new one at once (the heartbeat: the dispatchers bound Class C by it).
 * `usedC` is the busiest cell's Class C runs scaled to the whole process (a process serving several
 * cells advertises each its share of the limit, so the limit grows when any cell fills its share).
 */
export class BatchLimiter {
  value: number;
  private lag: IntervalHistogram | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly o: BatchLimitOptions & { intervalMs: number },
    private readonly usedC: () => number,
    private readonly onChange: () => void,
  ) {
    // Off: all slots. On: a step above the floor, grown as the batch uses it.
    this.value = nextBatchLimit(o.concurrency, 0, 0, o);
    metrics.execBatchLimit.set(this.value);
  }

  start(): void {
    if (this.o.targetLagMs <= 0) return;
    this.lag = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    this.lag.enable();
    this.timer = setInterval(() => {
      const lateMs = latenessMs(this.lag!.percentile(99));
      this.lag!.reset();
      const next = nextBatchLimit(this.value, lateMs, this.usedC(), this.o);
      if (next === this.value) return;
      this.value = next;
      metrics.execBatchLimit.set(next);
      this.onChange();
    }, this.o.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.lag?.disable();
  }
}
