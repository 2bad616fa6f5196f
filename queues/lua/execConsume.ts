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
  const { keys, args } = split(MOVE_TO_ACTIVE, bull);
  keys.push(cell.usageEvents(bucketStart(next.now)));
  pushNext(args, cell, next);
  return consume(fetchStart, redis, keys, args);
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
  const { keys, args } = split(MOVE_TO_FINISHED, bull);
  keys.push(cell.workflow(ended?.id ?? ""), cell.usageEvents(bucketStart(next.now)));
  pushNext(args, cell, next);
  // includes/runFinish.lua's arguments but its `now`, which is the call's; none but an empty id without an outcome.
  if (!ended) args.push("");
  else {
    const outcome = finishArgs(ended);
    for (let i = 0; i < outcome.length; i++) if (i !== 1) args.push(outcome[i]!);
  }
  return consume(finishFetchStart, redis, keys, args);
}

function pushNext(args: (string | number)[], cell: CellKeys, next: NextRun): void {
  args.push(next.now, next.runId, next.workerId, cell.own, BUCKET_TTL_SEC);
}

/**
 * A msgpack argument of BullMQ's (its opts, its fields to update) as JSON, which the scripts decode instead
 * (bullmqSlim.ts). One Buffer among a call's arguments makes ioredis build the whole call as Buffers, each
 * key and argument copied into one of its own: ~12 µs a call against ~5 for strings (40 arguments). JSON
 * has no nil: a null is left out, as msgpack's nil leaves the key out of the Lua table.
 */
function asJson(packed: Buffer): string {
  return JSON.stringify(withoutNulls(unpack(packed)));
}

/** Drops an object's null properties, nested ones too, in place (cheaper than a JSON.stringify replacer). */
function withoutNulls(v: unknown): unknown {
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) {
    for (const x of v) withoutNulls(x);
    return v;
  }
  const o = v as Record<string, unknown>;
  for (const k in o) {
    if (o[k] === null) delete o[k];
    else withoutNulls(o[k]);
  }
  return o;
}

/**
 * BullMQ's call split into its keys and its args, each array the one the call is then sent with: the
 * script's own keys and args are pushed onto them (a call carries ~40; copies of them were measurable).
 */
function split(bullmq: BullmqScript, bull: BullArgs): { keys: string[]; args: (string | number)[] } {
  if (bull.length !== bullmq.keys + bullmq.args)
    throw new Error(`BullMQ passed ${bull.length} keys and args, not ${bullmq.keys + bullmq.args}`);
  const keys = bull.slice(0, bullmq.keys) as string[];
  const args: (string | number)[] = [];
  for (let i = bullmq.keys; i < bull.length; i++) {
    const a = bull[i];
    args.push(a === undefined ? "" : Buffer.isBuffer(a) ? asJson(a) : a);
  }
  return { keys, args };
}

async function consume(script: LuaScript, redis: Redis, keys: string[], args: (string | number)[]): Promise<Consumed> {
  const reply = await script.run<unknown>(redis, keys, args);
  if (!Array.isArray(reply) || reply.length < 5) return { reply, started: null };
  const started = { id: String(reply[1]), start: parseStart(reply[4] as StartReply) };
  return { reply: reply.slice(0, 4), started };
}
