import type { ChainableCommander, Redis } from "ioredis";
import { CLASSES, type CellKeys, type WorkflowClass } from "../keys.ts";
import { ingressQueue } from "../names.ts";
import { LuaScript } from "./script.ts";

const script = new LuaScript("admitWorkflow-16.lua");

export interface AdmitInput {
  id: string;
  tenant: string;
  cls: WorkflowClass;
  type: string;
  data: string;
  now: number;
  /** sha256 of the producer's idempotency key, or undefined. */
  idempotencyHash?: string;
  /** sha256 of the canonical request, kept with the idempotency key: a reuse for another request conflicts. */
  requestHash?: string;
  idempotencyTtlSec: number;
  maxQueueDepth: number;
  /** The payload's size (UTF-8 JSON bytes), counted against maxQueueBytes while it is queued (default 0). */
  payloadBytes?: number;
  /** Default: no bound. */
  maxQueueBytes?: number;
  maxQueuedTotal: number;
  record: Record<string, string>;
  /** Who admits it, for the tenant's audit trail: key:<api key id> through the API (default "producer"). */
  by?: string;
  /** The monthly budgets the script holds it to (TenantBudget.admissionBudget); default: none. */
  budget?: AdmissionBudget;
}

/**
 * The month spend keys admission reads, the tenant's and its org's (the tenant's again when its org has no
 * monthly budget), and those budgets in micro-dollars (-1: none). Spent at or past a budget refuses.
 */
export interface AdmissionBudget {
  keys: [string, string];
  micro: [number, number];
}

export type AdmitOutcome =
  | { kind: "ok"; id: string }
  | { kind: "duplicate"; id: string }
  | { kind: "conflict"; id: string }
  | { kind: "tenant_full"; depth: number }
  | { kind: "tenant_bytes_full"; bytes: number }
  | { kind: "cell_full"; queued: number }
  /** The tenant's month is spent, or its org's (the tenant's own is named first). */
  | { kind: "budget_exceeded"; whose: "tenant" | "org" }
  /** Redis refused this one script (full, read-only, gone mid-pipeline): nothing of it was written. */
  | { kind: "failed"; error: Error };

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
    cell.queuedBytes(a.tenant),
    cell.deadlines,
    cell.runList(a.tenant),
    ...(a.budget?.keys ?? [cell.queued, cell.queued]),
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
    a.payloadBytes ?? 0,
    a.maxQueueBytes ?? Number.MAX_SAFE_INTEGER,
    a.idempotencyHash ? (a.requestHash ?? "") : "",
    a.by ?? "producer",
    cell.own,
    ...(a.budget?.micro ?? [Number.MAX_VALUE, -1]),
  ];
  return [keys, args];
}

export function parseAdmit(reply: [string, string]): AdmitOutcome {
  const [kind, value] = reply;
  switch (kind) {
    case "ok":
    case "duplicate":
    case "conflict":
      return { kind, id: value };
    case "tenant_full":
      return { kind, depth: Number(value) };
    case "tenant_bytes_full":
      return { kind, bytes: Number(value) };
    case "cell_full":
      return { kind, queued: Number(value) };
    case "budget_exceeded":
      return { kind, whose: value === "org" ? "org" : "tenant" };
    default:
      throw new Error(`admitWorkflow: unexpected reply ${kind}`);
  }
}

export async function admitWorkflow(redis: Redis, cell: CellKeys, input: AdmitInput): Promise<AdmitOutcome> {
  const [keys, args] = keysAndArgs(cell, input);
  return parseAdmit(await script.run<[string, string]>(redis, keys, args));
}

/**
 * Admits many, `chunk` scripts per round trip; each item sees the effects of the ones before it. Each
 * script is atomic, so an item Redis refused (`failed`: out of memory part-way through a bulk) wrote
 * nothing, while the items before it are admitted: the caller reports each. One chunk at a time on the
 * shared connection: another tenant's admission sent meanwhile waits behind one chunk, not the bulk.
 */
export async function admitWorkflows(
  redis: Redis,
  items: { cell: CellKeys; input: AdmitInput }[],
  chunk = items.length,
): Promise<AdmitOutcome[]> {
  script.ensure(redis);
  const out: AdmitOutcome[] = [];
  for (let i = 0; i < items.length; i += chunk) {
    const pipeline: ChainableCommander = redis.pipeline();
    for (const { cell, input } of items.slice(i, i + chunk)) {
      const [keys, args] = keysAndArgs(cell, input);
      script.queue(pipeline, keys, args);
    }
    const results = (await pipeline.exec()) ?? [];
    for (const [err, reply] of results) out.push(err ? { kind: "failed", error: err } : parseAdmit(reply as [string, string]));
  }
  return out;
}
