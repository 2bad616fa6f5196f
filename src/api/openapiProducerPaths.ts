/** The producer API's paths in the OpenAPI document (src/api/openapi.ts): a tenant's own workflows. */
import { z } from "zod";
import type { ZodOpenApiPathsObject } from "zod-openapi";
import { MAX_BULK, WorkflowRequestSchema } from "../admission/schema.ts";
import { ExportQuerySchema } from "../workflows/export.ts";
import { ListQuerySchema } from "../workflows/listIndex.ts";
import { TrailQuerySchema } from "../workflows/trail.ts";
import { err, idPath, invalid, json, ok, op, retryAfter } from "./openapiOperation.ts";
import { Accepted, BulkResult, ErrorBody, TrailPage, Workflow, WorkflowPage } from "./openapiSchemas.ts";

export const producerPaths: ZodOpenApiPathsObject = {
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
        "400": err(
          "The request is invalid (INVALID_REQUEST, with each field and why), or no live worker runs its type (UNKNOWN_WORKFLOW_TYPE); nothing changed.",
        ),
        "402": err("The tenant's monthly budget is spent (BUDGET_EXCEEDED)."),
        "403": err("The tenant has no policy (TENANT_UNKNOWN)."),
        "409": err("The idempotency key was used for a different request (IDEMPOTENCY_KEY_REUSED)."),
        "413": err("The body is larger than the limit (PAYLOAD_TOO_LARGE)."),
        "415": err("Unsupported encoding or charset."),
        "422": err("Valid, but it could never run: Class A for a tenant whose mcaUrgent is 0 (CLASS_NOT_ALLOWED)."),
        "429": err(
          "Backpressure: the tenant's queue (depth or bytes) or the cell is full (BACKPRESSURE); retry after Retry-After.",
          retryAfter,
        ),
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
        description:
          "Cursor pagination with a bounded cost per page; never another tenant's workflows. Lists reach back as far as records are kept (FAIRLANE_RECORD_TTL_SEC).",
      },
    ),
  },
  "/v1/workflows/export": {
    get: op(
      "tenant",
      "Export the tenant's ended workflows as NDJSON",
      {
        "200": {
          description:
            "One line per ended workflow, in the order they ended, to the newest: `{ cursor, endedAt, id, workflow }`, `workflow` the record as GET /v1/workflows/{id} answers it, or null when it had already expired or been erased.",
          content: { "application/x-ndjson": { schema: z.string() } },
        },
        "400": invalid,
      },
      {
        requestParams: { query: ExportQuerySchema },
        description:
          "For an archive: records are kept for the tenant's erasureAfterDays only. Each ended workflow once, found by its audit-trail entry (which reaches back auditRetentionDays); resumable: pass the last `cursor` written and the export goes on after it, none twice, none missed.",
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
      {
        requestBody: { required: true, content: json(z.strictObject({ workflows: z.array(WorkflowRequestSchema).min(1).max(MAX_BULK) })) },
      },
    ),
  },
  "/v1/workflows/{id}": {
    get: op(
      "tenant",
      "Read a workflow",
      { "200": ok("The workflow (a queued one says why it waits).", Workflow), "404": err("No such workflow for this tenant.") },
      { requestParams: { path: idPath } },
    ),
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
  "/v1/audit": {
    get: op(
      "tenant",
      "Read the tenant's audit trail, oldest first",
      { "200": ok("One page.", TrailPage), "400": invalid },
      {
        requestParams: { query: TrailQuerySchema },
        description:
          "Every state transition of the tenant's workflows and every admin action on the tenant, as far back as its auditRetentionDays; never another tenant's.",
      },
    ),
  },
  "/v1/audit/export": {
    get: op(
      "tenant",
      "Export the tenant's audit trail as NDJSON",
      {
        "200": {
          description: "One TrailEntry per line, oldest first, to the newest.",
          content: { "application/x-ndjson": { schema: z.string() } },
        },
        "400": invalid,
      },
      {
        requestParams: { query: TrailQuerySchema.omit({ limit: true }) },
        description: "Resumable: pass the last `id` written as `cursor` and the export goes on from the next entry, none twice.",
      },
    ),
  },
};
