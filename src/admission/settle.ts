import type { Redis } from "ioredis";
import type { Keys } from "../../queues/keys.ts";
import type { AdmitInput, AdmitOutcome } from "../../queues/lua/admitWorkflow.ts";
import { backpressure, FairlaneError, redisError, redisTrouble } from "../lib/errors.ts";
import { MICRO_PER_USD } from "../runtime/budget.ts";
import type { TenantEntry } from "../tenancy/registry.ts";
import { readWorkflow } from "../workflows/record.ts";

export interface Accepted {
  id: string;
  tenant: string;
  class: string;
  state: string;
  enqueuedAt: string | null;
  deadlineAt: string | null;
  /** True when an earlier request with the same idempotency key created this workflow. */
  duplicate?: boolean;
}

export interface BulkResult {
  accepted: ({ index: number } & Accepted)[];
  rejected: { index: number; error: { code: string; message: string; details?: unknown } }[];
}

export interface SettleDeps {
  redis: Redis;
  keys: Keys;
  retryAfterSec: number;
}

/**
 * The admitWorkflow script's outcome as the producer's answer: the workflow accepted (or the one an
 * earlier request with the same idempotency key created), or the error to answer with (402, 409, 429,
 * 503). Throws what is not Redis being away or full: a bug, the request's 500.
 */
export async function settle(
  d: SettleDeps,
  entry: TenantEntry,
  input: AdmitInput,
  outcome: AdmitOutcome,
): Promise<Accepted | FairlaneError> {
  const { retryAfterSec } = d;
  switch (outcome.kind) {
    case "ok":
      return {
        id: outcome.id,
        tenant: entry.tenant,
        class: input.cls,
        state: "queued",
        enqueuedAt: new Date(input.now).toISOString(),
        deadlineAt: input.record.deadlineAt ? new Date(Number(input.record.deadlineAt)).toISOString() : null,
      };
    case "duplicate": {
      const view = await readWorkflow(d.redis, d.keys.cell(entry.policy.cell), outcome.id, entry.tenant);
      if (!view) return new FairlaneError("CONFLICT", "idempotency key names a workflow that no longer exists", 409);
      const { id, tenant, class: cls, state, enqueuedAt, deadlineAt } = view;
      return { id, tenant, class: cls, state, enqueuedAt, deadlineAt, duplicate: true };
    }
    case "conflict":
      return new FairlaneError(
        "IDEMPOTENCY_KEY_REUSED",
        "this idempotencyKey was already used for a different request (type, class, payload or deadlineAt differ); send the same request to replay it, or use a new key",
        409,
        { field: "idempotencyKey", id: outcome.id },
      );
    case "tenant_bytes_full":
      return backpressure(
        `tenant ${entry.tenant} has ${outcome.bytes} payload bytes queued; ${input.payloadBytes ?? 0} more would pass its maxQueueBytes of ${entry.policy.maxQueueBytes}`,
        retryAfterSec,
      );
    case "tenant_full":
      return backpressure(
        `tenant ${entry.tenant} has ${outcome.depth} workflows queued, its maxQueueDepth is ${entry.policy.maxQueueDepth}`,
        retryAfterSec,
      );
    case "cell_full":
      return backpressure(`the platform has ${outcome.queued} workflows queued (safety valve)`, retryAfterSec);
    case "budget_exceeded":
      return new FairlaneError(
        "BUDGET_EXCEEDED",
        outcome.whose === "org"
          ? `org ${entry.policy.org} (of tenant ${entry.tenant}) has spent its monthly budget of $${input.budget!.micro[1] / MICRO_PER_USD}`
          : `tenant ${entry.tenant} has spent its monthly budget of $${entry.policy.budget.monthlyUsd}`,
        402,
      );
    case "failed": {
      const trouble = redisTrouble(outcome.error);
      if (!trouble) throw outcome.error; // not Redis being away or full: a bug, the request's 500
      return redisError(trouble, retryAfterSec);
    }
  }
}
