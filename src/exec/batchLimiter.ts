import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";
import { metrics } from "../observability/metrics.ts";
import { nextBatchLimit, type BatchLimitOptions } from "./batchLimit.ts";

/**
 * The batch limit's mechanism in an exec process: every `intervalMs` the event loop's delay p99 over
 * the interval and the Class C runs the process holds set the limit (nextBatchLimit, the rule), and
 * `onChange` advertises a new one at once (the heartbeat: the dispatchers bound Class C by it).
 */
export class BatchLimiter {
  value: number;
  private lag: IntervalHistogram | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly o: BatchLimitOptions & { intervalMs: number },
    /** The process's running Class C workflows. */
    private readonly runningC: ReadonlySet<string>,
    private readonly onChange: () => void,
  ) {
    // Off: all slots. On: a step above the floor, grown as the batch uses it.
    this.value = nextBatchLimit(o.concurrency, 0, 0, o);
    metrics.execBatchLimit.set(this.value);
  }

  start(): void {
    if (this.o.targetLagMs <= 0) return;
    this.lag = monitorEventLoopDelay({ resolution: 10 });
    this.lag.enable();
    this.timer = setInterval(() => {
      const p99Ms = this.lag!.percentile(99) / 1e6;
      this.lag!.reset();
      const next = nextBatchLimit(this.value, p99Ms, this.runningC.size, this.o);
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
