/**
 * The response schemas of the OpenAPI document (src/api/openapi.ts), written against what the handlers
 * send; the request schemas are the zod schemas that validate requests, imported where they are used.
 */
import { z } from "zod";
import { REASON_CODES } from "../dispatch/policy/explain.ts";
import { PolicySpecSchema, ResolvedPolicySchema } from "../tenancy/policy.ts";

export const iso = z.iso.datetime({ offset: true });
export const isoOrNull = iso.nullable();
export const cls = z.enum(["A", "B", "C"]);
export const workflowId = z
  .string()
  .regex(/^wf_[A-Za-z0-9_-]{20}$/)
  .meta({ description: "A workflow id (`wf_` + 20 characters).", example: "wf_Q2x1Y2tzLWFuZC1zbGF" });

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.string().meta({ description: "A stable, machine-readable code (e.g. INVALID_REQUEST, BACKPRESSURE, REDIS_UNAVAILABLE)." }),
      message: z.string().meta({ description: "What went wrong, for a human." }),
      details: z.unknown().optional().meta({ description: "For INVALID_REQUEST, the list of `{ field, message }`; else code-specific." }),
    }),
  })
  .meta({ id: "Error", description: "Every error answer has this shape." });

export const Workflow = z
  .object({
    id: workflowId,
    tenant: z.string(),
    type: z.string(),
    class: cls,
    state: z.enum(["queued", "running", "parked", "review", "completed", "failed", "cancelled"]),
    enqueuedAt: isoOrNull,
    dispatchedAt: isoOrNull,
    startedAt: isoOrNull,
    finishedAt: isoOrNull,
    deadlineAt: isoOrNull,
    attempts: z.number().int().min(0),
    result: z.unknown().meta({ description: "The handler's return value once completed; null before." }),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
    cancelRequested: z.boolean().optional(),
    waitingReason: z.string().optional().meta({
      description: "Why a queued workflow is not running yet (its own cap, the batch share, a pause...), or why a parked one is parked.",
    }),
    waitingCode: z
      .enum([...REASON_CODES, "cell_moved"])
      .optional()
      .meta({
        description:
          "The constraint holding it, as a code (docs/concepts.md, why does my workflow wait); with every queued or parked workflow.",
      }),
    parkReason: z.string().optional().meta({ description: "A parked workflow: why it was parked." }),
    parkedSince: iso.optional().meta({ description: "A parked workflow: since when." }),
  })
  .meta({ id: "Workflow" });

export const WaitingReason = z
  .looseObject({
    code: z.enum(REASON_CODES),
    message: z.string(),
    class: cls.optional(),
    pool: z.string().optional(),
  })
  .meta({
    id: "WaitingReason",
    description:
      "A constraint holding queued work, with its numbers (running/mca, usedC/maxC and holders, used/capacity/reserveA, dependency and since, deadlineAt...).",
  });
export const TenantExplain = z
  .object({
    tenant: z.string(),
    cell: z.string(),
    at: iso,
    classes: z.object(
      Object.fromEntries(
        (["A", "B", "C"] as const).map((c) => [
          c,
          z.object({
            queued: z.number().int(),
            running: z.number().int(),
            held: WaitingReason.nullable().meta({ description: "null: nothing of this class queued." }),
          }),
        ]),
      ),
    ),
    reasons: z.array(WaitingReason).meta({
      description:
        "Each held class's reason, then the next workflows' own (dependency down, deadline soon) and parked work per dependency.",
    }),
    settings: z
      .looseObject({
        reserveFraction: z.number(),
        batchMaxShare: z.number(),
        batchMinShare: z.number(),
        capacityCap: z.number(),
        source: z.enum(["dispatcher", "config"]),
      })
      .meta({
        description:
          "The share options and capacity cap the explanation used: the ones the cell's dispatcher published, or this api's configuration while none has.",
      }),
  })
  .meta({ id: "TenantExplain" });

export const Accepted = z
  .object({
    id: workflowId,
    tenant: z.string(),
    class: cls,
    state: z.string(),
    enqueuedAt: isoOrNull,
    deadlineAt: isoOrNull,
    duplicate: z
      .boolean()
      .optional()
      .meta({ description: "True when an earlier request with the same idempotency key created this workflow." }),
  })
  .meta({ id: "Accepted" });

export const Rejected = z.object({ index: z.number().int().min(0), error: ErrorBody.shape.error });
export const BulkResult = z
  .object({ accepted: z.array(Accepted.extend({ index: z.number().int().min(0) })), rejected: z.array(Rejected) })
  .meta({ id: "BulkResult", description: "`index` refers to the request's `workflows` array." });

