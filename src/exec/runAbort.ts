import type { AbortReason } from "../runtime/workflowContext.ts";

/**
 * A run's abort: its AbortController and the timer that aborts it at the run's deadline, both made when
 * its signal is first read. A controller, its signal (an EventTarget) and a timer cost ~15 µs of the
 * exec's CPU per run in a drain of no-op runs, most of it in the garbage collections of what each run
 * holds while it runs (docs/benchmarks.md), and a run that never reads `ctx.signal` nor calls a tool, a
 * model or a step never needs them: the end of its run sees a passed deadline by the clock
 * (src/exec/runEnd.ts settle). Aborted before its signal is read, the signal is made already aborted.
 * The first reason wins, as for an AbortController.
 */
export class RunAbort {
  private controller: AbortController | undefined;
  private why: AbortReason | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  /** `msLeft`: how long until the run's deadline, or null without one. */
  constructor(private readonly msLeft: () => number | null) {}

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.why !== undefined) this.controller.abort(this.why);
      else if (!this.closed) {
        const ms = this.msLeft();
        if (ms !== null) this.timer = setTimeout(() => this.abort("deadline"), Math.max(0, ms));
      }
    }
    return this.controller.signal;
  }

  get aborted(): boolean {
    return this.why !== undefined;
  }

  /** Why it was aborted, if it was. */
  get reason(): AbortReason | undefined {
    return this.why;
  }

  abort(reason: AbortReason): void {
    if (this.why !== undefined) return;
    this.why = reason;
    clearTimeout(this.timer);
    this.controller?.abort(reason);
  }

  /** The run has ended: its deadline timer goes (a signal read after this gets none). */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }
}
