/** What the tools of one generation share with it: session.ts opens it, governedTool.ts counts against it. */

export interface StepState {
  /** How many tool calls the current step may run; Infinity outside a generation. */
  cap: number;
  calls: number;
  /** The step ran past its cap: the next one is capped at 1. */
  narrowNext: boolean;
  /** Fires to stop the generation (a tool outcome that ends the run, a failed charge). */
  stop: AbortController;
  /** Occurrences of each (tool, arguments) pair, for idempotency keys a re-run repeats. */
  seen: Map<string, number>;
  /** The longest retryAfterMs a THROTTLED or RATE_LIMITED call of this step was given: waited before the next step. */
  backoffMs: number;
  /** This generation's number in its ctx.step (idempotency keys of two generations in one step differ). */
  generation: number;
}

export function stepState(): StepState {
  return { cap: Infinity, calls: 0, narrowNext: false, stop: new AbortController(), seen: new Map(), backoffMs: 0, generation: -1 };
}
