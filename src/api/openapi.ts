import { z } from "zod";
import { createDocument, type ZodOpenApiPathsObject } from "zod-openapi";
import { adminPaths } from "./openapiAdminPaths.ts";
import { err, ok, op } from "./openapiOperation.ts";
import { orgPaths } from "./openapiOrgPaths.ts";
import { producerPaths } from "./openapiProducerPaths.ts";
import { reviewPaths } from "./openapiReviewPaths.ts";

/**
 * The OpenAPI 3.1 document of the producer, reviewer, admin and operations APIs, built from the zod schemas that
 * validate the requests (src/admission/schema.ts, src/tenancy/policy.ts, src/workflows/listIndex.ts) and
 * response schemas written against what the handlers send (openapiSchemas.ts). The paths live in
 * openapiProducerPaths.ts, openapiReviewPaths.ts, openapiAdminPaths.ts and openapiOrgPaths.ts (operations below), each built with `op`
 * (openapiOperation.ts). Served at GET /openapi.json and rendered at /docs;
 * test/integration/api.contract.test.ts checks every route's real answers against it.
 * API version: the `/v1` path is the major; `info.version` moves with compatible additions (CHANGELOG.md).
 */
export const API_VERSION = "1.2.0";

/** Liveness, readiness and metrics. */
const operationsPaths: ZodOpenApiPathsObject = {
  "/healthz": { get: op("none", "Liveness: the process answers", { "200": ok("Alive.", z.object({ ok: z.literal(true) })) }) },
  "/readyz": {
    get: op("none", "Readiness: Redis answers and every watched dependency has had its first probe", {
      "200": ok("Ready.", z.object({ ok: z.literal(true), redis: z.literal("up") })),
      "503": ok(
        "Not ready.",
        z.object({ ok: z.literal(false), redis: z.enum(["up", "down"]), firstProbesPending: z.number().int().optional() }),
      ),
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

const paths: ZodOpenApiPathsObject = { ...producerPaths, ...reviewPaths, ...adminPaths, ...orgPaths, ...operationsPaths };

let built: object | undefined;

/** The document (built once per process). */
export function openApiDocument(): object {
  built ??= createDocument({
    openapi: "3.1.0",
    info: {
      title: "Fairlane API",
      version: API_VERSION,
      description:
        "Producer API (a tenant's API key), reviewer API (a reviewer pool's key), admin and operator API (the admin token), and operations endpoints of Fairlane, a multi-tenant fair job queue for agentic workflows. Every error is `{ error: { code, message, details? } }`; every answer carries `X-Request-Id`.",
    },
    tags: [
      { name: "Producer", description: "Enqueue, read, list and cancel a tenant's workflows." },
      { name: "Reviewer", description: "Human review: claim and decide the review items of a reviewer pool." },
      { name: "Admin", description: "Tenants, orgs, keys, usage, dependencies, parked work and reviewer pools." },
      { name: "Operations", description: "Liveness, readiness and metrics." },
    ],
    components: {
      securitySchemes: {
        apiKey: { type: "http", scheme: "bearer", description: "A tenant's API key (`flk_...`): `Authorization: Bearer <key>`." },
        reviewerKey: {
          type: "http",
          scheme: "bearer",
          description:
            "A reviewer pool's key (`flr_...`): `Authorization: Bearer <key>`. It reads and decides that pool's review items only.",
        },
        adminToken: {
          type: "http",
          scheme: "bearer",
          description: "The admin token: `Authorization: Bearer <token>`, with `X-Fairlane-Operator: <name>` for the audit log.",
        },
        adminBasic: {
          type: "http",
          scheme: "basic",
          description:
            "Browsers: the operator's name as user and the admin token as password. A state-changing request must then be same-origin JSON.",
        },
        metricsToken: { type: "http", scheme: "bearer", description: "FAIRLANE_METRICS_TOKEN, for Prometheus." },
      },
    },
    paths,
  });
  return built;
}
