import type { Redis } from "ioredis";
import type { CellKeys } from "../keys.ts";
import { execQueue } from "../names.ts";
import { LuaScript } from "./script.ts";

/** Typed wrappers of the park and recover scripts. */
const park = new LuaScript("parkRun-4.lua");
const recover = new LuaScript("recoverParked-2.lua");

export async function parkRun(
  redis: Redis,
  cell: CellKeys,
  pool: string,
  p: { id: string; now: number; token: string; dependency: string; reason: string; started: boolean },
): Promise<"ok" | "lostlock" | "final"> {
  const q = execQueue(pool);
  const [kind] = await park.run<[string]>(
    redis,
    [cell.workflow(p.id), cell.jobKey(q, p.id), cell.queueKey(q, "active"), cell.queueKey(q, "stalled")],
    [p.id, p.now, p.token, cell.own, cell.bullPrefix, p.dependency, p.reason, p.started ? 1 : 0],
  );
  return kind as "ok" | "lostlock" | "final";
}

export async function recoverParked(
  redis: Redis,
  cell: CellKeys,
  dependency: string,
  o: { now: number; max: number; recordTtlSec: number; expireOnly: boolean },
): Promise<{ requeued: number; expired: number; parkedMs: number[] }> {
  const [requeued, expired, ...parkedMs] = await recover.run<number[]>(
    redis,
    [cell.parked(dependency), cell.queued],
    [cell.own, cell.bullPrefix, o.now, o.max, o.recordTtlSec, o.expireOnly ? 1 : 0, dependency],
  );
  return { requeued: Number(requeued), expired: Number(expired), parkedMs: parkedMs.map(Number) };
}

const resolve = new LuaScript("resolveParked-1.lua");

/** Requeue or fail one parked workflow by hand (operator controls). */
export async function resolveParked(
  redis: Redis,
  cell: CellKeys,
  id: string,
  o: { now: number; action: "requeue" | "fail"; recordTtlSec: number; message: string; by?: string },
): Promise<"requeued" | "failed" | "skipped"> {
  const args = [id, cell.own, cell.bullPrefix, o.now, o.action, o.recordTtlSec, o.message, o.by ?? "operator"];
  return resolve.run(redis, [cell.workflow(id)], args);
}
