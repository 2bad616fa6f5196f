import { createRequire } from "node:module";
import type { Redis } from "ioredis";
import { unpack } from "msgpackr";
import type { CellKeys } from "../keys.ts";
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
const fetchStart = new LuaScript("fetchStart-0.lua", MOVE_TO_ACTIVE);
const finishFetchStart = new LuaScript("finishFetchStart-1.lua", MOVE_TO_FINISHED);

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
  keys.push(cell.workflow(ended?.id ?? ""));
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
  args.push(next.now, next.runId, next.workerId, cell.own);
}

/**
 * A msgpack argument of BullMQ's (its opts, its fields to update) as JSON, which the scripts decode instead
 * (bullmqSlim.ts). One Buffer among a call's arguments makes ioredis build the whole call as Buffers, each
 * key and argument copied into one of its own: ~12 µs a call against ~5 for strings (40 arguments). JSON
 * has no nil: a null is left out, as msgpack's nil leaves the key out of the Lua table. A finish's
 * arguments come as JSON already (finishArgsAsJson); this is for the fetch's.
 */
function asJson(packed: Buffer): string {
  return toJson(unpack(packed));
}

const toJson = (v: unknown): string => JSON.stringify(withoutNulls(v));

/** What BullMQ 6.7's moveToFinishedArgs reads of its backend (redis-queue-backend.js; protected in its types). */
interface FinishArgsBackend {
  moveToFinishedKeys: (string | undefined)[];
  queue: {
    keys: Record<string, string>;
    opts: {
      name?: string;
      removeOnComplete?: unknown;
      removeOnFail?: unknown;
      limiter?: unknown;
      lockDuration?: number;
      metrics?: { maxDataPoints?: number };
    };
    closing?: unknown;
    toKey(type: string): string;
  };
  getKeepJobs(shouldRemove: unknown, workerKeepJobs: unknown): unknown;
  moveToFinishedArgs: (...a: FinishArgs) => unknown[];
}
type FinishArgs = [
  job: { id?: string; opts: Record<string, unknown> },
  val: unknown,
  propVal: string,
  shouldRemove: unknown,
  target: "completed" | "failed",
  token: string,
  timestamp: number,
  fetchNext?: boolean,
  fieldsToUpdate?: Record<string, unknown>,
];

/**
 * The exec consumer's backend builds a finish's arguments as BullMQ 6.7's moveToFinishedArgs does, line for
 * line, but with its opts and fields to update as JSON: BullMQ packs them with msgpack, which the finish
 * then had to unpack again to send them as JSON (asJson), ~12 µs of the exec's CPU per workflow (profiled,
 * docs/benchmarks.md). The same values reach the script: JSON leaves out what msgpack sent as nil.
 */
export function finishArgsAsJson(backend: object): void {
  const b = backend as FinishArgsBackend;
  if (typeof b.moveToFinishedArgs !== "function" || !Array.isArray(b.moveToFinishedKeys))
    throw new Error("BullMQ's backend has no moveToFinishedArgs to build a finish's arguments as JSON");
  b.moveToFinishedArgs = (job, val, propVal, shouldRemove, target, token, timestamp, fetchNext = true, fieldsToUpdate) => {
    const { queue } = b;
    const opts = queue.opts;
    const keys = b.moveToFinishedKeys;
    keys[10] = queue.keys[target];
    keys[11] = queue.toKey(job.id ?? "");
    keys[12] = queue.toKey(`metrics:${target}`);
    keys[13] = queue.keys.marker;
    const keepJobs = b.getKeepJobs(shouldRemove, target === "completed" ? opts.removeOnComplete : opts.removeOnFail);
    const jobOpts = job.opts ?? {};
    const packed = {
      token,
      name: opts.name,
      keepJobs,
      limiter: opts.limiter,
      lockDuration: opts.lockDuration,
      attempts: jobOpts.attempts,
      maxMetricsSize: opts.metrics?.maxDataPoints ? opts.metrics.maxDataPoints : "",
      fpof: !!jobOpts.failParentOnFailure,
      cpof: !!jobOpts.continueParentOnFailure,
      idof: !!jobOpts.ignoreDependencyOnFailure,
      rdof: !!jobOpts.removeDependencyOnFailure,
    };
    const fields = fieldsToUpdate
      ? Object.entries(fieldsToUpdate)
          .filter(([, v]) => v !== undefined)
          .flat()
      : undefined;
    const args = [
      job.id,
      timestamp,
      propVal,
      val === undefined ? "null" : val,
      target,
      !fetchNext || queue.closing ? 0 : 1,
      queue.keys[""],
    ];
    return keys.concat(args as string[], toJson(packed), fields ? toJson(fields) : (undefined as unknown as string));
  };
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
