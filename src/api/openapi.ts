import { z } from "zod";
import { createDocument, type ZodOpenApiOperationObject, type ZodOpenApiPathsObject, type ZodOpenApiResponsesObject } from "zod-openapi";
import { MAX_BULK, WorkflowRequestSchema } from "../admission/schema.ts";
import { TENANT_ID } from "../../queues/names.ts";
import { PolicySpecSchema, ResolvedPolicySchema } from "../tenancy/policy.ts";
import { ListQuerySchema } from "../workflows/listIndex.ts";
import { USAGE_SORTS } from "./usageView.ts";
import { REASON_CODES } from "../scheduler/policy/explain.ts";

/**
 * The OpenAPI 3.1 document of the producer, admin and operations APIs, built from the zod schemas that
 * validate the requests (src/admission/schema.ts, src/tenancy/policy.ts, src/workflows/listIndex.ts) and
 * response schemas written here against what the handlers send. Served at GET /openapi.json and rendered
 * at /docs; test/integration/api.contract.test.ts checks every route's real answers against it.
 * API version: the `/v1` path is the major; `info.version` moves with compatible additions (CHANGELOG.md).
 */
export const API_VERSION = "1.2.0";

const iso = z.iso.datetime({ offset: true });
const isoOrNull = iso.nullable();
const cls = z.enum(["A", "B", "C"]);
const workflowId = z.string().regex(/^wf_[A-Za-z0-9_-]{20}$/).meta({ description: "A workflow id (`wf_` + 20 characters).", example: "wf_Q2x1Y2tzLWFuZC1zbGF" });

const ErrorBody = z
  .object({
    error: z.object({
      code: z.string().meta({ description: "A stable, machine-readable code (e.g. INVALID_REQUEST, BACKPRESSURE, REDIS_UNAVAILABLE)." }),
      message: z.string().meta({ description: "What went wrong, for a human." }),
      details: z.unknown().optional().meta({ description: "For INVALID_REQUEST, the list of `{ field, message }`; else code-specific." }),
    }),
  })
  .meta({ id: "Error", description: "Every error answer has this shape." });

const Workflow = z
  .object({
    id: workflowId,
    tenant: z.string(),
    type: z.string(),
    class: cls,
    state: z.enum(["queued", "running", "parked", "completed", "failed", "cancelled"]),
    enqueuedAt: isoOrNull,
    dispatchedAt: isoOrNull,
    startedAt: isoOrNull,
    finishedAt: isoOrNull,
    deadlineAt: isoOrNull,
    attempts: z.number().int().min(0),
    result: z.unknown().meta({ description: "The handler's return value once completed; null before." }),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
    cancelRequested: z.boolean().optional(),
    waitingReason: z.string().optional().meta({ description: "Why a queued workflow is not running yet (its own cap, the batch share, a pause...), or why a parked one is parked." }),
    waitingCode: z
      .enum([...REASON_CODES, "cell_moved"])
      .optional()
      .meta({ description: "The constraint holding it, as a code (docs/concepts.md, why does my workflow wait); with every queued or parked workflow." }),
    parkReason: z.string().optional().meta({ description: "A parked workflow: why it was parked." }),
    parkedSince: iso.optional().meta({ description: "A parked workflow: since when." }),
  })
  .meta({ id: "Workflow" });

const WaitingReason = z
  .looseObject({
    code: z.enum(REASON_CODES),
    message: z.string(),
    class: cls.optional(),
    pool: z.string().optional(),
  })
  .meta({ id: "WaitingReason", description: "A constraint holding queued work, with its numbers (running/mca, usedC/maxC and holders, used/capacity/reserveA, dependency and since, deadlineAt...)." });
