/**
 * How many workflows a pool may hold dispatched beyond its workers' concurrency (its prefetch), pure.
 *
 * A slot is held from dispatch to the run's end. With exactly `capacity` slots, a worker that ends a
 * run finds the exec queue empty and waits while the dispatcher hears of the freed slot, moves the
 * next workflow and wakes it: 20–50 ms on a busy 2-core machine, every time. When runs are short that
 * wait is most of each cycle (a drain of no-op runs: 100 workers ran ~2,000/s and idled half the time).
 *
 * Just enough, learnt from the dispatcher's own calls, once per `windowMs`. A call that follows one
 * which stopped with the pool full (Class B/C work left ready for want of a slot) finds the exec queue
 * as the workers left it. Over a window, of those calls:
 *   - one found it empty, with work to move: the workers may have waited for it, so the prefetch
 *     grows by a quarter (at least 1);
 *   - else, if the least any found waiting is more than a quarter of the prefetch, those were not
 *     needed yet, so it shrinks by a quarter of the excess. The quarter it keeps absorbs the calls'
 *     jitter: a prefetch that shrank until the queue ran dry at every other call would leave workers
 *     waiting at every other call.
 * The least, not each call's: calls come in bursts, and one made a millisecond after another finds
 * the workflows that one just moved, before any worker could fetch them. So a pool whose dispatcher
 * keeps up (a quiet machine) keeps a prefetch near 0.
 *
 * And never more than the pool ends runs in `windowMs`: a prefetched workflow waits for the next
 * worker to free, in the exec queue's order, so the prefetch ÷ the pool's release rate bounds its wait
 * (the rate is the busy slots ÷ their mean run length). A pool of long runs — or one tenant's long
 * runs holding every slot while others wait — ends a run every few hundred ms and prefetches nothing,
 * so nobody's workflow sits dispatched behind a long run. The rate comes from the same calls: between
 * two calls the pool released the slots it held after the first less those it held before the second
 * (`used` after it, less `moved`), smoothed over `tauMs`. Another dispatcher's moves in between make
 * it read fewer releases: never too many. It never passes `max` × the capacity either.
 *
 * What it costs: a dispatched workflow holds its tenant's slot (and its class's share) while it waits
 * for a worker, as before; and a prefetched Class B/C workflow may take a worker the Class A reserve
 * would have kept idle, so a Class A arriving then starts when the next run in the pool ends (under
 * `windowMs` ÷ the prefetch). Caps, shares and leases count dispatched workflows, so nothing runs over
 * its cap (the workers' concurrency bounds what runs at once). A tenant at its cap would lose the
 * running time its workflows spend waiting, about prefetch ÷ (capacity + prefetch) of it, so the move
 * that leaves it at its cap skips the queue (dispatchRule.ts execPlace; docs/dispatch.md).
 */
export interface PrefetchOptions {
  /** The most a pool may prefetch, as a fraction of its capacity; 0: off. */
  max: number;
  /** At most the runs the pool ends in this long (ms): about the longest a prefetched workflow waits. */
  windowMs: number;
  /** Time constant of the release rate's smoothing (ms). */
  tauMs: number;
}

export const DEFAULT_PREFETCH: PrefetchOptions = { max: 1, windowMs: 50, tauMs: 1_000 };

/** What one dispatch call returned: moved, the capacity, the slots held after it, the exec queue's length when it began, whether it left work for want of a slot. */
export interface DispatchCall {
  moved: number;
  capacity: number;
  used: number;
  waiting: number;
  full: boolean;
}

export class PrefetchController {
  private learnt = 0;
  /** The last call left Class B/C work ready for want of a slot. */
  private wasFull = false;
  /** This period (from `periodFrom`, `windowMs` long): a call after a full one found the queue dry; the least it found waiting. */
  private periodFrom: number | undefined;
  private dry = false;
  private lowWater = Infinity;
  /** Releases per ms, smoothed; the slots held after the last call; since when releases are counted. */
  private rate = 0;
  private usedAfter: number | undefined;
  private since: number | undefined;
  private released = 0;
  /** The prefetch the last call that returned kept for explanations; the one the call in flight was given. */
  private published: number | undefined;
  private asked: number | undefined;

  constructor(private readonly o: PrefetchOptions = DEFAULT_PREFETCH) {}

  /** Whether the pool prefetches at all (the dispatch script then reads what `observe` needs). */
  get on(): boolean {
    return this.o.max > 0;
  }

  /** The prefetch to give the next call. */
  value(): number {
    return Math.min(this.learnt, Math.floor(this.rate * this.o.windowMs));
  }

  /**
   * The next call's options: its prefetch, kept where explanations read it when it changed since the
   * last call that returned. Off, none (the script skips what only the prefetch needs), but 0 once,
   * which clears a value kept while it was on.
   */
  next(): { prefetch?: number; publishPrefetch?: boolean } {
    const value = this.value();
    const publish = this.published !== value;
    this.asked = value;
    if (!this.on && !publish) return {};
    return { prefetch: value, publishPrefetch: publish };
  }

  /** The pool's releases per second, as smoothed. */
  get releasesPerSecond(): number {
    return this.rate * 1000;
  }

  /** A call made at `now` with `next()` returned `c`. */
  observe(now: number, c: DispatchCall): void {
    this.published = this.asked;
    if (this.wasFull) {
      if (c.waiting === 0 && c.moved > 0) this.dry = true;
      this.lowWater = Math.min(this.lowWater, c.waiting);
    }
    this.wasFull = c.full;
    this.periodFrom ??= now;
    if (now - this.periodFrom >= this.o.windowMs) {
      if (this.dry) this.learnt += Math.max(1, Math.ceil(this.learnt / 4));
      else if (this.lowWater !== Infinity && this.lowWater > this.margin()) this.learnt -= Math.ceil((this.lowWater - this.margin()) / 4);
      this.periodFrom = now;
      this.dry = false;
      this.lowWater = Infinity;
    }
    this.learnt = Math.max(0, Math.min(Math.floor(c.capacity * this.o.max), this.learnt));
    this.observeRate(now, c);
  }

  /** What may stay waiting at a call without the prefetch shrinking: a quarter of it, for the calls' jitter. */
  private margin(): number {
    return Math.ceil(this.learnt / 4);
  }

  private observeRate(now: number, c: DispatchCall): void {
    if (this.usedAfter !== undefined) this.released += Math.max(0, this.usedAfter - (c.used - c.moved));
    this.usedAfter = c.used;
    if (this.since === undefined) {
      this.since = now;
      this.released = 0;
      return;
    }
    const dt = now - this.since;
    if (dt <= 0) return; // the same instant: counted with the next interval
    this.rate += (1 - Math.exp(-dt / this.o.tauMs)) * (this.released / dt - this.rate);
    this.since = now;
    this.released = 0;
  }
}
