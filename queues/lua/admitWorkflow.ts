import type { ChainableCommander, Redis } from "ioredis";
import type { CellKeys, WorkflowClass } from "../keys.ts";
import { LuaScript } from "./script.ts";

const script = new LuaScript("admitWorkflows-4.lua");

/**
 * Workflows one admission script takes at most. One script per workflow cost its producer ~30 µs of CPU
 * and Redis ~4 µs a call more than one script for 25 (ioredis's command, its write, Lua's call set-up:
 * docs/benchmarks.md); a script of 25 holds Redis ~0.5 ms, about what a bulk's pipelined scripts held it
 * between two reads of its socket before, so a single admission on another connection waits no longer.
 */
export const ADMIT_CALL_ITEMS = 25;

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

/**
 * Admits many, in order, each seeing the effects of the ones before it: `chunk` per round trip, in scripts of
 * up to ADMIT_CALL_ITEMS workflows of one cell each (admitWorkflows-4.lua). A script that Redis refused
 * (`failed`: out of memory part-way through a bulk, read-only) wrote nothing, and each of its workflows is
 * `failed`; those of the scripts before it are admitted: the caller reports each. One chunk at a time on the
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
    const sizes: number[] = [];
    const end = Math.min(i + chunk, items.length);
    for (let j = i; j < end; ) {
      const { cell } = items[j]!;
      const args: (string | number)[] = [cell.own, cell.bullPrefix];
      const first = j;
      for (; j < end && j - first < ADMIT_CALL_ITEMS && items[j]!.cell.own === cell.own; j++) pushItem(args, cell, items[j]!.input);
      script.queue(pipeline, [cell.queued, cell.queues, cell.dirty, cell.wake], args);
      sizes.push(j - first);
    }
    const results = (await pipeline.exec()) ?? [];
    results.forEach(([err, reply], c) => {
      for (let x = 0; x < sizes[c]!; x++) out.push(err ? { kind: "failed", error: err } : parseAdmit((reply as [string, string][])[x]!));
    });
  }
  return out;
}

/** One workflow's arguments (admitWorkflows-4.lua lists them), its month spend keys checked to be its cell's. */
function pushItem(args: (string | number)[], cell: CellKeys, a: AdmitInput): void {
  const [spend, orgSpend] = a.budget?.keys ?? [cell.queued, cell.queued];
  if (!spend.startsWith(cell.own) || !orgSpend.startsWith(cell.own))
    throw new Error(`admitWorkflows: a spend key outside the cell ${cell.own} (CROSSSLOT on a Redis Cluster)`);
  const idem = a.idempotencyHash && a.idempotencyTtlSec > 0;
  const [budget, orgBudget] = a.budget?.micro ?? [Number.MAX_VALUE, -1];
  args.push(
    a.id,
    a.type,
    a.data,
    a.now,
    a.tenant,
    a.cls,
    JSON.stringify(a.record),
    a.payloadBytes ?? 0,
    a.maxQueueDepth,
    a.maxQueueBytes ?? Number.MAX_SAFE_INTEGER,
    a.maxQueuedTotal,
    idem ? a.idempotencyHash! : "",
    idem ? a.idempotencyTtlSec : 0,
    idem ? (a.requestHash ?? "") : "",
    a.by ?? "producer",
    spend,
    orgSpend,
    budget,
    orgBudget,
  );
}