export const TrailEntry = z
  .object({
    id: z.string().meta({ description: "`<ms>-<seq>`: the order, and the cursor to resume after." }),
    at: z.string(),
    workflow: z.string().nullable().meta({ description: "null for an admin action on the tenant." }),
    event: z.string().meta({
      description:
        "admitted, dispatched, started, preempt-requested, handed-back, parked, recovered, cancel-requested, ended, admin:<action>",
    }),
    by: z.string().meta({ description: "key:<api key id>, dispatcher, an exec worker's id, recovery, operator:<name>" }),
    why: z.string().meta({ description: "The cause: a pool, a dependency, a reason, an outcome and its code. Never a payload." }),
  })
  .meta({ id: "TrailEntry" });

export const TrailPage = z.object({ entries: z.array(TrailEntry), nextCursor: z.string().nullable() }).meta({ id: "TrailPage" });

export const WorkflowPage = z
  .object({
    workflows: z.array(Workflow),
    nextCursor: z.string().nullable().meta({
      description: "Pass as `cursor` for the next page; null at the end. A filtered page may hold fewer than `limit` and still have one.",
    }),
  })
  .meta({ id: "WorkflowPage" });

export const PolicySpec = PolicySpecSchema.meta({ id: "PolicySpec", description: "A tier and any overrides of its defaults." });
export const TenantEntry = z
  .object({
    tenant: z.string(),
    spec: PolicySpec,
    policy: ResolvedPolicySchema.meta({ id: "Policy", description: "The spec resolved over its tier's defaults." }),
  })
  .meta({ id: "TenantEntry" });
export const ApiKey = z
  .object({ tenant: z.string(), keyId: z.string(), createdAt: iso, label: z.string().optional() })
  .meta({ id: "ApiKey" });
export const AuditEntry = z
  .object({ at: iso, operator: z.string(), action: z.string(), target: z.string(), details: z.unknown().optional() })
  .meta({ id: "AuditEntry" });

// The usage views carry many nested figures (the dashboard's); the contract pins their outline.
export const TenantUsage = z
  .looseObject({
    tenant: z.string(),
    tier: z.string(),
    cell: z.string(),
    paused: z.boolean(),
    running: z.looseObject({ A: z.number(), B: z.number(), C: z.number(), total: z.number() }),
    queued: z.looseObject({ A: z.number(), B: z.number(), C: z.number(), total: z.number() }),
    parked: z.number(),
    mca: z.number(),
    mcaUrgent: z.number(),
  })
  .meta({ id: "TenantUsage" });
export const UsageList = z.object({
  at: iso,
  readMs: z.number(),
  windowMs: z.number(),
  platform: z.looseObject({
    capacity: z.number(),
    used: z.number(),
    totals: z.looseObject({ tenants: z.number(), running: z.number(), queued: z.number() }),
  }),
  total: z.number().int(),
  tenants: z.array(TenantUsage),
});
export const UsageOne = z.object({
  at: iso,
  tenant: TenantUsage.nullable(),
  policy: ResolvedPolicySchema,
  history: z
    .object({ t: z.array(z.number()), series: z.record(z.string(), z.array(z.number().nullable())) })
    .meta({ description: "The last 15 minutes: sample times (epoch ms) and one value per time for each series." }),
  queues: z.array(z.string()).meta({ description: "The tenant's ingress queue names (Bull Board)." }),
});
export const CapRecommendation = z.object({
  current: z.number(),
  recommended: z.number(),
  action: z.enum(["raise", "lower", "keep"]),
  reason: z.string(),
});
export const CapacityReport = z.object({
  window: z.string(),
  from: iso,
  to: iso,
  periods: z.number().int().meta({ description: "10-minute rollups the evidence covers." }),
  minEvidence: z
    .string()
    .meta({ description: "How long a tenant must be observed before anything is raised or lowered (FAIRLANE_CAPACITY_MIN_EVIDENCE)." }),
  enoughData: z.boolean(),
  note: z.string().optional().meta({ description: "Present when some tenant has less data than minEvidence." }),
  tenants: z.array(
    z.object({
      tenant: z.string(),
      enoughData: z.boolean().meta({ description: "False: both actions are keep, with what is known so far." }),
      mca: CapRecommendation,
      mctc: CapRecommendation,
      evidence: z.looseObject({ observedMs: z.number() }),
    }),
  ),
});
export const Dependency = z.object({
  dependency: z.string(),
  cell: z.string().optional(),
  health: z.looseObject({ state: z.string() }).nullable(),
  healthy: z.boolean(),
  parked: z.number().int(),
});
export const ParkedRow = z.object({
  id: workflowId,
  tenant: z.string().nullable(),
  class: cls.nullable(),
  type: z.string().nullable(),
  dependency: z.string(),
  parkedAt: isoOrNull,
  reason: z.string().nullable(),
  deadlineAt: isoOrNull,
});
