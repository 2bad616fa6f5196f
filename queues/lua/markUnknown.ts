import type { Redis } from "ioredis";
import type { CellKeys } from "../keys.ts";
import { LuaScript } from "./script.ts";

const script = new LuaScript("markUnknown-2.lua");

/** A monitor's "first probe under way" for a dependency with no signal in one cell; see markUnknown-2.lua. */
export function markUnknown(redis: Redis, cell: CellKeys, dep: string, now: number, ttlMs: number): Promise<number> {
  return script.run<number>(redis, [cell.health(dep), cell.deps], [now, ttlMs, dep]);
}
