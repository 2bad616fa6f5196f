/**
 * The tool gate's rules, pure (queues/lua/acquirePermit-10.lua and
 * releasePermit-8.lua decide the same inside Redis; test/conformance/gate.cases.ts
 * holds the cases both are tested with). A caller may take a permit when its
 * place in the FIFO wait queue is inside the free permits; Class C callers
 * also need a free batch permit (mctcBatch) and yield to waiting A/B callers.
 * A tenant of an org with an mctc also needs a free permit of the org's.
 */
export interface GateState {
  mctc: number;
  mctcBatch: number;
  held: number;
  heldC: number;
  /** A/B callers waiting. */
  waitingAB: number;
  /** The tenant's org, when its mctc bounds its tenants together: that mctc, and the permits all of them hold. */
  org?: { mctc: number; held: number };
}

/**
 * How many places from the head of a class's queue may take a permit now:
 * the free permits; for Class C also the free batch permits, and none while
 * an A/B caller waits. May be 0 or negative (mctc lowered below what is held).
 */
function openPlaces(s: GateState, batch: boolean): number {
  const free = Math.min(s.mctc - s.held, s.org ? s.org.mctc - s.org.held : Infinity);
  if (!batch) return free;
  return s.waitingAB === 0 ? Math.min(free, s.mctcBatch - s.heldC) : 0;
}

export function mayAcquire(s: GateState, batch: boolean, position: number): boolean {
  return position < openPlaces(s, batch);
}

/**
 * The waiters a change of the gate lets in, counted from the head of each
 * queue: exactly those for whom `mayAcquire` holds at their position. A
 * release (or an abandoned wait, or a lapsed lease) wakes these and no one
 * else: waking a waiter that cannot take a permit only costs it a script call.
 */
export function eligibleWaiters(s: GateState & { waitingC: number }): { ab: number; c: number } {
  return {
    ab: Math.max(0, Math.min(s.waitingAB, openPlaces(s, false))),
    c: Math.max(0, Math.min(s.waitingC, openPlaces(s, true))),
  };
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
