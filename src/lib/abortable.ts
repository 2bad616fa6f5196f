/**
 * What waits on a signal, kept per signal: the signal gets one "abort" listener of its own, the first time
 * anything watches it, and each watcher is an entry in a Set. A run's signal is watched by every await of
 * every tool call it makes (the budget, the gate's acquire and release, each attempt), and an EventTarget
 * listener added and removed for each, with AbortSignal.any per fanned-out call, was ~18 % of the exec's
 * CPU per tool call (docs/benchmarks.md). Watchers run in the order they were added.
 */
const watchers = new WeakMap<AbortSignal, Set<() => void>>();

/** Calls `fn` once when `signal` aborts (at once if it already has); the returned function stops watching. */
export function onAbort(signal: AbortSignal, fn: () => void): () => void {
  if (signal.aborted) {
    fn();
    return () => undefined;
  }
  let set = watchers.get(signal);
  if (!set) {
    const own = new Set<() => void>();
    watchers.set(signal, own);
    signal.addEventListener(
      "abort",
      () => {
        for (const f of own) f();
        own.clear();
      },
      { once: true },
    );
    set = own;
  }
  const once = set;
  // A function object of its own per watch, so the same `fn` watched twice is two watchers.
  const entry = () => fn();
  once.add(entry);
  return () => {
    once.delete(entry);
  };
}

/**
 * Settles as `p` does, or rejects with `signal.reason` as soon as the signal
 * aborts, whichever comes first; `p` itself goes on (a Redis command queued
 * while Redis is away still runs when it returns). For awaits a stopped run
 * must not sit in: a run stopped because its lock could not be renewed has to
 * end before the lock lapses, not when Redis answers again.
 */
export function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const stop = onAbort(signal, () => reject(signal.reason));
    p.then(
      (v) => (stop(), resolve(v)),
      (e) => (stop(), reject(e)),
    );
  });
}

/**
 * A signal that aborts when `parent` does (with its reason) or when the returned `abort` is called, for
 * calls that share a fate (ctx.all's siblings): one watcher on the parent, however many calls use it.
 * `release` stops following the parent once the group is done.
 */
export function childSignal(parent: AbortSignal): { signal: AbortSignal; abort(reason: unknown): void; release(): void } {
  const c = new AbortController();
  const release = onAbort(parent, () => c.abort(parent.reason));
  return { signal: c.signal, abort: (reason) => c.abort(reason), release };
}
