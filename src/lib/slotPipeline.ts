import type { ChainableCommander, Redis } from "ioredis";
import { hashSlot } from "./hashSlot.ts";

type Reply = [Error | null, unknown];

/**
 * A pipeline for reads that span cells. A Redis Cluster refuses a pipeline
 * whose keys are in different slots, so the commands are queued here, sent as
 * one pipeline per hash slot (each cell is one slot: usually one pipeline per
 * cell, all in parallel), and the replies come back in the order the
 * commands were given — as `redis.pipeline().exec()` gives them.
 * Every command must name its key first.
 */
export class SlotPipeline {
  private readonly queued: { slot: number; add: (p: ChainableCommander) => void }[] = [];

  constructor(private readonly redis: Redis) {}

  /** Queues one command: `cmd(p)` adds it to the pipeline of `key`'s slot. */
  add(key: string, cmd: (p: ChainableCommander) => unknown): this {
    this.queued.push({ slot: hashSlot(key), add: (p) => void cmd(p) });
    return this;
  }

  async exec(): Promise<Reply[]> {
    const bySlot = new Map<number, number[]>();
    this.queued.forEach((q, i) => bySlot.set(q.slot, [...(bySlot.get(q.slot) ?? []), i]));
    const out: Reply[] = new Array(this.queued.length);
    await Promise.all(
      [...bySlot.values()].map(async (indexes) => {
        const p = this.redis.pipeline();
        for (const i of indexes) this.queued[i]!.add(p);
        const replies = ((await p.exec()) ?? []) as Reply[];
        indexes.forEach((i, k) => (out[i] = replies[k] ?? [new Error("missing reply"), null]));
      }),
    );
    return out;
  }
}
