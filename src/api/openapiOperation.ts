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

/** Who calls a route: a producer (tenant API key), an operator (admin token), a reviewer (reviewer key), anyone. */
export type Auth = "tenant" | "admin" | "reviewer" | "none";
const TAG: Record<Auth, string> = { tenant: "Producer", admin: "Admin", reviewer: "Reviewer", none: "Operations" };
const SECURITY: Record<Auth, Record<string, string[]>[]> = {
  tenant: [{ apiKey: [] }],
  admin: [{ adminToken: [] }, { adminBasic: [] }],
  reviewer: [{ reviewerKey: [] }],
  none: [],
};
const UNAUTHORIZED: Record<Exclude<Auth, "none">, string> = {
  tenant: "No or unknown API key.",
  admin: "No or wrong admin credentials.",
  reviewer: "No, unknown or revoked reviewer key.",
};

/** Answers every route may give. */
export const common = (auth: Auth): ZodOpenApiResponsesObject => ({
  ...(auth !== "none" ? { "401": err(UNAUTHORIZED[auth]) } : {}),
  "503": err(
    "Redis is unreachable (REDIS_UNAVAILABLE), full (REDIS_FULL) or read-only (REDIS_READ_ONLY): retry after Retry-After.",
    retryAfter,
  ),
});
export const invalid = err("The request is invalid: `details` names each field and why (INVALID_REQUEST); nothing changed.");

export function op(
  auth: Auth,
  summary: string,
  responses: ZodOpenApiResponsesObject,
  more: Omit<ZodOpenApiOperationObject, "responses" | "summary"> = {},
): ZodOpenApiOperationObject {
  return { summary, tags: [TAG[auth]], security: SECURITY[auth], ...more, responses: { ...responses, ...common(auth) } };
}

export const tenantPath = z.object({ tenant: z.string().regex(TENANT_ID).meta({ description: "A tenant id." }) });
export const idPath = z.object({ id: workflowId });
export const reasonBody = { content: json(z.strictObject({ reason: z.string().max(500).optional() })) };
export const tenantMissing = err("No such tenant (NOT_FOUND).");
