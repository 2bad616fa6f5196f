import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";
import type { Clock } from "../lib/clock.ts";

/**
 * Which workflow types a cell can run, for admission: live exec workers
 * advertise the types they have handlers for in the cell's `types` zset
 * (type -> until when; every heartbeat pushes it forward: src/exec/execWorker.ts).
 * A type no live worker advertises is refused at admission (400
 * UNKNOWN_WORKFLOW_TYPE) instead of failing at run time. While nothing is
 * advertised (no exec worker live in the cell yet, or only ones from before
 * workers advertised) every type is accepted: the work waits for a worker.
 *
 * Cached per cell: steady traffic costs one ZRANGE per cell every `ttlMs`,
 * not one per request. A cache older than `ttlMs` still answers for a type it
 * holds advertised (until a time not yet past) while the lookup refreshes it:
 * the request does not wait for that round trip, which on a busy producer
 * waits a turn of its event loop as well (a Class A admission's start, in the
 * storm benchmark). A type missing from a cache older than `recheckMs` is
 * looked up again at once, and waited for (at most one lookup per `recheckMs`
 * however many such requests come), so a worker deployed with a new type, or
 * the first worker of a cell, is seen within its first heartbeat.
 */
export type TypeVerdict = { ok: true } | { ok: false; known: string[] };

interface Snapshot {
  until: Map<string, number>;
  fetchedAt: number;
}

export class WorkflowTypes {
  private readonly cache = new Map<string, Snapshot>();
  private readonly fetching = new Map<string, Promise<Snapshot>>();

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly clock: Clock,
    private readonly opts: { ttlMs: number; recheckMs: number } = { ttlMs: 1_000, recheckMs: 250 },
  ) {}

  async check(cell: string, type: string): Promise<TypeVerdict> {
    let snap = this.cache.get(cell);
    if (!snap) snap = await this.fetch(cell);
    else if (this.clock.now() - snap.fetchedAt >= this.opts.ttlMs) this.fetch(cell).catch(() => undefined);
    if (!this.advertised(snap, type) && this.clock.now() - snap.fetchedAt >= this.opts.recheckMs) snap = await this.fetch(cell);
    return this.decide(snap, type);
  }

  private advertised(snap: Snapshot, type: string): boolean {
    return (snap.until.get(type) ?? 0) > this.clock.now();
  }

  private decide(snap: Snapshot, type: string): TypeVerdict {
    const now = this.clock.now();
    if (this.advertised(snap, type)) return { ok: true };
    const known = [...snap.until].filter(([, until]) => until > now).map(([t]) => t);
    return known.length ? { ok: false, known: known.sort() } : { ok: true };
  }

  /** One ZRANGEBYSCORE of the live entries; concurrent callers share it. */
  private fetch(cell: string): Promise<Snapshot> {
    let p = this.fetching.get(cell);
    if (!p) {
      const now = this.clock.now();
      p = this.redis
        .zrangebyscore(this.keys.cell(cell).types, `(${now}`, "+inf", "WITHSCORES")
        .then((flat) => {
          const until = new Map<string, number>();
          for (let i = 0; i < flat.length; i += 2) until.set(flat[i]!, Number(flat[i + 1]));
          const snap = { until, fetchedAt: now };
          this.cache.set(cell, snap);
          return snap;
        })
        .finally(() => this.fetching.delete(cell));
      this.fetching.set(cell, p);
    }
    return p;
  }
}
