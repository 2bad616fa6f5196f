import type { Redis } from "ioredis";
import type { CellKeys } from "../keys.ts";
import { LuaScript } from "./script.ts";

const script = new LuaScript("markDegraded-2.lua");

/**
 * Passive downgrade of a dependency in one cell; see markDegraded-2.lua. By EVAL: it runs at most once a
 * second per process, in an outage, when every ms its announcement takes is calls other processes send.
 */
export function markDegraded(redis: Redis, cell: CellKeys, dep: string, now: number, detail: string, ttlMs: number): Promise<number> {
  return script.evalNow<number>(redis, [cell.health(dep), cell.deps], [now, detail, ttlMs, dep, cell.signals]);
}
