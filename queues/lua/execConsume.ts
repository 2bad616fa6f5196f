import { createRequire } from "node:module";
import type { Redis } from "ioredis";
import { unpack } from "msgpackr";
import type { CellKeys } from "../keys.ts";
import { BUCKET_TTL_SEC, bucketStart } from "../usageEvents.ts";
import { slimBullmq } from "./bullmqSlim.ts";
import { finishArgs, parseStart, type FinishInput, type StartOutcome, type StartReply } from "./runLifecycle.ts";
import { LuaScript, type BullmqScript } from "./script.ts";

/**
 * Typed wrappers of the exec consumer's two scripts (src/exec/execBackend.ts): BullMQ 6.7's own
 * moveToActive and moveToFinished, less the steps an exec queue never needs (events, delayed jobs,
 * flows: bullmqSlim.ts), composed into scripts that also start the workflow a fetch takes and record
 * the outcome of the one a finish ends. The BullMQ side's keys and args are what BullMQ built for its
 * own call, passed through as they are.
 */
const require = createRequire(import.meta.url);
function bullmqScript(file: string, name: "moveToActive" | "moveToFinished", args: number): BullmqScript {
  const s = (require(`bullmq/dist/cjs/scripts/${file}`) as Record<string, { content: string; keys: number }>)[name]!;
  return { content: slimBullmq(name, s.content), keys: s.keys, args };
}
const MOVE_TO_ACTIVE = bullmqScript("moveToActive-11.js", "moveToActive", 3);
const MOVE_TO_FINISHED = bullmqScript("moveToFinished-14.js", "moveToFinished", 9);
const fetchStart = new LuaScript("fetchStart-1.lua", MOVE_TO_ACTIVE);
const finishFetchStart = new LuaScript("finishFetchStart-2.lua", MOVE_TO_FINISHED);

/** Who starts the workflow a call may take, and when. */
export interface NextRun {
  now: number;
  runId: string;
  workerId: string;
}

/** BullMQ's reply as its own script gives it, and the start of the workflow it took (null: none taken). */
export interface Consumed {
  reply: unknown;
  started: { id: string; start: StartOutcome } | null;
}

type BullArgs = (string | number | Buffer | undefined)[];

/** BullMQ's moveToActive call (`bull`: its keys, then its args) and the start of the job it takes. */
export function fetchAndStart(redis: Redis, cell: CellKeys, bull: BullArgs, next: NextRun): Promise<Consumed> {
  return consume(fetchStart, redis, MOVE_TO_ACTIVE, bull, [cell.usageEvents(bucketStart(next.now))], nextArgs(cell, next));
}

/**
 * BullMQ's moveToFinished call (`bull`), with the ended run's outcome recorded first (`ended`; none for a
 * job whose run had nothing to record) and the start of the next job it takes.
 */
export function finishAndStart(
  redis: Redis,
  cell: CellKeys,
  bull: BullArgs,
  ended: FinishInput | undefined,
  next: NextRun,
): Promise<Consumed> {
  const keys = [cell.workflow(ended?.id ?? ""), cell.usageEvents(bucketStart(next.now))];
  // includes/runFinish.lua's arguments but its `now`, which is the call's; none but an empty id without an outcome.
  const outcome = ended ? finishArgs(ended).filter((_, i) => i !== 1) : [""];
  return consume(finishFetchStart, redis, MOVE_TO_FINISHED, bull, keys, [...nextArgs(cell, next), ...outcome]);
}

function nextArgs(cell: CellKeys, next: NextRun): (string | number)[] {
  return [next.now, next.runId, next.workerId, cell.own, BUCKET_TTL_SEC];
}

/**
 * A msgpack argument of BullMQ's (its opts, its fields to update) as JSON, which the scripts decode instead
 * (bullmqSlim.ts). One Buffer among a call's arguments makes ioredis build the whole call as Buffers, each
 * key and argument copied into one of its own: ~12 µs a call against ~5 for strings (40 arguments). JSON
 * has no nil: a null is left out, as msgpack's nil leaves the key out of the Lua table.
 */
function asJson(packed: Buffer): string {
  return JSON.stringify(unpack(packed), (_k, v: unknown) => (v === null ? undefined : v));
}

async function consume(
  script: LuaScript,
  redis: Redis,
  bullmq: BullmqScript,
  bull: BullArgs,
  keys: string[],
  args: (string | number)[],
): Promise<Consumed> {
  if (bull.length !== bullmq.keys + bullmq.args)
    throw new Error(`BullMQ passed ${bull.length} keys and args, not ${bullmq.keys + bullmq.args}`);
  const bullKeys = bull.slice(0, bullmq.keys) as string[];
  const bullArgs = bull.slice(bullmq.keys).map((a) => (a === undefined ? "" : Buffer.isBuffer(a) ? asJson(a) : a));
  const reply = await script.run<unknown>(redis, [...bullKeys, ...keys], [...bullArgs, ...args]);
  if (!Array.isArray(reply) || reply.length < 5) return { reply, started: null };
  const started = { id: String(reply[1]), start: parseStart(reply[4] as StartReply) };
  return { reply: reply.slice(0, 4), started };
}
