import type { Redis } from "ioredis";
import type { CellKeys } from "../keys.ts";
import { LuaScript } from "./script.ts";

const script = new LuaScript("expireQueued-2.lua");

/**
 * Fails the cell's queued workflows whose deadline has passed, reading the deadline index
 * (includes/deadlineIndex.lua) about `chunk` ids per call, until none is due; returns how many
 * were failed.
 */
export async function expireQueued(redis: Redis, cell: CellKeys, now: number, recordTtlSec: number, chunk = 500): Promise<number> {
  let expired = 0;
  for (;;) {
    const [n, read] = await script.run<[number, number]>(
      redis,
      [cell.deadlines, cell.queued],
      [now, chunk, cell.own, cell.bullPrefix, recordTtlSec],
    );
    expired += Number(n);
    if (Number(read) < chunk) return expired;
  }
}