const TenantExplain = z
  .object({
    tenant: z.string(),
    cell: z.string(),
    at: iso,
    classes: z.object(
      Object.fromEntries(
        (["A", "B", "C"] as const).map((c) => [c, z.object({ queued: z.number().int(), running: z.number().int(), held: WaitingReason.nullable().meta({ description: "null: nothing of this class queued." }) })]),
      ),
    ),
    reasons: z.array(WaitingReason).meta({ description: "Each held class's reason, then the next workflows' own (dependency down, deadline soon) and parked work per dependency." }),
    settings: z
      .looseObject({ reserveFraction: z.number(), batchMaxShare: z.number(), batchMinShare: z.number(), capacityCap: z.number(), source: z.enum(["dispatcher", "config"]) })
      .meta({ description: "The share options and capacity cap the explanation used: the ones the cell's dispatcher published, or this api's configuration while none has." }),
  })
  .meta({ id: "TenantExplain" });

const Accepted = z
  .object({
    id: workflowId,
    tenant: z.string(),
    class: cls,
    state: z.string(),
    enqueuedAt: isoOrNull,
    deadlineAt: isoOrNull,
    duplicate: z.boolean().optional().meta({ description: "True when an earlier request with the same idempotency key created this workflow." }),
  })
  .meta({ id: "Accepted" });

const Rejected = z.object({ index: z.number().int().min(0), error: ErrorBody.shape.error });
const BulkResult = z
  .object({ accepted: z.array(Accepted.extend({ index: z.number().int().min(0) })), rejected: z.array(Rejected) })
  .meta({ id: "BulkResult", description: "`index` refers to the request's `workflows` array." });

const WorkflowPage = z
  .object({
    workflows: z.array(Workflow),
    nextCursor: z.string().nullable().meta({ description: "Pass as `cursor` for the next page; null at the end. A filtered page may hold fewer than `limit` and still have one." }),
  })
  .meta({ id: "WorkflowPage" });

const PolicySpec = PolicySpecSchema.meta({ id: "PolicySpec", description: "A tier and any overrides of its defaults." });
const TenantEntry = z
  .object({ tenant: z.string(), spec: PolicySpec, policy: ResolvedPolicySchema.meta({ id: "Policy", description: "The spec resolved over its tier's defaults." }) })
  .meta({ id: "TenantEntry" });
const ApiKey = z.object({ tenant: z.string(), keyId: z.string(), createdAt: iso, label: z.string().optional() }).meta({ id: "ApiKey" });
const AuditEntry = z.object({ at: iso, operator: z.string(), action: z.string(), target: z.string(), details: z.unknown().optional() }).meta({ id: "AuditEntry" });

