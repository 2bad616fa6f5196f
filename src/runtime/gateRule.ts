/**
 * The tool gate's rules, pure (queues/lua/acquirePermit-7.lua decides the
 * same inside Redis). A caller may take a permit when its place in the FIFO
 * wait queue is inside the free permits; Class C callers also need a free
 * batch permit (mctcBatch) and yield to waiting A/B callers.
 */
export interface GateState {
  mctc: number;
  mctcBatch: number;
  held: number;
  heldC: number;
  /** A/B callers waiting. */
  waitingAB: number;
}

export function mayAcquire(s: GateState, batch: boolean, position: number): boolean {
  const free = s.mctc - s.held;
  if (!batch) return position < free;
  return s.waitingAB === 0 && position < Math.min(free, s.mctcBatch - s.heldC);
}

/**
 * How long a call may wait for a permit: the tenant's toolWaitTimeoutMs, but
 * never past the workflow's deadline. `byDeadline` says which bound binds, so
 * a wait cut short by the deadline ends DEADLINE_EXCEEDED, not THROTTLED.
 */
export function waitBound(now: number, deadlineAt: number | null, toolWaitTimeoutMs: number): { until: number; byDeadline: boolean } {
  const byTimeout = now + toolWaitTimeoutMs;
  if (deadlineAt !== null && deadlineAt <= byTimeout) return { until: deadlineAt, byDeadline: true };
  return { until: byTimeout, byDeadline: false };
}

/**
 * The parallelism hint an agent reads before fanning out: sequential (1)
 * right after a THROTTLED, doubling back toward `max` with each call that
 * passes the gate without one (multiplicative recovery, like TCP slow start).
 */
export class ParallelismHint {
  private current: number;
  constructor(private readonly max: number) {
    this.current = max;
  }
  get value(): number {
    return this.current;
  }
  throttled(): void {
    this.current = 1;
  }
  passed(): void {
    this.current = Math.min(this.max, this.current * 2);
  }
}
