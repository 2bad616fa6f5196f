import type { Redis } from "ioredis";
import { WORKFLOW_ID } from "../../queues/names.ts";
import type { CellKeys, Keys } from "../../queues/keys.ts";
import {
  claimReview,
  decideReview,
  reviewDepth,
  type DecideOutcome,
  type ReviewDepth,
  type ReviewItemFields,
} from "../../queues/lua/review.ts";
import type { ReviewDecision } from "../runtime/workflowContext.ts";

/** A review item as a reviewer sees it (GET /v1/reviews/next, GET /v1/reviews/:id). */
export interface ReviewView {
  id: string;
  tenant: string;
  class: string;
  pool: string;
  state: "pending" | "claimed";
  request: { summary: string; data: unknown };
  createdAt: string;
  dueAt: string | null;
  /** What happens then: "escalate" (to another pool, or back in line) or "fail" (the workflow ends). */
  dueAction: "escalate" | "fail";
  escalations: number;
  /** The last escalating reviewer's note, for the next one. */
  note: string | null;
  leaseUntil: string | null;
}

const iso = (ms: string | undefined) => (ms && Number(ms) > 0 ? new Date(Number(ms)).toISOString() : null);

function view(id: string, f: ReviewItemFields): ReviewView {
  return {
    id,
    tenant: f.tenant,
    class: f.cls,
    pool: f.pool,
    state: f.state === "claimed" ? "claimed" : "pending",
    request: JSON.parse(f.request ?? "null") ?? { summary: "", data: null },
    createdAt: iso(f.createdAt)!,
    dueAt: iso(f.dueAt),
    dueAction: f.dueWhy === "sla" && f.onTimeout === "escalate" ? "escalate" : "fail",
    escalations: Number(f.escalations ?? 0),
    note: f.note ?? null,
    leaseUntil: f.state === "claimed" ? iso(f.leaseUntil) : null,
  };
}

/**
 * The reviewer pools of the cells one api serves: claims go to each cell in turn (a pool's items
 * live in their tenants' cells), items are found by id in the cell that holds them. A reviewer's
 * pool bounds everything: an item of another pool reads as not found.
 */
export class ReviewQueues {
  private turn = 0;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly cells: string[],
  ) {}

  /** The pool's next item, fairly across its tenants within a cell and across cells by turns. */
  async claim(pool: string, claimant: string, now: number, leaseMs: number): Promise<ReviewView | null> {
    const start = this.turn++ % this.cells.length;
    for (let i = 0; i < this.cells.length; i++) {
      const cell = this.keys.cell(this.cells[(start + i) % this.cells.length]!);
      const got = await claimReview(this.redis, cell, { pool, now, leaseMs, claimant });
      if (got) return view(got.id, got.item);
    }
    return null;
  }

  /** The pool's open item `id`, with its cell; null for an unknown id or another pool's item. */
  async find(pool: string, id: string): Promise<{ cell: CellKeys; item: ReviewView } | null> {
    if (!WORKFLOW_ID.test(id)) return null;
    for (const name of this.cells) {
      const cell = this.keys.cell(name);
      const f = (await this.redis.hgetall(cell.review(id))) as ReviewItemFields;
      if (f.pool === pool) return { cell, item: view(id, f) };
    }
    return null;
  }

  /** approve / reject: the workflow resumes with the decision; escalate: the item moves on, unclaimed. */
  async decide(
    pool: string,
    id: string,
    by: { claimant: string; keyId: string },
    decision: "approve" | "reject" | "escalate",
    note: string | null,
    now: number,
  ): Promise<DecideOutcome> {
    const found = await this.find(pool, id);
    if (!found) return { kind: "notfound" };
    const result: ReviewDecision = {
      decision: decision === "reject" ? "reject" : "approve",
      note,
      reviewer: by.keyId,
      decidedAt: now,
      escalations: found.item.escalations,
    };
    return decideReview(this.redis, found.cell, {
      id,
      now,
      pool,
      claimant: by.claimant,
      decision,
      stepResult: JSON.stringify({ v: result }),
      note: note ?? "",
    });
  }

  /** Items waiting per pool, tenant and class, and claimed per pool, over the cells. */
  async depth(): Promise<{ waiting: ReviewDepth[]; claimed: Record<string, number> }> {
    const waiting: ReviewDepth[] = [];
    const claimed: Record<string, number> = {};
    for (const name of this.cells) {
      const d = await reviewDepth(this.redis, this.keys.cell(name));
      waiting.push(...d.waiting);
      for (const [p, n] of Object.entries(d.claimed)) claimed[p] = (claimed[p] ?? 0) + n;
    }
    return { waiting, claimed };
  }
}
