import { createHash } from "node:crypto";
import type { AdmitInput } from "../../queues/lua/admitWorkflow.ts";
import type { Clock } from "../lib/clock.ts";
import type { TenantEntry } from "../tenancy/registry.ts";
import { deadlineAtAdmission } from "./deadline.ts";
import { jsonShapeIssues } from "./jsonShape.ts";
import { requestHash } from "./requestHash.ts";
import { fieldIssues, WorkflowRequestSchema, type FieldIssue } from "./schema.ts";
import { newWorkflowId } from "./workflowId.ts";

export interface AdmissionLimits {
  maxQueuedTotal: number;
  idempotencyTtlSec: number;
  retryAfterSec: number;
  maxPayloadBytes: number;
}

export type Prepared = { ok: true; input: AdmitInput } | { ok: false; issues: FieldIssue[] };

/**
 * One workflow request as the admitWorkflow script's input, or why it is invalid: its shape, its
 * payload's size (against the platform's limit and the tenant's maxQueueBytes), its deadline (fixed
 * here: deadline.ts), a new id, the record to write and the idempotency hashes. Reads only the clock.
 * `traceparent`: the enqueue span's context, "" when it has none (traceOrigin in src/observability/tracing.ts).
 */
export function prepareWorkflow(entry: TenantEntry, body: unknown, traceparent: string, clock: Clock, limits: AdmissionLimits): Prepared {
  // Before anything that recurses (zod, JSON.stringify): too deep, __proto__, Infinity (jsonShape.ts).
  const shape = jsonShapeIssues(body);
  if (shape.length) return { ok: false, issues: shape };
  const parsed = WorkflowRequestSchema.safeParse(body);
  if (!parsed.success) return { ok: false, issues: fieldIssues(parsed.error) };
  const req = parsed.data;
  const now = clock.now();
  const { policy } = entry;
  const payloadJson = JSON.stringify(req.payload);
  const payloadBytes = Buffer.byteLength(payloadJson);
  if (payloadBytes > limits.maxPayloadBytes)
    return { ok: false, issues: [{ field: "payload", message: `larger than ${limits.maxPayloadBytes} bytes` }] };
  // Larger than all the tenant may ever have queued: no retry would help, so not a 429.
  if (payloadBytes > policy.maxQueueBytes)
    return { ok: false, issues: [{ field: "payload", message: `larger than the tenant's maxQueueBytes (${policy.maxQueueBytes} bytes)` }] };
  const requested = req.deadlineAt === undefined ? undefined : Date.parse(req.deadlineAt);
  if (requested !== undefined && requested <= now)
    return { ok: false, issues: [{ field: "deadlineAt", message: "is already in the past" }] };
  const deadlineAt = deadlineAtAdmission(req.class, now, policy.deadline.runBudgetMs, requested);
  const id = newWorkflowId();
  // No `queue` while it is queued: its tenant's ingress queue of its class is where it is (a script that
  // moves it elsewhere names the queue). An empty `traceparent`: its trace is derived from its id.
  const record: Record<string, string> = {
    tenant: entry.tenant,
    type: req.type,
    class: req.class,
    state: "queued",
    enqueuedAt: String(now),
    traceparent,
  };
  if (deadlineAt !== null) record.deadlineAt = String(deadlineAt);
  const idempotencyHash = req.idempotencyKey && createHash("sha256").update(req.idempotencyKey).digest("hex");
  // Where its idempotency key is, so the key expires with the workflow's data (includes/endRecord.lua).
  if (idempotencyHash) record.idem = idempotencyHash;
  // Class C's run budget starts at dispatch (dispatch-18.lua); A and B have it in their deadline already.
  if (req.class === "C") record.runBudgetMs = String(policy.deadline.runBudgetMs);
  return {
    ok: true,
    input: {
      id,
      tenant: entry.tenant,
      cls: req.class,
      type: req.type,
      data: payloadJson,
      now,
      idempotencyHash,
      requestHash: req.idempotencyKey ? requestHash(req, requested) : undefined,
      idempotencyTtlSec: limits.idempotencyTtlSec,
      maxQueueDepth: policy.maxQueueDepth,
      payloadBytes,
      maxQueueBytes: policy.maxQueueBytes,
      maxQueuedTotal: limits.maxQueuedTotal,
      record,
    },
  };
}
