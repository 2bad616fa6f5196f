/**
 * Building blocks of the OpenAPI document's operations (src/api/openapi.ts): `op` (summary, tag,
 * security and the answers every route may give), answer helpers and the shared path parameters.
 */
import { z } from "zod";
import type { ZodOpenApiOperationObject, ZodOpenApiResponsesObject } from "zod-openapi";
import { TENANT_ID } from "../../queues/names.ts";
import { ErrorBody, workflowId } from "./openapiSchemas.ts";

export const json = (schema: z.ZodType) => ({ "application/json": { schema } });
export const retryAfter = z.object({ "Retry-After": z.string().meta({ description: "Seconds to wait before trying again." }) });
export const err = (description: string, headers?: typeof retryAfter) => ({
  description,
  content: json(ErrorBody),
  ...(headers ? { headers } : {}),
});
export const ok = (description: string, schema: z.ZodType) => ({ description, content: json(schema) });

/** Answers every route may give. */
export const common = (auth: "tenant" | "admin" | "none"): ZodOpenApiResponsesObject => ({
  ...(auth !== "none" ? { "401": err(auth === "admin" ? "No or wrong admin credentials." : "No or unknown API key.") } : {}),
  "503": err(
    "Redis is unreachable (REDIS_UNAVAILABLE), full (REDIS_FULL) or read-only (REDIS_READ_ONLY): retry after Retry-After.",
    retryAfter,
  ),
});
export const invalid = err("The request is invalid: `details` names each field and why (INVALID_REQUEST); nothing changed.");

export function op(
  auth: "tenant" | "admin" | "none",
  summary: string,
  responses: ZodOpenApiResponsesObject,
  more: Omit<ZodOpenApiOperationObject, "responses" | "summary"> = {},
): ZodOpenApiOperationObject {
  return {
    summary,
    tags: [auth === "tenant" ? "Producer" : auth === "admin" ? "Admin" : "Operations"],
    ...(auth === "tenant"
      ? { security: [{ apiKey: [] }] }
      : auth === "admin"
        ? { security: [{ adminToken: [] }, { adminBasic: [] }] }
        : { security: [] }),
    ...more,
    responses: { ...responses, ...common(auth) },
  };
}

export const tenantPath = z.object({ tenant: z.string().regex(TENANT_ID).meta({ description: "A tenant id." }) });
export const idPath = z.object({ id: workflowId });
export const reasonBody = { content: json(z.strictObject({ reason: z.string().max(500).optional() })) };
export const tenantMissing = err("No such tenant (NOT_FOUND).");
