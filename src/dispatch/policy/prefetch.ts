/**
 * How many workflows a pool may hold dispatched beyond its workers' concurrency (its prefetch), pure.
 *
 * A slot is held from dispatch to the run's end. With exactly `capacity` slots, a worker that ends a
 * run finds the exec queue empty and waits while the dispatcher hears of the freed slot, moves the
 * next workflow and wakes it: 20–50 ms on a busy 2-core machine, every time. When runs are short that
 * wait is most of each cycle (a drain of no-op runs: 100 workers ran ~2,000/s and idled half the time).
 *
 * Just enough, learnt from the dispatcher's own calls. A call that follows one which stopped with the
 * pool full (Class B/C work left ready for want of a slot) finds the exec queue as the
 * workers left it:
 *   - empty, and it has work to move: the workers may have waited for it, so the prefetch grows by a
 *     quarter (at least 1);
 *   - still holding `waiting` workflows: they were not needed yet, so it shrinks by a quarter of them.
 * So a prefetched workflow waits in the exec queue about one dispatcher round trip at most, and a
 * pool whose dispatcher keeps up (a quiet machine, long runs) keeps a prefetch near 0. It never
 * passes `max` × the capacity.
 *
 * What it costs: a dispatched workflow holds its tenant's slot (and its class's share) while it waits
 * for a worker, as before; and a prefetched Class B/C workflow may take a worker the Class A reserve
 * would have kept idle, so a Class A arriving then starts when the next run in the pool ends. Caps,
 * shares and leases count dispatched workflows, so nothing runs over its cap (the workers'
 * concurrency bounds what runs at once).
 */
export interface PrefetchOptions {
  /** The most a pool may prefetch, as a fraction of its capacity; 0: no prefetch. */
  max: number;
}

export const DEFAULT_PREFETCH: PrefetchOptions = { max: 0 };

/** What one dispatch call returned: moved, the capacity, the exec queue's length when it began, whether it left work for want of a slot. */
export interface DispatchCall {
  moved: number;
  capacity: number;
  waiting: number;
  full: boolean;
}

export class PrefetchController {
  private prefetch = 0;
  /** The last call left Class B/C work ready for want of a slot. */
  private wasFull = false;

  constructor(private readonly o: PrefetchOptions = DEFAULT_PREFETCH) {}

  /** The prefetch to give the next call. */
  value(): number {
    return this.prefetch;
  }

  /** A call made with `value()` returned `c`. */
  observe(c: DispatchCall): void {
    if (this.wasFull) {
      if (c.waiting === 0 && c.moved > 0) this.prefetch += Math.max(1, Math.ceil(this.prefetch / 4));
      else if (c.waiting > 0) this.prefetch -= Math.ceil(c.waiting / 4);
    }
    this.wasFull = c.full;
    this.prefetch = Math.max(0, Math.min(Math.floor(c.capacity * this.o.max), this.prefetch));
  }
}
