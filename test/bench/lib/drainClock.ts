import { Redis } from "ioredis";

/**
 * The throughput benchmark's own stopwatch, kept by the no-op handler itself
 * in every worker process (plain BullMQ's test/bench/plainWorker.ts and
 * Fairlane's `bench-noop` in test/bench/workflows.ts alike): the first and the
 * last handler call and how many there were, per process, flushed to one
 * Redis hash (field = pid, value "first last count", epoch ms) every 200 ms
 * while it changes. A drain is timed from the first handler call in any
 * process to the last: the same clock on both sides, no figure from Fairlane's
 * records, and no process boot inside it.
 *
 * The flushes are the only Redis commands it adds: 5 a second per process,
 * about 0.01 per job at the rates measured here, on both sides.
 */
export interface DrainTick {
  /** Call once per job, from the handler. */
  tick(): void;
}

const FLUSH_MS = 200;

/** The handler side. `key` unset (the variable missing): a no-op, for runs that do not time a drain. */
export function drainClock(redisUrl: string | undefined, key: string | undefined): DrainTick {
  if (!redisUrl || !key) return { tick: () => undefined };
  let first = 0;
  let last = 0;
  let count = 0;
  let flushed = 0;
  let client: Redis | undefined;
  const flush = () => {
    if (count === flushed) return;
    flushed = count;
    client ??= new Redis(redisUrl, { maxRetriesPerRequest: null });
    client.hset(key, String(process.pid), `${first} ${last} ${count}`).catch(() => undefined);
  };
  setInterval(flush, FLUSH_MS).unref();
  return {
    tick() {
      const now = Date.now();
      if (!count) first = now;
      last = now;
      count++;
    },
  };
}

export interface DrainReading {
  /** Jobs counted, over all processes. */
  count: number;
  /** Epoch ms of the first and the last handler call in any process. */
  first: number;
  last: number;
  /** Jobs per process, in pid order. */
  perProcess: number[];
}

/** The parent side: what every process has flushed so far. */
export async function readDrain(redis: Redis, key: string): Promise<DrainReading> {
  const rows = Object.entries(await redis.hgetall(key))
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([, v]) => v.split(" ").map(Number) as [number, number, number]);
  return {
    count: rows.reduce((s, r) => s + r[2], 0),
    first: Math.min(...rows.map((r) => r[0])),
    last: Math.max(...rows.map((r) => r[1])),
    perProcess: rows.map((r) => r[2]),
  };
}

/** Waits until `n` jobs have been counted; throws with `what` after `timeoutMs`. */
export async function awaitDrain(redis: Redis, key: string, n: number, timeoutMs: number, what: string): Promise<DrainReading> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await readDrain(redis, key);
    if (r.count >= n) return r;
    if (Date.now() > until) throw new Error(`${what}: ${r.count} of ${n} jobs ran within ${timeoutMs / 1000} s`);
    await new Promise((res) => setTimeout(res, 50));
  }
}
