/**
 * Human review's paths in the OpenAPI document (src/api/openapi.ts), as src/api/reviews.ts serves them:
 * what a reviewer does with a pool-scoped reviewer key (`flr_`), and the admin's reviewer pools and keys.
 * The request schemas are the ones reviews.ts validates with (Claim, Decision).
 */
import { z } from "zod";
import type { ZodOpenApiPathsObject } from "zod-openapi";
import { POOL_ID } from "../../queues/names.ts";
import { err, idPath, invalid, json, ok, op } from "./openapiOperation.ts";
import { cls, iso, isoOrNull, workflowId } from "./openapiSchemas.ts";
import { Claim, Decision } from "./reviews.ts";

/** A review item as a reviewer sees it (ReviewView, src/workflows/reviewQueues.ts). */
export const ReviewItem = z
  .object({
    id: workflowId.meta({ description: "The workflow waiting for this decision; the item's id." }),
    tenant: z.string(),
    class: cls,
    pool: z.string().meta({ description: "The reviewer pool the item is in now." }),
    state: z.enum(["pending", "claimed"]),
    request: z
      .object({ summary: z.string(), data: z.unknown() })
      .meta({ description: "What the workflow asked (ctx.review): a summary and any JSON data, the tenant's." }),
    createdAt: iso,
    dueAt: isoOrNull.meta({
      description: "When the item escalates or fails if nobody has decided (the SLA or the deadline); null: never.",
    }),
    dueAction: z
      .enum(["escalate", "fail"])
      .meta({ description: "What happens at dueAt: escalate (another pool, or back in line) or fail." }),
    escalations: z.number().int().min(0),
    note: z.string().nullable().meta({ description: "The last escalating reviewer's note, for the next one." }),
    leaseUntil: isoOrNull.meta({ description: "A claimed item: until when its claim holds; null when pending." }),
  })
  .meta({ id: "ReviewItem" });

export const ReviewerPools = z
  .object({
    waiting: z.array(z.object({ pool: z.string(), tenant: z.string(), cls, waiting: z.number().int().min(0) })),
    claimed: z.record(z.string(), z.number().int().min(0)).meta({ description: "Items claimed, per pool." }),
  })
  .meta({ id: "ReviewerPools" });

export const ReviewerKey = z
  .object({ pool: z.string(), keyId: z.string(), createdAt: iso, label: z.string().optional() })
  .meta({ id: "ReviewerKey" });

const Decided = z.union([
  z.object({ id: workflowId, decision: z.enum(["approve", "reject"]), state: z.literal("decided") }),
  z.object({
    id: workflowId,
    decision: z.literal("escalate"),
    state: z.literal("pending"),
    pool: z.string().meta({ description: "The pool it went to: the tenant's escalateTo, or the same pool." }),
  }),
]);

const poolPath = z.object({ pool: z.string().regex(POOL_ID).meta({ description: "A reviewer pool." }) });
const keyPath = poolPath.extend({ keyId: z.string().regex(/^[0-9a-f]{12}$/) });
const badPool = err("The pool name is invalid (INVALID_REQUEST); nothing changed.");
const noItem = err("No open review item of this key's pool has this id (another pool's answers the same) (NOT_FOUND).");

export const reviewPaths: ZodOpenApiPathsObject = {
  "/v1/reviews/next": {
    get: op(
      "reviewer",
      "Claim the pool's next review item",
      {
        "200": ok("Claimed, with a lease: decide it before leaseUntil.", ReviewItem),
        "204": { description: "Nothing waits in the pool." },
        "400": invalid,
      },
      {
        requestParams: { query: Claim },
        description:
          "Fair across the pool's tenants (by weight, classes A, then B, then C). An item whose lease lapsed goes back in line, ahead of newer ones.",
      },
    ),
  },
  "/v1/reviews/{id}": {
    get: op(
      "reviewer",
      "Read a review item of the key's pool",
      { "200": ok("The item, pending or claimed.", ReviewItem), "404": noItem },
      { requestParams: { path: idPath } },
    ),
    post: op(
      "reviewer",
      "Decide a claimed review item",
      {
        "200": ok("approve / reject: decided, the workflow resumes with the decision. escalate: pending again, in `pool`.", Decided),
        "400": invalid,
        "404": noItem,
        "409": err("The item is not held by this key now: not claimed, claimed by another key, or its lease lapsed (REVIEW_NOT_CLAIMED)."),
      },
      { requestParams: { path: idPath }, requestBody: { required: true, content: json(Decision) } },
    ),
  },
  "/v1/admin/reviewer-pools": {
    get: op("admin", "Review items waiting per pool, tenant and class, and claimed per pool", {
      "200": ok("Every pool with open items.", ReviewerPools),
    }),
  },
  "/v1/admin/reviewer-pools/{pool}/keys": {
    get: op(
      "admin",
      "List a reviewer pool's keys (never the keys themselves)",
      { "200": ok("The keys.", z.object({ keys: z.array(ReviewerKey) })), "400": badPool },
      { requestParams: { path: poolPath } },
    ),
    post: op(
      "admin",
      "Create a reviewer key for a pool (shown once)",
      { "201": ok("The new key.", z.object({ keyId: z.string(), key: z.string(), pool: z.string() })), "400": invalid },
      { requestParams: { path: poolPath }, requestBody: { content: json(z.strictObject({ label: z.string().max(100).optional() })) } },
    ),
  },
  "/v1/admin/reviewer-pools/{pool}/keys/{keyId}": {
    delete: op(
      "admin",
      "Revoke a reviewer key",
      { "204": { description: "Revoked: the key answers 401 at once." }, "400": badPool, "404": err("No such key in this pool.") },
      { requestParams: { path: keyPath } },
    ),
  },
};
