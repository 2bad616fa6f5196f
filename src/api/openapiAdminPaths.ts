/** The admin and operator API's paths in the OpenAPI document (src/api/openapi.ts). */
import { z } from "zod";
import type { ZodOpenApiPathsObject } from "zod-openapi";
import { TENANT_ID } from "../../queues/names.ts";
import { PolicySpecSchema } from "../tenancy/policy.ts";
import { ListQuerySchema } from "../workflows/listIndex.ts";
import { ExportQuerySchema } from "../workflows/export.ts";
import { TrailQuerySchema } from "../workflows/trail.ts";
import { USAGE_SORTS } from "./usageView.ts";
import { err, idPath, invalid, json, ok, op, reasonBody, tenantMissing, tenantPath } from "./openapiOperation.ts";
import {
  ApiKey,
  AuditEntry,
  CapacityReport,
  cls,
  Dependency,
  ParkedRow,
  PolicySpec,
  TenantEntry,
  TenantExplain,
  TrailPage,
  UsageList,
  UsageOne,
  Workflow,
  WorkflowPage,
  workflowId,
} from "./openapiSchemas.ts";

export const adminPaths: ZodOpenApiPathsObject = {
  "/v1/admin/workflows": {
    get: op(
      "admin",
      "List a tenant's workflows",
      { "200": ok("One page.", WorkflowPage), "400": invalid, "403": err("The tenant has no policy (TENANT_UNKNOWN).") },
      {
        requestParams: {
          query: ListQuerySchema.extend({
            tenant: z.string().regex(TENANT_ID).meta({ description: "The tenant whose workflows to list." }),
          }),
        },
      },
    ),
  },
  "/v1/admin/workflows/{id}": {
    get: op(
      "admin",
      "Read any tenant's workflow, with why it waits",
      {
        "200": ok("The workflow and the cell holding it.", Workflow.extend({ cell: z.string() }).meta({ id: "AdminWorkflow" })),
        "400": invalid,
        "404": err("No such workflow in any cell."),
      },
      { requestParams: { path: idPath } },
    ),
  },
  "/v1/admin/tenants": {
    get: op("admin", "List tenants and their policies", { "200": ok("Every tenant.", z.object({ tenants: z.array(TenantEntry) })) }),
  },
  "/v1/admin/tenants/{tenant}": {
    get: op(
      "admin",
      "Read a tenant's policy",
      { "200": ok("The tenant.", TenantEntry), "400": invalid, "404": tenantMissing },
      { requestParams: { path: tenantPath } },
    ),
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
    get: op(
      "admin",
      "Why a tenant's queued work is not running",
      { "200": ok("Per class: queued, running and the constraint holding it.", TenantExplain), "400": invalid, "404": tenantMissing },
      {
        requestParams: { path: tenantPath },
        description:
          "Computed from the dispatcher's own state (its caps in the cell, slots held, pool capacity and use, ready sets, dependency health) by the dispatch rule's own functions.",
      },
    ),
  },
  "/v1/admin/tenants/{tenant}/keys": {
    get: op(
      "admin",
      "List a tenant's API keys (never the keys themselves)",
      { "200": ok("The keys.", z.object({ keys: z.array(ApiKey) })), "400": invalid, "404": tenantMissing },
      { requestParams: { path: tenantPath } },
    ),
    post: op(
      "admin",
      "Create an API key (shown once)",
      { "201": ok("The new key.", z.object({ keyId: z.string(), key: z.string() })), "400": invalid, "404": tenantMissing },
      { requestParams: { path: tenantPath }, requestBody: { content: json(z.strictObject({ label: z.string().max(100).optional() })) } },
    ),
  },
  "/v1/admin/tenants/{tenant}/keys/{keyId}": {
    delete: op(
      "admin",
      "Revoke an API key",
      { "204": { description: "Revoked." }, "400": invalid, "404": err("No such key.") },
      {
        requestParams: { path: tenantPath.extend({ keyId: z.string().regex(/^[0-9a-f]{12}$/) }) },
      },
    ),
  },
  ...Object.fromEntries(
    (["pause", "resume"] as const).map((a) => [
      `/v1/admin/tenants/{tenant}/${a}`,
      {
        post: op(
          "admin",
          a === "pause" ? "Pause a tenant (nothing of it is dispatched)" : "Resume a paused tenant",
          { "200": ok("Done.", z.object({ tenant: z.string(), paused: z.boolean() })), "400": invalid, "404": tenantMissing },
          { requestParams: { path: tenantPath } },
        ),
      },
    ]),
  ),
  "/v1/admin/tenants/{tenant}/drain": {
    post: op(
      "admin",
      "Cancel a tenant's queued workflows of some classes",
      {
        "200": ok("What was cancelled.", z.looseObject({ tenant: z.string(), cancelled: z.number().int() })),
        "400": invalid,
        "404": tenantMissing,
      },
      {
        requestParams: { path: tenantPath },
        requestBody: {
          required: true,
          content: json(z.strictObject({ classes: z.array(cls).min(1).max(3).optional(), all: z.literal(true).optional() })),
        },
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
          {
            "200": ok(
              "How many.",
              z.object({ tenant: z.string(), [a === "requeue" ? "requeued" : "failed"]: z.number().int(), skipped: z.number().int() }),
            ),
            "400": invalid,
            "404": tenantMissing,
          },
          { requestParams: { path: tenantPath }, requestBody: reasonBody },
        ),
      },
    ]),
  ),
  "/v1/admin/tenants/{tenant}/audit": {
    get: op(
      "admin",
      "Read a tenant's audit trail, oldest first",
      { "200": ok("One page, as the tenant's own GET /v1/audit.", TrailPage), "400": invalid, "404": tenantMissing },
      { requestParams: { path: tenantPath, query: TrailQuerySchema } },
    ),
  },
  "/v1/admin/tenants/{tenant}/audit/export": {
    get: op(
      "admin",
      "Export a tenant's audit trail as NDJSON (resumable with cursor)",
      {
        "200": { description: "One TrailEntry per line, oldest first.", content: { "application/x-ndjson": { schema: z.string() } } },
        "400": invalid,
        "404": tenantMissing,
      },
      { requestParams: { path: tenantPath, query: TrailQuerySchema.omit({ limit: true }) } },
    ),
  },
  "/v1/admin/tenants/{tenant}/workflows/export": {
    get: op(
      "admin",
      "Export a tenant's ended workflows as NDJSON (resumable with cursor)",
      {
        "200": {
          description: "As the tenant's own GET /v1/workflows/export: one line per ended workflow, in the order they ended.",
          content: { "application/x-ndjson": { schema: z.string() } },
        },
        "400": invalid,
        "404": tenantMissing,
      },
      { requestParams: { path: tenantPath, query: ExportQuerySchema } },
    ),
  },
  "/v1/admin/tenants/{tenant}/data": {
    delete: op(
      "admin",
      "Erase a tenant's workflows that ended before a time",
      {
        "200": ok(
          "What was erased, and what was kept because it has not ended (never erased).",
          z.object({
            tenant: z.string(),
            before: z.string(),
            cells: z.array(z.string()),
            erased: z.number().int(),
            alreadyGone: z.number().int(),
            kept: z.object({ queued: z.number().int(), running: z.number().int(), parked: z.number().int(), endedLater: z.number().int() }),
          }),
        ),
        "400": invalid,
        "404": tenantMissing,
      },
      {
        requestParams: {
          path: tenantPath,
          query: z.object({ before: z.string().meta({ description: "ISO 8601 or epoch ms, not in the future (required)." }) }),
        },
      },
    ),
  },
  "/v1/admin/audit": {
    get: op(
      "admin",
      "Admin actions, newest first",
      { "200": ok("The entries.", z.object({ entries: z.array(AuditEntry) })) },
      {
        requestParams: { query: z.object({ limit: z.string().optional().meta({ description: "1-1000 (default 100)." }) }) },
      },
    ),
  },
  "/v1/admin/usage": {
    get: op(
      "admin",
      "Every tenant's live usage and the platform summary",
      { "200": ok("A fresh snapshot.", UsageList), "400": invalid },
      {
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
      },
    ),
  },
  "/v1/admin/usage/{tenant}": {
    get: op(
      "admin",
      "One tenant's usage and its recent history",
      { "200": ok("The tenant's usage.", UsageOne), "400": invalid, "404": tenantMissing },
      { requestParams: { path: tenantPath } },
    ),
  },
  "/v1/admin/capacity-report": {
    get: op(
      "admin",
      "Recommended caps from the recorded usage",
      { "200": ok("The report with its evidence.", CapacityReport), "400": invalid },
      {
        requestParams: { query: z.object({ window: z.string().optional().meta({ description: "e.g. 1h, 24h (default), 7d." }) }) },
      },
    ),
  },
  "/v1/admin/dependencies": {
    get: op("admin", "Every dependency's health and parked count", {
      "200": ok("The dependencies.", z.object({ dependencies: z.array(Dependency) })),
    }),
  },
  "/v1/admin/dependencies/{dep}": {
    put: op(
      "admin",
      "Mark a dependency down or healthy by hand (null: back to the probes)",
      {
        "200": ok("Marked.", z.object({ dependency: z.string(), health: z.looseObject({ state: z.string() }).nullable() })),
        "400": invalid,
      },
      {
        requestParams: { path: z.object({ dep: z.string().regex(/^[a-zA-Z0-9_.-]{1,64}$/) }) },
        requestBody: { required: true, content: json(z.strictObject({ state: z.enum(["down", "healthy"]).nullable() })) },
      },
    ),
  },
  "/v1/admin/parked": {
    get: op(
      "admin",
      "Parked workflows, oldest first",
      { "200": ok("The parked workflows.", z.object({ parked: z.array(ParkedRow) })), "400": invalid },
      {
        requestParams: {
          query: z.object({ dependency: z.string().optional(), tenant: z.string().optional(), limit: z.string().optional() }),
        },
      },
    ),
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
};
