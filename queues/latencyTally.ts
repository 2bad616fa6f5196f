import type { Redis } from "ioredis";
import { SlotPipeline } from "../src/lib/slotPipeline.ts";
import type { CellKeys } from "./keys.ts";
import { BUCKET_TTL_SEC, bucketStart, latencyBucket } from "./usageEvents.ts";

/**
 * The enqueue->start latencies of an exec process's first starts, as the usage-event buckets count them
 * ("<tenant>|l<b>" in <cell>:ev:<bucketStart>, queues/usageEvents.ts), counted in the process and added to
 * Redis by `flush`, once a heartbeat (1.25 s by default): one HINCRBY per bucket, tenant and latency
 * bucket, rather than one per workflow inside the start's script. The histogram is a chart's and a
 * rollup's, not a record (each workflow keeps its own enqueuedAt and startedAt): a process killed -9
 * loses the counts of its last heartbeat, and a flush Redis refused is tried again with the next.
 */
export class LatencyTally {
  /** Per usage-event bucket key, per field. */
  private pending = new Map<string, Map<string, number>>();
  private timer: NodeJS.Timeout | undefined;

  /** A first start at `startedAt` of a workflow of `tenant` enqueued at `enqueuedAt`. */
  count(cell: CellKeys, tenant: string, enqueuedAt: number, startedAt: number): void {
    if (!Number.isFinite(enqueuedAt)) return;
    this.add(cell.usageEvents(bucketStart(startedAt)), `${tenant}|l${latencyBucket(startedAt - enqueuedAt)}`, 1);
  }

  /**
   * Adds what was counted since the last flush to the buckets, each given its TTL, in one pipeline per cell
   * (SlotPipeline: a Redis Cluster refuses a pipeline across slots). What Redis did not apply is kept for
   * the next flush, each HINCRBY by its own reply (all of them when a call failed as a whole), and the
   * flush throws.
   */
  async flush(redis: Redis): Promise<void> {
    if (this.pending.size === 0) return;
    const taken = this.pending;
    this.pending = new Map();
    const sent: [key: string, field: string, n: number][] = [];
    for (const [key, fields] of taken) for (const [field, n] of fields) sent.push([key, field, n]);
    const p = new SlotPipeline(redis);
    for (const [key, field, n] of sent) p.add(key, (q) => q.hincrby(key, field, n));
    for (const key of taken.keys()) p.add(key, (q) => q.expire(key, BUCKET_TTL_SEC));
    let failure: unknown;
    const replies = await p.exec().catch((err: unknown) => {
      failure = err;
      return null;
    });
    sent.forEach(([key, field, n], i) => {
      const err = replies ? replies[i]?.[0] : failure;
      if (!err) return;
      failure ??= err;
      this.add(key, field, n);
    });
    if (failure) throw failure;
  }

  /** Flushes every `ms` until close (a failed flush is tried again with the next). */
  flushEvery(redis: Redis, ms: number): void {
    this.timer = setInterval(() => void this.flush(redis).catch(() => undefined), ms);
    this.timer.unref();
  }

  /** Stops flushing on a timer, and flushes what is left (a failure is left unreported: the process is stopping). */
  async close(redis: Redis): Promise<void> {
    clearInterval(this.timer);
    await this.flush(redis).catch(() => undefined);
  }

  private add(key: string, field: string, n: number): void {
    let fields = this.pending.get(key);
    if (!fields) this.pending.set(key, (fields = new Map()));
    fields.set(field, (fields.get(field) ?? 0) + n);
  }
}
