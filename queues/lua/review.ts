import type { Redis } from "ioredis";
import { CLASSES, type CellKeys, type WorkflowClass } from "../keys.ts";
import { execQueue } from "../names.ts";
import { LuaScript } from "./script.ts";

/** Typed wrappers of the human review scripts (includes/review.lua). */
const suspend = new LuaScript("awaitReview-4.lua");
const claim = new LuaScript("claimReview-1.lua");
const decide = new LuaScript("decideReview-1.lua");
const expire = new LuaScript("expireReviews-1.lua");

export interface ReviewSuspension {
  id: string;
  now: number;
  token: string;
  pool: string;
  step: string;
  /** The request, as JSON (the reviewer sees it; never logged). */
  request: string;
  /** When the item escalates or fails (null: never), and why then. */
  dueAt: number | null;
  dueWhy: "sla" | "deadline";
  onTimeout: "escalate" | "fail";
  escalateTo: string | null;
  deadlineAt: number | null;
}

/** A running workflow suspends until a person decides; "ok" when it now waits for review, "cancel" when it was cancelled first. */
export async function awaitReview(
  redis: Redis,
  cell: CellKeys,
  execPool: string,
  s: ReviewSuspension,
): Promise<"ok" | "lostlock" | "final" | "cancel"> {
  const q = execQueue(execPool);
  const [kind] = await suspend.run<[string]>(
    redis,
    [cell.workflow(s.id), cell.jobKey(q, s.id), cell.queueKey(q, "active"), cell.queueKey(q, "stalled")],
    [s.id, s.now, s.token, cell.own, cell.bullPrefix, s.pool, s.step, s.request].concat([
      s.dueAt ?? 0,
      s.dueWhy,
      s.onTimeout,
      s.escalateTo ?? "",
      s.deadlineAt ?? 0,
    ]),
  );
  return kind as "ok" | "lostlock" | "final" | "cancel";
}

/** An open review item as Redis holds it (every field a string). */
export type ReviewItemFields = Record<string, string> & { tenant: string; cls: WorkflowClass; pool: string; state: string };

/** Claims the pool's next item in this cell by the fair rule, with a lease; null when none waits. */
export async function claimReview(
  redis: Redis,
  cell: CellKeys,
  o: { pool: string; now: number; leaseMs: number; claimant: string },
): Promise<{ id: string; item: ReviewItemFields } | null> {
  const out = await claim.run<string[] | null>(redis, [cell.reviewLeases(o.pool)], [cell.own, o.pool, o.now, o.leaseMs, o.claimant]);
  if (!out) return null;
  const [id, ...flat] = out;
  const item: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) item[flat[i]!] = flat[i + 1]!;
  return { id: id!, item: item as ReviewItemFields };
}

export type DecideOutcome = { kind: "notfound" } | { kind: "notclaimed" } | { kind: "decided" } | { kind: "escalated"; pool: string };

/** A reviewer's decision on an item it holds (decideReview-1.lua). */
export async function decideReview(
  redis: Redis,
  cell: CellKeys,
  d: {
    id: string;
    now: number;
    pool: string;
    claimant: string;
    decision: "approve" | "reject" | "escalate";
    stepResult: string;
    note: string;
  },
): Promise<DecideOutcome> {
  const [kind, pool] = await decide.run<[string, string?]>(
    redis,
    [cell.workflow(d.id)],
    [cell.own, cell.bullPrefix, d.id, d.now, d.pool, d.claimant, d.decision, d.stepResult, d.note],
  );
  return kind === "escalated" ? { kind, pool: pool! } : ({ kind } as DecideOutcome);
}

/** Escalates or fails the cell's review items due by `now`, in chunks, until none is due. */
export async function expireReviews(
  redis: Redis,
  cell: CellKeys,
  now: number,
  recordTtlSec: number,
  chunk = 200,
): Promise<{ escalated: number; failed: number }> {
  const total = { escalated: 0, failed: 0 };
  for (;;) {
    const [e, f] = await expire.run<[number, number]>(redis, [cell.reviewDue], [cell.own, cell.bullPrefix, now, chunk, recordTtlSec]);
    total.escalated += Number(e);
    total.failed += Number(f);
    if (Number(e) + Number(f) < chunk) return total;
  }
}

export interface ReviewDepth {
  pool: string;
  tenant: string;
  cls: WorkflowClass;
  /** Items waiting for a reviewer. */
  waiting: number;
}

/** Items waiting per pool, tenant and class in one cell, and items claimed per pool (read-only). */
export async function reviewDepth(redis: Redis, cell: CellKeys): Promise<{ waiting: ReviewDepth[]; claimed: Record<string, number> }> {
  const pools = (await redis.smembers(cell.reviewPools)).sort();
  const claimed: Record<string, number> = {};
  const waiting: ReviewDepth[] = [];
  for (const pool of pools) {
    claimed[pool] = await redis.zcard(cell.reviewLeases(pool));
    for (const cls of CLASSES) {
      const tenants = await redis.zrange(cell.reviewTenants(pool, cls), 0, -1);
      if (!tenants.length) continue;
      const pipe = redis.pipeline();
      for (const t of tenants) pipe.zcard(cell.reviewQueue(pool, cls, t));
      const counts = (await pipe.exec()) ?? [];
      tenants.forEach((tenant, i) => waiting.push({ pool, tenant, cls, waiting: Number(counts[i]?.[1] ?? 0) }));
    }
  }
  return { waiting, claimed };
}
