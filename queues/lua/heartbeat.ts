import type { Redis } from "ioredis";
import type { CellKeys } from "../keys.ts";
import { LuaScript } from "./script.ts";

const script = new LuaScript("heartbeat-4.lua");

/** Advertises `concurrency` slots of `workerId` in `pool` until `expiresAt`; 0 leaves the pool. */
export function heartbeat(
  redis: Redis,
  cell: CellKeys,
  pool: string,
  workerId: string,
  concurrency: number,
  now: number,
  expiresAt: number,
): Promise<number> {
  return script.run<number>(
    redis,
    [cell.poolWorkers(pool), cell.poolConcurrency(pool), cell.pools, cell.wake],
    [workerId, concurrency, expiresAt, now, pool],
  );
}
