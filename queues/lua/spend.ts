import type { Redis } from "ioredis";
import { LuaScript } from "./script.ts";

const script = new LuaScript("recordSpend-1.lua");

/** Adds `micro` micro-dollars to a month key (its TTL set once, at the month's first spend); the new total. */
export async function recordSpend(redis: Redis, monthKey: string, micro: number, ttlSec: number): Promise<number> {
  return Number(await script.run<number>(redis, [monthKey], [micro, ttlSec]));
}
