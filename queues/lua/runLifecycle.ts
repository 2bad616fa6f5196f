import type { Redis } from "ioredis";
import type { CellKeys, WorkflowClass } from "../keys.ts";
import { execQueue } from "../names.ts";
import { LuaScript } from "./script.ts";

/** Typed wrappers of the three scripts an exec worker calls around one run. */
const start = new LuaScript("startRun-1.lua");
const finish = new LuaScript("finishRun-1.lua");
const requeue = new LuaScript("requeueRun-4.lua");

/**
 * What the run needs from the workflow record. `traceparent`: "" for a workflow admitted without a trace
 * context (derived from its id: workflowTraceparent in src/observability/tracing.ts), null for one
 * admitted before the record kept it (its job carries an envelope).
 */
export interface RunMeta {
  tenant: string;
  cls: WorkflowClass;
  enqueuedAt: number;
  traceparent: string | null;
  /** When its last dispatch moved it into the exec queue (null: no dispatch noted). */
  dispatchedAt: number | null;
}

export type StartOutcome = (
  | { kind: "run"; deadlineAt: number | null; attempts: number; firstStart: boolean }
  | { kind: "final"; state: string }
  | { kind: "cancel" | "expired" | "yield" | "noslot" }
) & { meta: RunMeta | null };

export async function startRun(
  redis: Redis,
  cell: CellKeys,
  id: string,
  now: number,
  runId: string,
  workerId: string,
): Promise<StartOutcome> {
  const r = await start.run<StartReply>(redis, [cell.workflow(id)], [id, now, runId, workerId, cell.own]);
  return parseStart(r);
}

/** includes/runStart.lua's reply, from startRun-1.lua or from the exec consumer's fetch (execConsume.ts). */
export type StartReply = [string, string, number, number, string, string, string, string | null, string];

export function parseStart(r: StartReply): StartOutcome {
  const meta = r[4]
    ? {
        tenant: r[4],
        cls: r[5] as WorkflowClass,
        enqueuedAt: Number(r[6]),
        traceparent: r[7] ?? null,
        dispatchedAt: r[8] ? Number(r[8]) : null,
      }
    : null;
  if (r[0] === "run") return { kind: "run", deadlineAt: r[1] ? Number(r[1]) : null, attempts: Number(r[2]), firstStart: r[3] === 1, meta };
  if (r[0] === "final") return { kind: "final", state: r[1] || "missing", meta };
  return { kind: r[0] as "cancel" | "expired" | "yield" | "noslot", meta };
}

export interface FinishInput {
  id: string;
  now: number;
  runId: string;
  state: "completed" | "failed" | "cancelled";
  result?: unknown;
  error?: { code: string; message: string };
  recordTtlSec: number;
  /**
   * The workflow may have step results (its steps hash, ctx.step): this run wrote one, or an earlier start or a
   * review decision may have. False spares the ended run's EXPIRE of a hash that was never written. Default true.
   */
  steps?: boolean;
  /**
   * Leave the slot's release for the dispatcher to settle, as the exec consumer's finish does
   * (includes/releaseSlot.lua). Default false: settled with the finish.
   */
  releaseLater?: boolean;
}

export async function finishRun(redis: Redis, cell: CellKeys, f: FinishInput): Promise<"ok" | "final" | "stale"> {
  const r = await finish.run<[string]>(redis, [cell.workflow(f.id)], [...finishArgs(f), cell.own, f.releaseLater ? "later" : ""]);
  return r[0] as "ok" | "final" | "stale";
}

/** includes/runFinish.lua's arguments but the cell's prefix: id, now, run id, state, result, error code and message, TTL, steps. */
export function finishArgs(f: FinishInput): (string | number)[] {
  const result = f.result === undefined ? "" : JSON.stringify(f.result);
  return [f.id, f.now, f.runId, f.state, result, f.error?.code ?? "", f.error?.message ?? "", f.recordTtlSec, f.steps === false ? 0 : 1];
}

export async function requeueRun(
  redis: Redis,
  cell: CellKeys,
  pool: string,
  r: { id: string; now: number; token: string; reason: string; started: boolean },
): Promise<"ok" | "lostlock" | "final"> {
  const q = execQueue(pool);
  const out = await requeue.run<[string]>(
    redis,
    [cell.workflow(r.id), cell.jobKey(q, r.id), cell.queueKey(q, "active"), cell.queueKey(q, "stalled")],
    [r.id, r.now, r.token, cell.own, cell.bullPrefix, r.reason, r.started ? 1 : 0],
  );
  return out[0] as "ok" | "lostlock" | "final";
}
