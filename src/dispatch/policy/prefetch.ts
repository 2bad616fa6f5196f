/**
 * How many workflows a pool may hold dispatched beyond its workers' concurrency (its prefetch), pure.
 *
 * A slot is held from dispatch to the run's end. With exactly `capacity` slots, a worker that ends a
 * run finds the exec queue empty and waits while the dispatcher hears of the freed slot, moves the
 * next workflow and wakes it: 20–50 ms on a busy 2-core machine, every time. When runs are short that
 * wait is most of each cycle (a drain of no-op runs: 100 workers ran ~2,000/s and idled half the time).
 * So the dispatcher keeps about as many workflows waiting in the exec queue as the pool ends runs
 * during that delay — the bandwidth-delay product: `floor(release rate × delayMs)`, at most capacity.
 * Long runs end rarely: below one release per `delayMs` the prefetch is 0 and nothing changes.
 *
 * What it costs, and why it is bounded: a prefetched Class B/C workflow may take a worker the Class A
 * reserve would have kept idle. A Class A arriving then is dispatched to the head of the exec queue
 * and starts when the next run in the pool ends: 1 / rate ≤ delayMs / prefetch on average, the delay
 * the prefetch hides. Caps, shares and leases count dispatched workflows as before, so no tenant,
 * class or pool runs more than its cap (workers' concurrency bounds what runs at once).
 *
 * The rate is read from the dispatcher's own calls: between two calls the pool released the slots it
 * held after the previous call less those it held before this one (`used` after it, less `moved`),
 * smoothed over `tauMs`. Another dispatcher's moves in between make it read fewer: never too many.
 */
export interface PrefetchOptions {
  /** The dispatch delay to cover (ms); 0: no prefetch. */
  delayMs: number;
  /** Time constant of the rate's smoothing (ms). */
  tauMs: number;
}

export const DEFAULT_PREFETCH: PrefetchOptions = { delayMs: 50, tauMs: 1_000 };

export class PrefetchEstimator {
  /** Releases per ms, smoothed. */
  private rate = 0;
  private usedAfter: number | undefined;
  private capacity = 0;
  private since: number | undefined;
  private released = 0;

  constructor(private readonly o: PrefetchOptions = DEFAULT_PREFETCH) {}

  /** A dispatch call at `now` moved `moved` and left `used` of the pool's `capacity` slots held. */
  observe(now: number, { used, moved, capacity }: { used: number; moved: number; capacity: number }): void {
    this.capacity = capacity;
    if (this.usedAfter !== undefined) this.released += Math.max(0, this.usedAfter - (used - moved));
    this.usedAfter = used;
    if (this.since === undefined) {
      this.since = now;
      this.released = 0;
      return;
    }
    const dt = now - this.since;
    if (dt <= 0) return; // same instant: counted with the next interval
    this.rate += (1 - Math.exp(-dt / this.o.tauMs)) * (this.released / dt - this.rate);
    this.since = now;
    this.released = 0;
  }

  /** Releases per second, as smoothed. */
  get perSecond(): number {
    return this.rate * 1000;
  }

  /** The prefetch for the pool as the last call found it (none before a call, or without workers). */
  value(): number {
    if (this.o.delayMs <= 0 || this.capacity <= 0) return 0;
    return Math.min(this.capacity, Math.floor(this.rate * this.o.delayMs));
  }
}