// The usage views carry many nested figures (the dashboard's); the contract pins their outline.
const TenantUsage = z
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
const UsageList = z.object({
  at: iso,
  readMs: z.number(),
  windowMs: z.number(),
  platform: z.looseObject({ capacity: z.number(), used: z.number(), totals: z.looseObject({ tenants: z.number(), running: z.number(), queued: z.number() }) }),
  total: z.number().int(),
  tenants: z.array(TenantUsage),
});
const UsageOne = z.object({
  at: iso,
  tenant: TenantUsage.nullable(),
  policy: ResolvedPolicySchema,
  history: z
    .object({ t: z.array(z.number()), series: z.record(z.string(), z.array(z.number().nullable())) })
    .meta({ description: "The last 15 minutes: sample times (epoch ms) and one value per time for each series." }),
  queues: z.array(z.string()).meta({ description: "The tenant's ingress queue names (Bull Board)." }),
});
const CapRecommendation = z.object({ current: z.number(), recommended: z.number(), action: z.enum(["raise", "lower", "keep"]), reason: z.string() });
const CapacityReport = z.object({
  window: z.string(),
  from: iso,
  to: iso,
  periods: z.number().int().meta({ description: "10-minute rollups the evidence covers." }),
  minEvidence: z.string().meta({ description: "How long a tenant must be observed before anything is raised or lowered (FAIRLANE_CAPACITY_MIN_EVIDENCE)." }),
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
const Dependency = z.object({
  dependency: z.string(),
  cell: z.string().optional(),
  health: z.looseObject({ state: z.string() }).nullable(),
  healthy: z.boolean(),
  parked: z.number().int(),
});
const ParkedRow = z.object({
  id: workflowId,
  tenant: z.string().nullable(),
  class: cls.nullable(),
  type: z.string().nullable(),
  dependency: z.string(),
  parkedAt: isoOrNull,
  reason: z.string().nullable(),
  deadlineAt: isoOrNull,
});

const json = (schema: z.ZodType) => ({ "application/json": { schema } });
const retryAfter = z.object({ "Retry-After": z.string().meta({ description: "Seconds to wait before trying again." }) });
const err = (description: string, headers?: typeof retryAfter) => ({ description, content: json(ErrorBody), ...(headers ? { headers } : {}) });
const ok = (description: string, schema: z.ZodType) => ({ description, content: json(schema) });

/** Answers every route may give. */
const common = (auth: "tenant" | "admin" | "none"): ZodOpenApiResponsesObject => ({
  ...(auth !== "none" ? { "401": err(auth === "admin" ? "No or wrong admin credentials." : "No or unknown API key.") } : {}),
  "503": err("Redis is unreachable (REDIS_UNAVAILABLE), full (REDIS_FULL) or read-only (REDIS_READ_ONLY): retry after Retry-After.", retryAfter),
});
const invalid = err("The request is invalid: `details` names each field and why (INVALID_REQUEST); nothing changed.");

function op(
  auth: "tenant" | "admin" | "none",
  summary: string,
  responses: ZodOpenApiResponsesObject,
  more: Omit<ZodOpenApiOperationObject, "responses" | "summary"> = {},
): ZodOpenApiOperationObject {
  return {
    summary,
    tags: [auth === "tenant" ? "Producer" : auth === "admin" ? "Admin" : "Operations"],
    ...(auth === "tenant" ? { security: [{ apiKey: [] }] } : auth === "admin" ? { security: [{ adminToken: [] }, { adminBasic: [] }] } : { security: [] }),
    ...more,
    responses: { ...responses, ...common(auth) },
  };
}

const tenantPath = z.object({ tenant: z.string().regex(TENANT_ID).meta({ description: "A tenant id." }) });
const idPath = z.object({ id: workflowId });
const reasonBody = { content: json(z.strictObject({ reason: z.string().max(500).optional() })) };
const tenantMissing = err("No such tenant (NOT_FOUND).");

const paths: ZodOpenApiPathsObject = {
  "/v1/workflows": {
    post: op(
      "tenant",
      "Enqueue a workflow",
      {
        "202": ok("Admitted: queued for its tenant and class.", Accepted),
        "200": {
          description: "The idempotency key already names this workflow, for the same request: nothing new was enqueued.",
          content: json(Accepted),
          headers: z.object({ "Idempotent-Replayed": z.literal("true") }),
        },
        "400": err("The request is invalid (INVALID_REQUEST, with each field and why), or no live worker runs its type (UNKNOWN_WORKFLOW_TYPE); nothing changed."),
        "402": err("The tenant's monthly budget is spent (BUDGET_EXCEEDED)."),
        "403": err("The tenant has no policy (TENANT_UNKNOWN)."),
        "409": err("The idempotency key was used for a different request (IDEMPOTENCY_KEY_REUSED)."),
        "413": err("The body is larger than the limit (PAYLOAD_TOO_LARGE)."),
        "415": err("Unsupported encoding or charset."),
        "422": err("Valid, but it could never run: Class A for a tenant whose mcaUrgent is 0 (CLASS_NOT_ALLOWED)."),
        "429": err("Backpressure: the tenant's queue (depth or bytes) or the cell is full (BACKPRESSURE); retry after Retry-After.", retryAfter),
      },
      {
        requestBody: { required: true, content: json(WorkflowRequestSchema.meta({ id: "WorkflowRequest" })) },
        description:
          "Admits one workflow into its tenant's queue of its class. `idempotencyKey` makes a retry safe: the same key with the same request answers the first workflow with 200 and `Idempotent-Replayed: true`.",
      },
    ),
    get: op(
      "tenant",
      "List the tenant's workflows, newest first",
      { "200": ok("One page.", WorkflowPage), "400": invalid },
      {
        requestParams: { query: ListQuerySchema },
        description: "Cursor pagination with a bounded cost per page; never another tenant's workflows. Lists reach back as far as records are kept (FAIRLANE_RECORD_TTL_SEC).",
      },
    ),
  },
  "/v1/workflows/bulk": {
    post: op(
      "tenant",
      `Enqueue up to ${MAX_BULK} workflows`,
      {
        "202": ok("Each item admitted or rejected on its own (an item Redis could not write is rejected with REDIS_FULL).", BulkResult),
        "400": invalid,
        "403": err("The tenant has no policy (TENANT_UNKNOWN)."),
        "413": err("The body is larger than the bulk limit (PAYLOAD_TOO_LARGE)."),
        "429": {
          description: "Every item was refused for backpressure: retry after Retry-After.",
          content: json(ErrorBody.extend(BulkResult.shape)),
          headers: retryAfter,
        },
      },
      { requestBody: { required: true, content: json(z.strictObject({ workflows: z.array(WorkflowRequestSchema).min(1).max(MAX_BULK) })) } },
    ),
  },
  "/v1/workflows/{id}": {
    get: op("tenant", "Read a workflow", { "200": ok("The workflow (a queued one says why it waits).", Workflow), "404": err("No such workflow for this tenant.") }, { requestParams: { path: idPath } }),
    delete: op(
      "tenant",
      "Cancel a workflow",
      {
        "200": ok("Cancelled (it was queued or parked).", Workflow),
        "202": ok("Cancel requested: it is running and stops at its next check.", Workflow),
        "404": err("No such workflow for this tenant."),
        "409": err("It already ended (ALREADY_FINISHED)."),
      },
      { requestParams: { path: idPath } },
    ),
  },

  "/v1/admin/workflows": {
    get: op("admin", "List a tenant's workflows", { "200": ok("One page.", WorkflowPage), "400": invalid, "403": err("The tenant has no policy (TENANT_UNKNOWN).") }, {
      requestParams: { query: ListQuerySchema.extend({ tenant: z.string().regex(TENANT_ID).meta({ description: "The tenant whose workflows to list." }) }) },
    }),
  },
  "/v1/admin/workflows/{id}": {
    get: op(
      "admin",
      "Read any tenant's workflow, with why it waits",
      { "200": ok("The workflow and the cell holding it.", Workflow.extend({ cell: z.string() }).meta({ id: "AdminWorkflow" })), "400": invalid, "404": err("No such workflow in any cell.") },
      { requestParams: { path: idPath } },
    ),
  },
  "/v1/admin/tenants": {
    get: op("admin", "List tenants and their policies", { "200": ok("Every tenant.", z.object({ tenants: z.array(TenantEntry) })) }),
  },
  "/v1/admin/tenants/{tenant}": {
    get: op("admin", "Read a tenant's policy", { "200": ok("The tenant.", TenantEntry), "400": invalid, "404": tenantMissing }, { requestParams: { path: tenantPath } }),
    put: op(
      "admin",
      "Create or replace a tenant's policy",
      { "200": ok("Replaced.", TenantEntry), "201": ok("Created.", TenantEntry), "400": invalid },
      { requestParams: { path: tenantPath }, requestBody: { required: true, content: json(PolicySpec) } },
    ),
    patch: op(
      "admin",
      "Change some fields of a tenant's policy",
      { "200": ok("Changed (the merged spec was validated whole).", TenantEntry), "400": invalid, "404": tenantMissing },
      { requestParams: { path: tenantPath }, requestBody: { required: true, content: json(PolicySpecSchema.partial()) } },
    ),
  },
  "/v1/admin/tenants/{tenant}/explain": {
    get: op("admin", "Why a tenant's queued work is not running", { "200": ok("Per class: queued, running and the constraint holding it.", TenantExplain), "400": invalid, "404": tenantMissing }, {
      requestParams: { path: tenantPath },
      description: "Computed from the dispatcher's own state (its caps in the cell, slots held, pool capacity and use, ready sets, dependency health) by the dispatch rule's own functions.",
    }),
  },
  "/v1/admin/tenants/{tenant}/keys": {
    get: op("admin", "List a tenant's API keys (never the keys themselves)", { "200": ok("The keys.", z.object({ keys: z.array(ApiKey) })), "400": invalid, "404": tenantMissing }, { requestParams: { path: tenantPath } }),
    post: op(
      "admin",
      "Create an API key (shown once)",
      { "201": ok("The new key.", z.object({ keyId: z.string(), key: z.string() })), "400": invalid, "404": tenantMissing },
      { requestParams: { path: tenantPath }, requestBody: { content: json(z.strictObject({ label: z.string().max(100).optional() })) } },
    ),
  },
  "/v1/admin/tenants/{tenant}/keys/{keyId}": {
    delete: op("admin", "Revoke an API key", { "204": { description: "Revoked." }, "400": invalid, "404": err("No such key.") }, {
      requestParams: { path: tenantPath.extend({ keyId: z.string().regex(/^[0-9a-f]{12}$/) }) },
    }),
  },
  ...Object.fromEntries(
    (["pause", "resume"] as const).map((a) => [
      `/v1/admin/tenants/{tenant}/${a}`,
      { post: op("admin", a === "pause" ? "Pause a tenant (nothing of it is dispatched)" : "Resume a paused tenant", { "200": ok("Done.", z.object({ tenant: z.string(), paused: z.boolean() })), "400": invalid, "404": tenantMissing }, { requestParams: { path: tenantPath } }) },
    ]),
  ),
  "/v1/admin/tenants/{tenant}/drain": {
    post: op(
      "admin",
      "Cancel a tenant's queued workflows of some classes",
      { "200": ok("What was cancelled.", z.looseObject({ tenant: z.string(), cancelled: z.number().int() })), "400": invalid, "404": tenantMissing },
      {
        requestParams: { path: tenantPath },
        requestBody: { required: true, content: json(z.strictObject({ classes: z.array(cls).min(1).max(3).optional(), all: z.literal(true).optional() })) },
      },
    ),
  },
  ...Object.fromEntries(
    (["requeue", "fail"] as const).map((a) => [
      `/v1/admin/tenants/{tenant}/parked/${a}`,
      {
        post: op(
          "admin",
          a === "requeue" ? "Requeue every parked workflow of a tenant" : "Fail every parked workflow of a tenant",
          { "200": ok("How many.", z.object({ tenant: z.string(), [a === "requeue" ? "requeued" : "failed"]: z.number().int(), skipped: z.number().int() })), "400": invalid, "404": tenantMissing },
          { requestParams: { path: tenantPath }, requestBody: reasonBody },
        ),
      },
    ]),
  ),
  "/v1/admin/audit": {
    get: op("admin", "Admin actions, newest first", { "200": ok("The entries.", z.object({ entries: z.array(AuditEntry) })) }, {
      requestParams: { query: z.object({ limit: z.string().optional().meta({ description: "1-1000 (default 100)." }) }) },
    }),
  },
  "/v1/admin/usage": {
    get: op("admin", "Every tenant's live usage and the platform summary", { "200": ok("A fresh snapshot.", UsageList), "400": invalid }, {
      requestParams: {
        query: z.object({
          sort: z.enum(USAGE_SORTS).optional(),
          order: z.enum(["asc", "desc"]).optional(),
          q: z.string().max(100).optional().meta({ description: "Tenants whose id contains this." }),
          atCap: z.enum(["0", "1", "true", "false"]).optional(),
          limit: z.string().optional(),
          offset: z.string().optional(),
        }),
      },
    }),
  },
  "/v1/admin/usage/{tenant}": {
    get: op("admin", "One tenant's usage and its recent history", { "200": ok("The tenant's usage.", UsageOne), "400": invalid, "404": tenantMissing }, { requestParams: { path: tenantPath } }),
  },
  "/v1/admin/capacity-report": {
    get: op("admin", "Recommended caps from the recorded usage", { "200": ok("The report with its evidence.", CapacityReport), "400": invalid }, {
      requestParams: { query: z.object({ window: z.string().optional().meta({ description: "e.g. 1h, 24h (default), 7d." }) }) },
    }),
  },
  "/v1/admin/dependencies": {
    get: op("admin", "Every dependency's health and parked count", { "200": ok("The dependencies.", z.object({ dependencies: z.array(Dependency) })) }),
  },
  "/v1/admin/dependencies/{dep}": {
    put: op(
      "admin",
      "Mark a dependency down or healthy by hand (null: back to the probes)",
      { "200": ok("Marked.", z.object({ dependency: z.string(), health: z.looseObject({ state: z.string() }).nullable() })), "400": invalid },
      {
        requestParams: { path: z.object({ dep: z.string().regex(/^[a-zA-Z0-9_.-]{1,64}$/) }) },
        requestBody: { required: true, content: json(z.strictObject({ state: z.enum(["down", "healthy"]).nullable() })) },
      },
    ),
  },
  "/v1/admin/parked": {
    get: op("admin", "Parked workflows, oldest first", { "200": ok("The parked workflows.", z.object({ parked: z.array(ParkedRow) })), "400": invalid }, {
      requestParams: { query: z.object({ dependency: z.string().optional(), tenant: z.string().optional(), limit: z.string().optional() }) },
    }),
  },
  ...Object.fromEntries(
    (["requeue", "fail"] as const).map((a) => [
      `/v1/admin/parked/{id}/${a}`,
      {
        post: op(
          "admin",
          a === "requeue" ? "Requeue one parked workflow now" : "Fail one parked workflow",
          { "200": ok("Done.", z.object({ id: workflowId, outcome: z.string() })), "400": invalid, "404": err("No such parked workflow.") },
          { requestParams: { path: idPath }, requestBody: reasonBody },
        ),
      },
    ]),
  ),

  "/healthz": { get: op("none", "Liveness: the process answers", { "200": ok("Alive.", z.object({ ok: z.literal(true) })) }) },
  "/readyz": {
    get: op("none", "Readiness: Redis answers and every watched dependency has had its first probe", {
      "200": ok("Ready.", z.object({ ok: z.literal(true), redis: z.literal("up") })),
      "503": ok("Not ready.", z.object({ ok: z.literal(false), redis: z.enum(["up", "down"]), firstProbesPending: z.number().int().optional() })),
    }),
  },
  "/metrics": {
    get: {
      summary: "Prometheus metrics",
      tags: ["Operations"],
      security: [{ adminToken: [] }, { metricsToken: [] }],
      responses: {
        "200": { description: "Prometheus text format.", content: { "text/plain": { schema: z.string() } } },
        "401": err("No or wrong token (unless FAIRLANE_METRICS_AUTH=none)."),
      },
    },
  },
};

let built: object | undefined;

/** The document (built once per process). */
export function openApiDocument(): object {
  built ??= createDocument({
    openapi: "3.1.0",
    info: {
      title: "Fairlane API",
      version: API_VERSION,
      description:
        "Producer API (a tenant's API key), admin and operator API (the admin token), and operations endpoints of Fairlane, a multi-tenant fair job queue for agentic workflows. Every error is `{ error: { code, message, details? } }`; every answer carries `X-Request-Id`.",
    },
    tags: [
      { name: "Producer", description: "Enqueue, read, list and cancel a tenant's workflows." },
      { name: "Admin", description: "Tenants, keys, usage, dependencies and parked work." },
      { name: "Operations", description: "Liveness, readiness and metrics." },
    ],
    components: {
      securitySchemes: {
        apiKey: { type: "http", scheme: "bearer", description: "A tenant's API key (`flk_...`): `Authorization: Bearer <key>`." },
        adminToken: { type: "http", scheme: "bearer", description: "The admin token: `Authorization: Bearer <token>`, with `X-Fairlane-Operator: <name>` for the audit log." },
        adminBasic: {
          type: "http",
          scheme: "basic",
          description: "Browsers: the operator's name as user and the admin token as password. A state-changing request must then be same-origin JSON.",
        },
        metricsToken: { type: "http", scheme: "bearer", description: "FAIRLANE_METRICS_TOKEN, for Prometheus." },
      },
    },
    paths,
  });
  return built;
}
