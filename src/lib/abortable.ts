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
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => (signal.removeEventListener("abort", onAbort), resolve(v)),
      (e) => (signal.removeEventListener("abort", onAbort), reject(e)),
    );
  });
}
