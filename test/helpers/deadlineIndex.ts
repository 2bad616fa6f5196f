import type { Redis } from "ioredis";
import type { CellKeys } from "../../queues/keys.ts";

/**
 * How many times workflow `id` is listed in the deadline index under the second of `deadlineAt`
 * (queues/lua/includes/deadlineIndex.lua), as the sweep (expireQueued-2.lua) finds it: 0 when that
 * second is not in the index.
 */
export async function deadlineListings(redis: Redis, cell: CellKeys, id: string, deadlineAt: number): Promise<number> {
  const second = String(deadlineAt - (deadlineAt % 1000));
  if ((await redis.zscore(cell.deadlines, second)) === null) return 0;
  return (await redis.lrange(cell.deadlineBucket(second), 0, -1)).filter((x) => x === id).length;
}
