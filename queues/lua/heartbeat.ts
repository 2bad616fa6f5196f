import type { Redis } from "ioredis";
import type { CellKeys } from "../keys.ts";
import { LuaScript } from "./script.ts";

const script = new LuaScript("heartbeat-5.lua");

/**
 * Advertises `concurrency` slots of `workerId` in `pool` until `expiresAt`, of which Class C may take
 * `batch` now (default: all of them); concurrency 0 leaves the pool.
 */
export function heartbeat(
  redis: Redis,
  cell: CellKeys,
  pool: string,
  workerId: string,
  concurrency: number,
  now: number,
  expiresAt: number,
  batch = concurrency,
): Promise<number> {
  return script.run<number>(
    redis,
    [cell.poolWorkers(pool), cell.poolConcurrency(pool), cell.pools, cell.wake, cell.poolBatch(pool)],
    [workerId, concurrency, expiresAt, now, pool, Math.max(0, Math.min(batch, concurrency))],
  );
}
