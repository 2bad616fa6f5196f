import type { Redis } from "ioredis";
import type { CellKeys } from "../keys.ts";
import { LuaScript } from "./script.ts";

const script = new LuaScript("reconcileSlots-1.lua");

/** One full pass over the cell's slot leases, in HSCAN chunks; returns how many were released. */
export async function reconcileSlots(redis: Redis, cell: CellKeys, now: number, graceMs: number, recordTtlSec: number): Promise<number> {
  let cursor = "0";
  let released = 0;
  do {
    const [next, n] = await script.run<[string, number]>(
      redis,
      [cell.slots],
      [cell.own, cell.bullPrefix, now, graceMs, cursor, 200, recordTtlSec],
    );
    cursor = next;
    released += Number(n);
  } while (cursor !== "0");
  return released;
}
