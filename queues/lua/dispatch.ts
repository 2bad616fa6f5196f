import type { Redis } from "ioredis";
import type { CellKeys } from "../keys.ts";
import { execQueue } from "../names.ts";
import { LuaScript } from "./script.ts";

const script = new LuaScript("dispatch-18.lua");
const settle = new LuaScript("settleReleased-1.lua");

/** Settles the slot releases noted since the last call (settleReleased-1.lua); returns how many it released. */
export async function settleReleased(redis: Redis, cell: CellKeys): Promise<number> {
  return Number(await settle.run<number>(redis, [cell.released], [cell.own]));
}

export interface DispatchOptions {
  maxMoves: number;
  reserveA: number;
  batchMaxShare: number;
  batchMinShare: number;
  maxRefresh: number;
  capacityCap: number;
  recordTtlSec: number;
  /** A preemption request older than this whose workflow still holds its slot counts as ignored (unset: not counted). */
  ignoredAfterMs?: number;
  /**
   * Slots beyond the capacity this call may fill, waiting for a worker (src/dispatch/policy/prefetch.ts);
   * unset: off (0, and `waiting` and `full` not read: 0 and false).
   */
  prefetch?: number;
  /** Keep `prefetch` where explanations read it (unset: yes); the dispatcher asks only when it changed. */
  publishPrefetch?: boolean;
}

export interface DispatchResult {
  moved: number;
  expired: number;
  preempted: number;
  capacity: number;
  used: number;
  refreshed: number;
  parked: number;
  /** Preemption requests older than `ignoredAfterMs` whose workflow still holds its slot (0 when not counted). */
  ignored: number;
  /** The exec queue's length when the call began (0 with no prefetch given). */
  waiting: number;
  /** It left Class B/C work ready for want of a slot (false with no prefetch given). */
  full: boolean;
}

export async function dispatch(redis: Redis, cell: CellKeys, pool: string, now: number, o: DispatchOptions): Promise<DispatchResult> {
  const exec = execQueue(pool);
  const [moved, expired, preempted, capacity, used, refreshed, parked, ignored, waiting, full] = await script.run<number[]>(
    redis,
    [
      cell.poolWorkers(pool),
      cell.poolConcurrency(pool),
      cell.poolUsed(pool),
      cell.ready(pool, "A"),
      cell.ready(pool, "B"),
      cell.ready(pool, "C"),
      cell.dirty,
      cell.timers,
      cell.seq,
      cell.slots,
      cell.queueKey(exec, "wait"),
      cell.queueKey(exec, "marker"),
      cell.queued,
      cell.runningC(pool),
      cell.preempting(pool),
      cell.wfq(pool, "A"),
      cell.wfq(pool, "B"),
      cell.wfq(pool, "C"),
    ],
    [
      now,
      cell.own,
      cell.bullPrefix,
      pool,
      o.maxMoves,
      o.reserveA,
      o.batchMaxShare,
      o.batchMinShare,
      cell.signals,
      o.maxRefresh,
      o.capacityCap,
      o.recordTtlSec,
      o.ignoredAfterMs ?? "",
      o.prefetch ?? "",
      o.prefetch !== undefined && o.publishPrefetch !== false ? 1 : "",
    ],
  );
  return {
    moved: moved!,
    expired: expired!,
    preempted: preempted!,
    capacity: capacity!,
    used: used!,
    refreshed: refreshed!,
    parked: parked!,
    ignored: ignored!,
    waiting: waiting!,
    full: full === 1,
  };
}
