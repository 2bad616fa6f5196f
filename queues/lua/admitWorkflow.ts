import type { ChainableCommander, Redis } from "ioredis";
import { CLASSES, type CellKeys, type WorkflowClass } from "../keys.ts";
import { ingressQueue } from "../names.ts";
import { LuaScript } from "./script.ts";

const script = new LuaScript("admitWorkflow-11.lua");

export interface AdmitInput {
  id: string;
  tenant: string;
  cls: WorkflowClass;
  type: string;
  data: string;
  now: number;
  /** sha256 of the producer's idempotency key, or undefined. */
  idempotencyHash?: string;
  idempotencyTtlSec: number;
  maxQueueDepth: number;
  maxQueuedTotal: number;
  record: Record<string, string>;
}

export type AdmitOutcome =
  | { kind: "ok"; id: string }
  | { kind: "duplicate"; id: string }
  | { kind: "tenant_full"; depth: number }
  | { kind: "cell_full"; queued: number };

function keysAndArgs(cell: CellKeys, a: AdmitInput): [string[], (string | number)[]] {
  const queue = ingressQueue(a.tenant, a.cls);
  const keys = [
    cell.queueKey(queue, "wait"),
    cell.jobKey(queue, a.id),
    cell.workflow(a.id),
    cell.idempotency(a.tenant, a.idempotencyHash ?? "-"),
    cell.queued,
    cell.queues,
    cell.dirty,
    ...CLASSES.map((c) => cell.queueKey(ingressQueue(a.tenant, c), "wait")),
    cell.wake,
  ];
  const args = [
    a.id,
    a.type,
    a.data,
    "{}",
    a.now,
    a.maxQueueDepth,
    a.maxQueuedTotal,
    a.idempotencyHash ? a.idempotencyTtlSec : 0,
    a.tenant,
    queue,
    JSON.stringify(a.record),
  ];
  return [keys, args];
}

export function parseAdmit(reply: [string, string]): AdmitOutcome {
  const [kind, value] = reply;
  switch (kind) {
    case "ok":
    case "duplicate":
      return { kind, id: value };
    case "tenant_full":
      return { kind, depth: Number(value) };
    case "cell_full":
      return { kind, queued: Number(value) };
    default:
      throw new Error(`admitWorkflow: unexpected reply ${kind}`);
  }
}

export async function admitWorkflow(redis: Redis, cell: CellKeys, input: AdmitInput): Promise<AdmitOutcome> {
  const [keys, args] = keysAndArgs(cell, input);
  return parseAdmit(await script.run<[string, string]>(redis, keys, args));
}

/** Admits many in one round trip; each item sees the effects of the ones before it. */
export async function admitWorkflows(
  redis: Redis,
  items: { cell: CellKeys; input: AdmitInput }[],
): Promise<AdmitOutcome[]> {
  script.ensure(redis);
  const pipeline: ChainableCommander = redis.pipeline();
  for (const { cell, input } of items) {
    const [keys, args] = keysAndArgs(cell, input);
    script.queue(pipeline, keys, args);
  }
  const results = (await pipeline.exec()) ?? [];
  return results.map(([err, reply]) => {
    if (err) throw err;
    return parseAdmit(reply as [string, string]);
  });
}
