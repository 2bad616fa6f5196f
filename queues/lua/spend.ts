import type { Redis } from "ioredis";
import { LuaScript } from "./script.ts";

const script = new LuaScript("recordSpend-2.lua");

/**
 * Adds `micro` micro-dollars to a tenant's month key and, when it has an org, to the org's month key
 * (each key's TTL set once, at its month's first spend); the new totals (`org` null without an org).
 */
export async function recordSpend(
  redis: Redis,
  monthKey: string,
  orgMonthKey: string | null,
  micro: number,
  ttlSec: number,
): Promise<{ tenant: number; org: number | null }> {
  const [tenant, org] = await script.run<[number, number]>(redis, [monthKey, orgMonthKey ?? monthKey], [micro, ttlSec]);
  return { tenant: Number(tenant), org: orgMonthKey === null ? null : Number(org) };
}
